"""Names, patterns and trust, evaluated on the rendered documents with IAM's own matching.

Every name the toolkit makes (launcher/lib/names.py), for the longest and the shortest values the
settings accept, must fit its API's limit and fall inside the runner policy's grant, the trust
policy's SourceArn patterns (jobs) and clean-up's prefixes; the patterns the policies use are
exactly names.PATTERNS. The trust policy must admit every SourceArn SageMaker documents
presenting for the toolkit's work, and refuse another account's.
"""

from __future__ import annotations

import json
import re
import string
from datetime import UTC, datetime
from typing import Any

import botocore.session
import pytest
from conftest import REPO, shipped
from sagemaker.utils import name_from_base

from launcher import cleanup, iam, preflight
from launcher.lib import iam_documents, names, policy
from launcher.lib.caller import Caller
from launcher.lib.config import SettingsError, load

CALLER = Caller(account="123456789012", partition="aws", arn="arn:aws:iam::123456789012:user/admin")
NOW = datetime(2026, 12, 31, 23, 59, 59, tzinfo=UTC)
LONGEST = {
    "BASE_JOB_NAME": "b" * names.BASE_JOB_NAME_MAX,
    "ENDPOINT_NAME": "e" * names.ENDPOINT_NAME_MAX,
    "MODEL_PACKAGE_GROUP": "g" * names.MODEL_PACKAGE_GROUP_MAX,
}
SHORTEST = {"BASE_JOB_NAME": "b", "ENDPOINT_NAME": "e", "MODEL_PACKAGE_GROUP": "g"}


def rendered(**changes: str) -> dict[str, dict[str, Any]]:
    return iam.render(load({**shipped(), **changes}), CALLER)


def sagemaker_arn(resource: str) -> str:
    return names.arn("aws", "us-east-1", "123456789012", resource)


def made_names(settings: Any) -> dict[str, list[str]]:
    """What the toolkit names, per SageMaker resource type, as the code makes them."""
    tuning = names.tuning_job(settings.base_job_name, NOW)
    transform = names.transform_job(settings.base_job_name, NOW)
    evaluation = names.evaluation_job(settings.base_job_name, NOW)
    endpoint_object = names.endpoint_object(settings.endpoint_name, 10**names.VERSION_DIGITS - 1, NOW)
    return {
        "training-job": [name_from_base(settings.base_job_name), f"{tuning}-001-0a1b2c3d"],  # a job; a tuning trial
        "hyper-parameter-tuning-job": [tuning],
        "transform-job": [transform],
        "processing-job": [evaluation],
        "model": [transform, endpoint_object],
        "endpoint-config": [endpoint_object],
        "endpoint": [settings.endpoint_name],
    }


def limit_of(resource_type: str) -> int:
    return names.TUNING_NAME_MAX if resource_type == "hyper-parameter-tuning-job" else names.NAME_MAX


def runner_resources(document: dict[str, Any], resource_type: str) -> set[str]:
    """The name parts of the runner policy's SageMaker resources of one type."""
    found = set()
    for statement in document["Statement"]:
        for resource in policy.as_list(statement["Resource"]):
            parts = resource.split(":", 5)
            if len(parts) == 6 and parts[2] == "sagemaker" and parts[5].split("/", 1)[0] == resource_type:
                found.add(parts[5].split("/", 1)[1])
    return found


@pytest.mark.parametrize("values", [LONGEST, SHORTEST], ids=["longest", "shortest"])
def test_every_name_fits_its_limit_its_grant_the_trust_and_clean_up(values: dict[str, str]) -> None:
    settings = load({**shipped(), **values})
    docs = iam.render(settings, CALLER)
    for resource_type, made in made_names(settings).items():
        for name in made:
            assert len(name) <= limit_of(resource_type), (resource_type, name, len(name))
            assert names.NAME_RE.match(name), name
            arn = sagemaker_arn(f"{resource_type}/{name}")
            granted = [
                f"arn:aws:sagemaker:us-east-1:123456789012:{resource_type}/{p}"
                for p in runner_resources(docs["runner-policy"], resource_type)
            ]
            assert any(policy.arn_like(pattern, arn) for pattern in granted), (arn, granted)
            if resource_type in ("training-job", "hyper-parameter-tuning-job", "transform-job", "processing-job"):
                jobs = {"Statement": docs["execution-role-trust"]["Statement"][:1]}
                assert policy.admits(jobs, arn, "123456789012"), arn
            # Clean-up takes exactly these names for the toolkit's (its listing matches with names.owned).
            assert names.owned(settings, resource_type, name), (resource_type, name)
    # ... and not a teammate's endpoint whose name merely starts with ENDPOINT_NAME.
    assert not names.owned(settings, "endpoint", f"{settings.endpoint_name}-2")
    assert {k.resource_type for k in cleanup.KINDS} == set(made_names(settings))


