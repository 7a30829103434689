"""`make evaluate`: a verified run's model judged on its own, as a SageMaker Processing job.

The job runs the training image's `evaluate` command (titanic_model/evaluate.py) over the run's
model.tar.gz and the two data channels, and writes evaluation.json beside the model
(s3://BUCKET/OUTPUT_PREFIX/<training job>/evaluation/): the metrics recomputed from the
archive, whether they equal the job's own, and the model's recipe under repeated CV beside the
three baseline rules. TARGET=local runs it through the SDK's local mode (the container on the
internal network, as training's), TARGET=aws on SageMaker on INSTANCE_TYPE. The file lands in
runs/<job>/evaluation.json too, and the run record gains an `evaluation` section.
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

from launcher.lib import errors, evaluations, names, processing, records, sdk, watch
from launcher.lib.caller import whoami
from launcher.lib.config import Settings, job_tags, load
from launcher.lib.errors import ToolkitError
from launcher.lib.local_mode import remove_local_containers
from launcher.lib.pricing import usd

log = logging.getLogger("evaluate")


class EvaluateError(ToolkitError):
    """The model could not be evaluated; the message says why and what to do."""


def run(
    settings: Settings, runs_dir: Path, job: str = "", boto_session: boto3.Session | None = None
) -> records.Evaluation:
    boto_session = boto_session or boto3.Session(region_name=settings.region)
    record_file = records.verified_record(runs_dir, job, use="evaluate")
    record = records.read_record(record_file)
    s3 = boto_session.client("s3")
    records.require_artifact(s3, record)
    name = names.evaluation_job(settings.base_job_name, datetime.now(UTC))
    instance_type = "local" if settings.local else settings.instance_type
    log.info("evaluation job %s: model of %s on %s", name, record["job_name"], instance_type)
    session = sdk.session(settings, boto_session)
    clock = time.perf_counter()
    try:
        processing.start(settings, session, record, name, job_tags(settings, whoami(boto_session).arn))
    except (ClientError, RuntimeError, OSError) as exc:
        where = "local mode's container (its output is above)" if settings.local else "SageMaker"
        raise EvaluateError(f"evaluation job {name} could not run in {where}: {exc}") from exc
    finally:
        if settings.local:
            remove_local_containers(record["image"]["uri"])  # local mode leaves its stopped container behind
    if settings.local:
        description: dict[str, Any] = session.sagemaker_client.describe_processing_job(ProcessingJobName=name)
        seconds: float | None = round(time.perf_counter() - clock, 1)
    else:
        sm = boto_session.client("sagemaker")
        description = watch.until_final(
            lambda: sm.describe_processing_job(ProcessingJobName=name),
            "ProcessingJobStatus",
            f"evaluation job {name}",
            f"stop it with 'aws sagemaker stop-processing-job --processing-job-name {name}' (or 'make "
            "clean-resources'), or let it finish and run 'make evaluate' again",
        )
        seconds = watch.seconds_between(description.get("ProcessingStartTime"), description.get("ProcessingEndTime"))
    if description["ProcessingJobStatus"] != "Completed":
        why = description.get("ExitMessage") or description.get("FailureReason") or "no reason given"
        raise EvaluateError(f"evaluation job {name} {description['ProcessingJobStatus']}: {why.strip()}")
    evaluation = evaluations.section(
        settings,
        boto_session,
        runs_dir,
        training_job=record["job_name"],
        name=name,
        instance_type=instance_type,
        seconds=seconds,
    )
    record["evaluation"] = evaluation
    records.write_record(runs_dir, record)
    if not evaluation["reported_equal"]:
        raise EvaluateError(
            f"the model of {record['job_name']} scores differently from its own metrics.json "
            f"({', '.join(evaluations.differing(evaluation))}); its artifact is not the one training wrote: train again"
        )
    return evaluation


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs-dir", type=Path, required=True)
    parser.add_argument(
        "--job", default="", help="the training job whose model is evaluated (default: latest verified)"
    )
    args = parser.parse_args(argv)
    return errors.run("evaluate", lambda: _evaluate(args))


def _evaluate(args: argparse.Namespace) -> int:
    evaluation = run(load(), args.runs_dir, job=args.job)
    rules = evaluation["beats_every_rule"]
    verdict = "not estimated" if rules is None else ("beats every rule" if rules else "does NOT beat every rule")
    log.info(
        "evaluation %s: val_auc %.4f (equal to training's), %s by more than the spread; %s",
        evaluation["job_name"],
        evaluation["val_auc"],
        verdict,
        evaluation["local_file"],
    )
    cost = evaluation["cost"]
    spent = usd(cost["cost_usd"]) if cost["cost_usd"] is not None else "nothing (local run)"
    log.info(
        "evaluation %s: %s s on %s, cost %s",
        evaluation["job_name"],
        evaluation["seconds"],
        evaluation["instance_type"],
        spent,
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
