"""Least-privilege IAM, proven two ways.

Statically, on the rendered documents: what moto cannot evaluate (iam:PassRole, conditions,
non-S3 resource ARNs, the trust policy, the partition). Dynamically, on the embedded stack
with IAM enforcement on: the one-time set-up runs as a user holding only the set-up policy,
then the whole pipeline runs as a user holding only the runner policy (non-S3 resources
widened to "*", the only form moto checks them in); the runner's calls are recorded and
compared with its policy, and writes outside the toolkit's resources fail.
"""

from __future__ import annotations

import contextlib
import fnmatch
import json
import os
import re
import tokenize
import urllib.request
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from urllib.parse import unquote

import boto3
import parliament
import pytest
from botocore.config import Config
from botocore.exceptions import ClientError
from checkout import Checkout, new_checkout
from conftest import REPO, shipped
from iam_recording import actions_in
from sagemaker.utils import name_from_base

from launcher import iam, tuning
from launcher.lib import executions, iam_documents, names, policy, sdk, training
from launcher.lib import pipeline as flow
from launcher.lib.caller import Caller, whoami
from launcher.lib.config import job_tags, load

WILDCARD = json.loads((REPO / "iam/wildcard-actions.json").read_text())["actions"]
NOT_SEEN = json.loads((REPO / "iam/not-seen-on-emulator.json").read_text())["actions"]
ROLE = "arn:aws:iam::123456789012:role/service-role/titanic-sagemaker-execution"
PIPELINE_ROLE = "arn:aws:iam::123456789012:role/service-role/titanic-sagemaker-pipeline"
CALLER = Caller(account="123456789012", partition="aws", arn="arn:aws:iam::123456789012:user/admin")
# STS answers every principal about itself; AWS asks no permission for it.
NEEDS_NO_PERMISSION = {"sts:GetCallerIdentity"}
LOG_GROUP_ARN = "arn:aws:logs:us-east-1:123456789012:log-group:/aws/sagemaker/TrainingJobs:*"


def documents(caller: Caller = CALLER, **changes: str) -> dict[str, dict[str, Any]]:
    return iam.render(load({**shipped(), **changes}), caller)


def statements(document: dict[str, Any]) -> list[dict[str, Any]]:
    return document["Statement"]


def trusted(docs: dict[str, dict[str, Any]], source_arn: str, *, jobs_only: bool = False) -> bool:
    """Whether the rendered trust policy admits SageMaker presenting this SourceArn, as IAM
    matches it, with and without aws:SourceAccount (jobs_only: the job statement alone; the
    hosting statement admits every SageMaker ARN of the account, as AWS's form requires)."""
    trust = docs["execution-role-trust"]
    if jobs_only:
        trust = {"Statement": statements(trust)[:1]}
    return policy.admits(trust, source_arn, "123456789012") and policy.admits(trust, source_arn)


def allows(document: dict[str, Any], action: str, resource: str) -> bool:
    """Whether any Allow statement names this action on a resource pattern matching this ARN."""
    return any(
        action in iam.as_list(s["Action"]) and any(fnmatch.fnmatchcase(resource, r) for r in iam.as_list(s["Resource"]))
        for s in statements(document)
        if s["Effect"] == "Allow"
    )


# ---- static: what the emulator cannot check ---------------------------------------------


@pytest.mark.parametrize("name", iam.PERMISSION_POLICIES)
def test_star_resources_only_for_the_listed_actions(name: str) -> None:
    for statement in statements(documents()[name]):
        assert statement["Effect"] == "Allow" and "NotAction" not in statement and "NotResource" not in statement
        actions = iam.as_list(statement["Action"])
        assert not [a for a in actions if "*" in a], f"{statement['Sid']}: wildcard action"
        if "*" in iam.as_list(statement["Resource"]):
            assert set(actions) <= set(WILDCARD), f"{statement['Sid']}: {set(actions) - set(WILDCARD)} on '*'"


