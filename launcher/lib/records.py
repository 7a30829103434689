"""Run records: one JSON file per training job (runs/<job>.json), its one typed definition
(RunRecord), and the short summary printed beside it.

The record is the toolkit's most important artifact: train writes it, verify, register and
predict add their sections, and status, costs, report and clean-up read it. Its shape is the
TypedDicts below and nothing else; docs/reference.md describes the same fields for people.
"""

# No `from __future__ import annotations` here: TypedDict tells NotRequired keys from required
# ones only when the annotations are evaluated (Python 3.11).
import json
import subprocess
from pathlib import Path
from typing import Any, NotRequired, TypedDict, cast
from urllib.parse import urlparse

from launcher.lib.errors import ToolkitError
from launcher.lib.pricing import usd


class Image(TypedDict):
    """The image the job ran: as pushed (URI and manifest digest) and as built (local id)."""

    uri: str
    digest: str
    image_id: str


class Channel(TypedDict):
    """One data channel as the job read it."""

    uri: str
    sha256: str
    rows: int


class Instance(TypedDict):
    type: str  # "local" under local mode
    configured_type: str  # INSTANCE_TYPE, which prices a local run
    count: int
    spot: bool
    max_run: int
    max_wait: int


class Seconds(TypedDict):
    training: float | None
    billable: float | None  # 0 under local mode; spot-discounted on AWS


class Cost(TypedDict):
    """What a run (or a transform) cost; pricing.run_cost() makes it."""

    usd_per_hour: float | None
    price_source: str
    spot_savings: float | None
    cost_usd: float | None  # None when not billed (local mode)
    on_demand_cost_usd: float | None
    instances: int
    instance_type: str
    price_basis: NotRequired[str]  # transforms: which price stood in for the transform price


class TunedFrom(TypedDict):
    """HYPERPARAMETERS_FROM=tuned: the tuning job and trial the hyperparameters came from."""

    tuning: str
    best_trial: str
    objective: dict[str, float]


class Trial(TypedDict):
    """A local tuning trial: its tuning job, number and search space."""

    name: str
    trial: int
    search_space_sha256: str


class Verification(TypedDict):
    verified: bool
    local_dir: str
    files: list[str]
    metrics: dict[str, dict[str, float]]  # name -> reported, rescored, difference
    model_tar_sha256: str
    rescored_in: str


class Registration(TypedDict):
    group: str
    arn: str
    version: int
    registered_at: str


class TransformInput(TypedDict):
    uri: str
    sha256: str
    rows: int


class Transform(TypedDict):
    """One make predict over this run's model."""

    name: str
    model_name: str
    finished_at: str
    instance_type: str
    input: TransformInput
    output_uri: str
    submission_uri: str
    local_dir: str
    seconds: float | None
    survivors: int
    cost: Cost


class Evaluation(TypedDict):
    """One make evaluate of this run's model: the processing job and what its evaluation.json says."""

    job_name: str
    uri: str  # evaluation.json in S3
    local_file: str
    finished_at: str
    instance_type: str
    seconds: float | None
    val_auc: float
    reported_equal: bool  # the recomputed metrics equal the job's metrics.json
    beats_every_rule: bool | None  # None when the estimate was skipped (cv_repeats=0, ...)
    cost: Cost


class Outcome(TypedDict):
    """What a job's end adds to its record."""

    status: str
    failure_reason: str | None
    model_artifact: str | None  # only for a Completed job whose archive holds metrics.json
    output_data: str
    metrics: dict[str, float]
    final_metric_data: dict[str, float]
    seconds: Seconds
    secondary_status: str | None
    cost: Cost


