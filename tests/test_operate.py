"""make stop, make status and make logs on TARGET=aws (launcher/operate.py).

moto has no StopTrainingJob and runs no job: botocore's Stubber, which checks every request
against the API model, stands in for those calls.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from botocore.stub import Stubber
from conftest import (
    TRAINING_JOB,
    OneClientSession,
    aws_settings,
    described_training_job,
    no_sleep,
    offline_client,
    run_record,
)

from launcher import operate
from launcher.lib import records, watch
from launcher.lib.pricing import PriceBook

client = offline_client
ARN = f"arn:aws:sagemaker:us-east-1:123456789012:training-job/{TRAINING_JOB}"


def test_stop_sends_stop_training_job_waits_and_updates_the_record(tmp_path: Path) -> None:
    runs = tmp_path / "runs"
    records.write_record(runs, run_record(job_name=TRAINING_JOB, status="InProgress"))
    sm = client("sagemaker")
    with Stubber(sm) as stub:
        stub.add_response(
            "describe_training_job", described_training_job("InProgress"), {"TrainingJobName": TRAINING_JOB}
        )
        stub.add_response("stop_training_job", {}, {"TrainingJobName": TRAINING_JOB})
        stub.add_response(
            "describe_training_job", described_training_job("Stopping", "Stopping"), {"TrainingJobName": TRAINING_JOB}
        )
        stub.add_response(
            "describe_training_job", described_training_job("Stopped", "Stopped"), {"TrainingJobName": TRAINING_JOB}
        )
        final = operate.stop(
            aws_settings(), sm, runs, TRAINING_JOB, follow=lambda *a, **k: watch.follow(*a, **k, sleep=no_sleep)
        )
        stub.assert_no_pending_responses()
    assert final["TrainingJobStatus"] == "Stopped"
    assert records.read_record(records.record_path(runs, TRAINING_JOB))["status"] == "Stopped"


def test_status_lists_running_and_recent_jobs_with_cost_so_far() -> None:
    sm = client("sagemaker")
    now = datetime(2026, 11, 26, 10, 30, tzinfo=UTC)
    other = "titanic-lgbm-2026-11-25-09-00-00-000"
    summary = {
        "TrainingJobName": TRAINING_JOB,
        "TrainingJobArn": ARN,
        "CreationTime": now,
        "TrainingJobStatus": "InProgress",
    }
    done = {
        **summary,
        "TrainingJobName": other,
        "TrainingJobArn": ARN.replace(TRAINING_JOB, other),
        "TrainingJobStatus": "Completed",
    }
    base = {"NameContains": "titanic-lgbm", "SortBy": "CreationTime", "SortOrder": "Descending", "MaxResults": 10}
    with Stubber(sm) as stub:
        stub.add_response(
            "list_training_jobs", {"TrainingJobSummaries": [summary]}, {**base, "StatusEquals": "InProgress"}
        )
        stub.add_response("list_training_jobs", {"TrainingJobSummaries": [summary, done]}, base)
        stub.add_response(
            "describe_training_job",
            described_training_job("InProgress", EnableManagedSpotTraining=True),
            {"TrainingJobName": TRAINING_JOB},
        )
        stub.add_response(
            "describe_training_job",
            {
                **described_training_job("Completed", "Completed"),
                "TrainingJobName": other,
                "BillableTimeInSeconds": 20,
                "TrainingEndTime": now - timedelta(minutes=29),
            },
            {"TrainingJobName": other},
        )
        rows = operate.status_rows_aws(aws_settings(), sm, PriceBook("us-east-1", None), now)
    assert [r["job"] for r in rows] == [TRAINING_JOB, other]
    running, finished = rows
    assert running["status"] == "InProgress" and running["spot"] is True and running["elapsed_s"] == 1800
    assert running["cost_usd"] == pytest.approx(1800 * 0.115 / 3600, abs=1e-6)  # on-demand bound while it runs
    assert finished["cost_usd"] == pytest.approx(20 * 0.115 / 3600, abs=1e-6)  # billed seconds once it has ended
    assert TRAINING_JOB in operate.render_status(rows)


def test_make_logs_shows_the_endpoints_log_on_aws(capsys: pytest.CaptureFixture[str]) -> None:
    logs = client("logs")
    group = "/aws/sagemaker/Endpoints/titanic-survival"
    session = OneClientSession(logs)
    with Stubber(logs) as stub:
        stub.add_response(
            "describe_log_streams",
            {"logStreams": [{"logStreamName": "AllTraffic/i-0abc"}]},
            {"logGroupName": group, "orderBy": "LogStreamName"},
        )
        stub.add_response(
            "get_log_events", {"events": [{"timestamp": 1, "message": "row 1: bad Age"}], "nextForwardToken": "f/1"}
        )
        stub.add_response("get_log_events", {"events": [], "nextForwardToken": "f/1"})
        text = operate.endpoint_log(aws_settings(), session)
    assert text == "i-0abc | row 1: bad Age\n"
