"""Scaling benchmark: one training job on 1 and on 2 hosts over a larger Titanic-shaped data set.

On the embedded stack (TARGET=local): generate --rows rows in --shards files
(benchmarks/generate_data.py, seeded), upload them under SCALE_PREFIX, and run the same job
with INSTANCE_COUNT=1 and 2 in SDK local mode, each a real job with its run record (under
--work, not runs/). Printed: training time, wall time and validation AUC (on the real
validation split) for each, the speed-up and the AUC difference. Both containers share this
machine's cores, so two "hosts" here compete for the same CPUs: the figure says what the
distributed code costs, not what two real instances gain.

Then the request the launcher sends for 4 and 8 hosts on SageMaker (not sent: it would cost
money), with what a minute of such a job costs.
Usage: python benchmarks/scale.py --image-record build/local/image.json --split-dir build/data --work build/scale
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import logging
import subprocess
import sys
from pathlib import Path

import boto3

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(REPO / "container"))
from launcher.lib import training  # noqa: E402 - after the paths
from launcher.lib.config import Settings, load  # noqa: E402
from launcher.lib.pricing import PriceBook  # noqa: E402

SCALE_PREFIX = "titanic/scale-data"
# Both runs skip the model card's repeated-CV estimate: a multi-host job always does, and it
# refits the model 15 times on one host, which would swamp the comparison.
BENCH_HYPERPARAMETERS = {"cv_repeats": "0"}


def generated(split_dir: Path, out: Path, rows: int, shards: int) -> Path:
    manifest = out / "manifest.json"
    if manifest.is_file():
        facts = json.loads(manifest.read_text())["channels"]["train"]
        if facts.get("rows") == rows and facts.get("files") == shards:
            return out
    subprocess.run(
        [
            sys.executable,
            str(REPO / "benchmarks/generate_data.py"),
            "--split-dir",
            str(split_dir),
            "--rows",
            str(rows),
            "--shards",
            str(shards),
            "--out",
            str(out),
        ],
        check=True,
    )
    return out


def upload(settings: Settings, data: Path) -> None:
    s3 = boto3.client("s3", region_name=settings.region)
    for path in sorted(p for p in data.rglob("*.csv")):
        s3.upload_file(str(path), settings.bucket, f"{SCALE_PREFIX}/{path.relative_to(data)}")


def one_run(settings: Settings, hosts: int, image_record: Path, data: Path, runs: Path) -> dict:
    changed = dataclasses.replace(
        settings,
        data_prefix=SCALE_PREFIX,
        instance_count=hosts,
        train_distribution="FullyReplicated",
        hyperparameters={**settings.hyperparameters, **BENCH_HYPERPARAMETERS},
        hyperparameters_from="config",
    )
    record = training.run(changed, image_record, data, runs)
    if record["status"] != "Completed":
        raise SystemExit(f"the {hosts}-host job {record['job_name']} {record['status']}: {record['failure_reason']}")
    return record


def request_shape(settings: Settings, hosts: int, price: float | None) -> str:
    aws = dataclasses.replace(settings, target="aws", instance_count=hosts, train_distribution="ShardedByS3Key")
    channels = {
        name: value.config["DataSource"]["S3DataSource"]["S3DataDistributionType"]
        for name, value in training.training_inputs(aws).items()
    }
    shape = {
        "ResourceConfig": {
            "InstanceType": aws.instance_type,
            "InstanceCount": hosts,
            "VolumeSizeInGB": aws.volume_size_gb,
        },
        "S3DataDistributionType": channels,
        "EnableInterContainerTrafficEncryption": True,
        "EnableNetworkIsolation": True,
    }
    minute = "unknown price" if price is None else f"${hosts * price / 60:.4f} per minute of training"
    return f"  {hosts} hosts: {json.dumps(shape)}; {minute}"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--image-record", type=Path, required=True)
    parser.add_argument("--split-dir", type=Path, required=True)
    parser.add_argument("--work", type=Path, required=True, help="generated data and the benchmark's run records")
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--shards", type=int, default=8)
    args = parser.parse_args()
    logging.basicConfig(level=logging.WARNING, format="[%(name)s] %(message)s")
    settings = load()
    if not settings.local:
        raise SystemExit(
            "benchmark-scale runs on the embedded stack only (TARGET=local): on AWS it would start "
            "paid jobs; the request shapes below are what make train sends"
        )
    data = generated(args.split_dir, args.work / "data", args.rows, args.shards)
    upload(settings, data)
    runs = args.work / "runs"
    results = {hosts: one_run(settings, hosts, args.image_record, data, runs) for hosts in (1, 2)}
    one, two = results[1], results[2]
    print(
        f"\nScaling: {args.rows:,} train rows in {args.shards} files, validation on the real split "
        f"({one['data']['validation']['rows']} rows); this machine's CPUs shared by every container"
    )
    print(f"{'hosts':>5}  {'training s':>10}  {'wall s':>7}  {'val_auc':>7}")
    for hosts, record in results.items():
        print(
            f"{hosts:>5}  {record['seconds']['training']:>10}  {record['wall_seconds']:>7}  "
            f"{record['metrics']['val_auc']:>7.4f}"
        )
    print(
        f"speed-up 2 hosts vs 1 (training s): {one['seconds']['training'] / two['seconds']['training']:.2f}x "
        "(goal on real instances: > 1; here both share one machine)"
    )
    print(
        f"val_auc difference 2 hosts - 1 host: {two['metrics']['val_auc'] - one['metrics']['val_auc']:+.4f} "
        "(goal: within 0.02)"
    )
    price, _ = PriceBook(settings.region, None).lookup(settings.instance_type)
    print(f"\nOn SageMaker (not sent), TRAIN_DISTRIBUTION=ShardedByS3Key over {args.shards} files:")
    for hosts in (4, 8):
        print(request_shape(settings, hosts, price.usd_per_hour if price else None))
    return 0


if __name__ == "__main__":
    sys.exit(main())
