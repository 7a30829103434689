"""Operating jobs on TARGET=aws, up to the API: following, interrupting, re-attaching,
stopping, listing and cleaning up.

moto records training jobs but runs nothing (every job is Completed at once) and has no
StopTrainingJob. So: a real moto server answers what it can, a botocore hook makes its
DescribeTrainingJob answer "InProgress" where a test needs a job that is still running, and
botocore's Stubber (which checks every request against the API model) stands in for the
calls moto lacks or for failures AWS would return (AccessDenied, throttling).
"""

from __future__ import annotations

import json
import signal
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import boto3
import pytest
from botocore.awsrequest import AWSResponse
from botocore.exceptions import ClientError
from botocore.stub import Stubber
from conftest import OneClientSession, WithSageMaker, aws_settings, offline_client, shipped

from launcher import cleanup, errors, operate, records, train, watch
from launcher.pricing import PriceBook

JOB = "titanic-lgbm-2026-11-26-10-00-00-000"
ARN = f"arn:aws:sagemaker:us-east-1:123456789012:training-job/{JOB}"
ROLE = "arn:aws:iam::123456789012:role/service-role/titanic-sagemaker-execution"


client = offline_client


def described(status: str, secondary: str = "Training", **extra: Any) -> dict[str, Any]:
    """A DescribeTrainingJob answer with the fields the API reference marks required."""
    now = datetime(2026, 11, 26, 10, 0, tzinfo=UTC)
    return {
        "TrainingJobName": JOB,
        "TrainingJobArn": ARN,
        "TrainingJobStatus": status,
        "SecondaryStatus": secondary,
        "ModelArtifacts": {"S3ModelArtifacts": f"s3://b/titanic/output/{JOB}/output/model.tar.gz"},
        "AlgorithmSpecification": {"TrainingImage": "i", "TrainingInputMode": "File"},
        "ResourceConfig": {"InstanceType": "ml.m5.large", "InstanceCount": 1, "VolumeSizeInGB": 5},
        "StoppingCondition": {"MaxRuntimeInSeconds": 900},
        "CreationTime": now,
        "TrainingStartTime": now,
        **extra,
    }


def no_sleep(_: float) -> None:
    return None


# ---- following a job -------------------------------------------------------------------


def test_a_denied_log_never_fails_a_running_job(caplog: pytest.LogCaptureFixture) -> None:
    """The reference policy named the bare log group: DescribeLogStreams was denied, fit()
    raised, and the launcher called the still-running job Failed. Now the log is given up
    (once, with the fix named) and the status still comes from DescribeTrainingJob."""
    sm, logs = client("sagemaker"), client("logs")
    with Stubber(sm) as sm_stub, Stubber(logs) as logs_stub:
        for status in ("InProgress", "InProgress", "Completed"):
            sm_stub.add_response("describe_training_job", described(status), {"TrainingJobName": JOB})
        logs_stub.add_client_error("describe_log_streams", "AccessDeniedException", "not authorized", 400)
        final = watch.follow(sm, logs, JOB, sleep=no_sleep)
        sm_stub.assert_no_pending_responses()
        logs_stub.assert_no_pending_responses()  # asked once, then left alone
    assert final["TrainingJobStatus"] == "Completed"
    warnings = [r.getMessage() for r in caplog.records if "cannot read the job's log" in r.getMessage()]
    assert len(warnings) == 1  # said once
    assert "logs:DescribeLogStreams and logs:GetLogEvents on /aws/sagemaker/TrainingJobs:*" in warnings[0]
    assert "make iam-render" in warnings[0]  # the fix, named


def test_the_log_is_printed_once_per_line_across_polls() -> None:
    sm, logs = client("sagemaker"), client("logs")
    stream = f"{JOB}/algo-1-1764150000"
    lines: list[str] = []
    streams = (
        {"logStreams": [{"logStreamName": stream}]},
        {"logGroupName": watch.LOG_GROUP, "logStreamNamePrefix": f"{JOB}/", "orderBy": "LogStreamName"},
    )
    first = {"logGroupName": watch.LOG_GROUP, "logStreamName": stream, "startFromHead": True}
    after = {**first, "nextToken": "f/1"}
    with Stubber(sm) as sm_stub, Stubber(logs) as logs_stub:
        for status in ("InProgress", "Completed"):
            sm_stub.add_response("describe_training_job", described(status), {"TrainingJobName": JOB})
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
        watch.follow(sm, logs, JOB, sleep=no_sleep, write=lines.append)
    assert lines == ["algo-1-1764150000 | val_auc: 0.86"]


