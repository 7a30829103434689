"""The train stage: one SageMaker training job through the Python SDK's Estimator.fit().

TARGET=aws runs it on SageMaker; TARGET=local runs the same image under the SDK's local
mode (LocalSession), reading channels from and writing model.tar.gz to the embedded S3 in
SageMaker's own key layout. Either way a run record lands in runs/<job>.json.
"""

from __future__ import annotations

import argparse
import io
import json
import logging
import os
import re
import subprocess
import sys
import tarfile
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

import boto3
from botocore.exceptions import ClientError, EndpointConnectionError
from sagemaker.config import load_sagemaker_config
from sagemaker.estimator import Estimator
from sagemaker.inputs import TrainingInput
from sagemaker.local import LocalSession
from sagemaker.session import Session
from titanic_model.metrics import METRIC_DEFINITIONS

from launcher import logs, records
from launcher.pricing import PriceBook, pricing_client, run_cost
from launcher.settings import TOOLKIT_TAG, Settings, SettingsError, load

log = logging.getLogger("train")
REPO = Path(__file__).resolve().parent.parent
SDK_CONFIG = Path(__file__).resolve().parent / "sagemaker-config.yaml"


class TrainError(RuntimeError):
    """The job could not be started or did not complete; the message says why and what to do."""


def read_image_record(path: Path) -> dict[str, str]:
    if not path.is_file():
        raise TrainError(f"{path} is missing: no image has been pushed yet; run 'make push' (or 'make all')")
    record = json.loads(path.read_text(encoding="utf-8"))
    return {"uri": record["image_uri"], "digest": record["digest"]}


def read_data_manifest(split_dir: Path) -> dict[str, Any]:
    manifest = split_dir / "manifest.json"
    if not manifest.is_file():
        raise TrainError(f"{manifest} is missing; run 'make data' and 'make upload' first")
    return json.loads(manifest.read_text(encoding="utf-8"))


def sdk_session(settings: Settings, boto_session: boto3.Session) -> Any:
    """A SageMaker session with telemetry off (its config passed in, not left to the
    environment), local or remote as TARGET says."""
    config = load_sagemaker_config([str(SDK_CONFIG)])
    if settings.local:
        return LocalSession(boto_session=boto_session, sagemaker_config=config, disable_local_code=True)
    return Session(boto_session=boto_session, sagemaker_config=config)


def build_estimator(settings: Settings, image_uri: str, session: Any) -> Any:
    # Local mode refuses spot and checkpoint settings outright; on AWS they are the point.
    spot = settings.spot_training
    tags = [{"Key": k, "Value": v} for k, v in {**settings.tags, TOOLKIT_TAG[0]: TOOLKIT_TAG[1]}.items()]
    return Estimator(
        image_uri=image_uri,
        role=settings.role_arn,
        instance_count=settings.instance_count,
        instance_type="local" if settings.local else settings.instance_type,
        volume_size=settings.volume_size_gb,
        output_path=f"{settings.output_uri}/",
        base_job_name=settings.base_job_name,
        hyperparameters=dict(settings.hyperparameters),
        max_run=settings.max_run,
        use_spot_instances=spot,
        max_wait=settings.max_wait if spot else None,
        checkpoint_s3_uri=None if settings.local else f"{settings.checkpoint_uri}/",
        metric_definitions=METRIC_DEFINITIONS,
        tags=tags,
        enable_network_isolation=True,
        # A bring-your-own image has no profiler or debugger hook to feed.
        disable_profiler=True,
        debugger_hook_config=False,
        sagemaker_session=session,
    )


def training_inputs(settings: Settings) -> dict[str, Any]:
    return {
        channel: TrainingInput(settings.channel_uri(channel), content_type="text/csv")
        for channel in ("train", "validation")
    }


def _s3_object(s3: Any, uri: str) -> bytes | None:
    """The object's bytes, or None when it is not there (or not readable) for any reason."""
    parsed = urlparse(uri)
    try:
        return s3.get_object(Bucket=parsed.netloc, Key=parsed.path.lstrip("/"))["Body"].read()
    except ClientError as exc:
        log.debug("cannot read %s: %s", uri, exc)
        return None


