"""The TARGET=aws preflight (launcher/preflight.py) against a moto account: what it passes, and
the one line it gives for each thing that is wrong.
"""

from __future__ import annotations

import json
from pathlib import Path

import boto3
import pytest
from conftest import TRUST, aws_settings, seeded_account

from launcher import preflight


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


PIPELINE_TRUST_OF = {
    "pipeline/titanic-survival/*": "",  # AWS's documented form: passes
    "pipeline/titanic-survival/execution/f6e5d4c3b2a1": "would refuse SageMaker Pipelines for titanic-survival's",
    "training-job/titanic-lgbm-*": "would refuse SageMaker Pipelines for titanic-survival's",
}


@pytest.mark.parametrize(("source", "phrase"), list(PIPELINE_TRUST_OF.items()))
def test_make_pipeline_checks_the_pipeline_roles_trust(
    moto_endpoint: str, monkeypatch: pytest.MonkeyPatch, source: str, phrase: str
) -> None:
    """Only for make pipeline: the pipeline's own role, trusted for pipeline/NAME/* (a specific
    execution's ARN is what AWS says not to write)."""
    seeded_account()
    condition = {"ArnLike": {"aws:SourceArn": f"arn:aws:sagemaker:us-east-1:123456789012:{source}"}}
    trust = {**TRUST, "Statement": [{**TRUST["Statement"][0], "Condition": condition}]}
    boto3.client("iam", region_name="us-east-1").create_role(
        RoleName="titanic-sagemaker-pipeline", Path="/service-role/", AssumeRolePolicyDocument=json.dumps(trust)
    )
    assert run_preflight() == []  # make all does not read it
    monkeypatch.setenv("MAKE_INVOCATION", "pipeline")
    problems = run_preflight()
    assert (problems == []) if not phrase else any(phrase in p for p in problems), problems


def test_make_pipeline_names_a_missing_pipeline_role(moto_endpoint: str, monkeypatch: pytest.MonkeyPatch) -> None:
    seeded_account()
    monkeypatch.setenv("MAKE_INVOCATION", "pipeline")
    assert any(
        "PIPELINE_ROLE_ARN: role 'titanic-sagemaker-pipeline' does not exist; create it with 'make bootstrap" in p
        for p in run_preflight()
    )
