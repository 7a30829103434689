"""Clean-up on TARGET=aws (launcher/cleanup.py): only the caller's own tagged resources are
stopped or deleted, and a discovery call that fails is an error, never "nothing to delete".

A real moto server answers what it can; botocore's Stubber stands in for the calls moto lacks
and for the failures AWS would return (AccessDenied, throttling).
"""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import boto3
import pytest
from botocore.awsrequest import AWSResponse
from botocore.stub import Stubber
from conftest import WithSageMaker, aws_settings, offline_client

from launcher import cleanup
from launcher import stack as stack_command
from launcher.lib.iam_documents import INLINE_POLICY_NAME

ALLOW_NOTHING = json.dumps(
    {"Version": "2012-10-17", "Statement": [{"Effect": "Deny", "Action": "s3:GetObject", "Resource": "*"}]}
)
JOB = "titanic-lgbm-2026-11-26-10-00-00-000"


ARN = f"arn:aws:sagemaker:us-east-1:123456789012:training-job/{JOB}"


client = offline_client


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
        stub.add_client_error("describe_pipeline", "ResourceNotFound")  # no pipeline yet
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
        # make evaluate's processing jobs: a teammate's is left alone.
        evaluation = "titanic-lgbm-eval-20261126100000"
        evaluation_arn = f"arn:aws:sagemaker:us-east-1:123456789012:processing-job/{evaluation}"
        stub.add_response(
            "list_processing_jobs",
            {
                "ProcessingJobSummaries": [
                    {
                        "ProcessingJobName": evaluation,
                        "ProcessingJobArn": evaluation_arn,
                        "ProcessingJobStatus": "InProgress",
                        "CreationTime": DAY,
                    }
                ]
            },
            {"NameContains": "titanic-lgbm-eval", "StatusEquals": "InProgress"},
        )
        stub.add_response(
            "list_tags",
            {"Tags": [ours, {"Key": "launched-by", "Value": "arn:aws:iam::1:user/bob"}]},
            {"ResourceArn": evaluation_arn},
        )
        # the pipeline's Prepare jobs (SageMaker names them <prefix>-<execution>-<token>-<n>): the caller's is stopped.
        prepare = "titanic-lgbm-prep-a1b2c3d4e5f6-AbCdEfGhIj-0"
        prepare_arn = f"arn:aws:sagemaker:us-east-1:123456789012:processing-job/{prepare}"
        summary = {"ProcessingJobName": prepare, "ProcessingJobArn": prepare_arn, "ProcessingJobStatus": "InProgress"}
        stub.add_response(
            "list_processing_jobs",
            {"ProcessingJobSummaries": [{**summary, "CreationTime": DAY}]},
            {"NameContains": "titanic-lgbm-prep", "StatusEquals": "InProgress"},
        )
        stub.add_response(
            "list_tags", {"Tags": [ours, {"Key": "launched-by", "Value": me}]}, {"ResourceArn": prepare_arn}
        )
        stub.add_response("stop_processing_job", {}, {"ProcessingJobName": prepare})
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
    assert plan.found == 5