@pytest.mark.parametrize("base", ["titanic-lgbm", "alice-titanic", "nightly-titanic"])
def test_the_jobs_the_sdk_names_are_the_jobs_the_policies_allow(base: str) -> None:
    """The reference run allowed training-job/titanic-* while naming jobs <user>-titanic-...:
    here the name comes from the SDK's own function, exactly as Estimator names the job."""
    docs = documents(BASE_JOB_NAME=base)
    job = name_from_base(base)
    arn = f"arn:aws:sagemaker:us-east-1:123456789012:training-job/{job}"
    for action in (
        "sagemaker:CreateTrainingJob",
        "sagemaker:DescribeTrainingJob",
        "sagemaker:AddTags",
        "sagemaker:StopTrainingJob",
        "sagemaker:ListTags",
    ):
        assert allows(docs["runner-policy"], action, arn), action
    assert trusted(docs, arn)
    # make predict names its model and transform job alike (launcher/lib/names.py).
    predict = names.transform_job(base, datetime.now(UTC))
    for kind, actions in (
        ("model", ("CreateModel", "DeleteModel", "AddTags", "ListTags")),
        ("transform-job", ("CreateTransformJob", "DescribeTransformJob", "StopTransformJob", "AddTags", "ListTags")),
    ):
        predict_arn = f"arn:aws:sagemaker:us-east-1:123456789012:{kind}/{predict}"
        for action in actions:
            assert allows(docs["runner-policy"], f"sagemaker:{action}", predict_arn), (kind, action)
    transform_arn = f"arn:aws:sagemaker:us-east-1:123456789012:transform-job/{predict}"
    assert trusted(docs, transform_arn)
    # ... and nobody else's: a job under another name is neither creatable nor trusted.
    other = f"arn:aws:sagemaker:us-east-1:123456789012:training-job/{name_from_base('someone-else')}"
    assert not allows(docs["runner-policy"], "sagemaker:CreateTrainingJob", other)
    assert not trusted(docs, other, jobs_only=True)
    other_model = f"arn:aws:sagemaker:us-east-1:123456789012:model/{name_from_base('someone-else-predict')}"
    assert not allows(docs["runner-policy"], "sagemaker:DeleteModel", other_model)


def test_tuning_jobs_and_their_trials_are_the_policys_and_nobody_elses() -> None:
    """make tune-jobs names the tuning job <BASE_JOB_NAME>-<time>; SageMaker names its trials
    <tuning job>-NNN-<8 hex>. Both must fall inside the runner's grants and the role's trust."""
    docs = documents()
    name = tuning.tuning_name(load(shipped()), datetime.now(UTC))
    arn = f"arn:aws:sagemaker:us-east-1:123456789012:hyper-parameter-tuning-job/{name}"
    for action in (
        "CreateHyperParameterTuningJob",
        "DescribeHyperParameterTuningJob",
        "ListTrainingJobsForHyperParameterTuningJob",
        "AddTags",
    ):
        assert allows(docs["runner-policy"], f"sagemaker:{action}", arn), action
    trial = f"arn:aws:sagemaker:us-east-1:123456789012:training-job/{name}-001-0a1b2c3d"
    assert allows(docs["runner-policy"], "sagemaker:DescribeTrainingJob", trial)
    assert trusted(docs, arn) and trusted(docs, trial)
    other = "arn:aws:sagemaker:us-east-1:123456789012:hyper-parameter-tuning-job/someone-else-261126083001"
    assert not allows(docs["runner-policy"], "sagemaker:CreateHyperParameterTuningJob", other)
    assert not trusted(docs, other, jobs_only=True)


def test_allows_refuses_a_job_outside_a_narrowed_grant_like_the_reference_runs() -> None:
    """The test helper `allows` itself, on the reference run's mistake (training-job/titanic-*
    while jobs are named alice-titanic-...): the narrowing happened, and the job is refused."""
    broken = documents(BASE_JOB_NAME="alice-titanic")["runner-policy"]
    narrowed = 0
    for statement in statements(broken):
        if "sagemaker:CreateTrainingJob" in iam.as_list(statement["Action"]):
            statement["Resource"] = "arn:aws:sagemaker:us-east-1:123456789012:training-job/titanic-*"
            narrowed += 1
    assert narrowed == 1
    job = f"arn:aws:sagemaker:us-east-1:123456789012:training-job/{name_from_base('alice-titanic')}"
    assert allows(documents(BASE_JOB_NAME="alice-titanic")["runner-policy"], "sagemaker:CreateTrainingJob", job)
    assert not allows(broken, "sagemaker:CreateTrainingJob", job)


def test_only_the_toolkits_roles_can_be_passed_and_only_to_sagemaker() -> None:
    """The runner passes the execution role (jobs) and the pipeline role (CreatePipeline); the
    pipeline role passes only the execution role, to the steps' jobs."""
    for name, roles in (("runner-policy", [[ROLE], [PIPELINE_ROLE]]), ("pipeline-role-policy", [[ROLE]])):
        policy = documents()[name]
        passing = [s for s in statements(policy) if "iam:PassRole" in iam.as_list(s["Action"])]
        assert [iam.as_list(s["Resource"]) for s in passing] == roles, name
        for statement in passing:
            assert statement["Condition"] == {"StringEquals": {"iam:PassedToService": "sagemaker.amazonaws.com"}}
        assert not allows(policy, "iam:PassRole", "arn:aws:iam::123456789012:role/service-role/admin")
    policy = documents()["runner-policy"]
    assert not [a for s in statements(policy) for a in iam.as_list(s["Action"]) if a.startswith("iam:Create")]