def test_throttled_status_reads_are_retried_not_reported_as_failure() -> None:
    sm = client("sagemaker")
    with Stubber(sm) as stub:
        stub.add_client_error("describe_training_job", "ThrottlingException", "slow down", 400)
        stub.add_client_error("describe_training_job", "ThrottlingException", "slow down", 400)
        stub.add_response("describe_training_job", described("Completed"), {"TrainingJobName": JOB})
        assert watch.follow(sm, None, JOB, sleep=no_sleep)["TrainingJobStatus"] == "Completed"


def test_a_status_that_stays_unreadable_is_said_plainly() -> None:
    sm = client("sagemaker")
    with Stubber(sm) as stub:
        for _ in range(watch.DESCRIBE_TRIES):
            stub.add_client_error("describe_training_job", "ThrottlingException", "slow down", 400)
        with pytest.raises(ClientError) as raised:
            watch.follow(sm, None, JOB, sleep=no_sleep)
        stub.assert_no_pending_responses()  # every try was used
    line, code = errors.describe(raised.value)
    assert code == 1 and "DescribeTrainingJob failed (ThrottlingException)" in line and "wait a minute" in line


def test_expired_credentials_are_not_retried_but_said_at_once() -> None:
    sm = client("sagemaker")
    slept: list[float] = []
    with Stubber(sm) as stub:
        stub.add_client_error("describe_training_job", "ExpiredTokenException", "expired", 400)
        with pytest.raises(ClientError) as raised:
            watch.follow(sm, None, JOB, sleep=slept.append)
    assert slept == []
    assert "refresh them" in errors.describe(raised.value)[0]


# ---- interrupting and re-attaching ---------------------------------------------------------


def seeded(split_dir: Path, tmp_path: Path) -> Path:
    boto3.client("s3", region_name="us-east-1").create_bucket(Bucket="titanic-sagemaker-toolkit-demo")
    record = tmp_path / "image.json"
    uri = "123456789012.dkr.ecr.us-east-1.amazonaws.com/titanic-lightgbm:sha256-" + "1" * 64
    record.write_text(json.dumps({"image_uri": uri, "digest": "sha256:" + "0" * 64, "image_id": "sha256:" + "1" * 64}))
    return record


def still_running(session: boto3.Session) -> None:
    """moto completes jobs at once; make its DescribeTrainingJob say what SageMaker says
    while a job trains."""

    def in_progress(parsed: dict[str, Any], **_: Any) -> None:
        parsed.update(TrainingJobStatus="InProgress", SecondaryStatus="Training")

    session.events.register("after-call.sagemaker.DescribeTrainingJob", in_progress)


def test_sigterm_while_waiting_leaves_an_in_progress_record_and_the_commands(
    moto_endpoint: str, split_dir: Path, tmp_path: Path
) -> None:
    image = seeded(split_dir, tmp_path)
    session = boto3.Session(region_name="us-east-1")
    still_running(session)

    def terminated(_: float) -> None:  # the cron job's timeout, or a person's kill, mid-wait
        signal.raise_signal(signal.SIGTERM)

    runs = tmp_path / "runs"
    with pytest.raises(train.Interrupted) as stop:
        train.run(aws_settings(), image, split_dir, runs, boto_session=session, sleep=terminated)
    record = stop.value.record
    assert record["status"] == "InProgress" and record["secondary_status"] == "Training"
    saved = records.read_record(records.record_path(runs, record["job_name"]))
    assert saved["status"] == "InProgress" and saved["interrupted_at"]
    assert saved["image"]["image_id"] == "sha256:" + "1" * 64  # enough to re-attach and verify later
    advice = train.follow_up_commands(record["job_name"])
    for verb in ("make logs", "make stop", "make train"):
        assert f"{verb} JOB={record['job_name']}" in advice
    assert signal.getsignal(signal.SIGTERM) is signal.SIG_DFL  # the handler does not outlive the run

    # Later, `make train JOB=...` re-attaches, waits for the end, and completes the record.
    finished = train.run(
        aws_settings(),
        image,
        split_dir,
        runs,
        boto_session=boto3.Session(region_name="us-east-1"),
        attach=record["job_name"],
        sleep=no_sleep,
    )
    assert finished["job_name"] == record["job_name"] and finished["status"] == "Completed"
    assert records.read_record(records.record_path(runs, record["job_name"]))["status"] == "Completed"


