"""`make pipeline` on the embedded stack, end to end, in a fresh copy: every step runs through the
SDK's local pipeline session, and what it leaves equals what make all + make evaluate + make
predict leave on the same data and settings; a model below the bar ends at the Fail step with
both numbers and registers nothing."""

from __future__ import annotations

import json
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from checkout import Checkout, new_checkout

from launcher.lib import records

pytestmark = pytest.mark.stack


def job_of(result: subprocess.CompletedProcess[str], marker: str) -> str:
    for line in result.stderr.splitlines():
        if marker in line:
            return line.split(marker, 1)[1].split()[0].rstrip(":,")
    raise AssertionError(f"no {marker!r} in:\n{result.stderr[-3000:]}")


@pytest.fixture(scope="module")
def runs(tmp_path_factory: pytest.TempPathFactory, offline_base: str) -> Iterator[dict[str, Any]]:
    pipe = new_checkout(tmp_path_factory.mktemp("flow"), offline_base)
    verbs = pipe.make("all")
    assert verbs.returncode == 0, verbs.stderr[-3000:]
    verbs_job = job_of(verbs, "verified ")
    for verb in ("evaluate", "predict"):
        done = pipe.make(verb, JOB=verbs_job)
        assert done.returncode == 0, done.stderr[-3000:]
    flow = pipe.make("pipeline")
    below = pipe.make("pipeline", APPROVAL_MIN_AUC="0.99")
    models = pipe.make("models")
    yield {"pipe": pipe, "verbs_job": verbs_job, "flow": flow, "below": below, "models": models}
    pipe.cleanup()


def executions(pipe: Checkout) -> list[dict[str, Any]]:
    found = [json.loads(p.read_text()) for p in (pipe.root / "runs/pipelines").glob("*.json")]
    return sorted(found, key=lambda r: r["finished_at"])


def test_every_step_runs_and_leaves_what_the_make_verbs_leave(runs: dict[str, Any]) -> None:
    pipe, flow = runs["pipe"], runs["flow"]
    assert flow.returncode == 0, flow.stderr[-3000:]
    execution = executions(pipe)[0]
    assert records.shape_problems(execution, records.PipelineExecution) == []
    assert execution["status"] == "Succeeded"
    assert [s["name"] for s in execution["steps"]] == [
        "Prepare",
        "Train",
        "Evaluate",
        "Gate",
        "Model-CreateModel",
        "Transform",
    ]
    assert all(s["status"] == "Succeeded" for s in execution["steps"])
    assert next(s for s in execution["steps"] if s["name"] == "Gate")["condition"] is True
    jobs = [s for s in execution["steps"] if s["kind"] in ("TrainingJob", "ProcessingJob", "TransformJob")]
    assert all(s["cost"]["on_demand_cost_usd"] is not None and s["cost"]["cost_usd"] is None for s in jobs)
    assert execution["estimate"]["ceiling_usd"] > 0

    ours, theirs = pipe.root / "runs" / execution["run"], pipe.root / "runs" / runs["verbs_job"]
    # The model: the same trees (the archive differs only in the job's name on its model card).
    assert (ours / "model/model.joblib").read_bytes() == (theirs / "model/model.joblib").read_bytes()
    assert json.loads((ours / "model/metrics.json").read_text()) == json.loads(
        (theirs / "model/metrics.json").read_text()
    )
    mine, verbs = (json.loads((d / "evaluation.json").read_text()) for d in (ours, theirs))
    assert mine["metrics"] == verbs["metrics"] and mine["estimate"] == verbs["estimate"]
    assert (ours / "submission.csv").read_bytes() == (theirs / "submission.csv").read_bytes()
    assert (ours / "split/train/train.csv").read_bytes() == (pipe.root / "build/data/train/train.csv").read_bytes()

    record = json.loads((pipe.root / "runs" / f"{execution['run']}.json").read_text())
    assert records.shape_problems(record) == []
    assert record["verification"]["verified"] and record["evaluation"]["reported_equal"]
    assert record["registry"]["version"] >= 1  # registered through make register's code
    assert record["transforms"][-1]["survivors"] == sum(
        int(line.split(",")[1]) for line in (ours / "submission.csv").read_text().splitlines()[1:]
    )


def test_a_model_below_the_bar_stops_at_the_fail_step_and_registers_nothing(runs: dict[str, Any]) -> None:
    below = runs["below"]
    assert below.returncode != 0
    errors = [line for line in below.stderr.splitlines() if "ERROR" in line]
    assert len(errors) == 1 and "Traceback" not in below.stderr, below.stderr[-3000:]
    assert "the Gate stopped it: evaluated val_auc 0.8" in errors[0] and "below the approval bar 0.99" in errors[0]
    execution = executions(runs["pipe"])[-1]
    assert execution["status"] == "Failed" and "run" not in execution
    assert [s["name"] for s in execution["steps"]][-1] == "BelowBar"
    models = runs["models"]
    assert models.returncode == 0, models.stderr
    versions = [line for line in models.stdout.splitlines() if "PendingManualApproval" in line]
    assert len(versions) == 1, models.stdout  # the succeeded execution's, and not this one's


def test_status_lists_the_executions(runs: dict[str, Any]) -> None:
    status = runs["pipe"].make("status")
    assert status.returncode == 0, status.stderr
    for execution in executions(runs["pipe"]):
        assert execution["execution"] in status.stdout
    assert "Succeeded" in status.stdout and "Failed" in status.stdout


def test_a_local_execution_cannot_be_reattached_or_stopped(runs: dict[str, Any]) -> None:
    execution = executions(runs["pipe"])[0]["execution"]
    for verb in ("pipeline", "stop"):
        result = runs["pipe"].make(verb, JOB=execution)
        assert result.returncode != 0 and "Traceback" not in result.stderr
        assert "local pipeline executions run inside 'make pipeline'" in result.stderr, result.stderr[-2000:]


def test_the_estimate_learns_from_the_records(runs: dict[str, Any]) -> None:
    latest = executions(runs["pipe"])[-1]
    steps = latest["estimate"]["steps"]
    assert steps["Train"].get("typical_seconds") and steps["Transform"].get("typical_seconds")
    assert Path(runs["pipe"].root / "runs/pipelines").is_dir()
