"""The toolkit's one-time set-up as a CloudFormation template: iam/stack.json with the very
documents the IAM tests check (iam/*.json, rendered by iam_documents.render) put in place.

The template lives in iam/ because it is the set-up policy's counterpart: what an
administrator creates once, beside the documents it embeds. Inside it, `{"Toolkit::Document":
NAME}` becomes iam/NAME.json filled from config.env, with the account and partition left to
CloudFormation (`${AWS::AccountId}`, `${AWS::Partition}` under Fn::Sub), and
`{"Toolkit::Tags": ...}` the tags every toolkit resource carries. No value is written twice.
"""

from __future__ import annotations

import json
from typing import Any

from launcher.lib.caller import Caller
from launcher.lib.config import TOOLKIT_TAG, Settings
from launcher.lib.iam_documents import IAM_DIR, IamError, render

TEMPLATE = IAM_DIR / "stack.json"
# What CloudFormation fills in at deploy time, in the account the stack is created in.
PSEUDO = Caller(account="${AWS::AccountId}", partition="${AWS::Partition}", arn="")
RUNNER_POLICY_SUFFIX = "-runner"


def documents(settings: Settings) -> dict[str, dict[str, Any]]:
    """iam/*.json for the stack's account, as iam_documents.render makes them for a caller."""
    return render(settings, PSEUDO)


def tags(settings: Settings) -> list[dict[str, str]]:
    return [
        {"Key": TOOLKIT_TAG[0], "Value": TOOLKIT_TAG[1]},
        *({"Key": k, "Value": v} for k, v in settings.tags.items()),
    ]


def template(settings: Settings) -> dict[str, Any]:
    """The deployable template: iam/stack.json with every Toolkit:: marker replaced."""
    docs = documents(settings)

    def fill(node: Any) -> Any:
        if isinstance(node, dict) and set(node) == {"Toolkit::Document"}:
            name = node["Toolkit::Document"]
            if name not in docs:
                raise IamError(f"iam/stack.json embeds {name}, which is not one of iam/'s documents; fix the template")
            return _substituted(docs[name])
        if isinstance(node, dict) and set(node) == {"Toolkit::Tags"}:
            return tags(settings)
        if isinstance(node, dict):
            return {key: fill(value) for key, value in node.items()}
        if isinstance(node, list):
            return [fill(item) for item in node]
        return node

    return fill(json.loads(TEMPLATE.read_text(encoding="utf-8")))


def _substituted(node: Any) -> Any:
    """Strings holding ${AWS::...} become Fn::Sub, so CloudFormation fills the account in."""
    if isinstance(node, dict):
        return {key: _substituted(value) for key, value in node.items()}
    if isinstance(node, list):
        return [_substituted(item) for item in node]
    if isinstance(node, str) and "${AWS::" in node:
        return {"Fn::Sub": node}
    return node


def parameters(
    settings: Settings, *, create_bucket: bool, create_repository: bool, create_oidc_provider: bool = True
) -> dict[str, str]:
    """The stack's parameters, every one from config.env (or from what already exists)."""
    return {
        "BucketName": settings.bucket,
        "CreateBucket": "yes" if create_bucket else "no",
        "RepositoryName": settings.ecr_repository,
        "CreateRepository": "yes" if create_repository else "no",
        "ExecutionRoleName": settings.role.name,
        "ExecutionRolePath": settings.role.path,
        "PipelineRoleName": settings.pipeline_role.name,
        "PipelineRolePath": settings.pipeline_role.path,
        "RunnerPolicyName": f"{settings.base_job_name}{RUNNER_POLICY_SUFFIX}",
        "CiRepository": settings.ci_repository,
        "CreateOidcProvider": "yes" if create_oidc_provider else "no",
    }


def resolved(node: Any, caller: Caller) -> Any:
    """The template's documents as IAM sees them in `caller`'s account (Fn::Sub done)."""
    if isinstance(node, dict) and set(node) == {"Fn::Sub"} and isinstance(node["Fn::Sub"], str):
        return (
            node["Fn::Sub"].replace("${AWS::AccountId}", caller.account).replace("${AWS::Partition}", caller.partition)
        )
    if isinstance(node, dict):
        return {key: resolved(value, caller) for key, value in node.items()}
    if isinstance(node, list):
        return [resolved(item, caller) for item in node]
    return node


def stack_name(settings: Settings) -> str:
    """The set-up stack's name (one per BASE_JOB_NAME, so two toolkits in an account keep apart)."""
    return f"{settings.base_job_name}-setup"
