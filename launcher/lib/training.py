"""One SageMaker training job through the Python SDK's Estimator.fit() (make train, and each
of make tune-jobs' local trials).

TARGET=aws runs it on SageMaker: fit() starts the job, then the launcher follows it
(launcher/lib/watch.py) until it ends. A log that cannot be read never fails a running job, and
Ctrl-C or SIGTERM leaves the job running, writes the record as InProgress and prints how to
follow, stop or re-attach to it (`--job NAME` re-attaches). TARGET=local runs the same image
under the SDK's local mode (LocalSession), reading channels from and writing model.tar.gz to
the embedded S3 in SageMaker's own key layout. Either way a run record lands in
runs/<job>.json.
"""

from __future__ import annotations

import contextlib
import dataclasses
import io
import json
import logging
import sys
import tarfile
import time
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, cast
from urllib.parse import urlparse

import boto3
from botocore.exceptions import ClientError
from sagemaker.estimator import Estimator
from sagemaker.inputs import TrainingInput
from sagemaker.utils import name_from_base
from titanic_model.metrics import METRIC_DEFINITIONS

from launcher.lib import records, sdk, watch
from launcher.lib.caller import s3_bytes, whoami
from launcher.lib.config import Settings, job_tags
from launcher.lib.errors import ToolkitError
from launcher.lib.local_mode import remove_local_containers
from launcher.lib.pricing import Price, PriceBook, pricing_client, run_cost

log = logging.getLogger("train")
REPO = Path(__file__).resolve().parents[2]


class TrainError(ToolkitError):
    """The job could not be started or did not complete; the message says why and what to do."""


class Interrupted(RuntimeError):
    """Ctrl-C or SIGTERM while a job ran; the job's record has been written."""

    def __init__(self, record: records.RunRecord) -> None:
        super().__init__(record["job_name"])
        self.record = record


def follow_up_commands(job_name: str) -> str:
    return (
        f"training job {job_name} may still be running on SageMaker, and is billed while it does:\n"
        f"  follow it:    make logs JOB={job_name}\n"
        f"  stop it:      make stop JOB={job_name}\n"
        f"  re-attach:    make train JOB={job_name}   (waits, completes the record; make all JOB=... also verifies)\n"
        f"  see all jobs: make status"
    )


def read_image_record(path: Path) -> records.Image:
    if not path.is_file():
        raise TrainError(f"{path} is missing: no image has been pushed yet; run 'make push' (or 'make all')")
    try:
        record = json.loads(path.read_text(encoding="utf-8"))
        return {"uri": record["image_uri"], "digest": record["digest"], "image_id": record.get("image_id", "")}
    except (ValueError, KeyError, TypeError):
        raise TrainError(f"{path} is not an image record the push stage wrote; delete it and run 'make push'") from None


def read_data_manifest(split_dir: Path) -> dict[str, Any]:
    manifest = split_dir / "manifest.json"
    if not manifest.is_file():
        raise TrainError(f"{manifest} is missing; run 'make data' and 'make upload' first")
    return json.loads(manifest.read_text(encoding="utf-8"))


def checkpoint_uri(settings: Settings, job_name: str) -> str:
    """Each job its own checkpoint prefix: a new job never resumes from an old job's trees,
    while a spot restart of the same job finds its own."""
    return f"{settings.checkpoint_uri}/{job_name}/"