def test_the_policies_grant_exactly_the_patterns_names_declares() -> None:
    """The one statement of the name scheme: names.PATTERNS, rendered, is what the runner
    policy grants per SageMaker resource type (no more, no fewer)."""
    settings = load(shipped())
    values = iam_documents.template_values(settings, CALLER)
    docs = iam.render(settings, CALLER)
    for resource_type, patterns in names.PATTERNS.items():
        expected = {string.Template(p).substitute(values) for p in patterns}
        assert runner_resources(docs["runner-policy"], resource_type) == expected, resource_type


def test_a_name_one_longer_than_the_limit_is_refused_with_the_limit() -> None:
    for var, longest in (
        ("BASE_JOB_NAME", names.BASE_JOB_NAME_MAX),
        ("ENDPOINT_NAME", names.ENDPOINT_NAME_MAX),
        ("MODEL_PACKAGE_GROUP", names.MODEL_PACKAGE_GROUP_MAX),
    ):
        with pytest.raises(SettingsError, match=rf"{var}: .* at most {longest} fit"):
            load({**shipped(), var: "n" * (longest + 1)})


def test_the_limits_are_the_api_models() -> None:
    """NAME_MAX and TUNING_NAME_MAX as botocore's SageMaker model states them."""
    model = botocore.session.get_session().get_service_model("sagemaker")
    for shape, limit in (
        ("TrainingJobName", names.NAME_MAX),
        ("TransformJobName", names.NAME_MAX),
        ("ProcessingJobName", names.NAME_MAX),
        ("ModelName", names.NAME_MAX),
        ("EndpointConfigName", names.NAME_MAX),
        ("EndpointName", names.NAME_MAX),
        ("EntityName", names.NAME_MAX),
        ("HyperParameterTuningJobName", names.TUNING_NAME_MAX),
    ):
        assert model.shape_for(shape).metadata["max"] == limit, shape


# ---- the trust policy, as IAM evaluates it ----------------------------------------------------


def test_arn_like_compares_six_components_as_case_sensitive_globs() -> None:
    job = "arn:aws:sagemaker:us-east-1:1:training-job"
    assert policy.arn_like(f"{job}/t-*", f"{job}/t-1")
    assert not policy.arn_like(f"{job}/t-*", f"{job}/T-1")
    assert not policy.arn_like("arn:aws:sagemaker:us-east-1:1:model/x*", "arn:aws:sagemaker:us-east-1:1:*")
    assert policy.arn_like("arn:aws:sagemaker:us-east-1:1:*", "arn:aws:sagemaker:us-east-1:1:*")
    assert not policy.arn_like("arn:aws:sagemaker:us-east-1:1:*", "arn:aws:sagemaker:us-east-1:2:*")
    assert policy.arn_like("arn:aws:sagemaker:*:1:*", "arn:aws:sagemaker:eu-west-1:1:endpoint/e")
    assert not policy.arn_like("arn:aws:sagemaker:us-east-1:1:[ab]", "arn:aws:sagemaker:us-east-1:1:a")  # no classes


def documented_source_arns(account: str) -> dict[str, str]:
    """What AWS's confused-deputy page says SageMaker presents, per feature (for this toolkit's names)."""
    settings = load(shipped())
    made = made_names(settings)
    tuning = "hyper-parameter-tuning-job"
    return {
        "training": names.arn("aws", "us-east-1", account, f"training-job/{made['training-job'][0]}"),
        "tuning trial": names.arn("aws", "us-east-1", account, f"training-job/{made['training-job'][1]}"),
        "tuning": names.arn("aws", "us-east-1", account, f"hyper-parameter-tuning-job/{made[tuning][0]}"),
        "batch transform": names.arn("aws", "us-east-1", account, f"transform-job/{made['transform-job'][0]}"),
        "processing (make evaluate)": names.arn(
            "aws", "us-east-1", account, f"processing-job/{made['processing-job'][0]}"
        ),
        "real-time, serverless and asynchronous inference": names.hosting_source_arn("aws", "us-east-1", account),
    }