def test_re_attaching_to_an_unknown_job_names_the_way_to_find_one(
    moto_endpoint: str, split_dir: Path, tmp_path: Path
) -> None:
    with pytest.raises(train.TrainError, match=r"no run record for nope in .*; 'make status' lists"):
        train.run(aws_settings(), seeded(split_dir, tmp_path), split_dir, tmp_path / "runs", attach="nope")


# ---- stop and status -------------------------------------------------------------------


def test_stop_sends_stop_training_job_waits_and_updates_the_record(tmp_path: Path) -> None:
    runs = tmp_path / "runs"
    records.write_record(runs, {"job_name": JOB, "status": "InProgress"})
    sm = client("sagemaker")
    with Stubber(sm) as stub:
        stub.add_response("describe_training_job", described("InProgress"), {"TrainingJobName": JOB})
        stub.add_response("stop_training_job", {}, {"TrainingJobName": JOB})
        stub.add_response("describe_training_job", described("Stopping", "Stopping"), {"TrainingJobName": JOB})
        stub.add_response("describe_training_job", described("Stopped", "Stopped"), {"TrainingJobName": JOB})
        final = operate.stop(
            aws_settings(), sm, runs, JOB, follow=lambda *a, **k: watch.follow(*a, **k, sleep=no_sleep)
        )
        stub.assert_no_pending_responses()
    assert final["TrainingJobStatus"] == "Stopped"
    assert records.read_record(records.record_path(runs, JOB))["status"] == "Stopped"


def test_status_lists_running_and_recent_jobs_with_cost_so_far() -> None:
    sm = client("sagemaker")
    now = datetime(2026, 11, 26, 10, 30, tzinfo=UTC)
    other = "titanic-lgbm-2026-11-25-09-00-00-000"
    summary = {"TrainingJobName": JOB, "TrainingJobArn": ARN, "CreationTime": now, "TrainingJobStatus": "InProgress"}
    done = {
        **summary,
        "TrainingJobName": other,
        "TrainingJobArn": ARN.replace(JOB, other),
        "TrainingJobStatus": "Completed",
    }
    base = {"NameContains": "titanic-lgbm", "SortBy": "CreationTime", "SortOrder": "Descending", "MaxResults": 10}
    with Stubber(sm) as stub:
        stub.add_response(
            "list_training_jobs", {"TrainingJobSummaries": [summary]}, {**base, "StatusEquals": "InProgress"}
        )
        stub.add_response("list_training_jobs", {"TrainingJobSummaries": [summary, done]}, base)
        stub.add_response(
            "describe_training_job", described("InProgress", EnableManagedSpotTraining=True), {"TrainingJobName": JOB}
        )
        stub.add_response(
            "describe_training_job",
            {
                **described("Completed", "Completed"),
                "TrainingJobName": other,
                "BillableTimeInSeconds": 20,
                "TrainingEndTime": now - timedelta(minutes=29),
            },
            {"TrainingJobName": other},
        )
        rows = operate.status_rows_aws(aws_settings(), sm, PriceBook("us-east-1", None), now)
    assert [r["job"] for r in rows] == [JOB, other]
    running, finished = rows
    assert running["status"] == "InProgress" and running["spot"] is True and running["elapsed_s"] == 1800
    assert running["cost_usd"] == pytest.approx(1800 * 0.115 / 3600, abs=1e-6)  # on-demand bound while it runs
    assert finished["cost_usd"] == pytest.approx(20 * 0.115 / 3600, abs=1e-6)  # billed seconds once it has ended
    assert JOB in operate.render_status(rows)


# ---- clean-up ----------------------------------------------------------------------------


DAY = datetime(2026, 11, 26, tzinfo=UTC)