def build_estimator(
    settings: Settings,
    image_uri: str,
    session: Any,
    launched_by: str,
    *,
    checkpoint: Any = None,
    instance_type: Any = None,
) -> Any:
    """make train's Estimator (also each tuning trial's and the pipeline's Train step's).
    `checkpoint`: the job's checkpoint prefix on AWS (None: no checkpoints); `instance_type`:
    INSTANCE_TYPE (or "local") unless a pipeline parameter stands in."""
    # Local mode refuses spot and checkpoint settings outright; on AWS they are the point.
    spot = settings.spot_training
    return Estimator(
        image_uri=image_uri,
        role=settings.role_arn,
        instance_count=settings.instance_count,
        instance_type=instance_type or ("local" if settings.local else settings.instance_type),
        volume_size=settings.volume_size_gb,
        output_path=f"{settings.output_uri}/",
        base_job_name=settings.base_job_name,
        hyperparameters=dict(settings.hyperparameters),
        max_run=settings.max_run,
        use_spot_instances=spot,
        max_wait=settings.max_wait if spot else None,
        checkpoint_s3_uri=None if settings.local else checkpoint,
        metric_definitions=METRIC_DEFINITIONS,
        tags=job_tags(settings, launched_by),
        enable_network_isolation=True,
        # Several instances send each other rows and histograms: encrypt that traffic (a
        # single instance has none; local mode has no such setting).
        encrypt_inter_container_traffic=settings.instance_count > 1 and not settings.local,
        # A bring-your-own image has no profiler or debugger hook to feed.
        disable_profiler=True,
        debugger_hook_config=False,
        sagemaker_session=session,
    )


def training_inputs(settings: Settings, uris: dict[str, Any] | None = None) -> dict[str, Any]:
    """The train channel as TRAIN_DISTRIBUTION says; every instance gets all of validation.
    Local mode accepts only FullyReplicated (check_shards says so when it matters). `uris`:
    the channels' S3 prefixes, when not the uploaded split's (the pipeline's own split)."""
    uris = uris or {c: settings.channel_uri(c) for c in ("train", "validation")}
    distribution = "FullyReplicated" if settings.local else settings.train_distribution
    return {
        "train": TrainingInput(uris["train"], content_type="text/csv", distribution=distribution),
        "validation": TrainingInput(uris["validation"], content_type="text/csv"),
    }


def check_shards(settings: Settings, s3: Any) -> None:
    """ShardedByS3Key hands each instance whole files: fewer files than instances would leave
    an instance without rows, which fails the job only after it has been paid for."""
    if settings.instance_count < 2 or settings.train_distribution != "ShardedByS3Key":
        return
    if settings.local:
        log.warning(
            "local mode runs only FullyReplicated channels: every container gets every file, and the image "
            "trains each host on its own block of the rows; ShardedByS3Key applies on SageMaker"
        )
        return
    prefix = f"{settings.data_prefix}/train/"
    pages = s3.get_paginator("list_objects_v2").paginate(Bucket=settings.bucket, Prefix=prefix)
    files = sum(1 for page in pages for item in page.get("Contents", []) if not item["Key"].endswith("/"))
    if files < settings.instance_count:
        raise TrainError(
            f"TRAIN_DISTRIBUTION=ShardedByS3Key gives each instance whole files, but s3://{settings.bucket}/{prefix} "
            f"has {files} for INSTANCE_COUNT={settings.instance_count}: split the train data into at least "
            f"{settings.instance_count} files, or set TRAIN_DISTRIBUTION=FullyReplicated"
        )


def _s3_object(s3: Any, uri: str) -> bytes | None:
    """The object's bytes, or None when it is not there (or not readable) for any reason."""
    try:
        return s3_bytes(s3, uri)
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


def job_name(base: str) -> str:
    """A training job's name as Estimator.fit makes it (the SDK's name_from_base)."""
    return name_from_base(base)


def job_outcome(
    settings: Settings, session: Any, s3: Any, job_name: str, error: Exception | None, *, price: Price | None
) -> tuple[records.Outcome, bytes | None, str]:
    """Status, times, artifact and metrics of a finished job, from describe and from S3; and
    what was found at the model's key (its bytes and URI), which the record does not keep."""
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
    if training_seconds is None:
        training_seconds = watch.seconds_between(started, ended)
    seconds: records.Seconds = {
        "training": training_seconds,
        # Local mode is not billed; on AWS BillableTimeInSeconds already has the spot discount.
        "billable": 0 if settings.local else description.get("BillableTimeInSeconds"),
    }
    outcome: records.Outcome = {
        "status": status,
        "failure_reason": failure,
        "model_artifact": model_uri if metrics_bytes and status == "Completed" else None,
        "output_data": output_uri,
        "metrics": json.loads(metrics_bytes) if metrics_bytes and status == "Completed" else {},
        "final_metric_data": {m["MetricName"]: m["Value"] for m in description.get("FinalMetricDataList", []) or []},
        "seconds": seconds,
        "secondary_status": description.get("SecondaryStatus"),
        "cost": run_cost_facts(settings, price, seconds),
    }
    return outcome, model_tar, model_uri


