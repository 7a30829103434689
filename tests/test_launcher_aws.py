"""TARGET=aws up to the AWS API: the CreateTrainingJob request, the preflight, telemetry.

Real SageMaker cannot be reached here. moto (in server mode, on 127.0.0.1) answers the
calls; botocore validates every request against the real API model before it is sent, and
the request is captured on the client side as it leaves.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import boto3
import pytest
from conftest import aws_settings, shipped
from sagemaker.telemetry.telemetry_logging import TELEMETRY_OPT_OUT_PATH
from sagemaker.utils import resolve_value_from_config

from launcher import preflight, sdk, train
from launcher.settings import load

ROLE = "arn:aws:iam::123456789012:role/service-role/titanic-sagemaker-execution"
TRUST = {
    "Version": "2012-10-17",
    "Statement": [{"Effect": "Allow", "Principal": {"Service": "sagemaker.amazonaws.com"}, "Action": "sts:AssumeRole"}],
}


def seeded_account(role_path: str = "/service-role/", trust: dict = TRUST, bucket_region: str = "us-east-1") -> None:
    iam = boto3.client("iam", region_name="us-east-1")
    iam.create_role(RoleName="titanic-sagemaker-execution", Path=role_path, AssumeRolePolicyDocument=json.dumps(trust))
    s3 = boto3.client("s3", region_name=bucket_region)
    config = (
        {} if bucket_region == "us-east-1" else {"CreateBucketConfiguration": {"LocationConstraint": bucket_region}}
    )
    s3.create_bucket(Bucket="titanic-sagemaker-toolkit-demo", **config)
    boto3.client("ecr", region_name="us-east-1").create_repository(repositoryName="titanic-lightgbm")


def test_the_create_training_job_request(moto_endpoint: str, split_dir: Path, tmp_path: Path) -> None:
    seeded_account()
    record = tmp_path / "image.json"
    uri = "123456789012.dkr.ecr.us-east-1.amazonaws.com/titanic-lightgbm:0123456789ab"
    record.write_text(json.dumps({"image_uri": uri, "digest": "sha256:" + "0" * 64}))
    sent: list[dict[str, Any]] = []
    session = boto3.Session(region_name="us-east-1")
    session.events.register(
        "provide-client-params.sagemaker.CreateTrainingJob",
        lambda params, **_: sent.append(json.loads(json.dumps(params))),
    )

    result = train.run(aws_settings(), record, split_dir, tmp_path / "runs", boto_session=session)

    assert len(sent) == 1
    request = sent[0]
    assert request["AlgorithmSpecification"]["TrainingImage"] == uri
    assert request["AlgorithmSpecification"]["TrainingInputMode"] == "File"
    names = [d["Name"] for d in request["AlgorithmSpecification"]["MetricDefinitions"]]
    assert {"train_accuracy", "val_accuracy", "val_f1", "val_auc"} <= set(names)
    assert request["RoleArn"] == ROLE
    assert request["ResourceConfig"] == {"InstanceType": "ml.m5.large", "InstanceCount": 1, "VolumeSizeInGB": 5}
    assert request["EnableManagedSpotTraining"] is True
    assert request["StoppingCondition"] == {"MaxRuntimeInSeconds": 900, "MaxWaitTimeInSeconds": 1800}
    job = request["TrainingJobName"]
    # Each job its own checkpoints: a new job never resumes from an old job's trees.
    assert request["CheckpointConfig"]["S3Uri"] == f"s3://titanic-sagemaker-toolkit-demo/titanic/checkpoints/{job}/"
    channels = {c["ChannelName"]: c["DataSource"]["S3DataSource"]["S3Uri"] for c in request["InputDataConfig"]}
    assert channels == {
        "train": "s3://titanic-sagemaker-toolkit-demo/titanic/data/train/",
        "validation": "s3://titanic-sagemaker-toolkit-demo/titanic/data/validation/",
    }
    assert request["OutputDataConfig"]["S3OutputPath"] == "s3://titanic-sagemaker-toolkit-demo/titanic/output/"
    assert request["HyperParameters"]["n_estimators"] == "200"
    assert all(isinstance(v, str) for v in request["HyperParameters"].values())
    tags = {t["Key"]: t["Value"] for t in request["Tags"]}
    caller = boto3.client("sts", region_name="us-east-1").get_caller_identity()["Arn"]
    assert tags == {
        "project": "titanic-toolkit",
        "cost-center": "ml-research",
        "created-by": "titanic-sagemaker-toolkit",
        "launched-by": caller,  # clean-up stops only the jobs its own caller launched
    }
    assert request["EnableNetworkIsolation"] is True
    assert not request.get("EnableInterContainerTrafficEncryption")  # one instance: no traffic to protect
    assert request["TrainingJobName"].startswith("titanic-lgbm-")
    assert "DebugHookConfig" not in request and request["ProfilerConfig"]["DisableProfiler"] is True
    # moto completes the job at once and writes no artifact: the record says so honestly.
    assert result["status"] == "Completed" and result["model_artifact"] is None
    assert result["job_name"] == job and result["checkpoint_uri"].endswith(f"/{job}/")
    assert (tmp_path / "runs" / f"{result['job_name']}.json").is_file()


def test_spot_off_sends_no_max_wait(moto_endpoint: str, split_dir: Path, tmp_path: Path) -> None:
    seeded_account()
    request = captured_create(moto_endpoint, tmp_path, split_dir, USE_SPOT="no")["request"]
    assert request["StoppingCondition"] == {"MaxRuntimeInSeconds": 900}
    assert not request.get("EnableManagedSpotTraining")


def captured_create(moto_endpoint: str, tmp_path: Path, split_dir: Path, **changes: str) -> dict[str, Any]:
    """The CreateTrainingJob request of one train.run with these settings."""
    record = tmp_path / "image.json"
    record.write_text(json.dumps({"image_uri": "123456789012.dkr.ecr.us-east-1.amazonaws.com/r:t", "digest": "x"}))
    sent: list[dict[str, Any]] = []
    session = boto3.Session(region_name="us-east-1")
    session.events.register(
        "provide-client-params.sagemaker.CreateTrainingJob", lambda params, **_: sent.append(params)
    )
    result = train.run(aws_settings(**changes), record, split_dir, tmp_path / "runs", boto_session=session)
    assert len(sent) == 1
    return {"request": sent[0], "record": result}


@pytest.mark.parametrize("count", [4, 8])
def test_a_multi_instance_request(moto_endpoint: str, split_dir: Path, tmp_path: Path, count: int) -> None:
    seeded_account()
    captured = captured_create(moto_endpoint, tmp_path, split_dir, INSTANCE_COUNT=str(count))
    request = captured["request"]
    assert request["ResourceConfig"] == {"InstanceType": "ml.m5.large", "InstanceCount": count, "VolumeSizeInGB": 5}
    # Rows and histograms cross between instances: that traffic is encrypted.
    assert request["EnableInterContainerTrafficEncryption"] is True
    distribution = {
        c["ChannelName"]: c["DataSource"]["S3DataSource"]["S3DataDistributionType"] for c in request["InputDataConfig"]
    }
    assert distribution == {"train": "FullyReplicated", "validation": "FullyReplicated"}
    assert captured["record"]["instance"]["count"] == count


def test_a_sharded_request_gives_each_instance_whole_files(moto_endpoint: str, split_dir: Path, tmp_path: Path) -> None:
    seeded_account()
    s3 = boto3.client("s3", region_name="us-east-1")
    for part in range(3):
        s3.put_object(Bucket="titanic-sagemaker-toolkit-demo", Key=f"titanic/data/train/part-{part}.csv", Body=b"x")
    captured = captured_create(
        moto_endpoint, tmp_path, split_dir, INSTANCE_COUNT="2", TRAIN_DISTRIBUTION="ShardedByS3Key"
    )
    distribution = {
        c["ChannelName"]: c["DataSource"]["S3DataSource"]["S3DataDistributionType"]
        for c in captured["request"]["InputDataConfig"]
    }
    assert distribution == {"train": "ShardedByS3Key", "validation": "FullyReplicated"}


def test_too_few_shard_files_stop_before_anything_is_paid_for(
    moto_endpoint: str, split_dir: Path, tmp_path: Path
) -> None:
    seeded_account()
    boto3.client("s3", region_name="us-east-1").put_object(
        Bucket="titanic-sagemaker-toolkit-demo", Key="titanic/data/train/train.csv", Body=b"x"
    )
    with pytest.raises(train.TrainError, match=r"has 1 for INSTANCE_COUNT=4: split the train data into at least 4"):
        captured_create(moto_endpoint, tmp_path, split_dir, INSTANCE_COUNT="4", TRAIN_DISTRIBUTION="ShardedByS3Key")
    assert not boto3.client("sagemaker", region_name="us-east-1").list_training_jobs()["TrainingJobSummaries"]


def run_preflight(**changes: str) -> list[str]:
    return preflight.run(aws_settings(**changes), boto3.Session(region_name="us-east-1"), docker_check=lambda: None)


def test_preflight_passes_on_a_ready_account(moto_endpoint: str) -> None:
    seeded_account()
    assert run_preflight() == []


@pytest.mark.parametrize(
    ("seed", "changes", "phrase"),
    [
        ({"role_path": "/"}, {}, "but the role's ARN is arn:aws:iam::123456789012:role/titanic-sagemaker-execution"),
        (
            {
                "trust": {
                    **TRUST,
                    "Statement": [{**TRUST["Statement"][0], "Principal": {"Service": "ec2.amazonaws.com"}}],
                }
            },
            {},
            "trust policy would refuse SageMaker for training (make train)",
        ),
        ({"bucket_region": "eu-west-1"}, {}, "is in eu-west-1 but AWS_REGION is us-east-1"),
        ({}, {"ROLE_ARN": "arn:aws:iam::123456789012:role/service-role/missing"}, "role 'missing' does not exist"),
        ({}, {"BUCKET": "not-there-yet"}, "s3://not-there-yet does not exist; run 'make bootstrap' once"),
        ({}, {"ECR_REPOSITORY": "not-there"}, "ECR_REPOSITORY: not-there does not exist; run 'make bootstrap'"),
        (
            {},
            {"ROLE_ARN": "arn:aws:iam::999988887777:role/service-role/titanic-sagemaker-execution"},
            "ROLE_ARN: ROLE_ARN names account 999988887777 (aws) but the credentials are for account 123456789012",
        ),
        (
            {
                "trust": {
                    **TRUST,
                    "Statement": [
                        {**TRUST["Statement"][0], "Condition": {"StringEquals": {"aws:SourceAccount": "999988887777"}}}
                    ],
                }
            },
            {},
            "would refuse SageMaker for training (make train) (arn:aws:sagemaker:us-east-1:123456789012:",
        ),
        (
            {
                "trust": {
                    **TRUST,
                    "Statement": [
                        {
                            **TRUST["Statement"][0],
                            "Condition": {
                                "ArnLike": {
                                    "aws:SourceArn": "arn:aws:sagemaker:us-east-1:123456789012:training-job/titanic-*"
                                }
                            },
                        }
                    ],
                }
            },
            {"BASE_JOB_NAME": "alice-titanic"},
            "for training (make train) (arn:aws:sagemaker:us-east-1:123456789012:training-job/alice-titanic-",
        ),
    ],
)
def test_preflight_names_what_is_wrong(moto_endpoint: str, seed: dict, changes: dict, phrase: str) -> None:
    seeded_account(**seed)
    problems = run_preflight(**changes)
    assert any(phrase in p for p in problems), problems


def test_preflight_without_credentials(moto_endpoint: str, monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    for key in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY"):
        monkeypatch.delenv(key)
    monkeypatch.setenv("AWS_CONFIG_FILE", str(tmp_path / "none"))
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(tmp_path / "none"))
    monkeypatch.setenv("AWS_EC2_METADATA_DISABLED", "true")
    problems = run_preflight()
    assert problems == ["no AWS credentials found; run 'aws configure', set AWS_PROFILE, or export assumed-role keys"]


def test_telemetry_is_off_in_every_session_the_launcher_makes(moto_endpoint: str) -> None:
    for target in ("local", "aws"):
        settings = load({**shipped(), "TARGET": target})
        session = sdk.session(settings, boto3.Session(region_name="us-east-1"))
        opted_out = resolve_value_from_config(
            direct_input=None, config_path=TELEMETRY_OPT_OUT_PATH, default_value=False, sagemaker_session=session
        )
        assert opted_out is True, target
