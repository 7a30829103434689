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
import cfnlint
import pytest
from botocore.exceptions import ClientError
from botocore.stub import Stubber
from conftest import shipped

from launcher import iam
from launcher import stack as stack_command
from launcher.lib import policy, stack
from launcher.lib.caller import Caller
from launcher.lib.config import load

CALLER = Caller(account="123456789012", partition="aws", arn="arn:aws:iam::123456789012:user/admin")
# moto 5.2.5's CloudFormation parses none of these: it warns and creates nothing for them.
SKIPPED_BY_MOTO = {"AWS::S3::BucketPolicy"}
EMBEDDED = {
    ("ExecutionRole", "AssumeRolePolicyDocument"): "execution-role-trust",
    ("PipelineRole", "AssumeRolePolicyDocument"): "pipeline-role-trust",
}
RUNNER_PARTS = ("RunnerPolicy", "RunnerPolicyPart2")  # iam/runner-policy.json, cut in two
INLINE = {"ExecutionRole": "execution-role-policy", "PipelineRole": "pipeline-role-policy"}


def as_document(value: Any) -> Any:
    """A policy document as moto hands it back: its CloudFormation stores Python's repr of the
    document, not JSON (a moto quirk: IAM itself takes JSON); read either."""
    if not isinstance(value, str):
        return value
    text = unquote(value)
    return ast.literal_eval(text) if text.startswith("{'") else json.loads(text)


def created(cloudformation: Any, settings: Any) -> set[str]:
    """Create the stack on moto as CloudFormation would; the resource types moto skipped."""
    parameters = stack.parameters(settings, create_bucket=True, create_repository=True)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        cloudformation.create_stack(
            StackName="titanic-toolkit",
            TemplateBody=json.dumps(stack.template(settings)),
            Parameters=[{"ParameterKey": k, "ParameterValue": v} for k, v in parameters.items()],
            Capabilities=["CAPABILITY_NAMED_IAM"],
        )
    return {str(w.message).split()[3] for w in caught if "not supported by moto's CloudFormation" in str(w.message)}


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
    runner = [resources[part]["Properties"]["PolicyDocument"] for part in RUNNER_PARTS]
    assert [s for part in runner for s in part["Statement"]] == documents["runner-policy"]["Statement"]
    text = json.dumps(rendered())
    assert "123456789012" not in text  # the account is CloudFormation's to fill in, never ours


