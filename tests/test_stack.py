"""The one-time set-up as a CloudFormation stack (iam/stack.json via launcher/lib/stack.py):
it lints clean, embeds exactly the documents the IAM tests check, and moto's CloudFormation
creates what it supports from it; the resource types moto skips are pinned, and checked
another way (cfn-lint, the rules table)."""

from __future__ import annotations

import ast
import json
import subprocess
import sys
import warnings
from pathlib import Path
from typing import Any
from urllib.parse import unquote

import boto3
import pytest
from conftest import shipped

from launcher import iam
from launcher.lib import stack
from launcher.lib.caller import Caller
from launcher.lib.config import load

CALLER = Caller(account="123456789012", partition="aws", arn="arn:aws:iam::123456789012:user/admin")
# moto 5.2.5's CloudFormation parses none of these: it warns and creates nothing for them.
SKIPPED_BY_MOTO = {"AWS::S3::BucketPolicy"}
EMBEDDED = {
    ("ExecutionRole", "AssumeRolePolicyDocument"): "execution-role-trust",
    ("PipelineRole", "AssumeRolePolicyDocument"): "pipeline-role-trust",
    ("RunnerPolicy", "PolicyDocument"): "runner-policy",
}
INLINE = {"ExecutionRole": "execution-role-policy", "PipelineRole": "pipeline-role-policy"}


def as_document(value: Any) -> Any:
    """A policy document as moto hands it back: its CloudFormation stores Python's repr of the
    document, not JSON (a moto quirk: IAM itself takes JSON); read either."""
    if not isinstance(value, str):
        return value
    text = unquote(value)
    return ast.literal_eval(text) if text.startswith("{'") else json.loads(text)


def rendered() -> dict:
    return stack.template(load(shipped()))


def test_the_rendered_template_lints_clean(tmp_path: Path) -> None:
    path = tmp_path / "toolkit.json"
    path.write_text(json.dumps(rendered()))
    lint = subprocess.run([str(Path(sys.executable).parent / "cfn-lint"), str(path)], capture_output=True, text=True)
    assert lint.returncode == 0 and not lint.stdout, lint.stdout


def test_the_stack_embeds_the_documents_the_iam_tests_check() -> None:
    """The policy parliament passes and the IAM tests evaluate is the one the stack deploys."""
    template = stack.resolved(rendered(), CALLER)
    documents = iam.render(load(shipped()), CALLER)
    resources = template["Resources"]
    for (resource, key), name in EMBEDDED.items():
        assert resources[resource]["Properties"][key] == documents[name], name
    for resource, name in INLINE.items():
        (policy,) = resources[resource]["Properties"]["Policies"]
        assert policy["PolicyDocument"] == documents[name], name
    text = json.dumps(rendered())
    assert "123456789012" not in text  # the account is CloudFormation's to fill in, never ours


def test_every_parameter_comes_from_config_env() -> None:
    settings = load(shipped())
    parameters = stack.parameters(settings, create_bucket=True, create_repository=False)
    assert set(parameters) == set(json.loads(stack.TEMPLATE.read_text())["Parameters"])
    assert parameters["BucketName"] == settings.bucket and parameters["RepositoryName"] == settings.ecr_repository
    assert parameters["ExecutionRolePath"] + parameters["ExecutionRoleName"] == settings.role_arn.split(":role", 1)[1]
    assert parameters["CreateRepository"] == "no"