def test_only_the_toolkits_repository() -> None:
    for name in iam.PERMISSION_POLICIES:
        for statement in statements(documents()[name]):
            for resource in iam.as_list(statement["Resource"]):
                if resource.startswith("arn:aws:ecr"):
                    assert resource == "arn:aws:ecr:us-east-1:123456789012:repository/titanic-lightgbm"
    assert not allows(
        documents()["runner-policy"], "ecr:PutImage", "arn:aws:ecr:us-east-1:123456789012:repository/other"
    )


def test_s3_is_scoped_to_the_bucket_and_its_prefixes() -> None:
    bucket = "arn:aws:s3:::titanic-sagemaker-toolkit-demo"
    prefixes = {f"{bucket}/titanic/{p}/*" for p in ("data", "output", "checkpoints", "predictions")}
    # The administrator's set-up lists the whole bucket and may empty it (CloudFormation's bucket
    # handlers list it; make teardown EMPTY_BUCKET=yes): one bucket, nothing beyond it.
    setup = {r for s in statements(documents()["setup-policy"]) for r in iam.as_list(s["Resource"]) if ":s3:" in r}
    assert setup == {bucket, f"{bucket}/*"}
    for name in (n for n in iam.PERMISSION_POLICIES if n != "setup-policy"):
        for statement in statements(documents()[name]):
            s3 = [r for r in iam.as_list(statement["Resource"]) if r.startswith("arn:aws:s3")]
            for resource in s3:
                assert resource == bucket or resource in prefixes, resource
            if "s3:ListBucket" in iam.as_list(statement["Action"]):
                assert set(iam.as_list(statement["Action"])) == {"s3:ListBucket"}
                listed = statement["Condition"]["StringLike"]["s3:prefix"]
                assert all(p.startswith("titanic/") and p.endswith("/*") for p in listed)
    principal = documents()["runner-policy"]
    assert not allows(principal, "s3:PutObject", f"{bucket}/titanic/data-other/x")
    assert not allows(principal, "s3:PutObject", "arn:aws:s3:::another-bucket/titanic/data/x")
    execution = documents()["execution-role-policy"]
    assert allows(execution, "s3:GetObject", f"{bucket}/titanic/data/train/train.csv")
    assert not allows(execution, "s3:PutObject", f"{bucket}/titanic/data/train/train.csv")  # reads data only


def test_trust_policy_is_sagemaker_only_with_confused_deputy_conditions() -> None:
    trust = documents()["execution-role-trust"]
    jobs, hosting = statements(trust)
    for statement in (jobs, hosting):
        assert statement["Principal"] == {"Service": "sagemaker.amazonaws.com"}
        assert statement["Action"] == "sts:AssumeRole"
        assert set(statement["Condition"]) == {"ArnLike"}  # no statement without a SourceArn condition
    assert jobs["Condition"]["ArnLike"]["aws:SourceArn"] == [
        "arn:aws:sagemaker:us-east-1:123456789012:training-job/titanic-lgbm-*",
        "arn:aws:sagemaker:us-east-1:123456789012:hyper-parameter-tuning-job/titanic-lgbm-*",
        "arn:aws:sagemaker:us-east-1:123456789012:transform-job/titanic-lgbm-predict-*",
        "arn:aws:sagemaker:us-east-1:123456789012:processing-job/titanic-lgbm-eval-*",
        "arn:aws:sagemaker:us-east-1:123456789012:processing-job/titanic-lgbm-prep-*",
    ]
    # Hosting: exactly AWS's documented literal, never a model or endpoint ARN.
    assert hosting["Condition"]["ArnLike"]["aws:SourceArn"] == "arn:aws:sagemaker:us-east-1:123456789012:*"


def test_the_runner_policy_passes_parliament_with_nothing_excused() -> None:
    """The everyday runner (cron, CI) holds no resource-policy or privilege-escalation right."""
    failing, accepted = iam.lint(documents(), [])
    assert [f for f in failing if f.startswith("runner-policy")] == []
    allowlist = json.loads((REPO / "iam/parliament-allowlist.json").read_text())["allowed"]
    assert not [a for a in allowlist if a["document"] == "runner-policy"]
    failing, accepted = iam.lint(documents(), allowlist)
    assert failing == []
    assert all(a["reason"] for a in allowlist) and all(not a.startswith("runner-policy") for a in accepted)


