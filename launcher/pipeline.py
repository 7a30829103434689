"""`make pipeline`: the whole flow as one SageMaker Pipeline execution (launcher/lib/pipeline.py):
Prepare -> Train -> Evaluate -> Gate -> Model -> Transform (-> Register on SageMaker).

Kaggle's train.csv (with its SHA256SUMS) and test.csv go to S3 first, checked; then the
definition is upserted (TARGET=aws: created or updated, tagged as the toolkit's) and an
execution started and followed step by step to its end. TARGET=local runs the same definition
through the SDK's local pipeline session, on this machine. When the execution succeeds, its
training job gets a run record as make all's (verified in its image), with the Evaluate step's
evaluation and the Transform step's submission.csv joined by PassengerId; on the embedded stack
the model is then registered through make register's code. Each execution's own record,
steps, durations and cost by step, goes to runs/pipelines/<execution>.json.
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

import boto3

from launcher.lib import errors, evaluations, executions, names, records, verification, watch
from launcher.lib import pipeline as flow
from launcher.lib.caller import whoami
from launcher.lib.config import Settings, job_tags, launched_by_value, load
from launcher.lib.dataset import SPLIT_FILES, verified_bytes
from launcher.lib.errors import StillRunning, ToolkitError
from launcher.lib.local_mode import remove_local_containers
from launcher.lib.model_registry import register_run, registration, supported_types
from launcher.lib.pricing import PriceBook, job_cost, pricing_client, usd
from launcher.lib.submission import (
    SUBMISSION,
    passenger_ids,
    priced_type,
    transform_instance_type,
    upload_test,
    uploaded_test_key,
    written,
)
from launcher.lib.training import base_record, finish_record, read_image_record

log = logging.getLogger("pipeline")
RAW_PREFIX = "raw"  # under DATA_PREFIX: Kaggle's train.csv and SHA256SUMS, the Prepare step's input
JOB_KINDS = ("TrainingJob", "ProcessingJob", "TransformJob", "Model", "RegisterModel")


class PipelineError(ToolkitError):
    """The pipeline could not run, or its execution did not succeed; the message says why."""


@dataclass(frozen=True)
class DataFiles:
    """The vendored files the execution reads, each checked against SHA256SUMS."""

    train: Path
    test: Path
    checksums: Path


def upload_raw(s3: Any, settings: Settings, files: DataFiles) -> str:
    """Kaggle's train.csv and the SHA256SUMS naming it, for the Prepare step to check again."""
    verified_bytes(files.train, files.checksums)  # refused here before anything is sent
    prefix = f"{settings.data_prefix}/{RAW_PREFIX}"
    for path in (files.train, files.checksums):
        s3.put_object(Bucket=settings.bucket, Key=f"{prefix}/{path.name}", Body=path.read_bytes())
    return f"s3://{settings.bucket}/{prefix}"


def instance_types(settings: Settings, boto_session: boto3.Session) -> tuple[str, str, str]:
    """(training, processing, transform): INSTANCE_TYPE for the jobs make train and make evaluate
    run, make predict's choice for the transform; "local" on the embedded stack."""
    if settings.local:
        return "local", "local", "local"
    return settings.instance_type, settings.instance_type, transform_instance_type(settings, boto_session)


