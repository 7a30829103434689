"""Clean-up of what the toolkit made, and only that: lists it, and with CONFIRM=yes deletes it.

  resources  (the runner, make clean-resources) the objects under the toolkit's four S3
             prefixes, the images in the toolkit's repository, tuning, training and transform
             jobs still in progress (stopped), make deploy's endpoint with its configs and
             models, and the models make predict made (deleted), each
             only when it carries the toolkit's tag *and* was launched by this caller
  teardown   (an administrator, make teardown) the above, then the repository, the bucket
             (when empty) and the execution role, each only if it carries the toolkit's tag

A repository, bucket, role or job without the tag is listed as "not ours" and left alone; a
teammate's job (tagged, launched by someone else) likewise. A discovery call that fails
(access denied, throttling, expired credentials) stops the run with the reason and exit 1:
never "nothing to delete". A local stamp is forgotten just before what it records is
deleted, and never otherwise: after a failed clean-up the next `make` redoes exactly the
stages whose results may be gone, and trusts the rest. Needs credentials and a
region only: no Docker, no role.
"""

from __future__ import annotations

import argparse
import logging
import os
import subprocess
import sys
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import boto3
from botocore.exceptions import BotoCoreError, ClientError

from launcher import logs
from launcher.caller import CallerError, error_code, sagemaker_tags, whoami
from launcher.iam import INLINE_POLICY_NAME
from launcher.settings import (
    LAUNCHED_BY_TAG,
    TOOLKIT_TAG,
    Settings,
    SettingsError,
    is_toolkits,
    launched_by_value,
    load,
)

log = logging.getLogger("clean")


class CleanupError(RuntimeError):
    """A call failed; what was found so far is not a complete picture."""


def _failed(what: str, exc: Exception) -> CleanupError:
    return CleanupError(f"{what} failed ({exc}); nothing after this point was checked or deleted. Fix the cause "
                        "(credentials, permissions from 'make iam-render', throttling) and rerun")  # fmt: skip


@dataclass
class Plan:
    """What was found, what was done, and which local stamps to forget once it is gone."""

    confirm: bool
    found: int = 0
    forget: list[Path] = field(default_factory=list)

    def act(self, description: str, action: Any, *forget: Path) -> None:
        self.found += 1
        if not self.confirm:
            log.info("would delete %s", description)
            return
        # The stamp goes first: should the deletion stop half-way, the next run redoes the
        # stage (an idempotent sync or push) instead of trusting what is no longer there.
        for path in forget:
            if path.exists():
                path.unlink()
                log.info("forgot %s (what it recorded is being deleted)", path)
        log.info("deleting %s", description)
        action()


@dataclass(frozen=True)
class Kind:
    """One kind of SageMaker resource clean-up looks for, and how it is listed and removed."""

    noun: str  # "training job"
    lister: str  # paginator name
    listed: str  # key of the summaries in each page
    name_key: str
    arn_key: str
    remove: str  # client method; called with {param: name}
    param: str
    in_progress_only: bool  # jobs: stop the running ones; the rest: delete any
    prefix: Callable[[Settings], str]  # the toolkit's names start so


KINDS = (
    # Tuning jobs first: a running one would start new trials while its old ones are stopped.
    Kind("tuning job", "list_hyper_parameter_tuning_jobs", "HyperParameterTuningJobSummaries",
         "HyperParameterTuningJobName", "HyperParameterTuningJobArn", "stop_hyper_parameter_tuning_job",
         "HyperParameterTuningJobName", True, lambda s: f"{s.base_job_name}-"),
    Kind("training job", "list_training_jobs", "TrainingJobSummaries", "TrainingJobName", "TrainingJobArn",
         "stop_training_job", "TrainingJobName", True, lambda s: f"{s.base_job_name}-"),
    Kind("transform job", "list_transform_jobs", "TransformJobSummaries", "TransformJobName", "TransformJobArn",
         "stop_transform_job", "TransformJobName", True, lambda s: f"{s.base_job_name}-predict-"),
    Kind("endpoint", "list_endpoints", "Endpoints", "EndpointName", "EndpointArn", "delete_endpoint",
         "EndpointName", False, lambda s: s.endpoint_name),
    Kind("endpoint config", "list_endpoint_configs", "EndpointConfigs", "EndpointConfigName", "EndpointConfigArn",
         "delete_endpoint_config", "EndpointConfigName", False, lambda s: f"{s.endpoint_name}-v"),
    Kind("model", "list_models", "Models", "ModelName", "ModelArn", "delete_model", "ModelName", False,
         lambda s: f"{s.base_job_name}-predict-"),
    Kind("model", "list_models", "Models", "ModelName", "ModelArn", "delete_model", "ModelName", False,
         lambda s: f"{s.endpoint_name}-v"),
)  # fmt: skip