def _summary(name: str) -> dict[str, Any]:
    return {
        "TrainingJobName": name,
        "TrainingJobArn": ARN.replace(JOB, name),
        "TrainingJobStatus": "InProgress",
        "CreationTime": datetime(2026, 11, 26, tzinfo=UTC),
    }


def test_clean_up_stops_only_the_callers_own_tagged_jobs(moto_endpoint: str, tmp_path: Path) -> None:
    me = boto3.client("sts", region_name="us-east-1").get_caller_identity()["Arn"]
    mine, teammates, foreign = (f"titanic-lgbm-2026-11-26-10-00-0{i}-000" for i in range(3))
    ours = {"Key": "created-by", "Value": "titanic-sagemaker-toolkit"}
    sm = client("sagemaker")
    with Stubber(sm) as stub:
        # make tune-jobs' tuning job first (it would start new trials), then training jobs.
        tuning = "titanic-lgbm-261126100000"
        tuning_arn = f"arn:aws:sagemaker:us-east-1:123456789012:hyper-parameter-tuning-job/{tuning}"
        stub.add_response(
            "list_hyper_parameter_tuning_jobs",
            {
                "HyperParameterTuningJobSummaries": [
                    {
                        "HyperParameterTuningJobName": tuning,
                        "HyperParameterTuningJobArn": tuning_arn,
                        "HyperParameterTuningJobStatus": "InProgress",
                        "Strategy": "Bayesian",
                        "CreationTime": DAY,
                        "TrainingJobStatusCounters": {},
                        "ObjectiveStatusCounters": {},
                    }
                ]
            },
            {"NameContains": "titanic-lgbm", "StatusEquals": "InProgress"},
        )
        stub.add_response(
            "list_tags", {"Tags": [ours, {"Key": "launched-by", "Value": me}]}, {"ResourceArn": tuning_arn}
        )
        stub.add_response("stop_hyper_parameter_tuning_job", {}, {"HyperParameterTuningJobName": tuning})
        listed = {"TrainingJobSummaries": [_summary(n) for n in (mine, teammates, foreign)]}
        stub.add_response("list_training_jobs", listed, {"NameContains": "titanic-lgbm", "StatusEquals": "InProgress"})
        for name, tags in (
            (mine, [ours, {"Key": "launched-by", "Value": me}]),
            (teammates, [ours, {"Key": "launched-by", "Value": "arn:aws:iam::123456789012:user/bob"}]),
            (foreign, [{"Key": "project", "Value": "x"}]),
        ):
            stub.add_response("list_tags", {"Tags": tags}, {"ResourceArn": ARN.replace(JOB, name)})
            if name == mine:
                stub.add_response("stop_training_job", {}, {"TrainingJobName": mine})
        # make predict's transform jobs and models: the caller's own only, by the same two tags.
        predict = "titanic-lgbm-predict-2026-11-26-10-00-00-000"
        transform_arn = f"arn:aws:sagemaker:us-east-1:123456789012:transform-job/{predict}"
        stub.add_response(
            "list_transform_jobs",
            {
                "TransformJobSummaries": [
                    {
                        "TransformJobName": predict,
                        "TransformJobArn": transform_arn,
                        "TransformJobStatus": "InProgress",
                        "CreationTime": datetime(2026, 11, 26, tzinfo=UTC),
                    }
                ]
            },
            {"NameContains": "titanic-lgbm-predict", "StatusEquals": "InProgress"},
        )
        stub.add_response(
            "list_tags", {"Tags": [ours, {"Key": "launched-by", "Value": me}]}, {"ResourceArn": transform_arn}
        )
        stub.add_response("stop_transform_job", {}, {"TransformJobName": predict})
        # make deploy's endpoint, its configs and models: a teammate's endpoint is left alone.
        endpoint_arn = "arn:aws:sagemaker:us-east-1:123456789012:endpoint/titanic-survival"
        stub.add_response(
            "list_endpoints",
            {
                "Endpoints": [
                    {
                        "EndpointName": "titanic-survival",
                        "EndpointArn": endpoint_arn,
                        "EndpointStatus": "InService",
                        "CreationTime": DAY,
                        "LastModifiedTime": DAY,
                    }
                ]
            },
            {"NameContains": "titanic-survival"},
        )
        stub.add_response(
            "list_tags",
            {"Tags": [ours, {"Key": "launched-by", "Value": "arn:aws:iam::1:user/bob"}]},
            {"ResourceArn": endpoint_arn},
        )
        stub.add_response("list_endpoint_configs", {"EndpointConfigs": []}, {"NameContains": "titanic-survival"})
        models = {n: f"arn:aws:sagemaker:us-east-1:123456789012:model/{n}" for n in (predict, predict + "1")}
        stub.add_response(
            "list_models",
            {
                "Models": [
                    {"ModelName": n, "ModelArn": a, "CreationTime": datetime(2026, 11, 26, tzinfo=UTC)}
                    for n, a in models.items()
                ]
            },
            {"NameContains": "titanic-lgbm-predict"},
        )
        stub.add_response(
            "list_tags", {"Tags": [ours, {"Key": "launched-by", "Value": me}]}, {"ResourceArn": models[predict]}
        )
        stub.add_response("delete_model", {}, {"ModelName": predict})
        stub.add_response(
            "list_tags",
            {"Tags": [ours, {"Key": "launched-by", "Value": "arn:aws:iam::1:user/bob"}]},
            {"ResourceArn": models[predict + "1"]},
        )
        stub.add_response("list_models", {"Models": []}, {"NameContains": "titanic-survival"})
        stub.add_client_error("describe_model_package_group", "ValidationException", "does not exist", 400)
        plan = cleanup.run(
            aws_settings(),
            "resources",
            WithSageMaker(sm),
            confirm=True,
            deployed=tmp_path,
            image_record=tmp_path / "image.json",
        )
        stub.assert_no_pending_responses()  # exactly one stop of each job kind and one DeleteModel, all the caller's
    assert plan.found == 4