def estimate(settings: Settings, boto_session: boto3.Session, runs_dir: Path) -> dict[str, Any]:
    """What an execution may cost before it starts: each job step's instance price times its
    ceiling (MAX_RUN, which every job of the definition has), and the typical figure from the
    newest run record that measured such a step."""
    book = PriceBook(settings.region, None if settings.local else pricing_client(boto_session, settings.region))
    transform_type = settings.transform_instance_type or settings.instance_type
    typical = _typical(runs_dir)
    steps = {
        flow.PREPARE: (settings.instance_type, 1, None),
        flow.TRAIN: (settings.instance_type, settings.instance_count, typical.get("training")),
        flow.EVALUATE: (settings.instance_type, 1, typical.get("evaluation")),
        flow.TRANSFORM: (transform_type, 1, typical.get("transform")),
    }
    rows, ceiling, usual = {}, 0.0, 0.0
    for step, (instance_type, count, seconds) in steps.items():
        price = book.lookup(instance_type)[0]
        per_hour = price.usd_per_hour * count if price else None
        row = {"instance_type": instance_type, "instances": count, "usd_per_hour": per_hour}
        if per_hour is not None:
            row["ceiling_usd"] = per_hour * settings.max_run / 3600
            ceiling += row["ceiling_usd"]
            if seconds is not None:
                row["typical_seconds"], row["typical_usd"] = seconds, per_hour * seconds / 3600
                usual += row["typical_usd"]
        rows[step] = row
    return {"steps": rows, "ceiling_usd": round(ceiling, 4), "typical_usd": round(usual, 4)}


def _typical(runs_dir: Path) -> dict[str, float]:
    """Seconds of each kind of step (training, evaluation, transform) in the newest run record
    that measured one, the records read once."""
    found: dict[str, float] = {}
    for path in sorted(runs_dir.glob("*.json"), key=lambda p: p.stat().st_mtime, reverse=True):
        try:
            record = records.read_record(path)
        except records.RecordError:
            continue
        measured = {
            "training": record.get("seconds", {}).get("training"),
            "evaluation": (record.get("evaluation") or {}).get("seconds"),
            "transform": record["transforms"][-1]["seconds"] if record.get("transforms") else None,
        }
        for kind, seconds in measured.items():
            if seconds and kind not in found:
                found[kind] = float(seconds)
        if len(found) == len(measured):
            break
    return found


def step_rows(steps: list[dict[str, Any]]) -> list[records.PipelineStep]:
    """ListPipelineExecutionSteps (or its local twin) as the record keeps it, in run order."""
    rows: list[records.PipelineStep] = []
    for step in sorted(steps, key=lambda s: _epoch(s.get("StartTime")) or 0.0):
        metadata = step.get("Metadata") or {}
        job = next(((kind, metadata[kind]["Arn"]) for kind in JOB_KINDS if kind in metadata), None)
        start, end = _epoch(step.get("StartTime")), _epoch(step.get("EndTime"))
        rows.append(
            {
                "name": step["StepName"],
                "status": step.get("StepStatus"),
                "seconds": round(end - start, 1) if start and end else None,
                "kind": job[0] if job else None,
                "resource": _short(job[1]) if job else None,
                "arn": job[1] if job else None,
                "failure_reason": step.get("FailureReason"),
                "condition": (metadata.get("Condition") or {}).get("Outcome"),
            }
        )
    return rows


def _epoch(value: Any) -> float | None:
    if value is None:
        return None
    return value.timestamp() if isinstance(value, datetime) else float(value)


def _job(rows: list[dict[str, Any]], step: str) -> str:
    """The job (or model, or version) a step made: its name (its ARN for a registered version)."""
    found = [r["arn"] for r in rows if r["name"] == step and r["arn"]]
    if not found:
        raise PipelineError(f"the execution has no {step} step's job; its record is in runs/pipelines/")
    return _short(found[0]) if step != flow.REGISTER_STEP else found[0]


def run_local(settings: Settings, pipe: Any) -> dict[str, Any]:
    """The execution through the SDK's local pipeline session, which runs every step here."""
    flow.create_local(pipe, settings)
    execution = pipe.start()
    described = execution.describe()
    return {
        "arn": described["PipelineExecutionArn"],
        "status": described["PipelineExecutionStatus"],
        "failure_reason": described.get("FailureReason"),
        "steps": execution.list_steps()["PipelineExecutionSteps"],
    }