def test_bucket_policy_and_creation_rights_are_the_set_up_principals_only() -> None:
    docs = documents()
    bucket = "arn:aws:s3:::titanic-sagemaker-toolkit-demo"
    for action in ("s3:PutBucketPolicy", "s3:CreateBucket", "s3:DeleteBucket", "s3:PutBucketTagging"):
        assert allows(docs["setup-policy"], action, bucket)
        assert not allows(docs["runner-policy"], action, bucket)
    repo = "arn:aws:ecr:us-east-1:123456789012:repository/titanic-lightgbm"
    for action in ("ecr:CreateRepository", "ecr:PutLifecyclePolicy", "ecr:DeleteRepository", "ecr:TagResource"):
        assert allows(docs["setup-policy"], action, repo) and not allows(docs["runner-policy"], action, repo)


def test_every_not_seen_action_is_allowed_explained_and_really_called() -> None:
    """An entry must name a file and a string in it: the list cannot excuse an action the code
    never calls, and an allowed action that nothing calls fails the recorded-audit test."""
    allowed = iam_documents.allowed_actions(documents()["runner-policy"])
    assert set(NOT_SEEN) <= allowed, set(NOT_SEEN) - allowed
    for action, entry in NOT_SEEN.items():
        assert len(entry["why"]) > 10, action
        source = code_only(REPO / entry["called_in"])
        assert entry["call"] in source, f"{action}: {entry['called_in']} never calls {entry['call']!r}"


def code_only(path: Path) -> str:
    """A file's code without its comments and docstrings (Python tokens joined as written, bash
    lines cut at a comment), so that a comment naming a call cannot stand in for the call."""
    if path.suffix != ".py":
        return "\n".join(re.sub(r"(^|\s)#.*$", "", line) for line in path.read_text().splitlines())
    kept, previous = [], tokenize.NEWLINE
    with path.open("rb") as handle:
        for token in tokenize.tokenize(handle.readline):
            docstring = token.type == tokenize.STRING and previous in (
                tokenize.NEWLINE,
                tokenize.INDENT,
                tokenize.ENCODING,
            )
            if token.type != tokenize.COMMENT and not docstring:
                kept.append(token.string)
            if token.type not in (tokenize.NL, tokenize.COMMENT):
                previous = token.type
    return "".join(kept)


def test_code_only_ignores_what_a_comment_or_docstring_says(tmp_path: Path) -> None:
    script = tmp_path / "m.py"
    script.write_text(
        '"""calls get_role( here"""\n# describe_log_streams(\ndef f(c):\n    return c.get_products(x="pull")\n'
    )
    text = code_only(script)
    assert "get_products(" in text and '"pull"' in text
    assert "get_role(" not in text and "describe_log_streams(" not in text
    assert all(len(reason) > 20 for reason in WILDCARD.values())


@pytest.mark.parametrize("name", ["runner-policy", "execution-role-policy"])
def test_job_logs_are_granted_in_the_arn_form_aws_checks(name: str) -> None:
    """CloudWatch Logs checks DescribeLogStreams and friends against log-group:NAME:* (AWS's
    'Overview of managing access permissions to your CloudWatch Logs resources'); a policy
    naming the bare group denies them, and the SDK's log streaming then fails."""
    policy = documents()[name]
    logs_actions = [a for s in statements(policy) for a in iam.as_list(s["Action"]) if a.startswith("logs:")]
    assert logs_actions
    for action in logs_actions:
        assert allows(policy, action, LOG_GROUP_ARN), action
        stream = LOG_GROUP_ARN[:-1] + "log-stream:titanic-lgbm-2026-01-01-00-00-00-000/algo-1-1700000000"
        assert allows(policy, action, stream), action


@pytest.mark.parametrize("partition", ["aws-cn", "aws-us-gov"])
def test_arns_are_built_in_the_callers_partition(partition: str) -> None:
    caller = Caller(account="123456789012", partition=partition, arn=f"arn:{partition}:iam::123456789012:user/x")
    region = "cn-north-1" if partition == "aws-cn" else "us-gov-west-1"
    role = f"arn:{partition}:iam::123456789012:role/service-role/titanic-sagemaker-execution"
    docs = documents(caller, AWS_REGION=region, ROLE_ARN=role)
    resources = [r for d in docs.values() for s in statements(d) for r in iam.as_list(s.get("Resource", []))]
    assert resources and all(r == "*" or r.startswith(f"arn:{partition}:") for r in resources), resources
    trust = statements(docs["execution-role-trust"])[0]["Condition"]["ArnLike"]["aws:SourceArn"]
    assert all(pattern.startswith(f"arn:{partition}:sagemaker:{region}:") for pattern in trust)