def remove_empty_model(s3: Any, uri: str, model_tar: bytes | None) -> None:
    """Local mode uploads model.tar.gz even for a failed job: an empty tarball at the usual key
    would look like a model. Delete it when it holds no model.joblib."""
    if model_tar is None or _member(model_tar, ("model.joblib", "./model.joblib")):
        return
    parsed = urlparse(uri)
    s3.delete_object(Bucket=parsed.netloc, Key=parsed.path.lstrip("/"))
    log.info("removed %s: the failed job left an empty model archive", uri)


def training_price(settings: Settings, boto_session: boto3.Session) -> Price | None:
    """INSTANCE_TYPE's on-demand price: the Pricing API on AWS, else the dated snapshot."""
    pricing = None if settings.local else pricing_client(boto_session, settings.region)
    return PriceBook(settings.region, pricing).lookup(settings.instance_type)[0]


def run_cost_facts(settings: Settings, price: Price | None, seconds: records.Seconds) -> records.Cost:
    """Price and cost of a run (a training job, or a tuning job's trial) on INSTANCE_COUNT
    instances. Local runs are not billed: their cost is None, and the on-demand figure says
    what the same training time would cost on AWS."""
    billable = None if settings.local else seconds["billable"]
    count = settings.instance_count
    cost = run_cost(seconds["training"], billable, price, spot=settings.spot_training, instances=count)
    return cast(records.Cost, {**cost, "instance_type": settings.instance_type})


def data_facts(settings: Settings, manifest: dict[str, Any], channel: str) -> records.Channel:
    facts = manifest["channels"][channel]
    return {"uri": settings.channel_uri(channel), "sha256": facts["sha256"], "rows": facts["rows"]}


class _Tee(io.TextIOBase):
    def __init__(self, *streams: Any) -> None:
        self.streams = streams

    def write(self, text: str) -> int:
        for stream in self.streams:
            stream.write(text)
        return len(text)

    def flush(self) -> None:
        for stream in self.streams:
            stream.flush()


@contextlib.contextmanager
def kept_output(path: Path | None) -> Iterator[None]:
    """Copy what is printed to stdout into path as well (nothing when path is None)."""
    if path is None:
        yield
        return
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("w", encoding="utf-8") as kept, contextlib.redirect_stdout(_Tee(sys.stdout, kept)):
        yield


def base_record(
    settings: Settings, job_name: str, image: records.Image, manifest: dict[str, Any], launched_by: str
) -> records.RunRecord:
    """What is known of a run before its outcome: enough to re-attach to it later."""
    return {
        "job_name": job_name,
        "target": settings.target,
        "region": settings.region,
        "started_at": datetime.now(UTC).isoformat(timespec="seconds"),
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
        "checkpoint_uri": None if settings.local else checkpoint_uri(settings, job_name),
        "launched_by": launched_by,
        "toolkit_commit": records.toolkit_commit(REPO),
        "status": "InProgress",
    }


def finish_record(
    settings: Settings,
    record: records.RunRecord,
    session: Any,
    boto_session: boto3.Session,
    error: Exception | None,
) -> records.RunRecord:
    s3 = boto_session.client("s3")
    price = training_price(settings, boto_session)
    outcome, model_tar, model_uri = job_outcome(settings, session, s3, record["job_name"], error, price=price)
    if settings.local:
        remove_local_containers(record["image"]["uri"])
    if outcome["status"] != "Completed" and settings.local:
        remove_empty_model(s3, model_uri, model_tar)
    record.update(outcome)
    return record