def follow(sm: Any, arn: str, *, sleep: Any = time.sleep, poll_seconds: float = 15.0) -> dict[str, Any]:
    """Read the execution and its steps until it ends, saying each step's change once. Ctrl-C or
    SIGTERM leaves it running and says how to follow, stop and re-attach to it."""
    said: dict[str, str] = {}

    def read() -> dict[str, Any]:
        described = sm.describe_pipeline_execution(PipelineExecutionArn=arn)
        for step in executions.steps(sm, arn):
            if said.get(step["StepName"]) != step.get("StepStatus"):
                said[step["StepName"]] = step.get("StepStatus", "")
                log.info("step %s: %s", step["StepName"], step.get("StepStatus"))
        return described

    what = f"pipeline execution {arn.rsplit('/', 1)[-1]}"
    try:
        with watch.sigterm_as_ctrl_c():
            described = watch.until_settled(
                read,
                "PipelineExecutionStatus",
                lambda s: s in executions.FINAL,
                what,
                sleep=sleep,
                poll_seconds=poll_seconds,
            )
    except KeyboardInterrupt:
        raise StillRunning(f"{what} keeps running on SageMaker and its jobs are billed: {follow_up(arn)}") from None
    return {
        "arn": arn,
        "status": described["PipelineExecutionStatus"],
        "failure_reason": described.get("FailureReason"),
        "steps": executions.steps(sm, arn),
    }


def follow_up(arn: str) -> str:
    return (
        f"follow or re-attach with 'make pipeline JOB={arn}', stop it with 'make stop JOB={arn}', "
        "see all with 'make status'"
    )


def run(
    settings: Settings,
    runs_dir: Path,
    image_record: Path,
    files: DataFiles,
    boto_session: boto3.Session | None = None,
    *,
    attach: str = "",
    sleep: Any = time.sleep,
) -> records.PipelineExecution:
    """Start an execution (or re-attach to `attach` on SageMaker), follow it to its end, and
    write its record; when it succeeded, its training job's run record as the make verbs'."""
    if attach and settings.local:
        raise PipelineError(
            "local pipeline executions run inside 'make pipeline' and cannot be re-attached to; run it again"
        )
    boto_session = boto_session or boto3.Session(region_name=settings.region)
    image = read_image_record(image_record)
    test_data, test_sha = verified_bytes(files.test, files.checksums)
    ids = passenger_ids(test_data)
    caller = whoami(boto_session)
    types = instance_types(settings, boto_session)
    costs = estimate(settings, boto_session, runs_dir)
    clock = time.perf_counter()
    if attach:
        arn = executions.execution_arn(settings, caller, attach)
        outcome = follow(boto_session.client("sagemaker"), arn, sleep=sleep)
    else:
        pipe = build(settings, boto_session, image, files, caller.arn, types=types, test=(test_data, test_sha))
        log.info(
            "pipeline %s: at most %s if every job ran to MAX_RUN=%ss; typically %s",
            settings.pipeline_name,
            usd(costs["ceiling_usd"]),
            settings.max_run,
            usd(costs["typical_usd"]),
        )
        if settings.local:
            try:
                outcome = run_local(settings, pipe)
            finally:
                remove_local_containers(image["uri"])
        else:
            sm = boto_session.client("sagemaker")
            log.info(
                "pipeline %s %s",
                settings.pipeline_name,
                flow.upsert(pipe, settings, sm, job_tags(settings, caller.arn)),
            )
            arn = flow.start(pipe, launched_by_value(caller.arn))
            log.info("execution %s started; %s", arn, follow_up(arn))
            outcome = follow(sm, arn, sleep=sleep)
    record: records.PipelineExecution = {
        "pipeline": settings.pipeline_name,
        "execution": outcome["arn"],
        "target": settings.target,
        "finished_at": datetime.now(UTC).isoformat(timespec="seconds"),
        "status": outcome["status"],
        "failure_reason": outcome["failure_reason"],
        "wall_seconds": round(time.perf_counter() - clock, 1),
        "instance_types": dict(zip(("training", "processing", "transform"), types, strict=True)),
        "estimate": costs,
        "steps": step_rows(outcome["steps"]),
        "launched_by": caller.arn,
    }
    for step in record["steps"]:
        step["cost"] = _step_cost(settings, boto_session, step, types)
    if record["status"] == "Succeeded":
        write_execution(runs_dir, record)
        record["run"] = complete(settings, runs_dir, boto_session, record, image=image, ids=ids, test_sha=test_sha)
    write_execution(runs_dir, record)
    if record["status"] != "Succeeded":
        raise PipelineError(f"pipeline execution {_short(record['execution'])} {record['status']}: {_why(record)}")
    return record