@pytest.mark.parametrize("feature", sorted(documented_source_arns("123456789012")))
def test_the_rendered_trust_admits_every_documented_source_arn_and_not_another_accounts(feature: str) -> None:
    trust = rendered()["execution-role-trust"]
    mine = documented_source_arns("123456789012")[feature]
    assert policy.admits(trust, mine, "123456789012") and policy.admits(trust, mine), feature
    theirs = documented_source_arns("999988887777")[feature]
    assert not policy.admits(trust, theirs, "999988887777") and not policy.admits(trust, theirs)


def test_the_previous_trust_refused_hosting_and_the_preflight_says_so() -> None:
    """The trust policy before this fix named model/ and endpoint/ patterns: IAM never matches
    them against the literal SageMaker presents for hosting. The preflight now catches it."""
    old = rendered()["execution-role-trust"]["Statement"][0]
    base = "arn:aws:sagemaker:us-east-1:123456789012"
    old = {
        **old,
        "Condition": {
            "ArnLike": {
                "aws:SourceArn": [
                    *old["Condition"]["ArnLike"]["aws:SourceArn"],
                    f"{base}:model/titanic-survival-v*",
                    f"{base}:endpoint/titanic-survival",
                ]
            }
        },
    }
    trust = {"Version": "2012-10-17", "Statement": [old]}
    assert not policy.admits(trust, names.hosting_source_arn("aws", "us-east-1", "123456789012"))
    refused = preflight.trust_problems(trust, load({**shipped(), "TARGET": "aws"}), CALLER, NOW)
    assert len(refused) == 1
    assert refused[0].startswith("hosting (make deploy) (arn:aws:sagemaker:us-east-1:123456789012:*)")
    assert preflight.trust_problems(rendered()["execution-role-trust"], load(shipped()), CALLER, NOW) == []


def test_the_trust_template_states_the_hosting_literal_once_as_aws_writes_it() -> None:
    text = (REPO / "iam/execution-role-trust.json").read_text()
    assert text.count('"arn:${PARTITION}:sagemaker:${REGION}:${ACCOUNT_ID}:*"') == 1
    assert not re.search(r":(model|endpoint|endpoint-config)/", text), "hosting must not name models or endpoints"
    json.loads(text)


def pipeline_jobs(base: str) -> dict[str, str]:
    """The names SageMaker Pipelines gives the pipeline's jobs: the definition's prefix, then
    -<execution id (12)>-<entity token (10, mixed case)>-<failure count> (sagemaker-python-sdk
    PR 3946; docs/aws-rules.md), with a three-digit count for the longest case."""
    return {step: f"{prefix}-a1b2c3d4e5f6-AbCdEfGhIj-999" for step, prefix in names.pipeline_prefixes(base).items()}


@pytest.mark.parametrize("values", [LONGEST, SHORTEST], ids=["longest", "shortest"])
def test_the_pipelines_jobs_fit_their_limit_grants_trust_and_clean_up(values: dict[str, str]) -> None:
    settings = load({**shipped(), **values})
    docs = iam.render(settings, CALLER)
    kinds = {
        "prepare": "processing-job",
        "train": "training-job",
        "evaluate": "processing-job",
        "model": "model",
        "transform": "transform-job",
    }
    for step, name in pipeline_jobs(settings.base_job_name).items():
        kind = kinds[step]
        assert len(name) <= names.NAME_MAX, (step, name)
        arn = sagemaker_arn(f"{kind}/{name}")
        # The pipeline's role creates it; the runner follows, stops and cleans it up.
        for document in (docs["pipeline-role-policy"], docs["runner-policy"]):
            granted = [r for s in document["Statement"] for r in policy.as_list(s["Resource"])]
            assert any(policy.arn_like(pattern, arn) for pattern in granted), (step, arn)
        if kind != "model":
            jobs = {"Statement": docs["execution-role-trust"]["Statement"][:1]}
            assert policy.admits(jobs, arn, "123456789012"), arn
        assert names.owned(settings, kind, name), (step, name)


