"""TARGET=aws preflight: everything a training job needs, checked before anything is spent.

Credentials (sts:GetCallerIdentity), SageMaker in the region, a Docker engine, the
execution role (in the caller's account, exists, the ARN has its path right, trusts
sagemaker.amazonaws.com with confused-deputy conditions naming this account and these
jobs), the bucket and repository `make bootstrap` made (in the configured region) and the
instance type's training quota (at least 1, applied or AWS's default). Each problem is one
line naming the fix.
"""

from __future__ import annotations

import fnmatch
import json
import logging
import subprocess
import sys
from collections.abc import Callable
from typing import Any
from urllib.parse import unquote

import boto3
from botocore.exceptions import BotoCoreError, ClientError
from sagemaker.utils import name_from_base

from launcher import logs
from launcher.caller import Caller, CallerError, error_code, whoami
from launcher.iam import IamError, check_role_account
from launcher.instances import quota_for, quota_message, training_quotas
from launcher.settings import Settings, SettingsError, load

log = logging.getLogger("preflight")
SAGEMAKER_PRINCIPAL = "sagemaker.amazonaws.com"


class PreflightError(RuntimeError):
    """A check failed; the message says what to fix."""


def check_sagemaker_reachable(session: boto3.Session, settings: Settings) -> None:
    try:
        session.client("sagemaker").list_training_jobs(MaxResults=1)
    except ClientError as exc:
        raise PreflightError(
            f"SageMaker in {settings.region} refused ListTrainingJobs ({error_code(exc)}); check AWS_REGION and that "
            "the principal policy from 'make iam' is attached"
        ) from None


def check_docker() -> None:
    try:
        ok = subprocess.run(["docker", "info"], capture_output=True, timeout=30).returncode == 0
    except (OSError, subprocess.TimeoutExpired):
        ok = False
    if not ok:
        raise PreflightError("no Docker engine answers 'docker info'; start Docker (the build and push stages need it)")


def trusts_sagemaker(trust_policy: dict[str, Any]) -> bool:
    for statement in trust_policy.get("Statement", []):
        services = statement.get("Principal", {}).get("Service", [])
        services = [services] if isinstance(services, str) else services
        actions = statement.get("Action", [])
        actions = [actions] if isinstance(actions, str) else actions
        if statement.get("Effect") == "Allow" and SAGEMAKER_PRINCIPAL in services and "sts:AssumeRole" in actions:
            return True
    return False


def _as_list(value: Any) -> list[Any]:
    return [value] if isinstance(value, str) else list(value or [])


def trust_conditions_problem(trust_policy: dict[str, Any], settings: Settings, caller: Caller) -> str | None:
    """Why the trust policy's confused-deputy conditions do not fit this account and these
    jobs (None when they do): aws:SourceAccount must be the caller's account and
    aws:SourceArn must admit the training jobs this toolkit names."""
    job_arn = (
        f"arn:{caller.partition}:sagemaker:{settings.region}:{caller.account}:training-job/"
        f"{name_from_base(settings.base_job_name)}"
    )
    for statement in trust_policy.get("Statement", []):
        condition = statement.get("Condition") or {}
        if not condition:
            continue
        accounts = [a for block in condition.values() for a in _as_list(block.get("aws:SourceAccount"))]
        patterns = [p for block in condition.values() for p in _as_list(block.get("aws:SourceArn"))]
        if accounts and caller.account not in accounts:
            return f"its aws:SourceAccount is {', '.join(accounts)}, not this account {caller.account}"
        if patterns and not any(fnmatch.fnmatchcase(job_arn, p) for p in patterns):
            return f"its aws:SourceArn ({', '.join(patterns)}) does not admit this toolkit's jobs ({job_arn})"
    return None


def check_role(session: boto3.Session, settings: Settings, caller: Caller) -> None:
    name = settings.role.name
    try:
        check_role_account(settings, caller)
    except IamError as exc:
        raise PreflightError(f"ROLE_ARN: {exc}") from None
    try:
        role = session.client("iam").get_role(RoleName=name)["Role"]
    except ClientError as exc:
        if error_code(exc) == "NoSuchEntity":
            raise PreflightError(f"ROLE_ARN: role '{name}' does not exist; create it with 'make iam'") from None
        log.warning("cannot read role %s (%s); SageMaker will check it when the job starts", name, error_code(exc))
        return
    if role["Arn"] != settings.role_arn:
        raise PreflightError(f"ROLE_ARN is {settings.role_arn} but the role's ARN is {role['Arn']}; "
                             "copy it exactly (the path, e.g. service-role/, is part of the ARN)")  # fmt: skip
    trust = role["AssumeRolePolicyDocument"]
    trust = json.loads(unquote(trust)) if isinstance(trust, str) else trust
    if not trusts_sagemaker(trust):
        raise PreflightError(
            f"ROLE_ARN: role '{name}' does not trust {SAGEMAKER_PRINCIPAL}; fix its trust policy ('make iam' writes it)"
        )
    problem = trust_conditions_problem(trust, settings, caller)
    if problem:
        raise PreflightError(
            f"ROLE_ARN: role '{name}' would refuse SageMaker: {problem}; rewrite its trust policy with 'make iam' "
            "(as an administrator, with this account's credentials)"
        )
    log.info("role: %s trusts %s", role["Arn"], SAGEMAKER_PRINCIPAL)