def build(
    settings: Settings,
    boto_session: boto3.Session,
    image: records.Image,
    files: DataFiles,
    launched_by: str,
    *,
    types: tuple[str, str, str],
    test: tuple[bytes, str],
) -> Any:
    """Upload what the execution reads, then the definition over it."""
    s3 = boto_session.client("s3")
    inputs = flow.Inputs(
        image_uri=image["uri"],
        raw_uri=upload_raw(s3, settings, files),
        test_uri=upload_test(s3, settings, *test),
        training_type=types[0],
        processing_type=types[1],
        transform_type=types[2],
        launched_by=launched_by,
        supported_types=supported_types(settings),
    )
    token = names.local_execution(datetime.now(UTC)) if settings.local else ""
    prefixes = names.pipeline_prefixes(settings.base_job_name, token)
    return flow.definition(settings, inputs, flow.session(settings, boto_session), prefixes)


def _short(arn: str) -> str:
    """An ARN's last part: a job's name, an execution's id (local mode gives the id alone)."""
    return arn.rsplit("/", 1)[-1]


def _why(record: records.PipelineExecution) -> str:
    failed = [s for s in record["steps"] if s["status"] == "Failed"]
    if failed and failed[-1]["name"] == flow.FAIL:
        return f"the Gate stopped it: {failed[-1]['failure_reason']} (APPROVAL_MIN_AUC); nothing was registered"
    if failed:
        return f"step {failed[-1]['name']} failed: {failed[-1]['failure_reason']}"
    return record.get("failure_reason") or "no reason given"


def _step_cost(settings: Settings, boto_session: boto3.Session, step: dict[str, Any], types: tuple[str, ...]) -> Any:
    """A job step's cost: its seconds at its type's price (local: what AWS would charge)."""
    if step["kind"] not in ("TrainingJob", "ProcessingJob", "TransformJob") or step["seconds"] is None:
        return None
    instance_type = priced_type(settings, types[2]) if step["kind"] == "TransformJob" else settings.instance_type
    return job_cost(settings, boto_session, instance_type, step["seconds"])


def complete(
    settings: Settings,
    runs_dir: Path,
    boto_session: boto3.Session,
    execution: records.PipelineExecution,
    *,
    image: records.Image,
    ids: list[str],
    test_sha: str,
) -> str:
    """The succeeded execution's training job as make all + evaluate + predict (+ register) leave it."""
    rows = execution["steps"]
    job = _job(rows, flow.TRAIN)
    s3 = boto_session.client("s3")
    split_dir = runs_dir / job / "split"
    manifest = download_split(s3, settings, execution["execution"], split_dir)
    record = base_record(settings, job, image, manifest, execution["launched_by"])
    for channel, facts in record["data"].items():
        facts["uri"] = f"{_split_uri(settings, execution['execution'])}/{channel}"
    record["pipeline_execution"] = execution["execution"]
    session = flow.session(settings, boto_session)
    finish_record(settings, record, session, boto_session, None)
    records.write_record(runs_dir, record)
    verification.verify(records.record_path(runs_dir, job), split_dir)
    record = records.read_record(records.record_path(runs_dir, job))
    evaluate_row = next(r for r in rows if r["name"] == flow.EVALUATE)
    record["evaluation"] = evaluations.section(
        settings,
        boto_session,
        runs_dir,
        training_job=job,
        name=evaluate_row["resource"],
        instance_type=execution["instance_types"]["processing"],
        seconds=evaluate_row["seconds"],
    )
    transform_row = next(r for r in rows if r["name"] == flow.TRANSFORM)
    # The Transform step wrote its answers under the execution (lib/pipeline.py's output path).
    record.setdefault("transforms", []).append(
        written(
            settings,
            boto_session,
            runs_dir,
            job,
            name=transform_row["resource"],
            output_uri=f"{settings.predictions_uri}/pipelines/{_short(execution['execution'])}/raw",
            test={
                "uri": f"s3://{settings.bucket}/{uploaded_test_key(settings)}",
                "sha256": test_sha,
                "rows": len(ids),
            },
            ids=ids,
            instance_type=execution["instance_types"]["transform"],
            seconds=transform_row["seconds"],
        )
    )
    records.write_record(runs_dir, record)
    if settings.local:  # the SDK's local session cannot register: make register's code does
        register_run(settings, runs_dir, job, boto_session)
    else:
        record_registration(runs_dir, job, boto_session.client("sagemaker"), _job(rows, flow.REGISTER_STEP))
    return job