def clean_sagemaker(settings: Settings, sm: Any, caller_arn: str, plan: Plan, kind: Kind) -> None:
    """Stop the caller's own jobs still in progress (or delete the caller's own models) that
    carry the toolkit's tag; anyone else's are left alone and said so."""
    me, prefix = launched_by_value(caller_arn), kind.prefix(settings)
    action = sm.meta.method_to_api_mapping[kind.lister]
    try:
        filters = {"StatusEquals": "InProgress"} if kind.in_progress_only else {}
        pages = sm.get_paginator(kind.lister).paginate(
            NameContains=prefix.removesuffix("-v").removesuffix("-"), **filters
        )
        summaries = [s for page in pages for s in page[kind.listed]]
    except (ClientError, BotoCoreError) as exc:
        state = " in progress" if kind.in_progress_only else ""
        raise _failed(f"listing {kind.noun}s{state} (sagemaker:{action})", exc) from None
    for summary in summaries:
        name = summary[kind.name_key]
        if not name.startswith(prefix):
            continue
        try:
            tags = sagemaker_tags(sm, summary[kind.arn_key])
        except (ClientError, BotoCoreError) as exc:
            raise _failed(f"reading the tags of {name} (sagemaker:ListTags)", exc) from None
        if not is_toolkits(tags):
            log.info("not ours, left alone: %s %s (no %s tag)", kind.noun, name, TOOLKIT_TAG[0])
        elif tags.get(LAUNCHED_BY_TAG) != me:
            log.info("left alone: %s %s was made by %s, not by you", kind.noun, name, tags.get(LAUNCHED_BY_TAG))
        else:
            verb = "stop" if kind.in_progress_only else "delete"
            what = f"{'in-progress ' if kind.in_progress_only else ''}{kind.noun} {name} ({verb})"
            plan.act(what, lambda n=name: getattr(sm, kind.remove)(**{kind.param: n}))


def clean_model_packages(settings: Settings, sm: Any, caller_arn: str, plan: Plan) -> None:
    """The caller's own versions in the toolkit's (tagged) model package group. moto has no
    DeleteModelPackage: on the embedded stack they are listed and kept, and said so."""
    group = settings.model_package_group
    try:
        arn = sm.describe_model_package_group(ModelPackageGroupName=group)["ModelPackageGroupArn"]
    except ClientError:
        return  # no group, nothing registered
    try:
        tags = sagemaker_tags(sm, arn)
        pages = sm.get_paginator("list_model_packages").paginate(ModelPackageGroupName=group)
        versions = [s for page in pages for s in page["ModelPackageSummaryList"]]
    except (ClientError, BotoCoreError) as exc:
        raise _failed(f"listing the versions of model package group {group}", exc) from None
    if not is_toolkits(tags):
        log.info("not ours, left alone: model package group %s (no %s tag)", group, TOOLKIT_TAG[0])
        return
    me = launched_by_value(caller_arn)
    for version in versions:
        if settings.local:  # moto can neither delete a version nor read its tags
            log.info("kept: model package %s version %s (the embedded stack cannot delete model packages: moto has "
                     "no DeleteModelPackage)", group, version.get("ModelPackageVersion"))  # fmt: skip
            continue
        try:
            found = sagemaker_tags(sm, version["ModelPackageArn"])
        except (ClientError, BotoCoreError) as exc:
            raise _failed(f"reading the tags of {version['ModelPackageArn']}", exc) from None
        what = f"model package {group} version {version.get('ModelPackageVersion')}"
        if found.get(LAUNCHED_BY_TAG) != me:
            log.info("left alone: %s was registered by %s, not by you", what, found.get(LAUNCHED_BY_TAG))
        else:
            plan.act(what, lambda a=version["ModelPackageArn"]: sm.delete_model_package(ModelPackageName=a))