# Every call clean-up makes to find what exists. Only "not found" means "nothing there".
DISCOVERY_CALLS = [
    ("sagemaker", "ListHyperParameterTuningJobs"),
    ("sagemaker", "ListTrainingJobs"),
    ("sagemaker", "ListTransformJobs"),
    ("sagemaker", "ListEndpoints"),
    ("sagemaker", "ListEndpointConfigs"),
    ("sagemaker", "ListModels"),
    ("sagemaker", "DescribeModelPackageGroup"),
    ("sagemaker", "ListModelPackages"),
    ("ecr", "DescribeRepositories"),
    ("ecr", "ListTagsForResource"),
    ("ecr", "ListImages"),
    ("s3", "ListObjectsV2"),
]


def failing(service: str, operation: str, code: str) -> Any:
    """A botocore hook that answers one operation with an AWS error before it is sent."""

    def answer(**_: Any) -> tuple[Any, dict[str, Any]]:
        error = {"Error": {"Code": code, "Message": f"{code} for the test"}}
        return AWSResponse("https://test", 400, {}, None), {**error, "ResponseMetadata": {"HTTPStatusCode": 400}}

    return answer


@pytest.mark.parametrize("code", ["AccessDeniedException", "ThrottlingException"])
@pytest.mark.parametrize(("service", "operation"), DISCOVERY_CALLS)
def test_every_failed_discovery_is_an_error_never_nothing_to_delete(
    moto_endpoint: str, tmp_path: Path, service: str, operation: str, code: str
) -> None:
    """The real calls against moto, with the toolkit's group, repository and bucket present so
    that every listing is reached; one call answers an error: clean-up stops with it, deletes
    nothing and forgets no stamp."""
    boto3.client("s3", region_name="us-east-1").create_bucket(Bucket="titanic-sagemaker-toolkit-demo")
    ours = [{"Key": "created-by", "Value": "titanic-sagemaker-toolkit"}]
    boto3.client("ecr", region_name="us-east-1").create_repository(repositoryName="titanic-lightgbm", tags=ours)
    boto3.client("sagemaker", region_name="us-east-1").create_model_package_group(
        ModelPackageGroupName="titanic-survival", Tags=ours
    )
    session = boto3.Session(region_name="us-east-1")
    session.events.register(f"before-call.{service}.{operation}", failing(service, operation, code))
    stamp = tmp_path / "uploaded"
    stamp.touch()
    with pytest.raises(cleanup.CleanupError, match=rf"failed .*{code}"):
        cleanup.run(
            aws_settings(), "resources", session, confirm=True, deployed=tmp_path, image_record=tmp_path / "image.json"
        )
    assert stamp.exists()