def test_moto_creates_what_it_supports_and_skips_exactly_the_pinned_types(moto_endpoint: str) -> None:
    settings = load({**shipped(), "TARGET": "aws"})
    cloudformation = boto3.client("cloudformation", region_name="us-east-1")
    parameters = stack.parameters(settings, create_bucket=True, create_repository=True)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        cloudformation.create_stack(
            StackName="titanic-toolkit",
            TemplateBody=json.dumps(stack.template(settings)),
            Parameters=[{"ParameterKey": k, "ParameterValue": v} for k, v in parameters.items()],
            Capabilities=["CAPABILITY_NAMED_IAM"],
        )
    skipped = {str(w.message).split()[3] for w in caught if "not supported by moto's CloudFormation" in str(w.message)}
    assert skipped == SKIPPED_BY_MOTO
    assert cloudformation.describe_stacks(StackName="titanic-toolkit")["Stacks"][0]["StackStatus"] == "CREATE_COMPLETE"

    documents = iam.render(settings, CALLER)
    client = boto3.client("iam", region_name="us-east-1")
    for resource, name in (("ExecutionRole", settings.role), ("PipelineRole", settings.pipeline_role)):
        role = client.get_role(RoleName=name.name)["Role"]
        assert role["Path"] == name.path
        trust = "execution-role-trust" if resource == "ExecutionRole" else "pipeline-role-trust"
        assert role["AssumeRolePolicyDocument"] == documents[trust]
        inline = client.list_role_policies(RoleName=name.name)["PolicyNames"]
        (policy,) = inline
        inline_document = client.get_role_policy(RoleName=name.name, PolicyName=policy)["PolicyDocument"]
        assert as_document(inline_document) == documents[INLINE[resource]]
    runner = next(
        p for p in client.list_policies(Scope="Local")["Policies"] if p["PolicyName"] == "titanic-lgbm-runner"
    )
    version = client.get_policy_version(PolicyArn=runner["Arn"], VersionId=runner["DefaultVersionId"])
    assert as_document(version["PolicyVersion"]["Document"]) == documents["runner-policy"]

    s3 = boto3.client("s3", region_name="us-east-1")
    encryption = s3.get_bucket_encryption(Bucket=settings.bucket)["ServerSideEncryptionConfiguration"]
    assert encryption["Rules"][0]["ApplyServerSideEncryptionByDefault"]["SSEAlgorithm"] == "AES256"
    bucket_tags = {t["Key"]: t["Value"] for t in s3.get_bucket_tagging(Bucket=settings.bucket)["TagSet"]}
    assert bucket_tags["created-by"] == "titanic-sagemaker-toolkit"
    ecr = boto3.client("ecr", region_name="us-east-1")
    (repository,) = ecr.describe_repositories(repositoryNames=[settings.ecr_repository])["repositories"]
    assert repository["imageTagMutability"] == "IMMUTABLE"
    # moto's CloudFormation keeps no scan setting (it answers {}), nor lifecycle or public-access
    # block: those are held to the template itself, and cfn-lint checks their shape.
    properties = stack.template(settings)["Resources"]
    assert properties["Repository"]["Properties"]["ImageScanningConfiguration"] == {"ScanOnPush": True}
    assert "LifecyclePolicyText" in properties["Repository"]["Properties"]["LifecyclePolicy"]
    assert all(properties["Bucket"]["Properties"]["PublicAccessBlockConfiguration"].values())


@pytest.mark.parametrize(("bucket", "repository"), [(False, True), (True, False), (False, False)])
def test_what_exists_and_is_not_ours_is_left_out_of_the_stack(bucket: bool, repository: bool) -> None:
    """CreateBucket/CreateRepository=no: the resource is not in the stack at all, so the stack
    never adopts, changes or deletes it."""
    template = rendered()
    conditions = {name: r.get("Condition") for name, r in template["Resources"].items()}
    assert conditions["Bucket"] == conditions["BucketTlsOnly"] == "MakeBucket"
    assert conditions["Repository"] == "MakeRepository"
    parameters = stack.parameters(load(shipped()), create_bucket=bucket, create_repository=repository)
    assert parameters["CreateBucket"] == ("yes" if bucket else "no")
    assert parameters["CreateRepository"] == ("yes" if repository else "no")
    for name in ("Bucket", "Repository"):
        assert template["Resources"][name]["DeletionPolicy"] == "Retain"  # a teardown never loses data