def clean_local_endpoint(settings: Settings, plan: Plan) -> None:
    """The embedded stack's serving containers for ENDPOINT_NAME (make deploy's)."""
    from launcher.endpoint import local_containers  # noqa: PLC0415 - only the embedded stack has them

    for container in local_containers(settings.endpoint_name):
        remove = ["docker", "rm", "-f", container["id"]]
        plan.act(f"local endpoint container {container['id']} (version {container['version']})",
                 lambda r=remove: subprocess.run(r, capture_output=True, check=True))  # fmt: skip


def _repository(settings: Settings, ecr: Any) -> tuple[str, bool] | None:
    """(arn, ours) of the toolkit's repository; None when it does not exist."""
    try:
        repo = ecr.describe_repositories(repositoryNames=[settings.ecr_repository])["repositories"][0]
    except ClientError as exc:
        if error_code(exc) == "RepositoryNotFoundException":
            return None
        raise _failed(f"reading ECR repository {settings.ecr_repository}", exc) from None
    except BotoCoreError as exc:
        raise _failed(f"reading ECR repository {settings.ecr_repository}", exc) from None
    try:
        tags = {t["Key"]: t["Value"] for t in ecr.list_tags_for_resource(resourceArn=repo["repositoryArn"])["tags"]}
    except (ClientError, BotoCoreError) as exc:
        raise _failed(f"reading the tags of ECR repository {settings.ecr_repository}", exc) from None
    return repo["repositoryArn"], is_toolkits(tags)


def clean_images(settings: Settings, ecr: Any, plan: Plan, image_record: Path) -> None:
    found = _repository(settings, ecr)
    if found is None:
        return
    if not found[1]:
        log.info("not ours, left alone: ECR repository %s (no %s tag) and its images", settings.ecr_repository,
                 TOOLKIT_TAG[0])  # fmt: skip
        return
    try:
        pages = ecr.get_paginator("list_images").paginate(repositoryName=settings.ecr_repository)
        ids = [i for page in pages for i in page["imageIds"]]
    except (ClientError, BotoCoreError) as exc:
        raise _failed(f"listing the images of {settings.ecr_repository}", exc) from None
    for digest in sorted({i["imageDigest"] for i in ids}):
        tags = ", ".join(sorted(i["imageTag"] for i in ids if i["imageDigest"] == digest and "imageTag" in i))
        plan.act(
            f"ECR image {settings.ecr_repository}@{digest} ({tags or 'untagged'})",
            lambda d=digest: _batch_delete(ecr, settings.ecr_repository, d),
            image_record,
        )


def _batch_delete(ecr: Any, repository: str, digest: str) -> None:
    failures = ecr.batch_delete_image(repositoryName=repository, imageIds=[{"imageDigest": digest}]).get("failures")
    if failures:
        raise CleanupError(f"ECR did not delete {repository}@{digest}: {failures[0].get('failureReason')}")


def clean_prefix(settings: Settings, s3: Any, prefix: str, plan: Plan, *forget: Path) -> None:
    # The trailing slash keeps titanic/data from matching titanic/data-other.
    try:
        pages = s3.get_paginator("list_objects_v2").paginate(Bucket=settings.bucket, Prefix=f"{prefix}/")
        keys = [o["Key"] for page in pages for o in page.get("Contents", [])]
    except ClientError as exc:
        if error_code(exc) == "NoSuchBucket":
            return
        raise _failed(f"listing s3://{settings.bucket}/{prefix}/", exc) from None
    except BotoCoreError as exc:
        raise _failed(f"listing s3://{settings.bucket}/{prefix}/", exc) from None
    if not keys:
        return
    for key in keys:
        log.info("  s3://%s/%s", settings.bucket, key)

    def delete() -> None:
        # One DeleteObject per key (a few files per run): moto authorizes the batch call
        # against the bucket rather than each key, so per-key calls behave alike on both.
        for key in keys:
            s3.delete_object(Bucket=settings.bucket, Key=key)

    plan.act(f"{len(keys)} object(s) under s3://{settings.bucket}/{prefix}/", delete, *forget)


def teardown(settings: Settings, session: boto3.Session, plan: Plan, bootstrapped: Path) -> None:
    ecr, s3, iam = session.client("ecr"), session.client("s3"), session.client("iam")
    found = _repository(settings, ecr)
    if found and found[1]:
        plan.act(f"ECR repository {settings.ecr_repository}",
                 lambda: ecr.delete_repository(repositoryName=settings.ecr_repository, force=True),
                 bootstrapped)  # fmt: skip
    elif found:
        log.info("not ours, left alone: ECR repository %s", settings.ecr_repository)
    _teardown_bucket(settings, s3, plan, bootstrapped)
    if not settings.local:
        _teardown_role(settings, iam, plan)


