"""Following a job on TARGET=aws (launcher/lib/watch.py): its status and CloudWatch log, and
what a denied, throttled or expired read does.

moto records training jobs but runs nothing, so botocore's Stubber (which checks every request
against the API model) stands in for the answers AWS would give while a job runs.
"""

from __future__ import annotations

import pytest
from botocore.exceptions import ClientError
from botocore.stub import Stubber
from conftest import TRAINING_JOB, described_training_job, no_sleep, offline_client

from launcher.lib import errors, watch

client = offline_client


def test_a_denied_log_never_fails_a_running_job(caplog: pytest.LogCaptureFixture) -> None:
    """The reference policy named the bare log group: DescribeLogStreams was denied, fit()
    raised, and the launcher called the still-running job Failed. Now the log is given up
    (once, with the fix named) and the status still comes from DescribeTrainingJob."""
    sm, logs = client("sagemaker"), client("logs")
    with Stubber(sm) as sm_stub, Stubber(logs) as logs_stub:
        for status in ("InProgress", "InProgress", "Completed"):
            sm_stub.add_response(
                "describe_training_job", described_training_job(status), {"TrainingJobName": TRAINING_JOB}
            )
        logs_stub.add_client_error("describe_log_streams", "AccessDeniedException", "not authorized", 400)
        final = watch.follow(sm, logs, TRAINING_JOB, sleep=no_sleep)
        sm_stub.assert_no_pending_responses()
        logs_stub.assert_no_pending_responses()  # asked once, then left alone
    assert final["TrainingJobStatus"] == "Completed"
    warnings = [r.getMessage() for r in caplog.records if "cannot read the job's log" in r.getMessage()]
    assert len(warnings) == 1  # said once
    assert "logs:DescribeLogStreams and logs:GetLogEvents on /aws/sagemaker/TrainingJobs:*" in warnings[0]
    assert "make iam-render" in warnings[0]  # the fix, named


def test_the_log_is_printed_once_per_line_across_polls() -> None:
    sm, logs = client("sagemaker"), client("logs")
    stream = f"{TRAINING_JOB}/algo-1-1764150000"
    lines: list[str] = []
    streams = (
        {"logStreams": [{"logStreamName": stream}]},
        {"logGroupName": watch.LOG_GROUP, "logStreamNamePrefix": f"{TRAINING_JOB}/", "orderBy": "LogStreamName"},
    )
    first = {"logGroupName": watch.LOG_GROUP, "logStreamName": stream, "startFromHead": True}
    after = {**first, "nextToken": "f/1"}
    with Stubber(sm) as sm_stub, Stubber(logs) as logs_stub:
        for status in ("InProgress", "Completed"):
            sm_stub.add_response(
                "describe_training_job", described_training_job(status), {"TrainingJobName": TRAINING_JOB}
            )
        # first poll: one line, then nothing new; second poll: nothing new (same token)
        logs_stub.add_response("describe_log_streams", *streams)
        logs_stub.add_response(
            "get_log_events",
            {"events": [{"timestamp": 1, "message": "val_auc: 0.86"}], "nextForwardToken": "f/1"},
            first,
        )
        logs_stub.add_response("get_log_events", {"events": [], "nextForwardToken": "f/1"}, after)
        logs_stub.add_response("describe_log_streams", *streams)
        logs_stub.add_response("get_log_events", {"events": [], "nextForwardToken": "f/1"}, after)
        watch.follow(sm, logs, TRAINING_JOB, sleep=no_sleep, write=lines.append)
    assert lines == ["algo-1-1764150000 | val_auc: 0.86"]


def test_throttled_status_reads_are_retried_not_reported_as_failure() -> None:
    sm = client("sagemaker")
    with Stubber(sm) as stub:
        stub.add_client_error("describe_training_job", "ThrottlingException", "slow down", 400)
        stub.add_client_error("describe_training_job", "ThrottlingException", "slow down", 400)
        stub.add_response(
            "describe_training_job", described_training_job("Completed"), {"TrainingJobName": TRAINING_JOB}
        )
        assert watch.follow(sm, None, TRAINING_JOB, sleep=no_sleep)["TrainingJobStatus"] == "Completed"


def test_a_status_that_stays_unreadable_is_said_plainly() -> None:
    sm = client("sagemaker")
    with Stubber(sm) as stub:
        for _ in range(watch.DESCRIBE_TRIES):
            stub.add_client_error("describe_training_job", "ThrottlingException", "slow down", 400)
        with pytest.raises(ClientError) as raised:
            watch.follow(sm, None, TRAINING_JOB, sleep=no_sleep)
        stub.assert_no_pending_responses()  # every try was used
    line, code = errors.describe(raised.value)
    assert code == 1 and "DescribeTrainingJob failed (ThrottlingException)" in line and "wait a minute" in line


def test_expired_credentials_are_not_retried_but_said_at_once() -> None:
    sm = client("sagemaker")
    slept: list[float] = []
    with Stubber(sm) as stub:
        stub.add_client_error("describe_training_job", "ExpiredTokenException", "expired", 400)
        with pytest.raises(ClientError) as raised:
            watch.follow(sm, None, TRAINING_JOB, sleep=slept.append)
    assert slept == []
    assert "refresh them" in errors.describe(raised.value)[0]
