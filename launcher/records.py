"""Run records: one JSON file per training job, and the short summary printed beside it."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path
from typing import Any

from launcher.errors import ToolkitError
from launcher.pricing import usd


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


def write_record(runs_dir: Path, record: dict[str, Any]) -> Path:
    return _write_json(record_path(runs_dir, record["job_name"]), record)


def read_record(path: Path) -> dict[str, Any]:
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
    outcome = read_record(path)
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


def summary(record: dict[str, Any]) -> str:
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
        f"record       {record.get('record_path', '')}",
    ]
    if record.get("failure_reason"):
        lines.insert(1, f"FAILED       {record['failure_reason']}")
    return "\n".join(lines)
