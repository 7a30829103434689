"""The verify stage: fetch a job's model.tar.gz from S3, load the model here, score the
validation split again and check the numbers equal the job's metrics.json.

The unpacked artifact stays in runs/<job>/ (model/ and output/), and the run record gains
a `verification` section.
"""

from __future__ import annotations

import argparse
import io
import json
import logging
import sys
import tarfile
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

import boto3
import joblib
import pandas as pd
from titanic_model.data import LABEL
from titanic_model.metrics import binary_metrics
from titanic_model.model import survival_probability

from launcher import logs, records
from launcher.prepare_data import sha256_file

log = logging.getLogger("verify")
TOLERANCE = 1e-6  # metrics.json holds six decimals


class VerifyError(RuntimeError):
    """The artifact is missing, unreadable, or disagrees with its own metrics."""


def download(uri: str, region: str) -> bytes:
    parsed = urlparse(uri)
    s3 = boto3.Session(region_name=region).client("s3")
    try:
        return s3.get_object(Bucket=parsed.netloc, Key=parsed.path.lstrip("/"))["Body"].read()
    except s3.exceptions.NoSuchKey:
        raise VerifyError(f"{uri} does not exist; the job wrote no artifact (see its run record)") from None


def unpack(tar_bytes: bytes, target: Path) -> list[str]:
    """Extract with tarfile's 'data' filter: no absolute paths, no links out, no devices."""
    target.mkdir(parents=True, exist_ok=True)
    with tarfile.open(fileobj=io.BytesIO(tar_bytes), mode="r:gz") as tar:
        tar.extractall(target, filter="data")
        return sorted(m.name.removeprefix("./") for m in tar.getmembers() if m.isfile())


def rescore(model_dir: Path, split_dir: Path) -> dict[str, float]:
    model = joblib.load(model_dir / "model.joblib")
    scored: dict[str, float] = {}
    for prefix, csv in (("train", "train/train.csv"), ("val", "validation/val.csv")):
        frame = pd.read_csv(split_dir / csv)
        scored.update(
            binary_metrics(prefix, frame[LABEL].to_numpy(), survival_probability(model, frame.drop(columns=LABEL)))
        )
    return scored


def compare(reported: dict[str, float], scored: dict[str, float]) -> dict[str, dict[str, float]]:
    checked = {}
    for name, value in sorted(reported.items()):
        if name not in scored:
            continue
        checked[name] = {"reported": value, "rescored": scored[name]}
        if abs(value - scored[name]) > TOLERANCE:
            raise VerifyError(
                f"{name} in metrics.json is {value} but the downloaded model scores {scored[name]:.6f}; "
                "the artifact does not match its metrics (different data or library versions?)"
            )
    if not checked:
        raise VerifyError("metrics.json shares no metric with the rescoring; was it written by this toolkit's image?")
    return checked


def verify(record_file: Path, split_dir: Path) -> dict[str, Any]:
    record = records.read_record(record_file)
    if record.get("status") != "Completed" or not record.get("model_artifact"):
        raise VerifyError(f"job {record['job_name']} is {record.get('status')}, with no model to verify")
    for channel in ("train", "validation"):
        expected = record["data"][channel]["sha256"]
        local = split_dir / ("train/train.csv" if channel == "train" else "validation/val.csv")
        if sha256_file(local) != expected:
            raise VerifyError(f"{local} is not the data job {record['job_name']} trained on; run 'make data' again")
    job_dir = record_file.parent / record["job_name"]
    members = unpack(download(record["model_artifact"], record["region"]), job_dir / "model")
    log.info("model.tar.gz holds %s", ", ".join(members))
    try:
        unpack(download(record["output_data"], record["region"]), job_dir / "output")
    except VerifyError:
        log.warning("no output.tar.gz for %s; evaluation detail is unavailable", record["job_name"])
    reported = json.loads((job_dir / "model" / "metrics.json").read_text(encoding="utf-8"))
    checked = compare(reported, rescore(job_dir / "model", split_dir))
    record["verification"] = {"verified": True, "local_dir": str(job_dir), "files": members, "metrics": checked}
    records.write_record(record_file.parent, record)
    return record


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs-dir", type=Path, required=True)
    parser.add_argument("--split-dir", type=Path, required=True)
    parser.add_argument("--job", default="", help="job name (default: the latest run record)")
    args = parser.parse_args(argv)
    logs.setup("verify")
    record_file = records.record_path(args.runs_dir, args.job) if args.job else records.latest_record(args.runs_dir)
    if record_file is None or not record_file.is_file():
        log.error("ERROR: no run record%s in %s; run 'make train' first", f" for {args.job}" if args.job else "",
                  args.runs_dir)  # fmt: skip
        return 1
    try:
        record = verify(record_file, args.split_dir)
    except VerifyError as exc:
        log.error("ERROR: %s", exc)
        return 1
    checked = record["verification"]["metrics"]
    log.info("verified %s: %d metrics match (%s)", record["job_name"], len(checked),
             ", ".join(f"{k} {v['rescored']:.4f}" for k, v in checked.items() if k.startswith("val_")))  # fmt: skip
    log.info("artifact unpacked in %s", record["verification"]["local_dir"])
    return 0


if __name__ == "__main__":
    sys.exit(main())