def _save(runs_dir: Path, record: records.RunRecord) -> records.RunRecord:
    records.write_record(runs_dir, record)
    return record


def _interrupted(runs_dir: Path, record: records.RunRecord, sm: Any) -> Interrupted:
    """The record of a job this process stopped watching, with SageMaker's word on its state."""
    try:
        description = sm.describe_training_job(TrainingJobName=record["job_name"])
        record["status"] = description.get("TrainingJobStatus", "InProgress")
        record["secondary_status"] = description.get("SecondaryStatus")
    except Exception as exc:  # noqa: BLE001 - the record must be written whatever the API says now
        log.warning("could not read the job's status while stopping (%s); recording it as InProgress", exc)
        record["status"] = "InProgress"
    record["interrupted_at"] = datetime.now(UTC).isoformat(timespec="seconds")
    return Interrupted(_save(runs_dir, record))


def run(
    settings: Settings,
    image_record: Path,
    split_dir: Path,
    runs_dir: Path,
    boto_session: boto3.Session | None = None,
    *,
    attach: str = "",
    sleep: Any = time.sleep,
    poll_seconds: float = 15.0,
) -> records.RunRecord:
    """Start a job (or re-attach to `attach`), wait for its end, and write its run record.
    Raises Interrupted, with the record written, on Ctrl-C or SIGTERM while a job runs."""
    boto_session = boto_session or boto3.Session(region_name=settings.region)
    session = sdk.session(settings, boto_session)
    sm = boto_session.client("sagemaker")
    clock = time.perf_counter()
    with watch.sigterm_as_ctrl_c():
        error: Exception | None = None
        if attach:
            record, finished = reattach_record(settings, runs_dir, attach, sm)
            if settings.local:  # finished inside an earlier 'make train': nothing to wait for
                return _save(runs_dir, record)
        else:
            record, error = start(
                settings, image_record, split_dir, runs_dir, boto_session=boto_session, session=session
            )
            finished = settings.local  # local mode ran the job inside fit()
        if not finished:
            try:
                watch.follow(
                    sm, boto_session.client("logs"), record["job_name"], sleep=sleep, poll_seconds=poll_seconds
                )
            except KeyboardInterrupt:
                raise _interrupted(runs_dir, record, sm) from None
            except watch.WatchError as exc:
                log.error("ERROR: %s", exc)
                raise _interrupted(runs_dir, record, sm) from None
        finish_record(settings, record, session, boto_session, error)
    record["wall_seconds"] = round(time.perf_counter() - clock, 1)
    return _save(runs_dir, record)


def start(
    settings: Settings,
    image_record: Path,
    split_dir: Path,
    runs_dir: Path,
    *,
    boto_session: boto3.Session,
    session: Any,
) -> tuple[records.RunRecord, Exception | None]:
    """The new job's record, and the error local mode's fit() raised (the job failed in it)."""
    settings, tuned_from = with_tuned(settings, runs_dir)
    image = read_image_record(image_record)
    manifest = read_data_manifest(split_dir)
    launched_by = whoami(boto_session).arn
    check_shards(settings, boto_session.client("s3"))
    job_name = name_from_base(settings.base_job_name)
    checkpoint = checkpoint_uri(settings, job_name)
    estimator = build_estimator(settings, image["uri"], session, launched_by, checkpoint=checkpoint)
    record = base_record(settings, job_name, image, manifest, launched_by)
    if tuned_from:
        record["hyperparameters_from"] = tuned_from
    log.info("starting training job %s from %s on %s", job_name, image["uri"], estimator.instance_type)
    try:
        # Local mode runs the container inside fit(), printing its output, which is kept for
        # 'make logs'; on AWS fit() only starts the job, and CloudWatch keeps the log.
        with kept_output(runs_dir / job_name / "job.log" if settings.local else None):
            estimator.fit(training_inputs(settings), job_name=job_name, wait=settings.local, logs="All")
    except KeyboardInterrupt:
        if settings.local:
            record["status"] = "Stopped"
            record["failure_reason"] = "interrupted (Ctrl-C or SIGTERM) while local mode ran the container"
            remove_local_containers(image["uri"])
            raise Interrupted(_save(runs_dir, record)) from None
        raise _interrupted(runs_dir, record, boto_session.client("sagemaker")) from None
    except Exception as exc:
        if not settings.local:
            raise TrainError(f"the training job could not be created: {exc}") from exc
        return record, exc
    return record, None