class RunRecord(TypedDict):
    """runs/<job>.json. The keys before the outcome exist from the moment a job starts, which is
    what lets a later `make train JOB=...` re-attach to it."""

    job_name: str
    target: str
    region: str
    started_at: str
    image: Image
    data: dict[str, Channel]  # train, validation
    hyperparameters: dict[str, str]
    instance: Instance
    checkpoint_uri: str | None
    launched_by: str
    toolkit_commit: str
    status: str
    hyperparameters_from: NotRequired[TunedFrom]
    tuning: NotRequired[Trial]
    # the outcome, once the job has ended (Outcome's keys)
    failure_reason: NotRequired[str | None]
    model_artifact: NotRequired[str | None]
    output_data: NotRequired[str]
    metrics: NotRequired[dict[str, float]]
    final_metric_data: NotRequired[dict[str, float]]
    seconds: NotRequired[Seconds]
    secondary_status: NotRequired[str | None]
    cost: NotRequired[Cost]
    wall_seconds: NotRequired[float]
    # a job this toolkit stopped watching, or stopped
    interrupted_at: NotRequired[str]
    stopped_at: NotRequired[str]
    # what later stages add
    verification: NotRequired[Verification]
    registry: NotRequired[Registration]
    transforms: NotRequired[list[Transform]]
    evaluation: NotRequired[Evaluation]  # the latest make evaluate
    pipeline_execution: NotRequired[str]  # the make pipeline execution that ran this job


class PipelineStep(TypedDict):
    """One step of a pipeline execution, as ListPipelineExecutionSteps (or local mode) reports it."""

    name: str
    status: str | None
    seconds: float | None
    kind: str | None  # TrainingJob, ProcessingJob, TransformJob, Model, RegisterModel
    resource: str | None  # the job's (model's, version's) name
    arn: str | None
    failure_reason: str | None
    condition: bool | None  # a condition step's outcome
    cost: NotRequired[Cost | None]  # job steps: seconds at the type's price


class PipelineExecution(TypedDict):
    """runs/pipelines/<execution>.json: one make pipeline execution."""

    pipeline: str
    execution: str  # its ARN on AWS, its id on the embedded stack
    target: str
    finished_at: str
    status: str  # Succeeded, Failed, Stopped
    failure_reason: str | None
    wall_seconds: float
    instance_types: dict[str, str]  # training, processing, transform
    estimate: dict[str, Any]  # before it started: per step, the ceiling and the typical cost
    steps: list[PipelineStep]
    launched_by: str
    run: NotRequired[str]  # the training job, when the execution succeeded


def shape_problems(record: dict[str, Any], kind: Any = RunRecord) -> list[str]:
    """How `record` differs from its type's keys (RunRecord unless said; nested sections
    included); empty when it fits."""
    return _problems(record, kind, "")


def _problems(value: dict[str, Any], kind: Any, where: str) -> list[str]:
    required, optional = set(kind.__required_keys__), set(kind.__optional_keys__)
    found = [f"missing {where}{key}" for key in sorted(required - set(value))]
    found += [f"unknown {where}{key}" for key in sorted(set(value) - required - optional)]
    for key, inner in _SECTIONS.get(kind.__name__, {}).items():
        items = value.get(key)
        if isinstance(items, dict) and inner is not Channel:
            found += _problems(items, inner, f"{where}{key}.")
        elif isinstance(items, dict):  # a mapping of channels
            for name, channel in items.items():
                found += _problems(channel, inner, f"{where}{key}.{name}.")
        elif isinstance(items, list):
            for index, item in enumerate(items):
                found += _problems(item, inner, f"{where}{key}[{index}].")
    return found


# The nested sections shape_problems() checks, by the record type that holds them.
_SECTIONS: dict[str, dict[str, Any]] = {
    "RunRecord": {
        "image": Image,
        "data": Channel,
        "instance": Instance,
        "seconds": Seconds,
        "cost": Cost,
        "hyperparameters_from": TunedFrom,
        "tuning": Trial,
        "verification": Verification,
        "registry": Registration,
        "transforms": Transform,
        "evaluation": Evaluation,
    },
    "Evaluation": {"cost": Cost},
    "PipelineExecution": {"steps": PipelineStep},
    "Transform": {"input": TransformInput, "cost": Cost},
}


