"""TARGET=aws preflight: everything a training job needs, checked before anything is spent.

Credentials (sts:GetCallerIdentity), SageMaker in the region, a Docker engine, the
execution role (in the caller's account, exists, the ARN has its path right, trusts
sagemaker.amazonaws.com with confused-deputy conditions naming this account and these
jobs), the bucket and repository `make bootstrap` made (in the configured region) and the
instance type's training quota (at least 1, applied or AWS's default). Each problem is one
line naming the fix.
"""

from __future__ import annotations

import json
import logging
import os
import subprocess
import sys
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any
from urllib.parse import unquote

import boto3
from botocore.exceptions import BotoCoreError, ClientError

from launcher.lib import errors, names, training
from launcher.lib.caller import Caller, CallerError, whoami
from launcher.lib.config import Settings, load
from launcher.lib.errors import ToolkitError, error_code
from launcher.lib.iam_documents import IamError, check_role_account
from launcher.lib.instance_choice import quota_for, quota_message, training_quotas
from launcher.lib.policy import SAGEMAKER_PRINCIPAL, admits

log = logging.getLogger("preflight")


class PreflightError(ToolkitError):
    """A check failed; the message says what to fix."""


def check_sagemaker_reachable(session: boto3.Session, settings: Settings) -> None:
    try:
        session.client("sagemaker").list_training_jobs(MaxResults=1)
    except ClientError as exc:
        raise PreflightError(
            f"SageMaker in {settings.region} refused ListTrainingJobs ({error_code(exc)}); check AWS_REGION and that "
            "the runner policy (the set-up stack's, make bootstrap) is attached"
        ) from None


def check_docker() -> None:
    try:
        ok = subprocess.run(["docker", "info"], capture_output=True, timeout=30).returncode == 0
    except (OSError, subprocess.TimeoutExpired):
        ok = False
    if not ok:
        raise PreflightError("no Docker engine answers 'docker info'; start Docker (the build and push stages need it)")


def source_arns(settings: Settings, caller: Caller, now: datetime) -> dict[str, str]:
    """The aws:SourceArn SageMaker presents for each kind of work the toolkit starts with the
    role: its jobs' own ARNs, and for hosting (make deploy's model and endpoint) the one
    account-wide literal AWS documents."""

    def job(resource: str) -> str:
        return names.arn(caller.partition, settings.region, caller.account, resource)

    tuning = names.tuning_job(settings.base_job_name, now)
    return {
        "training (make train)": job(f"training-job/{training.job_name(settings.base_job_name)}"),
        "tuning (make tune-jobs)": job(f"hyper-parameter-tuning-job/{tuning}"),
        "batch transform (make predict)": job(f"transform-job/{names.transform_job(settings.base_job_name, now)}"),
        "processing (make evaluate)": job(f"processing-job/{names.evaluation_job(settings.base_job_name, now)}"),
        # SageMaker names a pipeline's jobs <prefix>-<execution>-<token>-<count> (names.pipeline_prefixes).
        "processing (the pipeline's Prepare)": job(
            f"processing-job/{names.pipeline_prefixes(settings.base_job_name)['prepare']}-a1b2c3d4e5f6-AbCdEfGhIj-0"
        ),
        "hosting (make deploy)": names.hosting_source_arn(caller.partition, settings.region, caller.account),
    }


def trust_problems(trust_policy: dict[str, Any], settings: Settings, caller: Caller, now: datetime) -> list[str]:
    """What the trust policy would refuse: each kind of work whose SourceArn it does not admit
    (as IAM matches, ArnLike per component), with and without aws:SourceAccount."""
    refused = []
    for work, source_arn in source_arns(settings, caller, now).items():
        if not (admits(trust_policy, source_arn, caller.account) and admits(trust_policy, source_arn)):
            refused.append(f"{work} ({source_arn})")
    return refused


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
            raise PreflightError(
                f"ROLE_ARN: role '{name}' does not exist; create it with 'make bootstrap TARGET=aws'"
            ) from None
        log.warning("cannot read role %s (%s); SageMaker will check it when the job starts", name, error_code(exc))
        return
    if role["Arn"] != settings.role_arn:
        raise PreflightError(
            f"ROLE_ARN is {settings.role_arn} but the role's ARN is {role['Arn']}; "
            "copy it exactly (the path, e.g. service-role/, is part of the ARN)"
        )
    trust = role["AssumeRolePolicyDocument"]
    trust = json.loads(unquote(trust)) if isinstance(trust, str) else trust
    refused = trust_problems(trust, settings, caller, datetime.now(UTC))
    if refused:
        raise PreflightError(
            f"ROLE_ARN: role '{name}''s trust policy would refuse SageMaker for {'; '.join(refused)}; rewrite it "
            "with 'make bootstrap TARGET=aws' (as an administrator, with this account's credentials)"
        )
    log.info("role: %s trusts %s for training, tuning, transform and hosting", role["Arn"], SAGEMAKER_PRINCIPAL)