def _member(tar_bytes: bytes | None, names: tuple[str, ...]) -> bytes | None:
    if not tar_bytes:
        return None
    with tarfile.open(fileobj=io.BytesIO(tar_bytes), mode="r:gz") as tar:
        for name in names:
            try:
                handle = tar.extractfile(name)
            except KeyError:
                continue
            if handle is not None:
                return handle.read()
    return None


def job_outcome(settings: Settings, session: Any, s3: Any, job_name: str, error: Exception | None) -> dict[str, Any]:
    """Status, times, artifact and metrics of a finished job, from describe and from S3."""
    description: dict[str, Any] = {}
    try:
        description = session.describe_training_job(job_name)
    except Exception as exc:  # noqa: BLE001 - a job that never started has nothing to describe
        log.debug("describe_training_job(%s) failed: %s", job_name, exc)
    job_prefix = f"{settings.output_uri}/{job_name}"
    model_uri = description.get("ModelArtifacts", {}).get("S3ModelArtifacts") or f"{job_prefix}/output/model.tar.gz"
    output_uri = f"{job_prefix}/output/output.tar.gz"
    model_tar = _s3_object(s3, model_uri)
    metrics_bytes = _member(model_tar, ("metrics.json", "./metrics.json"))
    failure = description.get("FailureReason")
    if error is not None and not failure:
        # Local mode keeps SageMaker's failure file inside output.tar.gz instead of describe().
        failure_bytes = _member(_s3_object(s3, output_uri), ("failure", "./failure"))
        failure = failure_bytes.decode("utf-8", "replace").strip() if failure_bytes else str(error)
    status = description.get("TrainingJobStatus") or ("Failed" if error else "Unknown")
    if error is not None:
        status = "Failed" if status in ("Completed", "Unknown", "InProgress") else status
    started, ended = description.get("TrainingStartTime"), description.get("TrainingEndTime")
    training_seconds = description.get("TrainingTimeInSeconds")
    if training_seconds is None and isinstance(started, datetime) and isinstance(ended, datetime):
        training_seconds = round((ended - started).total_seconds(), 1)
    return {
        "status": status,
        "failure_reason": failure,
        "model_artifact": model_uri if metrics_bytes and status == "Completed" else None,
        "output_data": output_uri,
        "metrics": json.loads(metrics_bytes) if metrics_bytes and status == "Completed" else {},
        "final_metric_data": {m["MetricName"]: m["Value"] for m in description.get("FinalMetricDataList", []) or []},
        "seconds": {
            "training": training_seconds,
            # Local mode is not billed; on AWS BillableTimeInSeconds already has the spot discount.
            "billable": 0 if settings.local else description.get("BillableTimeInSeconds"),
        },
        "secondary_status": description.get("SecondaryStatus"),
        # for run() only, not the record: what was found at the model's key
        "model_tar": model_tar,
        "model_uri": model_uri,
    }


def remove_empty_model(s3: Any, uri: str, model_tar: bytes | None) -> None:
    """Local mode uploads model.tar.gz even for a failed job: an empty tarball at the usual key
    would look like a model. Delete it when it holds no model.joblib."""
    if model_tar is None or _member(model_tar, ("model.joblib", "./model.joblib")):
        return
    parsed = urlparse(uri)
    s3.delete_object(Bucket=parsed.netloc, Key=parsed.path.lstrip("/"))
    log.info("removed %s: the failed job left an empty model archive", uri)


# SDK local mode names its containers <10 random>-algo-<n>-<5 random> and leaves them behind.
_LOCAL_CONTAINER = re.compile(r"^[a-z0-9]{10}-algo-\d+-[a-z0-9]{5}$")


def remove_local_containers(image_uri: str) -> None:
    """Remove the exited containers local mode left for this image (ours only: by image,
    status and local mode's naming), so that repeated runs do not pile them up."""
    listed = subprocess.run(
        ["docker", "ps", "-a", "--filter", f"ancestor={image_uri}", "--filter", "status=exited",
         "--format", "{{.ID}} {{.Names}}"],
        capture_output=True, text=True,
    )  # fmt: skip
    ids = [line.split()[0] for line in listed.stdout.splitlines() if _LOCAL_CONTAINER.match(line.split()[-1])]
    if ids:
        subprocess.run(["docker", "rm", *ids], capture_output=True)