def test_a_teammates_endpoint_whose_tags_are_denied_is_left_alone(tmp_path: Path) -> None:
    """A teammate's endpoint named ENDPOINT_NAME-2 is not the toolkit's name at all; one named
    exactly ENDPOINT_NAME whose tags this caller may not read (AccessDenied by design) is not
    the caller's: both left alone, and clean-up goes on."""
    sm = client("sagemaker")
    arn = "arn:aws:sagemaker:us-east-1:123456789012:endpoint/"
    empty = {
        "list_hyper_parameter_tuning_jobs": "HyperParameterTuningJobSummaries",
        "list_training_jobs": "TrainingJobSummaries",
        "list_transform_jobs": "TransformJobSummaries",
    }
    with Stubber(sm) as stub:
        for method, key in empty.items():
            stub.add_response(method, {key: []})
        stub.add_response(
            "list_endpoints",
            {
                "Endpoints": [
                    {
                        "EndpointName": name,
                        "EndpointArn": arn + name,
                        "EndpointStatus": "InService",
                        "CreationTime": DAY,
                        "LastModifiedTime": DAY,
                    }
                    for name in ("titanic-survival-2", "titanic-survival")
                ]
            },
        )
        stub.add_client_error(
            "list_tags",
            "AccessDeniedException",
            "not yours",
            400,
            expected_params={"ResourceArn": arn + "titanic-survival"},
        )
        stub.add_response("list_endpoint_configs", {"EndpointConfigs": []})
        stub.add_response("list_models", {"Models": []})
        stub.add_response("list_models", {"Models": []})
        stub.add_client_error("describe_model_package_group", "ValidationException", "does not exist", 400)
        plan = cleanup.Plan(confirm=True)
        for kind in cleanup.KINDS:
            cleanup.clean_sagemaker(aws_settings(), sm, "arn:aws:iam::123456789012:user/me", plan, kind)
        cleanup.clean_model_packages(aws_settings(), sm, "arn:aws:iam::123456789012:user/me", plan)
        stub.assert_no_pending_responses()  # no ListTags for titanic-survival-2, no delete at all
    assert plan.found == 0


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


@pytest.mark.usefixtures("moto_endpoint")
def test_sigterm_through_make_trains_main_exits_130_and_prints_the_commands(
    split_dir: Path,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    caplog: pytest.LogCaptureFixture,
) -> None:
    """The path a person or cron meets: `python -m launcher.train` (what make train runs), a
    SIGTERM while the job runs on SageMaker, exit 130, the record summary on stdout and the
    follow/stop/re-attach commands on stderr."""
    image = seeded(split_dir, tmp_path)
    signals: list[int] = []

    def terminate_once(**_: Any) -> None:
        if not signals:  # the cron job's timeout, once, while the job is followed
            signals.append(signal.SIGTERM)
            signal.raise_signal(signal.SIGTERM)

    class Terminated(boto3.Session):
        """Every session main makes: the job still trains, and SIGTERM arrives while it is followed."""

        def __init__(self, *args: Any, **kwargs: Any) -> None:
            super().__init__(*args, **kwargs)
            still_running(self)
            self.events.register("after-call.sagemaker.DescribeTrainingJob", terminate_once)

    monkeypatch.setattr(boto3, "Session", Terminated)
    for key, value in {**shipped(), "TARGET": "aws"}.items():
        monkeypatch.setenv(key, value)
    runs = tmp_path / "runs"
    code = train.main(["--image-record", str(image), "--split-dir", str(split_dir), "--runs-dir", str(runs)])
    assert code == 130
    [record_file] = runs.glob("*.json")
    job = record_file.stem
    assert records.read_record(record_file)["status"] == "InProgress"
    assert f"job          {job} (InProgress" in capsys.readouterr().out
    printed = "\n".join(r.getMessage() for r in caplog.records if r.levelname == "ERROR")
    for command in (f"make logs JOB={job}", f"make stop JOB={job}", f"make train JOB={job}"):
        assert command in printed, printed
    assert signal.getsignal(signal.SIGTERM) is signal.SIG_DFL