# CloudFormation acts with the caller's own permissions (no service role): the setup policy must
# grant what each resource type's handlers call, as AWS's resource schemas list them (cfn-lint
# ships them). What it leaves out is here, each for a property the template never sets (the test
# checks it is absent) or an API name that IAM checks under another action.
UNSET_PROPERTY = {
    "AWS::S3::Bucket": {
        "iam:PassRole": "ReplicationConfiguration",
        "s3:CreateBucketMetadataTableConfiguration": "MetadataTableConfiguration",
        "s3:DeleteBucketMetadataTableConfiguration": "MetadataTableConfiguration",
        "s3:UpdateBucketMetadataAnnotationTableConfiguration": "MetadataConfiguration",
        "s3:UpdateBucketMetadataInventoryTableConfiguration": "MetadataConfiguration",
        "s3:UpdateBucketMetadataJournalTableConfiguration": "MetadataConfiguration",
        "s3tables:*": "MetadataConfiguration",
        "s3:PutAnalyticsConfiguration": "AnalyticsConfigurations",
        "s3:DeleteBucketAnalyticsConfiguration": "AnalyticsConfigurations",
        "s3:PutBucketCORS": "CorsConfiguration",
        "s3:DeleteBucketCors": "CorsConfiguration",
        "s3:PutLifecycleConfiguration": "LifecycleConfiguration",
        "s3:DeleteBucketLifecycle": "LifecycleConfiguration",
        "s3:PutMetricsConfiguration": "MetricsConfigurations",
        "s3:DeleteBucketMetricsConfiguration": "MetricsConfigurations",
        "s3:PutBucketReplication": "ReplicationConfiguration",
        "s3:PutReplicationConfiguration": "ReplicationConfiguration",
        "s3:DeleteBucketReplication": "ReplicationConfiguration",
        "s3:PutBucketWebsite": "WebsiteConfiguration",
        "s3:DeleteBucketWebsite": "WebsiteConfiguration",
        "s3:PutAccelerateConfiguration": "AccelerateConfiguration",
        "s3:PutBucketAbac": "AbacStatus",
        "s3:PutBucketAcl": "AccessControl",
        "s3:PutObjectAcl": "AccessControl",
        "s3:PutBucketLogging": "LoggingConfiguration",
        "s3:PutBucketNotification": "NotificationConfiguration",
        "s3:PutBucketObjectLockConfiguration": "ObjectLockConfiguration",
        "s3:PutObjectLockConfiguration": "ObjectLockConfiguration",
        "s3:PutBucketVersioning": "VersioningConfiguration",
        "s3:PutIntelligentTieringConfiguration": "IntelligentTieringConfigurations",
        "s3:PutInventoryConfiguration": "InventoryConfigurations",
    },
    "AWS::ECR::Repository": {
        "ecr:SetRepositoryPolicy": "RepositoryPolicyText",
        "ecr:DeleteRepositoryPolicy": "RepositoryPolicyText",
        "kms:*": "EncryptionConfiguration",
    },
    "AWS::IAM::Role": {
        "iam:PutRolePermissionsBoundary": "PermissionsBoundary",
        "iam:DeleteRolePermissionsBoundary": "PermissionsBoundary",
        "iam:AttachRolePolicy": "ManagedPolicyArns",
        "iam:DetachRolePolicy": "ManagedPolicyArns",
    },
    "AWS::IAM::ManagedPolicy": {
        "iam:AttachGroupPolicy": "Groups",
        "iam:AttachUserPolicy": "Users",
        "iam:AttachRolePolicy": "Roles",
    },
}
# The managed policy's delete handler lists every user, group and role holding the policy
# (ListEntitiesForPolicy) and detaches it from each: whoever the runner is, teardown must work.
DETACHED_FROM = {
    "iam:DetachUserPolicy": "arn:aws:iam::123456789012:user/alice",
    "iam:DetachGroupPolicy": "arn:aws:iam::123456789012:group/ml-engineers",
    "iam:DetachRolePolicy": "arn:aws:iam::123456789012:role/cron-runner",
}
# The API is called DeleteBucketEncryption; IAM authorizes it as s3:PutEncryptionConfiguration.
CHECKED_AS = {"s3:DeleteBucketEncryption": "s3:PutEncryptionConfiguration"}
OBJECT_ACTIONS = ("s3:DeleteObject",)  # on the bucket's objects, not the bucket


def handler_permissions() -> dict[str, set[str]]:
    """What CloudFormation's create, read, update and delete handlers call, by resource type."""
    folder = Path(cfnlint.__file__).parent / "data" / "schemas" / "resources"
    found: dict[str, set[str]] = {}
    for path in folder.glob("*.json"):
        schema = json.loads(path.read_text())
        if schema.get("typeName", "").startswith(("AWS::S3::", "AWS::ECR::", "AWS::IAM::")):
            handlers = schema.get("handlers", {})
            found[schema["typeName"]] = {
                p for h in ("create", "read", "update", "delete") for p in handlers.get(h, {}).get("permissions", [])
            }
    return found