def run_cost_facts(settings: Settings, boto_session: boto3.Session, seconds: dict[str, Any]) -> dict[str, Any]:
    """Price and cost of the run. Local runs are not billed: their cost is None, and the
    on-demand figure says what the same training time would cost on AWS."""
    pricing = None if settings.local else pricing_client(boto_session, settings.region)
    price, _ = PriceBook(settings.region, pricing).lookup(settings.instance_type)
    billable = None if settings.local else seconds["billable"]
    cost = run_cost(seconds["training"], billable, price, spot=settings.spot_training)
    cost["instance_type"] = settings.instance_type
    return cost


def data_facts(settings: Settings, manifest: dict[str, Any], channel: str) -> dict[str, Any]:
    facts = manifest["channels"][channel]
    return {"uri": settings.channel_uri(channel), "sha256": facts["sha256"], "rows": facts["rows"]}


def run(
    settings: Settings, image_record: Path, split_dir: Path, runs_dir: Path, boto_session: boto3.Session | None = None
) -> dict[str, Any]:
    image = read_image_record(image_record)
    manifest = read_data_manifest(split_dir)
    boto_session = boto_session or boto3.Session(region_name=settings.region)
    session = sdk_session(settings, boto_session)
    s3 = boto_session.client("s3")
    estimator = build_estimator(settings, image["uri"], session)
    started_at = datetime.now(UTC)
    error: Exception | None = None
    log.info("starting a training job from %s on %s", image["uri"], estimator.instance_type)
    clock = time.perf_counter()
    try:
        estimator.fit(training_inputs(settings), wait=True, logs="All")
    except Exception as exc:  # noqa: BLE001 - reported with the job's own FailureReason below
        error = exc
    job_name = estimator._current_job_name
    if not job_name:
        raise TrainError(f"the training job could not be created: {error}") from error
    outcome = job_outcome(settings, session, s3, job_name, error)
    if settings.local:
        remove_local_containers(image["uri"])
    model_tar, model_uri = outcome.pop("model_tar"), outcome.pop("model_uri")
    if outcome["status"] != "Completed" and settings.local:
        remove_empty_model(s3, model_uri, model_tar)
    outcome["cost"] = run_cost_facts(settings, boto_session, outcome["seconds"])
    record = {
        "job_name": job_name,
        "target": settings.target,
        "region": settings.region,
        "started_at": started_at.isoformat(timespec="seconds"),
        "wall_seconds": round(time.perf_counter() - clock, 1),
        "image": image,
        "data": {channel: data_facts(settings, manifest, channel) for channel in ("train", "validation")},
        "hyperparameters": settings.hyperparameters,
        "instance": {
            "type": "local" if settings.local else settings.instance_type,
            "configured_type": settings.instance_type,
            "count": settings.instance_count,
            "spot": settings.spot_training,
            "max_run": settings.max_run,
            "max_wait": settings.max_wait,
        },
        "toolkit_commit": records.toolkit_commit(REPO),
        **outcome,
    }
    path = records.write_record(runs_dir, record)
    record["record_path"] = str(path)
    return record


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--image-record", type=Path, required=True, help="JSON written by the push stage")
    parser.add_argument("--split-dir", type=Path, required=True, help="the data stage's output (for SHA-256s)")
    parser.add_argument("--runs-dir", type=Path, required=True, help="where run records go")
    args = parser.parse_args(argv)
    logs.setup("train")
    try:
        record = run(load(), args.image_record, args.split_dir, args.runs_dir)
    except (SettingsError, TrainError) as exc:
        log.error("ERROR: %s", exc)
        return 1
    except EndpointConnectionError as exc:
        where = os.environ.get("AWS_ENDPOINT_URL")
        hint = f"is the embedded AWS at {where} up? run 'make local-up'" if where else "check network and AWS_REGION"
        log.error("ERROR: %s; %s", exc, hint)
        return 1
    print(records.summary(record), flush=True)
    if record["status"] != "Completed":
        log.error("ERROR: training job %s %s: %s", record["job_name"], record["status"], record["failure_reason"])
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
