"""Prints the training image's size and its cold-start-to-exit time against the floor.

The floor is a bare `python -c 'import pandas, sklearn, lightgbm'` in the same image: what
any run of this stack costs before our code does anything. Medians over --runs runs.
Usage: python benchmarks/image_startup.py --image titanic-lightgbm:local --split-dir build/data
"""

from __future__ import annotations

import argparse
import json
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path


def timed(cmd: list[str]) -> float:
    started = time.perf_counter()
    subprocess.run(cmd, check=True, capture_output=True)
    return time.perf_counter() - started


def sm_root(split_dir: Path, parent: Path) -> Path:
    root = parent / "ml"
    for sub in ("input/config", "model", "output"):
        (root / sub).mkdir(parents=True)
    for channel in ("train", "validation"):
        shutil.copytree(split_dir / channel, root / "input/data" / channel)
    return root


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--image", required=True)
    parser.add_argument("--split-dir", type=Path, required=True)
    parser.add_argument("--runs", type=int, default=7)
    args = parser.parse_args()
    inspect = subprocess.run(["docker", "image", "inspect", args.image], capture_output=True, text=True)
    if inspect.returncode != 0:
        print(f"image {args.image} not found; run 'make build' first", file=sys.stderr)
        return 1
    size_mb = json.loads(inspect.stdout)[0]["Size"] / 1e6
    run = ["docker", "run", "--rm", "--network", "none"]
    floor_cmd = [*run, "--entrypoint", "python", args.image, "-c", "import pandas, sklearn, lightgbm"]
    # The same imports, ended as entrypoint.py ends a command (no interpreter teardown): what
    # our own work costs beyond them, with the exit counted alike on both sides.
    quick_exit = "import os, pandas, sklearn, lightgbm; os._exit(0)"
    bare_cmd = [*run, "--entrypoint", "python", args.image, "-c", quick_exit]
    empty_cmd = [*run, "--entrypoint", "true", args.image]
    with tempfile.TemporaryDirectory() as tmp:
        root = sm_root(args.split_dir, Path(tmp))
        train_cmd = [*run, "-v", f"{root}:/opt/ml", args.image, "train"]
        timed(train_cmd)  # warm the page cache once, like every later run on one host
        samples: dict[str, list[float]] = {"empty": [], "floor": [], "bare": [], "train": []}
        for _ in range(args.runs):  # interleaved, so drift on a noisy machine hits all alike
            samples["empty"].append(timed(empty_cmd))
            samples["floor"].append(timed(floor_cmd))
            samples["bare"].append(timed(bare_cmd))
            samples["train"].append(timed(train_cmd))
    med = {k: statistics.median(v) for k, v in samples.items()}
    print(f"image {args.image}: {size_mb:.0f} MB")
    print(f"medians over {args.runs} runs (docker run --network none, cold container, warm page cache):")
    print(f"  container start, no python      {med['empty']:.2f} s")
    print(f"  floor: import pandas/sklearn/lgbm {med['floor']:.2f} s")
    ratio = med["train"] / med["floor"]
    print(
        f"  train (712 + 179 rows)          {med['train']:.2f} s   = {ratio:.2f} x floor   goal <= 1.1 x "
        f"{'ok' if ratio <= 1.1 else 'MISSED'}"
    )
    print(f"  the imports, no teardown        {med['bare']:.2f} s   (entrypoint.py skips the interpreter's teardown)")
    print(f"  our code beyond those imports   {med['train'] - med['bare']:.2f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