def test_the_setup_policy_grants_what_cloudformation_calls_for_each_resource() -> None:
    settings = load({**shipped(), "TARGET": "aws", "CI_REPOSITORY": "acme/titanic"})
    setup = iam.render(settings, CALLER)["setup-policy"]
    runner_policy = f"arn:aws:iam::123456789012:policy/{settings.base_job_name}{stack.RUNNER_POLICY_SUFFIX}"
    bucket = f"arn:aws:s3:::{settings.bucket}"
    ci_role = f"arn:aws:iam::123456789012:role/{stack.stack_name(settings)}-CiTrainRole-1A2B3C"
    arns = {
        "Bucket": bucket,
        "BucketTlsOnly": bucket,
        "Repository": f"arn:aws:ecr:us-east-1:123456789012:repository/{settings.ecr_repository}",
        "ExecutionRole": settings.role_arn,
        "PipelineRole": settings.pipeline_role_arn,
        "RunnerPolicy": runner_policy,
        "RunnerPolicyPart2": f"{runner_policy}-2",
        "GitHubOidcProvider": "arn:aws:iam::123456789012:oidc-provider/token.actions.githubusercontent.com",
        "CiTrainRole": ci_role,
        "CiDeployRole": ci_role.replace("CiTrainRole", "CiDeployRole"),
    }
    schemas = handler_permissions()
    resources = stack.template(settings)["Resources"]
    assert set(arns) == set(resources)
    for logical, resource in resources.items():
        unset = UNSET_PROPERTY.get(resource["Type"], {})
        for permission in sorted(schemas[resource["Type"]]):
            excused = unset.get(permission) or unset.get(permission.split(":")[0] + ":*")
            if excused and excused not in resource["Properties"]:
                continue
            action = CHECKED_AS.get(permission, permission)
            target = f"{bucket}/key" if action in OBJECT_ACTIONS else arns[logical]
            context = {"iam:PolicyARN": runner_policy}
            if resource["Type"] == "AWS::IAM::ManagedPolicy" and action in DETACHED_FROM:
                target, context = DETACHED_FROM[action], {"iam:PolicyARN": arns[logical]}
            assert policy.grants(setup, action, target, context), (logical, permission)
    assert policy.grants(setup, "iam:AttachRolePolicy", ci_role, {"iam:PolicyARN": f"{runner_policy}-2"})
    for action, holder in DETACHED_FROM.items():  # only the runner's policies are detached
        assert not policy.grants(setup, action, holder, {"iam:PolicyARN": "arn:aws:iam::aws:policy/Admin"})
    # The one conditional grant: the CI role may get the runner's policy attached, no other.
    assert not policy.grants(setup, "iam:AttachRolePolicy", ci_role, {"iam:PolicyARN": "arn:aws:iam::aws:policy/Admin"})


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
    skipped = created(cloudformation, settings)
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
    policies = {p["PolicyName"]: p for p in client.list_policies(Scope="Local")["Policies"]}
    deployed = []
    for name in ("titanic-lgbm-runner", "titanic-lgbm-runner-2"):
        version = client.get_policy_version(
            PolicyArn=policies[name]["Arn"], VersionId=policies[name]["DefaultVersionId"]
        )
        deployed += as_document(version["PolicyVersion"]["Document"])["Statement"]
    assert deployed == documents["runner-policy"]["Statement"]

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


def trusted(trust: dict[str, Any], audience: str, subject: str) -> bool:
    """Whether GitHub's OIDC token with this aud and sub may assume the role: every statement's
    StringEquals must match exactly (IAM's evaluation for these two keys)."""
    for statement in trust["Statement"]:
        assert set(statement["Condition"]) == {"StringEquals"}, "no wildcard operator on GitHub's claims"
        wanted = statement["Condition"]["StringEquals"]
        claims = {
            "token.actions.githubusercontent.com:aud": audience,
            "token.actions.githubusercontent.com:sub": subject,
        }
        if statement["Action"] == "sts:AssumeRoleWithWebIdentity" and all(claims[k] == v for k, v in wanted.items()):
            return True
    return False


@pytest.mark.parametrize(
    ("role", "subject", "admitted"),
    [
        ("ci-train-trust", "repo:acme/titanic:ref:refs/heads/main", True),
        ("ci-train-trust", "repo:acme/titanic:ref:refs/heads/feature", False),
        ("ci-train-trust", "repo:acme/titanic:pull_request", False),
        ("ci-train-trust", "repo:mallory/titanic:ref:refs/heads/main", False),
        ("ci-train-trust", "repo:acme/titanic:environment:production", False),
        ("ci-deploy-trust", "repo:acme/titanic:environment:production", True),
        ("ci-deploy-trust", "repo:acme/titanic:environment:staging", False),
        ("ci-deploy-trust", "repo:acme/titanic:ref:refs/heads/main", False),
        ("ci-deploy-trust", "repo:mallory/titanic:environment:production", False),
    ],
)
def test_the_ci_roles_trust_pins_the_audience_and_the_subject(role: str, subject: str, admitted: bool) -> None:
    trust = iam.render(load({**shipped(), "CI_REPOSITORY": "acme/titanic"}), CALLER)[role]
    (statement,) = trust["Statement"]
    assert statement["Principal"] == {
        "Federated": "arn:aws:iam::123456789012:oidc-provider/token.actions.githubusercontent.com"
    }
    assert trusted(trust, "sts.amazonaws.com", subject) is admitted
    assert not trusted(trust, "https://github.com/acme", subject)  # another audience never