def check_pipeline_role(session: boto3.Session, settings: Settings, caller: Caller) -> None:
    """make pipeline: PIPELINE_ROLE_ARN exists and trusts SageMaker for the toolkit's pipeline in
    the form AWS documents (pipeline/NAME/*, which every execution's ARN falls under)."""
    wanted = settings.pipeline_role
    if (wanted.partition, wanted.account) != (caller.partition, caller.account):
        raise PreflightError(
            f"PIPELINE_ROLE_ARN names account {wanted.account} but the credentials are for {caller.account}; set it "
            f"to arn:{caller.partition}:iam::{caller.account}:role{wanted.path}{wanted.name}"
        )
    try:
        role = session.client("iam").get_role(RoleName=wanted.name)["Role"]
    except ClientError as exc:
        if error_code(exc) == "NoSuchEntity":
            raise PreflightError(
                f"PIPELINE_ROLE_ARN: role '{wanted.name}' does not exist; create it with 'make bootstrap TARGET=aws' "
                "(as an administrator)"
            ) from None
        log.warning("cannot read role %s (%s); SageMaker will check it when the pipeline starts", wanted.name, exc)
        return
    if role["Arn"] != settings.pipeline_role_arn:
        raise PreflightError(
            f"PIPELINE_ROLE_ARN is {settings.pipeline_role_arn} but the role's ARN is {role['Arn']}; copy it exactly"
        )
    trust = role["AssumeRolePolicyDocument"]
    trust = json.loads(unquote(trust)) if isinstance(trust, str) else trust
    execution = names.arn(
        caller.partition, settings.region, caller.account, f"pipeline/{settings.pipeline_name}/execution/a1b2c3d4e5f6"
    )
    if not (admits(trust, execution, caller.account) and admits(trust, execution)):
        raise PreflightError(
            f"PIPELINE_ROLE_ARN: role '{wanted.name}''s trust policy would refuse SageMaker Pipelines for "
            f"{settings.pipeline_name}'s executions ({execution}); rewrite it with 'make bootstrap TARGET=aws'"
        )
    log.info("pipeline role: %s trusts %s for pipeline %s", role["Arn"], SAGEMAKER_PRINCIPAL, settings.pipeline_name)


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


def instances_needed(settings: Settings, goals: str) -> tuple[int, str]:
    """How many INSTANCE_TYPE instances the command run at once, and why: a tuning job runs
    TUNE_MAX_PARALLEL_JOBS trials of INSTANCE_COUNT instances each; a training job INSTANCE_COUNT."""
    if "tune-jobs" in goals.split():
        parallel = settings.tune.max_parallel_jobs
        return parallel * settings.instance_count, (
            f"TUNE_MAX_PARALLEL_JOBS {parallel} x INSTANCE_COUNT {settings.instance_count}"
        )
    return settings.instance_count, f"INSTANCE_COUNT {settings.instance_count}"


def check_quota(session: boto3.Session, settings: Settings, goals: str = "") -> None:
    """The configured type's quota (spot or on demand) must cover what the command runs at once."""
    try:
        quotas = training_quotas(session.client("service-quotas", region_name=settings.region))
    except (BotoCoreError, ClientError) as exc:
        log.warning("cannot read SageMaker quotas (%s); SageMaker will check them when the job starts", exc)
        return
    quota, code, source = quota_for(quotas, settings.instance_type, settings.use_spot)
    needed, why = instances_needed(settings, goals)
    if quota is not None and quota < 1:
        raise PreflightError(
            f"INSTANCE_TYPE: {quota_message(settings.instance_type, settings.use_spot, code)} (value: {source})"
        )
    if quota is not None and quota < needed:
        raise PreflightError(
            f"INSTANCE_TYPE: the quota for {settings.instance_type} ({'spot' if settings.use_spot else 'on-demand'} "
            f"training) is {quota:g} ({source}) but {why} run {needed} at once; lower them, or request more in "
            f"Service Quotas (SageMaker, {code or 'the type'})"
        )
    mode = "spot" if settings.use_spot else "on-demand"
    log.info("quota: %s %s = %g (%s)", settings.instance_type, mode, quota, source)
    if {"evaluate", "pipeline"} & set(goals.split()):  # their processing jobs run one INSTANCE_TYPE instance
        quota, code, source = quota_for(quotas, settings.instance_type, False, kind="processing")
        if quota is not None and quota < 1:
            raise PreflightError(
                f"INSTANCE_TYPE: '{settings.instance_type} for processing job usage' has a quota of 0 ({source}) and "
                f"make evaluate and make pipeline run processing jobs on it; request an increase of "
                f"{code or 'that quota'} in Service "
                "Quotas (SageMaker), or set INSTANCE_TYPE to a type with processing quota"
            )
        log.info("quota: %s processing = %g (%s)", settings.instance_type, quota, source)


def run(settings: Settings, session: boto3.Session, docker_check: Callable[[], None] = check_docker) -> list[str]:
    """Every check that can run; the problems, one line each (empty when all pass)."""
    problems = []
    try:
        caller = whoami(session)
    except CallerError as exc:
        return [str(exc)]  # nothing else can be asked without credentials
    log.info("credentials: %s (account %s)", caller.arn, caller.account)
    goals = os.environ.get("MAKE_INVOCATION", "")
    checks: list[Callable[[], None]] = [
        lambda: check_sagemaker_reachable(session, settings),
        docker_check,
        lambda: check_role(session, settings, caller),
        lambda: check_bucket(session, settings),
        lambda: check_repository(session, settings),
        lambda: check_quota(session, settings, goals),
    ]
    if "pipeline" in goals.split():
        checks.append(lambda: check_pipeline_role(session, settings, caller))
    for check in checks:
        try:
            check()
        except PreflightError as exc:
            problems.append(str(exc))
        except (BotoCoreError, ClientError) as exc:
            problems.append(f"AWS call failed: {exc}")
    return problems


def main() -> int:
    return errors.run("preflight", _preflight)


def _preflight() -> int:
    settings = load()
    problems = run(settings, boto3.Session(region_name=settings.region))
    if problems:
        raise PreflightError("\n".join(problems))
    log.info("preflight passed for %s in %s", settings.bucket, settings.region)
    return 0


if __name__ == "__main__":
    sys.exit(main())
