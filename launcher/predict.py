"""`make predict`: Kaggle's test.csv through a batch transform job, into a Kaggle submission.

The model is a verified run's (the latest, or `--job`): its image and its model.tar.gz, as a
SageMaker Model, then a Transformer over s3://BUCKET/DATA_PREFIX/test/test.csv, split into
lines, many lines per request. TARGET=local runs it through the SDK's local mode (the serving
container on this host, port on 127.0.0.1), TARGET=aws on SageMaker on the instance report's
cheapest type with transform quota. The answers are joined back to PassengerId by the id each
answer carries, never by line order, and every id of the input must come back exactly once;
only then are submission.csv and probabilities.csv written (runs/<job>/ and
s3://BUCKET/PREDICTIONS_PREFIX/<transform job>/), and the run record gains the transform.
"""

from __future__ import annotations

import argparse
import logging
import sys
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import boto3
from botocore.exceptions import ClientError

from launcher.lib import batch_transform, errors, names, records, sdk, watch
from launcher.lib.caller import whoami
from launcher.lib.config import Settings, job_tags, load
from launcher.lib.dataset import verified_bytes
from launcher.lib.errors import ToolkitError
from launcher.lib.local_mode import remove_local_containers
from launcher.lib.pricing import usd
from launcher.lib.submission import (
    SUBMISSION,
    passenger_ids,
    transform_instance_type,
    upload_test,
    written,
)

log = logging.getLogger("predict")


class PredictError(ToolkitError):
    """The predictions cannot be made or trusted; the message says why and what to do."""


def run(
    settings: Settings,
    runs_dir: Path,
    test_file: Path,
    checksums: Path,
    *,
    job: str = "",
    boto_session: boto3.Session | None = None,
) -> dict[str, Any]:
    record_file = records.verified_record(runs_dir, job, use="predict with")
    record = records.read_record(record_file)
    data, digest = verified_bytes(test_file, checksums)
    ids = passenger_ids(data)
    boto_session = boto_session or boto3.Session(region_name=settings.region)
    s3, sm = boto_session.client("s3"), boto_session.client("sagemaker")
    records.require_artifact(s3, record)
    launched_by = whoami(boto_session).arn
    input_uri = upload_test(s3, settings, data, digest)
    name = names.transform_job(settings.base_job_name, datetime.now(UTC))
    output_uri = f"{settings.predictions_uri}/{name}/raw"
    instance_type = transform_instance_type(settings, boto_session)
    log.info(
        "transform job %s: model of %s on %s, %d rows of %s",
        name,
        record["job_name"],
        instance_type,
        len(ids),
        input_uri,
    )
    clock = time.perf_counter()
    session = sdk.session(settings, boto_session)
    try:
        batch_transform.start(
            settings,
            record,
            session,
            name=name,
            instance_type=instance_type,
            input_uri=input_uri,
            output_uri=output_uri,
            tags=job_tags(settings, launched_by),
        )
    except (ClientError, RuntimeError, OSError) as exc:
        where = "local mode's serving container (its output is above)" if settings.local else "SageMaker"
        raise PredictError(f"transform job {name} could not run in {where}: {exc}") from exc
    finally:
        if settings.local:
            remove_local_containers(record["image"]["uri"])  # local mode leaves its stopped server behind
    if settings.local:
        description: dict[str, Any] = session.sagemaker_client.describe_transform_job(TransformJobName=name)
        seconds: float | None = round(time.perf_counter() - clock, 1)
    else:
        description = watch.until_final(
            lambda: sm.describe_transform_job(TransformJobName=name),
            "TransformJobStatus",
            f"transform job {name}",
            f"stop it with 'aws sagemaker stop-transform-job --transform-job-name {name}', or let it finish and run "
            "'make predict' again",
        )
        seconds = _seconds(description)
    if description["TransformJobStatus"] != "Completed":
        raise PredictError(
            f"transform job {name} {description['TransformJobStatus']}: "
            f"{description.get('FailureReason', 'no reason given')}"
        )
    transform = written(
        settings,
        boto_session,
        runs_dir,
        record["job_name"],
        name=name,
        output_uri=output_uri,
        test={"uri": input_uri, "sha256": digest, "rows": len(ids)},
        ids=ids,
        instance_type=instance_type,
        seconds=seconds,
    )
    record.setdefault("transforms", []).append(transform)
    records.write_record(runs_dir, record)
    return transform


def _seconds(description: dict[str, Any]) -> float | None:
    return watch.seconds_between(description.get("TransformStartTime"), description.get("TransformEndTime"))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs-dir", type=Path, required=True)
    parser.add_argument("--test", type=Path, required=True, help="Kaggle's test.csv")
    parser.add_argument("--checksums", type=Path, required=True, help="the SHA256SUMS file beside it")
    parser.add_argument("--job", default="", help="the training job whose model predicts (default: latest verified)")
    args = parser.parse_args(argv)
    return errors.run("predict", lambda: _predict(args))


def _predict(args: argparse.Namespace) -> int:
    transform = run(load(), args.runs_dir, args.test, args.checksums, job=args.job)
    log.info(
        "submission: %s (%d rows, %d survivors) and %s",
        Path(transform["local_dir"]) / SUBMISSION,
        transform["input"]["rows"],
        transform["survivors"],
        transform["submission_uri"],
    )
    log.info(
        "transform %s: %s s on %s, cost %s",
        transform["name"],
        transform["seconds"],
        transform["instance_type"],
        cost_words(transform["cost"]),
    )
    return 0


def cost_words(cost: dict[str, Any]) -> str:
    on_demand = cost.get("on_demand_cost_usd")
    same = usd(on_demand)
    if cost.get("cost_usd") is None:
        return f"nothing (local run; the same time on AWS on {cost['instance_type']}: {same})"
    return f"{usd(cost['cost_usd'])} at ${cost['usd_per_hour']}/h {cost['instance_type']} ({cost['price_basis']})"


if __name__ == "__main__":
    sys.exit(main())
