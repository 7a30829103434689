"""The `data` stage: check the vendored Kaggle file, split it 80:20, write a manifest.

The split is the reference run's protocol (stratified on Survived, random_state 42: 712 / 179
rows). Cells are copied as text, never re-formatted, so the output bytes depend only on the
input bytes and the seed: the same SHA-256 on every machine.
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
from pathlib import Path

import pandas as pd
from sklearn.model_selection import train_test_split

from launcher.lib import errors
from launcher.lib.dataset import LABEL, SPLIT_FILES, sha256_file, verified_source

log = logging.getLogger("prepare_data")


def split(frame: pd.DataFrame, validation_fraction: float, seed: int) -> tuple[pd.DataFrame, pd.DataFrame]:
    return train_test_split(frame, test_size=validation_fraction, stratify=frame[LABEL], random_state=seed)


def _write_if_changed(target: Path, content: bytes) -> None:
    """Leave an identical file untouched: its mtime tells aws s3 sync there is nothing to send."""
    if target.is_file() and target.read_bytes() == content:
        return
    partial = target.with_name(f".{target.name}.partial")
    partial.write_bytes(content)
    partial.replace(target)


def write_split(source: Path, sums_file: Path, out_dir: Path, validation_fraction: float, seed: int) -> dict:
    source_sha = verified_source(source, sums_file)
    frame = pd.read_csv(source, dtype=str, keep_default_na=False)
    train, validation = split(frame, validation_fraction, seed)
    manifest: dict = {
        "source": {"file": str(source), "sha256": source_sha, "rows": len(frame)},
        "split": {"validation_fraction": validation_fraction, "random_state": seed, "stratify": LABEL},
        "channels": {},
    }
    for channel, part in (("train", train), ("validation", validation)):
        target = out_dir / SPLIT_FILES[channel]
        target.parent.mkdir(parents=True, exist_ok=True)
        _write_if_changed(target, part.to_csv(index=False, lineterminator="\n").encode("utf-8"))
        manifest["channels"][channel] = {
            "file": SPLIT_FILES[channel],
            "rows": len(part),
            "survived": int((part[LABEL] == "1").sum()),
            "sha256": sha256_file(target),
        }
    _write_if_changed(out_dir / "manifest.json", (json.dumps(manifest, indent=2, sort_keys=True) + "\n").encode())
    return manifest


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--source", type=Path, required=True, help="Kaggle's train.csv")
    parser.add_argument("--checksums", type=Path, required=True, help="SHA256SUMS file listing the source")
    parser.add_argument("--out", type=Path, required=True, help="folder for train/, validation/ and manifest.json")
    parser.add_argument("--validation-fraction", type=float, default=0.2)
    parser.add_argument("--seed", type=int, default=42)
    args = parser.parse_args(argv)
    return errors.run("data", lambda: _split(args))


def _split(args: argparse.Namespace) -> int:
    manifest = write_split(args.source, args.checksums, args.out, args.validation_fraction, args.seed)
    for info in manifest["channels"].values():
        log.info(
            "%s: %d rows (%d survived) sha256 %s", info["file"], info["rows"], info["survived"], info["sha256"][:12]
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
