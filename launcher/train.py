"""The train stage (`make train`): one SageMaker training job through the SDK's Estimator.fit(),
followed to its end, its run record written; `--verify` then verifies that job.

How a job is started, watched and recorded lives in launcher/lib/training.py (tuning's local
trials run through the same code).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from launcher.lib import errors, records, verification
from launcher.lib.config import load
from launcher.lib.errors import StillRunning
from launcher.lib.training import Interrupted, TrainError, follow_up_commands, run


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--image-record", type=Path, required=True, help="JSON written by the push stage")
    parser.add_argument("--split-dir", type=Path, required=True, help="the data stage's output (for SHA-256s)")
    parser.add_argument("--runs-dir", type=Path, required=True, help="where run records go")
    parser.add_argument("--job", default="", help="re-attach to this job instead of starting one")
    parser.add_argument("--verify", action="store_true", help="then verify the job this run trained")
    args = parser.parse_args(argv)
    return errors.run("train", lambda: _train(args))


def _train(args: argparse.Namespace) -> int:
    try:
        record = run(load(), args.image_record, args.split_dir, args.runs_dir, attach=args.job)
    except Interrupted as stop:
        print(records.summary(stop.record, records.record_path(args.runs_dir, stop.record["job_name"])), flush=True)
        raise StillRunning(follow_up_commands(stop.record["job_name"])) from None
    print(records.summary(record, records.record_path(args.runs_dir, record["job_name"])), flush=True)
    if record["status"] != "Completed":
        raise TrainError(f"training job {record['job_name']} {record['status']}: {record['failure_reason']}")
    if args.verify:
        verification.verify_job(args.runs_dir, args.split_dir, record["job_name"])
    return 0


if __name__ == "__main__":
    sys.exit(main())