def with_tuned(settings: Settings, runs_dir: Path) -> tuple[Settings, records.TunedFrom | None]:
    """HYPERPARAMETERS_FROM=tuned: the best of the latest make tune-jobs over config.env's HP_*,
    and where they came from (for the run record)."""
    if settings.hyperparameters_from != "tuned":
        return settings, None
    try:
        outcome = records.read_tuned(runs_dir)
    except records.RecordError as exc:
        raise TrainError(str(exc)) from None
    tuned = {name: str(value) for name, value in outcome["hyperparameters"].items()}
    log.info(
        "hyperparameters from tuning %s (best %s %s): %s",
        outcome["name"],
        outcome["objective"],
        outcome["best"]["objective"],
        " ".join(f"{k}={v}" for k, v in sorted(tuned.items())),
    )
    source: records.TunedFrom = {
        "tuning": outcome["name"],
        "best_trial": outcome["best"]["job_name"],
        "objective": {outcome["objective"]: outcome["best"]["objective"]},
    }
    return dataclasses.replace(settings, hyperparameters={**settings.hyperparameters, **tuned}), source


def reattach_record(settings: Settings, runs_dir: Path, job_name: str, sm: Any) -> tuple[records.RunRecord, bool]:
    """The record of a job started earlier, and whether the job has already ended."""
    path = records.record_path(runs_dir, job_name)
    if not path.is_file():
        raise TrainError(f"no run record for {job_name} in {runs_dir}; 'make status' lists the jobs this checkout ran")
    record = records.read_record(path)
    if settings.local:
        if record.get("status") == "Completed":
            return record, True
        raise TrainError(
            f"{job_name} is {record.get('status')}; local-mode jobs run inside 'make train' and cannot be re-attached "
            "to: start a new one with 'make train'"
        )
    description = watch.describe(sm, job_name)
    log.info("re-attaching to %s (%s)", job_name, description.get("TrainingJobStatus"))
    return record, watch.is_final(description)


def sagemaker_ranges(space: Any) -> dict[str, Any]:
    from sagemaker.tuner import ContinuousParameter, IntegerParameter

    ranges: dict[str, Any] = {}
    for p in space.parameters:
        if p.kind == "integer":
            ranges[p.name] = IntegerParameter(int(p.low), int(p.high), scaling_type=p.scaling)
        else:
            ranges[p.name] = ContinuousParameter(p.low, p.high, scaling_type=p.scaling)
    return ranges


def build_tuner(settings: Settings, space: Any, image_uri: str, session: Any, launched_by: str) -> Any:
    """make tune-jobs' HyperparameterTuner over the same Estimator make train builds; `space` is
    the tuning command's SearchSpace (objective and parameters)."""
    from sagemaker.tuner import HyperparameterTuner

    # Trials share no checkpoint prefix: a trial must never resume another trial's trees, and
    # a spot interruption restarts that trial (they are short).
    estimator = build_estimator(settings, image_uri, session, launched_by)
    tags = job_tags(settings, launched_by)
    return HyperparameterTuner(
        estimator,
        objective_metric_name=space.objective,
        hyperparameter_ranges=sagemaker_ranges(space),
        metric_definitions=[d for d in METRIC_DEFINITIONS if d["Name"] == space.objective],
        strategy=settings.tune.strategy,
        objective_type="Maximize",
        max_jobs=settings.tune.max_jobs,
        max_parallel_jobs=settings.tune.max_parallel_jobs,
        early_stopping_type=settings.tune.early_stopping,
        random_seed=settings.tune.seed,
        tags=tags,
    )
