"""The `data` stage: check the vendored Kaggle file, split it 80:20, write a manifest.

The split is the reference run's protocol (stratified on Survived, random_state 42: 712 / 179
rows), made by the image's own code (titanic_model/prepare.py), which the pipeline's Prepare
step runs too: the same bytes on every machine and in both.
"""

from __future__ import annotations

import argparse
import logging
import sys
from pathlib import Path

from launcher.lib import errors
from launcher.lib.dataset import write_split

log = logging.getLogger("prepare_data")


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