def test_the_account_comes_from_the_caller_not_from_role_arn() -> None:
    """ROLE_ARN ships with a placeholder account; rendering for another caller must use the
    caller's account everywhere, and a ROLE_ARN in another account is refused by name."""
    other = Caller(account="444455556666", partition="aws", arn="arn:aws:iam::444455556666:user/x")
    docs = documents(other, ROLE_ARN="arn:aws:iam::444455556666:role/service-role/titanic-sagemaker-execution")
    text = json.dumps(docs)
    assert "123456789012" not in text and "444455556666" in text
    hosting = names.hosting_source_arn("aws", "us-east-1", "444455556666")
    assert policy.admits(docs["execution-role-trust"], hosting, "444455556666")
    assert not policy.admits(docs["execution-role-trust"], names.hosting_source_arn("aws", "us-east-1", "123456789012"))
    expected = (
        r"ROLE_ARN names account 123456789012 \(aws\) but the credentials are for account 444455556666 "
        r"\(aws\); set ROLE_ARN to arn:aws:iam::444455556666:role"
    )
    with pytest.raises(iam.IamError, match=expected):
        iam.check_role_account(load(shipped()), other)


def test_a_template_placeholder_without_a_setting_is_named(tmp_path: Path) -> None:
    (tmp_path / "runner-policy.json").write_text('{"Resource": "${NO_SUCH_SETTING}"}')
    for name in ("setup-policy", "execution-role-policy", "execution-role-trust"):
        (tmp_path / f"{name}.json").write_text((REPO / "iam" / f"{name}.json").read_text())
    with pytest.raises(iam.IamError, match=r"uses \$\{NO_SUCH_SETTING\}, which no setting fills"):
        iam.render(load(shipped()), CALLER, tmp_path)


# ---- dynamic: the pipeline under IAM enforcement on the embedded stack -------------------

FREE_CALLS = 9  # three users, their policies and keys, before enforcement starts


def _moto_api(pipe: Checkout, path: str, method: str = "POST") -> str:
    request = urllib.request.Request(f"{pipe.endpoint}/moto-api/recorder/{path}", method=method)
    import ssl

    context = ssl.create_default_context(cafile=str(pipe.root / ".local/tls/cert.pem"))
    with urllib.request.urlopen(request, context=context, timeout=60) as response:
        return response.read().decode()


def _keys(pipe: Checkout, user: str, policy: dict[str, Any]) -> dict[str, str]:
    iam_client = pipe.client("iam")
    iam_client.create_user(UserName=user)
    iam_client.put_user_policy(UserName=user, PolicyName=f"{user}-policy", PolicyDocument=json.dumps(policy))
    key = iam_client.create_access_key(UserName=user)["AccessKey"]
    return {"id": key["AccessKeyId"], "secret": key["SecretAccessKey"]}


def _runner_with_the_stacks_policy(
    pipe: Checkout, admin: dict[str, str], rendered: dict[str, Any]
) -> tuple[dict[str, str], dict[str, Any]]:
    """The runner: a user holding the managed policies the set-up stack created (the runner
    policy in its two parts) and nothing else. Returns its keys and the document the stack
    deployed, the parts' statements joined. Its one change is moto's: services moto checks only
    against "*" get "*" (widen_for_emulator), as a new default version of each of those policies."""
    iam_client = client_as(pipe, admin, "iam")
    listed = {p["PolicyName"]: p for p in iam_client.list_policies(Scope="Local")["Policies"]}
    iam_client.create_user(UserName="toolkit-runner")
    statements = []
    for name in ("titanic-lgbm-runner", "titanic-lgbm-runner-2"):
        arn, version = listed[name]["Arn"], listed[name]["DefaultVersionId"]
        deployed = iam_client.get_policy_version(PolicyArn=arn, VersionId=version)["PolicyVersion"]["Document"]
        deployed = json.loads(unquote(deployed)) if isinstance(deployed, str) else deployed
        statements += deployed["Statement"]
        widened = json.dumps(iam.widen_for_emulator(deployed))
        iam_client.create_policy_version(PolicyArn=arn, PolicyDocument=widened, SetAsDefault=True)
        iam_client.attach_user_policy(UserName="toolkit-runner", PolicyArn=arn)
    key = iam_client.create_access_key(UserName="toolkit-runner")["AccessKey"]
    return {"id": key["AccessKeyId"], "secret": key["SecretAccessKey"]}, {**rendered, "Statement": statements}


def client_as(pipe: Checkout, keys: dict[str, str], service: str) -> Any:
    return boto3.Session(
        aws_access_key_id=keys["id"], aws_secret_access_key=keys["secret"], region_name="us-east-1"
    ).client(
        service,
        endpoint_url=pipe.endpoint,
        verify=str(pipe.root / ".local/tls/cert.pem"),
        config=Config(retries={"max_attempts": 1}),
    )


def as_user(keys: dict[str, str]) -> dict[str, str]:
    return {"LOCAL_ACCESS_KEY_ID": keys["id"], "LOCAL_SECRET_ACCESS_KEY": keys["secret"]}