def test_the_deploy_policy_is_a_narrow_part_of_the_runners() -> None:
    """The deploy job approves and deploys: every grant of its policy is one the runner has,
    and none of the runner's training, pushing, deleting data or passing the pipeline role."""
    documents = iam.render(load(shipped()), CALLER)
    deploy, runner = documents["deploy-policy"], documents["runner-policy"]

    def grants(document: dict[str, Any]) -> set[tuple[str, str]]:
        return {
            (action, resource)
            for s in document["Statement"]
            for action in iam.as_list(s["Action"])
            for resource in iam.as_list(s["Resource"])
        }

    assert grants(deploy) <= grants(runner), grants(deploy) - grants(runner)
    actions = {action for action, _ in grants(deploy)}
    for never in (
        "sagemaker:CreateTrainingJob",
        "ecr:PutImage",
        "s3:PutObject",
        "s3:DeleteObject",
        "sagemaker:CreatePipeline",
    ):
        assert never not in actions, never
    assert {"sagemaker:UpdateModelPackage", "sagemaker:CreateEndpoint", "iam:PassRole"} <= actions


def test_with_a_ci_repository_the_stack_adds_the_provider_and_the_two_roles(moto_endpoint: str) -> None:
    settings = load({**shipped(), "TARGET": "aws", "CI_REPOSITORY": "acme/titanic"})
    cloudformation = boto3.client("cloudformation", region_name="us-east-1")
    skipped = created(cloudformation, settings)
    assert skipped == SKIPPED_BY_MOTO | {"AWS::IAM::OIDCProvider"}
    outputs = {
        o["OutputKey"]: o["OutputValue"]
        for o in cloudformation.describe_stacks(StackName="titanic-toolkit")["Stacks"][0]["Outputs"]
    }
    documents = iam.render(settings, CALLER)
    client = boto3.client("iam", region_name="us-east-1")
    train = client.get_role(RoleName=outputs["CiTrainRoleArn"].rsplit("/", 1)[1])["Role"]
    assert train["AssumeRolePolicyDocument"] == documents["ci-train-trust"]
    # moto's CloudFormation attaches no ManagedPolicyArns (it answers []): held to the template.
    assert client.list_attached_role_policies(RoleName=train["RoleName"])["AttachedPolicies"] == []
    template = stack.template(settings)["Resources"]
    assert template["CiTrainRole"]["Properties"]["ManagedPolicyArns"] == [{"Ref": part} for part in RUNNER_PARTS]
    deploy = client.get_role(RoleName=outputs["CiDeployRoleArn"].rsplit("/", 1)[1])["Role"]
    assert deploy["AssumeRolePolicyDocument"] == documents["ci-deploy-trust"]
    (inline,) = client.list_role_policies(RoleName=deploy["RoleName"])["PolicyNames"]
    policy = client.get_role_policy(RoleName=deploy["RoleName"], PolicyName=inline)["PolicyDocument"]
    assert as_document(policy) == documents["deploy-policy"]


def test_deploy_goes_through_a_change_set_and_a_rerun_changes_nothing(
    moto_endpoint: str, caplog: pytest.LogCaptureFixture
) -> None:
    settings = load({**shipped(), "TARGET": "aws"})
    session = boto3.Session(region_name="us-east-1")
    caplog.set_level("INFO")
    outputs = stack_command.deploy(settings, session, sleep=lambda _: None)
    assert outputs == []  # moto gives a stack made through a change set no Outputs (AWS does)
    iam_client = session.client("iam")
    assert iam_client.get_role(RoleName=settings.role.name)["Role"]["Arn"] == settings.role_arn
    assert iam_client.get_role(RoleName=settings.pipeline_role.name)["Role"]["Arn"] == settings.pipeline_role_arn
    assert "change: Add Bucket (AWS::S3::Bucket)" in caplog.text  # shown before it is applied
    caplog.clear()
    assert stack_command.deploy(settings, session, sleep=lambda _: None) == outputs
    assert "is up to date: nothing to change" in caplog.text and "change: " not in caplog.text
    names = [s["StackName"] for s in session.client("cloudformation").describe_stacks()["Stacks"]]
    assert names == ["titanic-lgbm-setup"]