def check_bucket(session: boto3.Session, settings: Settings) -> None:
    s3 = session.client("s3")
    try:
        location = s3.get_bucket_location(Bucket=settings.bucket).get("LocationConstraint")
    except ClientError as exc:
        if error_code(exc) in ("NoSuchBucket", "404"):
            raise PreflightError(
                f"BUCKET: s3://{settings.bucket} does not exist; run 'make bootstrap' once with an administrator's "
                "credentials (it creates and hardens the bucket, the repository and the role)"
            ) from None
        raise PreflightError(
            f"BUCKET: s3://{settings.bucket} is not readable ({error_code(exc)}); it may belong to another account: "
            "choose another name"
        ) from None
    # S3 reports us-east-1 as no constraint, and eu-west-1 as the legacy 'EU'.
    region = {None: "us-east-1", "": "us-east-1", "EU": "eu-west-1"}.get(location, location)
    if region != settings.region:
        raise PreflightError(
            f"BUCKET: s3://{settings.bucket} is in {region} but AWS_REGION is {settings.region}; SageMaker reads "
            "channels from its own region: use a bucket there or change AWS_REGION"
        )
    log.info("bucket: s3://%s in %s", settings.bucket, region)


def check_repository(session: boto3.Session, settings: Settings) -> None:
    try:
        session.client("ecr").describe_repositories(repositoryNames=[settings.ecr_repository])
    except ClientError as exc:
        if error_code(exc) == "RepositoryNotFoundException":
            raise PreflightError(
                f"ECR_REPOSITORY: {settings.ecr_repository} does not exist; run 'make bootstrap' once with an "
                "administrator's credentials"
            ) from None
        raise PreflightError(
            f"ECR_REPOSITORY: cannot read {settings.ecr_repository} ({error_code(exc)}); attach the runner policy "
            "(make iam-render writes it)"
        ) from None
    log.info("repository: %s", settings.ecr_repository)


def check_quota(session: boto3.Session, settings: Settings) -> None:
    """The configured type must have a quota of at least 1 for the mode (spot or on demand)."""
    try:
        quotas = training_quotas(session.client("service-quotas", region_name=settings.region))
    except (BotoCoreError, ClientError) as exc:
        log.warning("cannot read SageMaker quotas (%s); SageMaker will check them when the job starts", exc)
        return
    quota, code, source = quota_for(quotas, settings.instance_type, settings.use_spot)
    if quota is not None and quota < 1:
        raise PreflightError(
            f"INSTANCE_TYPE: {quota_message(settings.instance_type, settings.use_spot, code)} (value: {source})"
        )
    mode = "spot" if settings.use_spot else "on-demand"
    log.info("quota: %s %s = %g (%s)", settings.instance_type, mode, quota, source)


def run(settings: Settings, session: boto3.Session, docker_check: Callable[[], None] = check_docker) -> list[str]:
    """Every check that can run; the problems, one line each (empty when all pass)."""
    problems = []
    try:
        caller = whoami(session)
    except CallerError as exc:
        return [str(exc)]  # nothing else can be asked without credentials
    log.info("credentials: %s (account %s)", caller.arn, caller.account)
    checks: list[Callable[[], None]] = [
        lambda: check_sagemaker_reachable(session, settings),
        docker_check,
        lambda: check_role(session, settings, caller),
        lambda: check_bucket(session, settings),
        lambda: check_repository(session, settings),
        lambda: check_quota(session, settings),
    ]
    for check in checks:
        try:
            check()
        except PreflightError as exc:
            problems.append(str(exc))
        except (BotoCoreError, ClientError) as exc:
            problems.append(f"AWS call failed: {exc}")
    return problems


def main() -> int:
    logs.setup("preflight")
    try:
        settings = load()
    except SettingsError as exc:
        return logs.errors(log, str(exc))
    problems = run(settings, boto3.Session(region_name=settings.region))
    for problem in problems:
        log.error("ERROR: %s", problem)
    if not problems:
        log.info("preflight passed for %s in %s", settings.bucket, settings.region)
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
