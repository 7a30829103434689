"""The verify stage (`make verify`): download a run's model.tar.gz, re-score it in the
training image, and compare with the metrics the job reported (launcher/lib/verification.py).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from launcher.lib import errors, verification


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs-dir", type=Path, required=True)
    parser.add_argument("--split-dir", type=Path, required=True)
    parser.add_argument("--job", default="", help="job name (default: the latest run record)")
    args = parser.parse_args(argv)
    return errors.run("verify", lambda: _verify(args))


def _verify(args: argparse.Namespace) -> int:
    verification.verify_job(args.runs_dir, args.split_dir, args.job)
    return 0


if __name__ == "__main__":
    sys.exit(main())