# Every call clean-up makes to find what exists. Only "not found" means "nothing there".
DISCOVERY_CALLS = [
    ("sagemaker", "DescribePipeline"),
    ("sagemaker", "ListPipelineExecutions"),
    ("sagemaker", "ListHyperParameterTuningJobs"),
    ("sagemaker", "ListTrainingJobs"),
    ("sagemaker", "ListTransformJobs"),
    ("sagemaker", "ListProcessingJobs"),
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
    sagemaker = boto3.client("sagemaker", region_name="us-east-1")
    sagemaker.create_model_package_group(ModelPackageGroupName="titanic-survival", Tags=ours)
    sagemaker.create_pipeline(
        PipelineName="titanic-survival",
        PipelineDefinition=json.dumps({"Version": "2020-12-01", "Steps": []}),
        RoleArn="arn:aws:iam::123456789012:role/service-role/titanic-sagemaker-pipeline",
        Tags=ours,
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
    empty = [
        ("list_hyper_parameter_tuning_jobs", "HyperParameterTuningJobSummaries"),
        ("list_training_jobs", "TrainingJobSummaries"),
        ("list_transform_jobs", "TransformJobSummaries"),
        ("list_processing_jobs", "ProcessingJobSummaries"),  # make evaluate's
        ("list_processing_jobs", "ProcessingJobSummaries"),  # the pipeline's Prepare
    ]
    with Stubber(sm) as stub:
        for method, key in empty:
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


@pytest.mark.parametrize("teammate_running", [False, True], ids=["only-mine", "a-teammates-too"])
def test_the_callers_executions_are_stopped_and_the_pipeline_deleted_when_no_one_elses_runs(
    tmp_path: Path, teammate_running: bool
) -> None:
    me = "arn:aws:iam::123456789012:user/me"
    sm = client("sagemaker")
    pipeline = "arn:aws:sagemaker:us-east-1:123456789012:pipeline/titanic-survival"
    mine, theirs = (f"{pipeline}/execution/{x}" for x in ("a1b2c3d4e5f6", "f6e5d4c3b2a1"))
    running = [mine, theirs] if teammate_running else [mine]
    with Stubber(sm) as stub:
        stub.add_response("describe_pipeline", {"PipelineArn": pipeline}, {"PipelineName": "titanic-survival"})
        stub.add_response(
            "list_tags",
            {"Tags": [{"Key": "created-by", "Value": "titanic-sagemaker-toolkit"}]},
            {"ResourceArn": pipeline},
        )
        summaries = [{"PipelineExecutionArn": a, "PipelineExecutionStatus": "Executing"} for a in running]
        summaries.append({"PipelineExecutionArn": f"{pipeline}/execution/old", "PipelineExecutionStatus": "Succeeded"})
        stub.add_response(
            "list_pipeline_executions",
            {"PipelineExecutionSummaries": summaries},
            {"PipelineName": "titanic-survival"},
        )
        for arn, who in zip(running, (me, "arn:aws:iam::123456789012:user/bob"), strict=False):
            stub.add_response(
                "describe_pipeline_execution",
                {"PipelineExecutionArn": arn, "PipelineExecutionDescription": f"started by {who}"},
                {"PipelineExecutionArn": arn},
            )
        stub.add_response("stop_pipeline_execution", {"PipelineExecutionArn": mine})
        if not teammate_running:
            stub.add_response("delete_pipeline", {"PipelineArn": pipeline})
        plan = cleanup.Plan(confirm=True)
        cleanup.clean_pipeline(aws_settings(), sm, me, plan)
        stub.assert_no_pending_responses()
    assert plan.found == (1 if teammate_running else 2)


def _deployed(settings: Any) -> boto3.Session:
    session = boto3.Session(region_name="us-east-1")
    stack_command.deploy(settings, session, sleep=lambda _: None)
    return session


def test_teardown_deletes_the_stack_then_what_it_retained(
    moto_endpoint: str, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """The stack takes its roles and runner policy with it; the bucket and repository it
    retains go next (the bucket only when empty); the stamp is forgotten."""
    settings = aws_settings()
    session = _deployed(settings)
    session.client("s3").put_object(Bucket=settings.bucket, Key="someone/else.csv", Body=b"x")
    stamp = tmp_path / "bootstrapped"
    stamp.write_text("")
    caplog.set_level("INFO")
    dry = cleanup.Plan(confirm=False)
    cleanup.teardown(settings, session, dry, stamp, empty_bucket=False)
    assert dry.found == 3 and stamp.exists()  # the stack, the repository, the bucket: listed only
    cleanup.teardown(settings, session, cleanup.Plan(confirm=True), stamp, empty_bucket=False)
    assert session.client("cloudformation").describe_stacks()["Stacks"] == []
    client = session.client("iam")
    names = {r["RoleName"] for r in client.list_roles()["Roles"]}
    assert not {settings.role.name, settings.pipeline_role.name} & names, names
    assert not [p for p in client.list_policies(Scope="Local")["Policies"] if "runner" in p["PolicyName"]]
    assert not session.client("ecr").describe_repositories()["repositories"]
    assert "retained by the stack (DeletionPolicy Retain): bucket s3://titanic-sagemaker-toolkit-demo" in caplog.text
    assert "kept bucket s3://titanic-sagemaker-toolkit-demo: it still holds objects" in caplog.text
    assert session.client("s3").head_bucket(Bucket=settings.bucket)  # data kept unless asked
    assert not stamp.exists()
    cleanup.teardown(settings, session, cleanup.Plan(confirm=True), stamp, empty_bucket=True)
    assert settings.bucket not in {b["Name"] for b in session.client("s3").list_buckets()["Buckets"]}


def test_teardown_takes_a_tagged_role_outside_the_stack_and_leaves_an_untagged_one(
    moto_endpoint: str, tmp_path: Path
) -> None:
    """Roles an older `make iam` made (tagged, no stack) go with their inline policies; a role of
    that name someone else made (no tag) stays."""
    settings = aws_settings()
    client = boto3.client("iam", region_name="us-east-1")
    tags = [{"Key": "created-by", "Value": "titanic-sagemaker-toolkit"}]
    client.create_role(RoleName=settings.role.name, Path=settings.role.path, AssumeRolePolicyDocument="{}", Tags=tags)
    client.put_role_policy(RoleName=settings.role.name, PolicyName=INLINE_POLICY_NAME, PolicyDocument=ALLOW_NOTHING)
    client.create_role(
        RoleName=settings.pipeline_role.name, Path=settings.pipeline_role.path, AssumeRolePolicyDocument="{}"
    )
    session = boto3.Session(region_name="us-east-1")
    cleanup.teardown(settings, session, cleanup.Plan(confirm=True), tmp_path / "b", empty_bucket=False)
    names = {r["RoleName"] for r in client.list_roles()["Roles"]}
    assert names == {settings.pipeline_role.name}


def test_emptying_the_bucket_stops_when_s3_refuses_an_object() -> None:
    """EMPTY_BUCKET=yes: DeleteObjects answers 200 with per-key errors; those are a failure
    named with the first key, never a quiet "kept bucket"."""
    s3 = boto3.client("s3", region_name="us-east-1", aws_access_key_id="x", aws_secret_access_key="x")
    with Stubber(s3) as stub:
        stub.add_response("list_objects_v2", {"Contents": [{"Key": "theirs/locked.csv"}], "IsTruncated": False})
        stub.add_response(
            "delete_objects",
            {"Errors": [{"Key": "theirs/locked.csv", "Code": "AccessDenied", "Message": "Access Denied"}]},
        )
        with pytest.raises(cleanup.CleanupError, match=r"refused to delete 1 object\(s\).*theirs/locked.csv"):
            cleanup._empty(s3, "titanic-sagemaker-toolkit-demo")