def test_the_pipeline_role_trusts_the_toolkits_pipeline_in_the_one_form_aws_documents() -> None:
    """security-confused-deputy-prevention.md, SageMaker Pipelines: aws:SourceArn
    arn:PARTITION:sagemaker:REGION:ACCOUNT:pipeline/NAME/* ("Do not replace ... with the full ARN
    of a specific pipeline execution"); the asterisk covers all of that pipeline's executions."""
    trust = rendered()["pipeline-role-trust"]
    (statement,) = trust["Statement"]
    assert statement["Principal"] == {"Service": "sagemaker.amazonaws.com"} and statement["Action"] == "sts:AssumeRole"
    pattern = "arn:aws:sagemaker:us-east-1:123456789012:pipeline/titanic-survival/*"
    assert statement["Condition"] == {"ArnLike": {"aws:SourceArn": pattern}}
    execution = sagemaker_arn("pipeline/titanic-survival/execution/a1b2c3d4e5f6")
    assert policy.admits(trust, execution, "123456789012")
    for other in (
        sagemaker_arn("pipeline/someone-elses/execution/a1b2c3d4e5f6"),
        names.arn("aws", "us-east-1", "999988887777", "pipeline/titanic-survival/execution/a1b2c3d4e5f6"),
        sagemaker_arn("training-job/titanic-lgbm-2026-01-01-00-00-00-000"),
    ):
        assert not policy.admits(trust, other), other
    # The jobs' statement of the execution role's trust does not admit the pipeline (its hosting
    # statement is AWS's literal for the account, which admits every SageMaker ARN of it).
    assert not policy.admits({"Statement": rendered()["execution-role-trust"]["Statement"][:1]}, execution)


def test_the_pipeline_role_may_do_what_aws_lists_for_its_steps_and_no_more() -> None:
    """build-and-manage-access.md: PassRole for the role given to the jobs, Create and Describe
    for each job type in the pipeline, s3:GetObject for JsonGet (the gate's evaluation.json)."""
    document = rendered()["pipeline-role-policy"]

    def allowed(action: str, arn: str) -> bool:
        return any(
            action in policy.as_list(s["Action"])
            and any(policy.arn_like(r, arn) for r in policy.as_list(s["Resource"]))
            for s in document["Statement"]
        )

    jobs = pipeline_jobs("titanic-lgbm")
    for kind, step in (
        ("ProcessingJob", "prepare"),
        ("TrainingJob", "train"),
        ("ProcessingJob", "evaluate"),
        ("TransformJob", "transform"),
    ):
        resource = {"ProcessingJob": "processing-job", "TrainingJob": "training-job", "TransformJob": "transform-job"}
        arn = sagemaker_arn(f"{resource[kind]}/{jobs[step]}")
        assert allowed(f"sagemaker:Create{kind}", arn) and allowed(f"sagemaker:Describe{kind}", arn), arn
        assert not allowed(f"sagemaker:Create{kind}", sagemaker_arn(f"{resource[kind]}/someone-elses-job")), kind
    assert allowed("sagemaker:CreateModel", sagemaker_arn(f"model/{jobs['model']}"))
    assert allowed("sagemaker:CreateModelPackage", sagemaker_arn("model-package/titanic-survival/3"))
    assert allowed("sagemaker:CreateModelPackage", sagemaker_arn("model-package-group/titanic-survival"))
    evaluation = "arn:aws:s3:::titanic-sagemaker-toolkit-demo/titanic/output/titanic-lgbm-x/evaluation/evaluation.json"
    assert allowed("s3:GetObject", evaluation) and not allowed("s3:PutObject", evaluation)
    execution_role = "arn:aws:iam::123456789012:role/service-role/titanic-sagemaker-execution"
    assert allowed("iam:PassRole", execution_role)
    assert not allowed("iam:PassRole", "arn:aws:iam::123456789012:role/service-role/titanic-sagemaker-pipeline")