def test_a_bucket_and_repository_that_are_not_the_stacks_are_used_as_they_are(moto_endpoint: str) -> None:
    settings = load({**shipped(), "TARGET": "aws"})
    session = boto3.Session(region_name="us-east-1")
    session.client("s3").create_bucket(Bucket=settings.bucket)
    session.client("ecr").create_repository(repositoryName=settings.ecr_repository)
    stack_command.deploy(settings, session, sleep=lambda _: None)
    cloudformation = session.client("cloudformation")
    held = {
        r["LogicalResourceId"]
        for r in cloudformation.list_stack_resources(StackName="titanic-lgbm-setup")["StackResourceSummaries"]
    }
    assert "Bucket" not in held and "Repository" not in held and "ExecutionRole" in held
    with pytest.raises(ClientError, match="NoSuchTagSet"):
        session.client("s3").get_bucket_tagging(Bucket=settings.bucket)  # never adopted or changed


def test_a_missing_bucket_without_create_bucket_is_refused_before_anything_is_made(moto_endpoint: str) -> None:
    settings = load({**shipped(), "TARGET": "aws", "CREATE_BUCKET": "no"})
    session = boto3.Session(region_name="us-east-1")
    with pytest.raises(stack_command.StackError, match="does not exist; create it, or set CREATE_BUCKET=yes"):
        stack_command.deploy(settings, session, sleep=lambda _: None)
    assert session.client("cloudformation").describe_stacks()["Stacks"] == []


def test_the_outputs_the_runner_needs_are_read_from_the_stack() -> None:
    cloudformation = boto3.client(
        "cloudformation", region_name="us-east-1", aws_access_key_id="x", aws_secret_access_key="x"
    )
    with Stubber(cloudformation) as stub:
        outputs = [
            {
                "OutputKey": "ExecutionRoleArn",
                "OutputValue": "arn:aws:iam::1:role/service-role/x",
                "Description": "ROLE_ARN",
            }
        ]
        stub.add_response(
            "describe_stacks",
            {
                "Stacks": [
                    {
                        "StackName": "titanic-lgbm-setup",
                        "CreationTime": "2026-12-05T00:00:00Z",
                        "StackStatus": "CREATE_COMPLETE",
                        "Outputs": outputs,
                    }
                ]
            },
            {"StackName": "titanic-lgbm-setup"},
        )
        assert stack_command._outputs(cloudformation, "titanic-lgbm-setup") == [
            "ExecutionRoleArn=arn:aws:iam::1:role/service-role/x    # ROLE_ARN"
        ]