def record_registration(runs_dir: Path, job: str, sm: Any, package_arn: str) -> None:
    """The Register step's version in the training job's record, as make register writes it."""
    record = records.read_record(records.record_path(runs_dir, job))
    record["registry"] = registration(sm.describe_model_package(ModelPackageName=package_arn))
    records.write_record(runs_dir, record)


def _split_uri(settings: Settings, execution: str) -> str:
    return f"{settings.data_uri}/pipelines/{_short(execution)}"


def download_split(s3: Any, settings: Settings, execution: str, split_dir: Path) -> dict[str, Any]:
    """The Prepare step's split, for verification to rescore against (the files the job read)."""
    uri = urlparse(_split_uri(settings, execution))
    for name in (*SPLIT_FILES.values(), "manifest.json"):
        body = s3.get_object(Bucket=uri.netloc, Key=f"{uri.path.lstrip('/')}/{name}")["Body"].read()
        records.write_files((split_dir / name).parent, {Path(name).name: body})
    return json.loads((split_dir / "manifest.json").read_text(encoding="utf-8"))


def write_execution(runs_dir: Path, record: records.PipelineExecution) -> Path:
    path = runs_dir / "pipelines" / f"{_short(record['execution'])}.json"
    records.write_files(path.parent, {path.name: (json.dumps(record, indent=2, default=str) + "\n").encode()})
    return path


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs-dir", type=Path, required=True)
    parser.add_argument("--image-record", type=Path, required=True)
    parser.add_argument("--train", type=Path, required=True, help="Kaggle's train.csv")
    parser.add_argument("--test", type=Path, required=True, help="Kaggle's test.csv")
    parser.add_argument("--checksums", type=Path, required=True, help="the SHA256SUMS file beside them")
    parser.add_argument("--execution", default="", help="TARGET=aws: re-attach to this execution (ARN or id)")
    args = parser.parse_args(argv)
    return errors.run("pipeline", lambda: _pipeline(args))


def _pipeline(args: argparse.Namespace) -> int:
    files = DataFiles(args.train, args.test, args.checksums)
    record = run(load(), args.runs_dir, args.image_record, files, attach=args.execution)
    for step in record["steps"]:
        spent = (step.get("cost") or {}).get("cost_usd")
        log.info(
            "%-18s %-9s %6s s  %s%s",
            step["name"],
            step["status"],
            step["seconds"],
            step["resource"] or "",
            f"  {usd(spent)}" if spent is not None else "",
        )
    job = records.read_record(records.record_path(args.runs_dir, record["run"]))
    registry, transform = job.get("registry"), job["transforms"][-1]
    log.info(
        "execution %s succeeded in %s s; training job %s", record["execution"], record["wall_seconds"], job["job_name"]
    )
    log.info(
        "evaluated val_auc %.4f; submission %s", job["evaluation"]["val_auc"], Path(transform["local_dir"]) / SUBMISSION
    )
    if registry:
        log.info(
            "registered version %s of %s, PendingManualApproval: 'make approve' decides",
            registry["version"],
            registry["group"],
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