def toolkit_commit(repo: Path) -> str:
    """The toolkit's git commit, with '-dirty' when the tree has uncommitted changes."""
    try:
        commit = subprocess.run(
            ["git", "rev-parse", "HEAD"], cwd=repo, capture_output=True, text=True, check=True
        ).stdout.strip()
        dirty = subprocess.run(["git", "status", "--porcelain"], cwd=repo, capture_output=True, text=True).stdout
    except (OSError, subprocess.CalledProcessError):
        return "unknown: not a git checkout"
    return f"{commit}-dirty" if dirty.strip() else commit


def record_path(runs_dir: Path, job_name: str) -> Path:
    return runs_dir / f"{job_name}.json"


def write_files(folder: Path, files: dict[str, bytes]) -> None:
    """Every file complete or none: each is written beside its place, then all are renamed in,
    so a reader sees the old files or the new ones, whole."""
    folder.mkdir(parents=True, exist_ok=True)
    for name, data in files.items():
        (folder / f".{name}.partial").write_bytes(data)
    for name in files:
        (folder / f".{name}.partial").replace(folder / name)


def _write_json(path: Path, data: dict[str, Any]) -> Path:
    write_files(path.parent, {path.name: (json.dumps(data, indent=2, sort_keys=True, default=str) + "\n").encode()})
    return path


def write_record(runs_dir: Path, record: RunRecord) -> Path:
    return _write_json(record_path(runs_dir, record["job_name"]), cast(dict[str, Any], record))


def read_record(path: Path) -> RunRecord:
    """The run record in `path`; a file that is not one (hand-edited, or another tool's) is
    refused by name, before any stage acts on it."""
    try:
        record = json.loads(path.read_text(encoding="utf-8"))
    except ValueError:
        record = None
    # Only the keys every record has from its job's start: enough to tell a run record from
    # another file, without refusing one an older toolkit wrote with fewer sections.
    missing = [] if not isinstance(record, dict) else sorted(set(RunRecord.__required_keys__) - set(record))
    if not isinstance(record, dict) or missing:
        why = "not JSON" if not isinstance(record, dict) else "missing " + ", ".join(missing)
        raise RecordError(f"{path} is not a run record this toolkit wrote ({why}); move it out of {path.parent}")
    return cast(RunRecord, record)


def _read_json(path: Path) -> dict[str, Any]:
    return json.loads(path.read_text(encoding="utf-8"))


def latest_record(runs_dir: Path) -> Path | None:
    records = sorted(runs_dir.glob("*.json"), key=lambda p: p.stat().st_mtime)
    return records[-1] if records else None


class RecordError(ToolkitError, ValueError):
    """No run record fits what was asked; the message says what to run instead."""


def verified_record(runs_dir: Path, job: str, use: str) -> Path:
    """The record of JOB, or of the newest completed and verified run, for a stage that must
    only ever `use` a model make verify has rescored."""
    if job:
        path = record_path(runs_dir, job)
        if not path.is_file():
            raise RecordError(f"no run record for {job} in {runs_dir}; 'make status' lists the jobs of this checkout")
        candidates = [(path, read_record(path))]
    else:
        # Newest by when the job started (its name's timestamp as a tie-break), not by when its
        # record was last written: registering or predicting rewrites an old run's record.
        found = [(p, read_record(p)) for p in runs_dir.glob("*.json")]
        candidates = sorted(found, key=lambda pair: (pair[1].get("started_at") or "", pair[0].stem), reverse=True)
    for path, record in candidates:
        verified = (record.get("verification") or {}).get("verified") is True
        if record.get("status") == "Completed" and record.get("model_artifact") and verified:
            return path
        if job:
            state = record.get("status") if record.get("status") != "Completed" else "not verified"
            raise RecordError(
                f"job {job} is {state}; {use} only a verified model: run 'make verify JOB={job}' "
                "(or train a new one with 'make all')"
            )
    raise RecordError(f"no verified run in {runs_dir}; run 'make all' (train and verify) first")


