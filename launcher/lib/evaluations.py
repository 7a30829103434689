"""A finished evaluation job's evaluation.json as the run record keeps it (make evaluate, and
the pipeline's Evaluate step): the file read from S3, a copy in runs/<job>/, and the section."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path
from urllib.parse import urlparse

import boto3
from botocore.exceptions import ClientError
from titanic_model.contract import EVALUATION_FILE

from launcher.lib import errors, records
from launcher.lib.caller import s3_bytes
from launcher.lib.config import Settings
from launcher.lib.errors import ToolkitError
from launcher.lib.pricing import job_cost


class EvaluationError(ToolkitError):
    """An evaluation job's result cannot be read; the message says where to look."""


def file_uri(settings: Settings, training_job: str) -> str:
    """Where a training job's evaluation.json lands: beside its model, one per job (the latest wins)."""
    return f"{settings.output_uri}/{training_job}/evaluation/{EVALUATION_FILE}"


def section(
    settings: Settings,
    boto_session: boto3.Session,
    runs_dir: Path,
    *,
    training_job: str,
    name: str,
    instance_type: str,
    seconds: float | None,
) -> records.Evaluation:
    """The record's `evaluation` for evaluation job `name` over `training_job`'s model."""
    uri = file_uri(settings, training_job)
    try:
        body = s3_bytes(boto_session.client("s3"), uri)
    except ClientError as exc:
        parsed = urlparse(uri)
        raise EvaluationError(
            f"evaluation job {name} completed but s3://{parsed.netloc}/{parsed.path.lstrip('/')} cannot be read "
            f"({errors.error_code(exc)}); see the job in the SageMaker console"
        ) from None
    result = json.loads(body)
    local_file = runs_dir / training_job / EVALUATION_FILE
    records.write_files(local_file.parent, {local_file.name: body})
    return {
        "job_name": name,
        "uri": uri,
        "local_file": str(local_file),
        "finished_at": datetime.now(UTC).isoformat(timespec="seconds"),
        "instance_type": instance_type,
        "seconds": seconds,
        "val_auc": float(result["metrics"]["val_auc"]),
        "reported_equal": bool(result["reported"]["equal"]),
        "beats_every_rule": result["estimate"].get("beats_every_rule"),
        "cost": job_cost(settings, boto_session, settings.instance_type, seconds),
    }


def differing(evaluation: records.Evaluation) -> list[str]:
    """The metrics whose recomputed value differs from the training job's own (from the copy)."""
    return json.loads(Path(evaluation["local_file"]).read_text(encoding="utf-8"))["reported"]["differing"]