@contextlib.contextmanager
def aws_at(pipe: Checkout, keys: dict[str, str]) -> Iterator[boto3.Session]:
    """A session as `keys` against this copy's emulator, with the SDK pointed there too (it
    reads the endpoint from the environment), and the environment put back after."""
    env = {"AWS_ENDPOINT_URL": pipe.endpoint, "AWS_CA_BUNDLE": str(pipe.root / ".local/tls/cert.pem")}
    saved = {key: os.environ.get(key) for key in env}
    os.environ.update(env)
    try:
        yield boto3.Session(aws_access_key_id=keys["id"], aws_secret_access_key=keys["secret"], region_name="us-east-1")
    finally:
        for key, value in saved.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value


def tuning_job_on_aws_as(pipe: Checkout, keys: dict[str, str]) -> dict[str, Any]:
    """make tune-jobs' TARGET=aws request (the SDK's HyperparameterTuner, as launcher/tuning.py
    builds it) sent as the runner to the enforced emulator, then described. Only moto records
    it: nothing trains."""
    with aws_at(pipe, keys) as session:
        settings = load({**shipped(), **pipe.settings, "TARGET": "aws"})
        space = tuning.load_search_space(REPO / settings.tune.search_space)
        name = tuning.tuning_name(settings, datetime.now(UTC))
        image = "123456789012.dkr.ecr.us-east-1.amazonaws.com/titanic-lightgbm:t"
        tuner = training.build_tuner(settings, space, image, sdk.session(settings, session), whoami(session).arn)
        tuner.fit(training.training_inputs(settings), job_name=name, wait=False, include_cls_metadata=False)
        return session.client("sagemaker").describe_hyper_parameter_tuning_job(HyperParameterTuningJobName=name)


def pipeline_on_aws_as(pipe: Checkout, keys: dict[str, str]) -> dict[str, Any]:
    """make pipeline's TARGET=aws calls (launcher/lib/pipeline.py's definition, created, updated
    and started; the execution described and listed as make status lists it) sent as the
    runner to the enforced emulator. moto stores the pipeline and runs no step; clean-up later
    deletes it."""
    with aws_at(pipe, keys) as session:
        settings = load({**shipped(), **pipe.settings, "TARGET": "aws"})
        me = whoami(session).arn
        inputs = flow.Inputs(
            image_uri="123456789012.dkr.ecr.us-east-1.amazonaws.com/titanic-lightgbm:t",
            raw_uri=f"{settings.data_uri}/raw",
            test_uri=f"{settings.data_uri}/test/test.csv",
            training_type=settings.instance_type,
            processing_type=settings.instance_type,
            transform_type=settings.instance_type,
            launched_by=me,
            supported_types=(["ml.m5.large"], ["ml.m5.large"]),
        )
        prefixes = names.pipeline_prefixes(settings.base_job_name)
        pipe_definition = flow.definition(settings, inputs, flow.session(settings, session), prefixes)
        sm = session.client("sagemaker")
        upserts = [flow.upsert(pipe_definition, settings, sm, job_tags(settings, me)) for _ in range(2)]
        arn = flow.start(pipe_definition, me)
        return {
            "upserts": upserts,
            "role": sm.describe_pipeline(PipelineName=settings.pipeline_name)["RoleArn"],
            "execution": sm.describe_pipeline_execution(PipelineExecutionArn=arn),
            "recent": executions.recent(sm, settings),
        }