def _teardown_bucket(settings: Settings, s3: Any, plan: Plan, bootstrapped: Path) -> None:
    try:
        tags = {t["Key"]: t["Value"] for t in s3.get_bucket_tagging(Bucket=settings.bucket)["TagSet"]}
    except ClientError as exc:
        if error_code(exc) == "NoSuchBucket":
            return
        if error_code(exc) != "NoSuchTagSet":
            raise _failed(f"reading the tags of s3://{settings.bucket}", exc) from None
        tags = {}
    if not is_toolkits(tags):
        log.info("not ours, left alone: bucket s3://%s (no %s tag)", settings.bucket, TOOLKIT_TAG[0])
        return

    def delete() -> None:
        try:
            s3.delete_bucket(Bucket=settings.bucket)
        except ClientError as exc:
            if error_code(exc) != "BucketNotEmpty":
                raise
            log.info("kept bucket s3://%s: it still holds objects outside the toolkit's prefixes", settings.bucket)

    plan.act(f"bucket s3://{settings.bucket} (if it is then empty)", delete, bootstrapped)


def _teardown_role(settings: Settings, iam: Any, plan: Plan) -> None:
    name = settings.role.name
    try:
        role = iam.get_role(RoleName=name)["Role"]
    except ClientError as exc:
        if error_code(exc) == "NoSuchEntity":
            return
        raise _failed(f"reading role {name}", exc) from None
    if not is_toolkits({t["Key"]: t["Value"] for t in role.get("Tags", [])}):
        log.info("not ours, left alone: role %s", name)
        return

    def delete() -> None:
        try:
            iam.delete_role_policy(RoleName=name, PolicyName=INLINE_POLICY_NAME)
        except ClientError as exc:
            if error_code(exc) != "NoSuchEntity":
                raise
        iam.delete_role(RoleName=name)

    plan.act(f"execution role {role['Arn']}", delete)


def run(
    settings: Settings, verb: str, session: boto3.Session, *, confirm: bool, deployed: Path, image_record: Path
) -> Plan:
    plan = Plan(confirm=confirm)
    caller = whoami(session)
    sm = session.client("sagemaker")
    if settings.local:
        clean_local_endpoint(settings, plan)
    for kind in KINDS:
        clean_sagemaker(settings, sm, caller.arn, plan, kind)
    clean_model_packages(settings, sm, caller.arn, plan)
    clean_images(settings, session.client("ecr"), plan, image_record)
    s3 = session.client("s3")
    clean_prefix(settings, s3, settings.data_prefix, plan, deployed / "uploaded")
    clean_prefix(settings, s3, settings.output_prefix, plan)
    clean_prefix(settings, s3, settings.checkpoint_prefix, plan)
    clean_prefix(settings, s3, settings.predictions_prefix, plan)
    if verb == "teardown":
        teardown(settings, session, plan, deployed / "bootstrapped")
    return plan


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("verb", choices=("resources", "teardown"))
    args = parser.parse_args(argv)
    logs.setup("clean")
    confirm = os.environ.get("CONFIRM", "no") == "yes"
    deployed = Path(os.environ.get("DEPLOYED", "build/local"))
    image_record = Path(os.environ.get("IMAGE_RECORD", str(deployed / "image.json")))
    if not confirm:
        log.info("dry run: nothing is deleted (rerun with CONFIRM=yes to delete)")
    try:
        settings = load()
        plan = run(
            settings,
            args.verb,
            boto3.Session(region_name=settings.region),
            confirm=confirm,
            deployed=deployed,
            image_record=image_record,
        )
    except (SettingsError, CleanupError, CallerError) as exc:
        return logs.errors(log, str(exc))
    except (ClientError, BotoCoreError) as exc:
        return logs.errors(log, f"a deletion failed ({exc}); what was deleted before it is gone, the rest remains: "
                                "rerun to continue")  # fmt: skip
    if plan.found == 0:
        log.info("nothing to delete: no toolkit resources found")
    elif not confirm:
        log.info("%d item(s) listed; rerun with CONFIRM=yes to delete them", plan.found)
    return 0


if __name__ == "__main__":
    sys.exit(main())
