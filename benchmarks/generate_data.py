"""Write a larger Titanic-shaped train channel, in shards, for the scaling benchmark.

The rows are drawn from the train split's own joint distribution, resampled by family: each
draw takes one real family (surname and class, as the features group them) whole, with every
column and outcome; the first draw of a family keeps its name, every later one gets a new
surname and new ticket numbers, so the copies are new families that lived or died together
as the originals did, and the family features learn from them what they learn from the real
ones. Ages move by up to two years and fares by a few
percent, so no two copies are identical rows. Seeded: the same arguments write the same bytes.

The shards go to OUT/train/part-NNNNN.csv with OUT/manifest.json in the data stage's format;
validation is the real validation split, copied, so AUC is measured on real passengers.
Usage: python benchmarks/generate_data.py --split-dir build/data --rows 1000000 --shards 8 --out build/scale-data
"""

from __future__ import annotations

import argparse
import hashlib
import json
import shutil
import sys
from pathlib import Path

import numpy as np
import pandas as pd

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "container"))
from titanic_model.features import group_key


def families(train: pd.DataFrame) -> list[np.ndarray]:
    """Row positions of each family (surname and class), the unit a draw takes whole."""
    keys = group_key(train, "family").fillna("").to_numpy()
    return [np.flatnonzero(keys == key) for key in pd.unique(keys)]


def draw(train: pd.DataFrame, rows: int, seed: int) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    groups = families(train)
    mean_size = len(train) / len(groups)
    picks = rng.integers(0, len(groups), size=int(rows / mean_size * 1.1) + 10)
    sizes = np.array([len(g) for g in groups])[picks]
    enough = int(np.searchsorted(np.cumsum(sizes), rows)) + 1
    index = np.concatenate([groups[pick] for pick in picks[:enough]])[:rows]
    copies = np.repeat(np.arange(enough), sizes[:enough])[:rows]
    out = train.iloc[index].reset_index(drop=True)
    # The first draw of each real family keeps its name: passengers of the real validation
    # split then find their families as in the real data. Later draws are new families:
    # "Andersson, Mr. Anders" -> "Anderssonx17, Mr. Anders".
    first = np.zeros(enough, dtype=bool)
    first[np.unique(picks[:enough], return_index=True)[1]] = True
    suffix = pd.Series(np.where(first[copies], "", np.char.add("x", copies.astype(str))))
    surname, _, rest = out["Name"].str.partition(",").T.to_numpy()
    out["Name"] = surname + suffix.to_numpy() + "," + rest
    out["Ticket"] = out["Ticket"].astype(str) + np.where(suffix == "", "", "-" + suffix).astype(object)
    out["PassengerId"] = np.arange(1, rows + 1)
    age = pd.to_numeric(out["Age"], errors="coerce")
    jittered = (age + rng.uniform(-2, 2, size=rows)).clip(lower=0.42).round(1)
    out["Age"] = jittered.where(age.notna())  # missing stays missing
    fare = pd.to_numeric(out["Fare"], errors="coerce")
    out["Fare"] = (fare * rng.lognormal(0, 0.05, size=rows)).round(4)
    return out


def write(out: Path, frame: pd.DataFrame, shards: int, split_dir: Path) -> dict:
    train_dir = out / "train"
    if train_dir.exists():
        shutil.rmtree(train_dir)
    train_dir.mkdir(parents=True)
    digests = []
    for number, part in enumerate(np.array_split(np.arange(len(frame)), shards)):
        path = train_dir / f"part-{number:05d}.csv"
        frame.iloc[part].to_csv(path, index=False, lineterminator="\n")
        digests.append(hashlib.sha256(path.read_bytes()).hexdigest())
    (out / "validation").mkdir(parents=True, exist_ok=True)
    shutil.copy(split_dir / "validation/val.csv", out / "validation/val.csv")
    validation = json.loads((split_dir / "manifest.json").read_text())["channels"]["validation"]
    manifest = {
        "source": {"generated_from": str(split_dir / "train/train.csv"), "how": "families resampled whole"},
        "channels": {
            # One digest for the channel: SHA-256 over the shards' own digests, in name order.
            "train": {
                "files": shards,
                "rows": len(frame),
                "survived": int((frame["Survived"] == "1").sum()),
                "sha256": hashlib.sha256("".join(digests).encode()).hexdigest(),
            },
            "validation": validation,
        },
    }
    (out / "manifest.json").write_text(json.dumps(manifest, indent=2, sort_keys=True) + "\n")
    return manifest


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--split-dir", type=Path, required=True, help="the data stage's output (train and validation)")
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--shards", type=int, default=8, help="files under train/ (ShardedByS3Key needs >= hosts)")
    parser.add_argument("--seed", type=int, default=42)
    parser.add_argument("--out", type=Path, required=True)
    args = parser.parse_args()
    if args.rows < args.shards or args.shards < 1:
        parser.error("--rows must be at least --shards, and --shards at least 1")
    train = pd.read_csv(args.split_dir / "train/train.csv", dtype=str, keep_default_na=False, na_values=[""])
    manifest = write(args.out, draw(train, args.rows, args.seed), args.shards, args.split_dir)
    facts = manifest["channels"]["train"]
    print(f"wrote {facts['rows']} rows ({facts['survived']} survived) in {facts['files']} shards to {args.out}/train")
    return 0


if __name__ == "__main__":
    sys.exit(main())