@pytest.fixture(scope="module")
def enforced(tmp_path_factory: pytest.TempPathFactory, offline_base: str) -> Iterator[dict[str, Any]]:
    pipe = new_checkout(tmp_path_factory.mktemp("iam"), offline_base)
    pipe.env["INITIAL_NO_AUTH_ACTION_COUNT"] = str(FREE_CALLS)
    # moto's account, as STS there reports it: rendered here, so no call is spent on it.
    docs = iam.render(load({**shipped(), **pipe.settings}), CALLER)
    up = pipe.make("local-up")
    assert up.returncode == 0, up.stderr
    admin = _keys(
        pipe,
        "test-admin",
        {"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": "*", "Resource": "*"}]},
    )
    setup = _keys(pipe, "toolkit-setup", iam.widen_for_emulator(docs["setup-policy"]))
    # The CI deploy job's identity: approve and deploy, nothing else (iam/deploy-policy.json).
    deployer = _keys(pipe, "toolkit-deployer", iam.widen_for_emulator(docs["deploy-policy"]))
    bootstrap = pipe.make("bootstrap", **as_user(setup))  # the set-up stack, deployed as the administrator
    runner, stack_runner_policy = _runner_with_the_stacks_policy(pipe, admin, docs["runner-policy"])
    _moto_api(pipe, "reset-recording")
    _moto_api(pipe, "start-recording")
    run = pipe.make("all", **as_user(runner))
    predict = pipe.make("predict", **as_user(runner))
    tune = pipe.make("tune-jobs", TUNE_MAX_JOBS="2", **as_user(runner))
    tuning_job = tuning_job_on_aws_as(pipe, runner)
    who = {"approve": deployer, "deploy": deployer}
    lifecycle = [
        pipe.make(verb, **as_user(who.get(verb, runner)))
        for verb in ("evaluate", "register", "approve", "deploy", "invoke", "models", "undeploy")
    ]
    flow_run = pipe.make("pipeline", **as_user(runner))  # after make register: it registers its own run
    flow_on_aws = pipeline_on_aws_as(pipe, runner)
    listing = pipe.make("clean-resources", CONFIRM="yes", **as_user(runner))
    _moto_api(pipe, "stop-recording")
    recording = _moto_api(pipe, "download-recording", method="GET")
    yield {
        "pipe": pipe,
        "bootstrap": bootstrap,
        "stack_runner_policy": stack_runner_policy,
        "run": run,
        "predict": predict,
        "tune": tune,
        "lifecycle": lifecycle,
        "tuning_job": tuning_job,
        "flow": flow_run,
        "flow_on_aws": flow_on_aws,
        "listing": listing,
        "policy": docs["runner-policy"],
        "admin": admin,
        "runner": runner,
        "used": actions_in(recording),
    }
    pipe.cleanup()


@pytest.mark.stack
def test_the_pipeline_runs_with_only_the_runner_policy_after_the_set_up(enforced: dict[str, Any]) -> None:
    assert enforced["bootstrap"].returncode == 0, enforced["bootstrap"].stderr[-3000:]
    # The runner holds the very policy the set-up stack deployed: iam/runner-policy.json, rendered.
    assert enforced["stack_runner_policy"] == enforced["policy"]
    run = enforced["run"]
    assert run.returncode == 0, run.stdout[-2000:] + run.stderr[-3000:]
    assert "] verified titanic-lgbm-" in run.stderr
    predict = enforced["predict"]
    assert predict.returncode == 0, predict.stdout[-2000:] + predict.stderr[-3000:]
    assert "(418 rows," in predict.stderr
    tune = enforced["tune"]  # the embedded stack's tuning: local-mode trials, S3 only
    assert tune.returncode == 0, tune.stdout[-2000:] + tune.stderr[-3000:]
    # ... and the TARGET=aws tuning job's request, as the runner: created and described.
    assert enforced["tuning_job"]["HyperParameterTuningJobStatus"] == "Completed"
    assert enforced["flow"].returncode == 0, enforced["flow"].stderr[-3000:]  # the embedded stack's execution
    assert enforced["flow_on_aws"]["upserts"] == ["created", "updated"]
    held = client_as(enforced["pipe"], enforced["admin"], "cloudformation").list_stack_resources(
        StackName="titanic-lgbm-setup"
    )["StackResourceSummaries"]
    roles = {r["LogicalResourceId"]: r["PhysicalResourceId"] for r in held if r["ResourceType"] == "AWS::IAM::Role"}
    assert enforced["flow_on_aws"]["role"].endswith(f"/{roles['PipelineRole']}")  # the stack's pipeline role
    assert enforced["flow_on_aws"]["recent"] and enforced["flow_on_aws"]["execution"]["PipelineExecutionArn"]
    for step in enforced["lifecycle"]:  # register, approve, deploy, invoke, models, undeploy
        assert step.returncode == 0, [*step.args[2:3], step.stdout[-1500:], step.stderr[-3000:]]
    assert enforced["listing"].returncode == 0, enforced["listing"].stderr
    # Enforcement was really on: unknown credentials are refused.
    stranger = client_as(enforced["pipe"], {"id": "AKIAUNKNOWN000000000", "secret": "x"}, "s3")
    with pytest.raises(ClientError):
        stranger.list_objects_v2(Bucket="titanic-sagemaker-toolkit-demo", Prefix="titanic/data/")


@pytest.mark.stack
def test_every_allowed_action_is_used_or_explained(enforced: dict[str, Any]) -> None:
    used = set(enforced["used"]) - NEEDS_NO_PERMISSION
    allowed = iam_documents.allowed_actions(enforced["policy"])
    assert not [a for a in used if "UNMAPPED" in a], used
    assert used <= allowed, f"used but not allowed: {used - allowed}"
    unexplained = allowed - used - set(NOT_SEEN)
    assert not unexplained, f"allowed, never used, and not explained in iam/not-seen-on-emulator.json: {unexplained}"
    stale = used & set(NOT_SEEN)
    assert not stale, f"listed as not seen on the emulator, but seen: {stale}"
    print("actions seen on the emulator:", json.dumps(enforced["used"], sort_keys=True))


