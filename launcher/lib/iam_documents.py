"""The toolkit's IAM documents rendered from the iam/*.json templates, with config.env's
identifiers and the caller's account and partition (from STS, never from ROLE_ARN's text).
"""

from __future__ import annotations

import json
import string
from pathlib import Path
from typing import Any

from launcher.lib.caller import Caller
from launcher.lib.config import Settings
from launcher.lib.errors import ToolkitError

IAM_DIR = Path(__file__).resolve().parents[2] / "iam"


DOCUMENTS = (
    "runner-policy",
    "setup-policy",
    "execution-role-policy",
    "execution-role-trust",
    "pipeline-role-policy",
    "pipeline-role-trust",
    "deploy-policy",
    "ci-train-trust",
    "ci-deploy-trust",
)


PERMISSION_POLICIES = (
    "runner-policy",
    "setup-policy",
    "execution-role-policy",
    "pipeline-role-policy",
    "deploy-policy",
)


INLINE_POLICY_NAME = "titanic-toolkit-execution"
PIPELINE_POLICY_NAME = "titanic-toolkit-pipeline"


class IamError(ToolkitError):
    """A template cannot be filled, a policy fails its lint, or the role cannot be written."""


def check_role_account(settings: Settings, caller: Caller, *, pipeline_role: bool = False) -> None:
    """ROLE_ARN (and with `pipeline_role`, PIPELINE_ROLE_ARN: the set-up creates both) names the
    caller's account and partition."""
    roles = [("ROLE_ARN", settings.role)] + ([("PIPELINE_ROLE_ARN", settings.pipeline_role)] if pipeline_role else [])
    for setting, role in roles:
        if (role.partition, role.account) != (caller.partition, caller.account):
            raise IamError(
                f"{setting} names account {role.account} ({role.partition}) but the credentials are for account "
                f"{caller.account} ({caller.partition}); set {setting} to "
                f"arn:{caller.partition}:iam::{caller.account}:role{role.path}{role.name} or use that account's "
                "credentials"
            )


def template_values(settings: Settings, caller: Caller) -> dict[str, str]:
    role = settings.role
    return {
        "PARTITION": caller.partition,
        "ACCOUNT_ID": caller.account,
        "REGION": settings.region,
        "BUCKET": settings.bucket,
        "DATA_PREFIX": settings.data_prefix,
        "OUTPUT_PREFIX": settings.output_prefix,
        "CHECKPOINT_PREFIX": settings.checkpoint_prefix,
        "PREDICTIONS_PREFIX": settings.predictions_prefix,
        "ECR_REPOSITORY": settings.ecr_repository,
        "BASE_JOB_NAME": settings.base_job_name,
        "MODEL_PACKAGE_GROUP": settings.model_package_group,
        "ENDPOINT_NAME": settings.endpoint_name,
        "ROLE_PATH": role.path,
        "ROLE_NAME": role.name,
        "PIPELINE_NAME": settings.pipeline_name,
        "PIPELINE_ROLE_PATH": settings.pipeline_role.path,
        "PIPELINE_ROLE_NAME": settings.pipeline_role.name,
        "CI_REPOSITORY": settings.ci_repository,
        "CI_ENVIRONMENT": settings.ci_environment,
    }


def render(settings: Settings, caller: Caller, iam_dir: Path = IAM_DIR) -> dict[str, dict[str, Any]]:
    values = template_values(settings, caller)
    documents = {}
    for name in DOCUMENTS:
        text = (iam_dir / f"{name}.json").read_text(encoding="utf-8")
        try:
            documents[name] = json.loads(string.Template(text).substitute(values))
        except KeyError as exc:
            raise IamError(
                f"iam/{name}.json uses ${{{exc.args[0]}}}, which no setting fills; fix the template"
            ) from None
    return documents


def as_list(value: str | list[str]) -> list[str]:
    return [value] if isinstance(value, str) else list(value)


def allowed_actions(document: dict[str, Any]) -> set[str]:
    return {a for s in document["Statement"] if s["Effect"] == "Allow" for a in as_list(s["Action"])}