def test_on_aws_a_change_set_without_changes_is_deleted_and_nothing_is_applied(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    """AWS (unlike moto) accepts the request and makes a FAILED change set saying it "didn't
    contain changes": the toolkit deletes it, executes nothing and reports the stack current."""
    settings = load({**shipped(), "TARGET": "aws"})
    cloudformation = boto3.client(
        "cloudformation", region_name="us-east-1", aws_access_key_id="x", aws_secret_access_key="x"
    )
    session = boto3.Session(region_name="us-east-1", aws_access_key_id="x", aws_secret_access_key="x")
    monkeypatch.setattr(session, "client", lambda service, **_: cloudformation)
    held = {name: ("", name) for name in ("Bucket", "Repository", "ExecutionRole", "PipelineRole")}
    found = stack.Deployed(
        stack_id="arn:aws:cloudformation:us-east-1:1:stack/x/1", status="CREATE_COMPLETE", tags={}, held=held
    )
    monkeypatch.setattr(stack_command, "current", lambda *_: found)
    caplog.set_level("INFO")
    with Stubber(cloudformation) as stub:
        stub.add_response("create_change_set", {"Id": "arn:aws:cloudformation:us-east-1:1:changeSet/x/1"})
        stub.add_response(
            "describe_change_set",
            {
                "Status": "FAILED",
                "StatusReason": "The submitted information didn't contain changes. Submit different information to "
                "create a change set.",
                "ExecutionStatus": "UNAVAILABLE",
            },
        )
        stub.add_response("delete_change_set", {})
        stub.add_response(
            "describe_stacks",
            {
                "Stacks": [
                    {
                        "StackName": "titanic-lgbm-setup",
                        "CreationTime": "2026-12-05T00:00:00Z",
                        "StackStatus": "UPDATE_COMPLETE",
                    }
                ]
            },
        )
        monkeypatch.setattr(stack_command, "creations", lambda *_: {"create_bucket": True, "create_repository": True})
        assert stack_command.deploy(settings, session, sleep=lambda _: None) == []
        stub.assert_no_pending_responses()  # no ExecuteChangeSet
    assert "is up to date: nothing to change" in caplog.text


def test_a_role_of_the_stacks_name_made_another_way_is_refused_before_anything_is_made(moto_endpoint: str) -> None:
    settings = load({**shipped(), "TARGET": "aws"})
    session = boto3.Session(region_name="us-east-1")
    session.client("iam").create_role(
        RoleName=settings.pipeline_role.name, Path=settings.pipeline_role.path, AssumeRolePolicyDocument="{}"
    )
    with pytest.raises(stack_command.StackError, match=r"role titanic-sagemaker-pipeline \(PIPELINE_ROLE_ARN\) exists"):
        stack_command.deploy(settings, session, sleep=lambda _: None)
    assert session.client("cloudformation").describe_stacks()["Stacks"] == []


def test_an_oidc_provider_the_account_has_is_used_not_created(moto_endpoint: str) -> None:
    """One provider per URL and account: one made by hand or another stack stays outside ours."""
    session = boto3.Session(region_name="us-east-1")
    settings = load({**shipped(), "TARGET": "aws", "CI_REPOSITORY": "acme/titanic"})
    assert stack_command.creations(settings, session, set())["create_oidc_provider"] is True
    session.client("iam").create_open_id_connect_provider(
        Url="https://token.actions.githubusercontent.com", ClientIDList=["sts.amazonaws.com"], ThumbprintList=["0" * 40]
    )
    assert stack_command.creations(settings, session, set())["create_oidc_provider"] is False
    assert stack_command.creations(settings, session, {"GitHubOidcProvider"})["create_oidc_provider"] is True


def _stack(status: str) -> dict[str, Any]:
    return {
        "StackName": "titanic-lgbm-setup",
        "StackId": "arn:aws:cloudformation:us-east-1:1:stack/titanic-lgbm-setup/1",
        "CreationTime": "2026-12-05T00:00:00Z",
        "StackStatus": status,
    }


def test_a_first_creation_that_rolled_back_is_deleted_and_created_afresh() -> None:
    """CloudFormation cannot update a stack in ROLLBACK_COMPLETE (it holds nothing): it is deleted
    first, then created again from a CREATE change set."""
    cloudformation = boto3.client(
        "cloudformation", region_name="us-east-1", aws_access_key_id="x", aws_secret_access_key="x"
    )
    stack_id = _stack("ROLLBACK_COMPLETE")["StackId"]
    with Stubber(cloudformation) as stub:
        stub.add_response(
            "describe_stacks", {"Stacks": [_stack("ROLLBACK_COMPLETE")]}, {"StackName": "titanic-lgbm-setup"}
        )
        stub.add_response("list_stack_resources", {"StackResourceSummaries": []})
        stub.add_response("delete_stack", {}, {"StackName": stack_id})
        stub.add_response("describe_stacks", {"Stacks": [_stack("DELETE_COMPLETE")]}, {"StackName": stack_id})
        assert stack_command.current(cloudformation, "titanic-lgbm-setup", lambda _: None) is None
        stub.assert_no_pending_responses()


@pytest.mark.parametrize(
    ("status", "message"),
    [
        ("UPDATE_ROLLBACK_FAILED", "delete it or continue its rollback in the CloudFormation console"),
        ("UPDATE_IN_PROGRESS", "another deploy or teardown is at work; rerun when it ends"),
    ],
)
def test_a_stack_that_cannot_change_now_is_refused_with_what_to_do(status: str, message: str) -> None:
    cloudformation = boto3.client(
        "cloudformation", region_name="us-east-1", aws_access_key_id="x", aws_secret_access_key="x"
    )
    with Stubber(cloudformation) as stub:
        stub.add_response("describe_stacks", {"Stacks": [_stack(status)]})
        stub.add_response("list_stack_resources", {"StackResourceSummaries": []})
        failed = {"StackId": "x", "EventId": "1", "StackName": "s", "Timestamp": "2026-12-05T00:00:00Z"}
        reason = {**failed, "ResourceStatus": "UPDATE_FAILED", "ResourceStatusReason": "Role already exists"}
        stub.add_response("describe_stack_events", {"StackEvents": [reason]})
        with pytest.raises(stack_command.StackError, match=message):
            stack_command.current(cloudformation, "titanic-lgbm-setup", lambda _: None)


def test_bootstrap_refuses_a_role_arn_in_another_account_before_anything_is_made(
    moto_endpoint: str, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture, tmp_path: Path
) -> None:
    """The stack makes both roles in the caller's account: a PIPELINE_ROLE_ARN naming another
    account would leave config.env pointing at a role that does not exist."""
    for key, value in {**shipped(), "TARGET": "aws"}.items():
        monkeypatch.setenv(key, value)
    monkeypatch.setenv("PIPELINE_ROLE_ARN", "arn:aws:iam::999988887777:role/service-role/titanic-sagemaker-pipeline")
    assert stack_command.main(["deploy", "--out", str(tmp_path)]) == 1
    wanted = "PIPELINE_ROLE_ARN names account 999988887777 (aws) but the credentials are for account 123456789012"
    assert wanted in caplog.text
    assert boto3.client("cloudformation", region_name="us-east-1").describe_stacks()["Stacks"] == []


@pytest.mark.parametrize("partition", ["aws", "aws-us-gov"])
def test_each_managed_policy_fits_iams_size_quota(partition: str) -> None:
    """IAM refuses a customer managed policy over 6,144 characters (whitespace not counted):
    the runner's document is cut between statements into the stack's parts, each within it as
    CloudFormation holds it and as IAM stores it; together they are the whole document."""
    settings = load({**shipped(), "TARGET": "aws", "CI_REPOSITORY": "acme/titanic"})
    resources = stack.template(settings)["Resources"]
    caller = Caller(account="123456789012", partition=partition, arn="")
    for resource in resources.values():
        if resource["Type"] == "AWS::IAM::ManagedPolicy":
            document = resource["Properties"]["PolicyDocument"]
            assert stack.policy_size(document) <= 6144
            assert stack.policy_size(stack.resolved(document, caller)) <= 6144
    whole = iam.render(settings, caller)["runner-policy"]
    assert stack.policy_size(whole) > 6144  # why it is cut at all
    parts = [stack.resolved(resources[p]["Properties"]["PolicyDocument"], caller) for p in RUNNER_PARTS]
    assert [s for part in parts for s in part["Statement"]] == whole["Statement"]


def test_a_document_that_outgrows_its_parts_is_refused_by_name() -> None:
    big = {"Version": "2012-10-17", "Statement": [{"Sid": "x" * 4000}, {"Sid": "y" * 4000}, {"Sid": "z" * 4000}]}
    assert len(stack.parts(big)) == 3
    places = stack.part_counts(json.loads(stack.TEMPLATE.read_text()))["runner-policy"]
    with pytest.raises(stack.IamError, match=r"now takes 3 managed policies .* gives it 2: add or remove"):
        stack._part("runner-policy", stack.parts(big), 1, places)


def test_every_role_fits_iams_trust_and_inline_policy_quotas() -> None:
    """IAM's default quotas (white space not counted): a role trust policy of 2,048 characters,
    and 10,240 for all of a role's inline policies together."""
    settings = load({**shipped(), "TARGET": "aws", "CI_REPOSITORY": "acme/titanic"})
    caller = Caller(account="123456789012", partition="aws-us-gov", arn="")
    resources = stack.resolved(stack.template(settings), caller)["Resources"]
    roles = [r["Properties"] for r in resources.values() if r["Type"] == "AWS::IAM::Role"]
    assert len(roles) == 4
    for role in roles:
        assert stack.policy_size(role["AssumeRolePolicyDocument"]) <= 2048
        assert sum(stack.policy_size(p["PolicyDocument"]) for p in role.get("Policies", [])) <= 10240