@pytest.mark.stack
def test_the_runner_cannot_write_elsewhere(enforced: dict[str, Any]) -> None:
    """The negatives moto enforces: S3 objects and buckets outside the policy, other IAM roles."""
    pipe = enforced["pipe"]
    admin_s3 = client_as(pipe, enforced["admin"], "s3")
    admin_s3.create_bucket(Bucket="another-teams-bucket")
    s3 = client_as(pipe, enforced["runner"], "s3")
    s3.put_object(Bucket="titanic-sagemaker-toolkit-demo", Key="titanic/data/probe.txt", Body=b"ours")  # allowed
    for bucket, key in [
        ("another-teams-bucket", "titanic/data/x.csv"),
        ("titanic-sagemaker-toolkit-demo", "other/x.csv"),
        ("titanic-sagemaker-toolkit-demo", "titanic/data-other/x.csv"),
    ]:
        with pytest.raises(ClientError, match=r"AccessDenied|Forbidden|403"):
            s3.put_object(Bucket=bucket, Key=key, Body=b"not allowed")
    with pytest.raises(ClientError, match=r"AccessDenied|Forbidden|403"):
        s3.delete_bucket(Bucket="another-teams-bucket")
    iam_client = client_as(pipe, enforced["runner"], "iam")
    with pytest.raises(ClientError, match="AccessDenied"):
        iam_client.get_role(RoleName="some-admin-role")
    with pytest.raises(ClientError, match="AccessDenied"):
        iam_client.create_role(RoleName="escalate", AssumeRolePolicyDocument="{}")


def test_endpoint_logs_are_granted_for_this_endpoint_only() -> None:
    """sagemaker-roles.md (CreateModel execution role permissions): the endpoint's containers
    log to /aws/sagemaker/Endpoints/NAME with the model's role; where AWS's errors point the
    user. The role may write there, the runner read there (make logs JOB=<endpoint>)."""
    docs = documents()
    group = "arn:aws:logs:us-east-1:123456789012:log-group:/aws/sagemaker/Endpoints/titanic-survival:*"
    other = group.replace("titanic-survival", "someone-elses")
    for action in ("logs:CreateLogGroup", "logs:CreateLogStream", "logs:PutLogEvents", "logs:DescribeLogStreams"):
        assert allows(docs["execution-role-policy"], action, group), action
        assert not allows(docs["execution-role-policy"], action, other), action
    for action in ("logs:DescribeLogStreams", "logs:GetLogEvents"):
        assert allows(docs["runner-policy"], action, group), action
        assert not allows(docs["runner-policy"], action, other), action


def test_wildcard_actions_have_no_required_resource_type() -> None:
    """An action may stay on Resource '*' only when AWS's Service Authorization Reference gives
    it no resource type it requires (parliament ships that reference). ListModelPackages lists
    model-package as optional: AWS documents no ARN a group's listing is authorized against,
    so a scoped grant could deny 'make models' on a real account, which moto cannot show."""
    definition = json.loads((Path(parliament.__file__).parent / "iam_definition.json").read_text())
    privileges = {
        f"{service['prefix']}:{p['privilege']}": [r["resource_type"] for r in p["resource_types"]]
        for service in definition
        for p in service["privileges"]
    }
    for action in WILDCARD:
        assert action in privileges, f"{action} is not in the Service Authorization Reference"
        required = [r for r in privileges[action] if r.endswith("*")]
        assert not required, f"{action} requires {required}: scope it instead of '*'"
    assert privileges["sagemaker:ListModelPackages"] == ["model-package"]  # optional, as the reason says
    assert "optional" in WILDCARD["sagemaker:ListModelPackages"]


def test_the_execution_role_lets_a_processing_job_read_the_model_and_log() -> None:
    """make evaluate's job lists and reads the training job's model.tar.gz under OUTPUT_PREFIX,
    writes evaluation.json beside it, and logs to its own group."""
    role = documents()["execution-role-policy"]
    listing = next(s for s in statements(role) if "s3:ListBucket" in iam.as_list(s["Action"]))
    assert "titanic/output/*" in listing["Condition"]["StringLike"]["s3:prefix"]
    model = "arn:aws:s3:::titanic-sagemaker-toolkit-demo/titanic/output/j/output/model.tar.gz"
    assert allows(role, "s3:GetObject", model)
    assert allows(role, "s3:PutObject", "arn:aws:s3:::titanic-sagemaker-toolkit-demo/titanic/output/j/evaluation/x")
    group = "arn:aws:logs:us-east-1:123456789012:log-group:/aws/sagemaker/ProcessingJobs:*"
    for action in ("logs:CreateLogStream", "logs:PutLogEvents"):
        assert allows(role, action, group), action