TUNED_FILE = Path("tuning") / "best-hyperparameters.json"


def write_tuned(runs_dir: Path, outcome: dict[str, Any]) -> Path:
    """The latest make tune-jobs' outcome, which make train HYPERPARAMETERS_FROM=tuned reads."""
    return _write_json(runs_dir / TUNED_FILE, outcome)


def read_tuned(runs_dir: Path) -> dict[str, Any]:
    path = runs_dir / TUNED_FILE
    if not path.is_file():
        raise RecordError(
            f"HYPERPARAMETERS_FROM=tuned, but {path} is missing: run 'make tune-jobs' first, or set "
            "HYPERPARAMETERS_FROM=config"
        )
    outcome = _read_json(path)
    if not isinstance(outcome.get("hyperparameters"), dict) or not outcome["hyperparameters"]:
        raise RecordError(f"{path} holds no hyperparameters; run 'make tune-jobs' again")
    return outcome


def cost_line(cost: dict[str, Any]) -> str:
    """'$0.000639 (on demand $0.001725, spot savings 63%) at $0.115/h ml.m5.large (source)'."""
    if not cost:
        return "unknown"
    price = "no price known"
    if cost.get("usd_per_hour") is not None:
        price = f"${cost['usd_per_hour']}/h {cost['instance_type']} ({cost['price_source']})"
    on_demand = usd(cost.get("on_demand_cost_usd"))
    if cost.get("cost_usd") is None:
        return f"not billed (local run); this training time on AWS on demand: {on_demand} at {price}"
    savings = "unknown" if cost.get("spot_savings") is None else f"{cost['spot_savings']:.0%}"
    return f"{usd(cost['cost_usd'])} (on demand {on_demand}, spot savings {savings}) at {price}"


def summary(record: RunRecord, path: Path) -> str:
    """The same facts as the record, for a person reading a terminal or a cron mail."""
    metrics = record.get("metrics") or {}
    seconds = record.get("seconds") or {}  # none yet for a job interrupted while it runs
    shown = ", ".join(f"{k} {metrics[k]:.4f}" for k in ("val_accuracy", "val_f1", "val_auc") if k in metrics)
    lines = [
        f"job          {record['job_name']} ({record['status']}, target {record['target']})",
        f"image        {record['image']['uri']} ({record['image']['digest']})",
        f"data         train {record['data']['train']['uri']}  validation {record['data']['validation']['uri']}",
        f"instance     {record['instance']['type']} x{record['instance']['count']}, spot {record['instance']['spot']}",
        f"time         training {seconds.get('training', '-')} s, billable {seconds.get('billable', '-')}",
        f"metrics      {shown or 'none'}",
        f"cost         {cost_line(record.get('cost') or {})}",
        f"model        {record.get('model_artifact') or 'none'}",
        f"record       {path}",
    ]
    if record.get("failure_reason"):
        lines.insert(1, f"FAILED       {record['failure_reason']}")
    return "\n".join(lines)


def require_artifact(s3: Any, record: RunRecord) -> None:
    """The run's model.tar.gz must still be there. Listed, not HEAD-ed: HEAD's errors have no
    body (a bare 403 or 400 says nothing of why), and the runner may list the output prefix."""
    uri = urlparse(record["model_artifact"] or "")
    key = uri.path.lstrip("/")
    listed = s3.list_objects_v2(Bucket=uri.netloc, Prefix=key, MaxKeys=1).get("Contents", [])
    if not any(item["Key"] == key for item in listed):
        raise RecordError(
            f"{record['model_artifact']} of job {record['job_name']} is gone (deleted by clean-up, or "
            "the embedded stack restarted and forgot it); train again with 'make all'"
        )
