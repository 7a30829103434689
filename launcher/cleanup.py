"""Clean-up of what the toolkit made, and only that: lists it, and with CONFIRM=yes deletes it.

  resources  (the runner, make clean-resources) the objects under the toolkit's four S3
             prefixes, the images in the toolkit's repository, the pipeline's executions, tuning,
             training, transform and processing jobs still in progress (stopped), make deploy's
             endpoint with its configs and models, the models make predict made and the
             pipeline itself (deleted), each only when it carries the toolkit's tag *and* was
             launched by this caller (the pipeline: when no one else's execution still runs)
  teardown   (an administrator, make teardown) the above, then the set-up stack (its roles,
             the runner's policy, the CI identity), then the repository and the bucket it
             retains (the bucket when empty, or with EMPTY_BUCKET=yes), each only if it carries
             the toolkit's tag

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
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import boto3
from botocore.exceptions import BotoCoreError, ClientError

from launcher.lib import errors, executions, names, stack
from launcher.lib.caller import sagemaker_tags, whoami
from launcher.lib.config import (
    LAUNCHED_BY_TAG,
    TOOLKIT_TAG,
    RoleArn,
    Settings,
    is_toolkits,
    launched_by_value,
    load,
)
from launcher.lib.errors import DENIED, NOT_FOUND, ToolkitError, error_code
from launcher.lib.iam_documents import INLINE_POLICY_NAME, PIPELINE_POLICY_NAME
from launcher.lib.local_mode import local_containers
from launcher.lib.metadata import REGISTERED_BY_KEY
from launcher.lib.metadata import value as metadata_value

log = logging.getLogger("clean")


class CleanupError(ToolkitError):
    """A call failed; what was found so far is not a complete picture."""


def _failed(what: str, exc: Exception) -> CleanupError:
    return CleanupError(
        f"{what} failed ({exc}); nothing after this point was checked or deleted. Fix the cause "
        "(credentials, permissions from 'make iam-render', throttling) and rerun"
    )


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
        try:
            action()
        except (ClientError, BotoCoreError) as exc:
            raise CleanupError(
                f"deleting {description} failed ({exc}); what was deleted before it is gone, the "
                "rest remains: fix the cause and rerun to continue"
            ) from None


@dataclass(frozen=True)
class Kind:
    """One kind of SageMaker resource clean-up looks for. The rest follows from the API's
    names: ListXs lists it, XName and XArn name it, StopX or DeleteX removes it. Which names
    are the toolkit's comes from launcher/lib/names.py. A new kind also needs the runner's grant
    (iam/runner-policy.json), a not-seen entry if moto lacks its calls, and a row in
    docs/reference.md."""

    noun: str  # "training job"
    api: str  # "TrainingJob": ListTrainingJobs, TrainingJobName, TrainingJobArn, ...
    resource_type: str  # the ARN's resource type, a key of names.PATTERNS
    listed: str  # key of the summaries in each page
    in_progress_only: bool = False  # jobs: stop the running ones; the rest: delete any

    @property
    def lister(self) -> str:
        return _snake(f"List{self.api}s")

    @property
    def remove(self) -> str:
        return _snake(f"{'Stop' if self.in_progress_only else 'Delete'}{self.api}")


def _snake(name: str) -> str:
    return "".join(f"_{c.lower()}" if c.isupper() else c for c in name).lstrip("_")


KINDS = (
    # Tuning jobs first: a running one would start new trials while its old ones are stopped.
    Kind(
        noun="tuning job",
        api="HyperParameterTuningJob",
        resource_type="hyper-parameter-tuning-job",
        listed="HyperParameterTuningJobSummaries",
        in_progress_only=True,
    ),
    Kind(
        noun="training job",
        api="TrainingJob",
        resource_type="training-job",
        listed="TrainingJobSummaries",
        in_progress_only=True,
    ),
    Kind(
        noun="transform job",
        api="TransformJob",
        resource_type="transform-job",
        listed="TransformJobSummaries",
        in_progress_only=True,
    ),
    Kind(
        noun="processing job",
        api="ProcessingJob",
        resource_type="processing-job",
        listed="ProcessingJobSummaries",
        in_progress_only=True,
    ),
    Kind(noun="endpoint", api="Endpoint", resource_type="endpoint", listed="Endpoints"),
    Kind(noun="endpoint config", api="EndpointConfig", resource_type="endpoint-config", listed="EndpointConfigs"),
    Kind(noun="model", api="Model", resource_type="model", listed="Models"),
)


def _listed(sm: Any, settings: Settings, kind: Kind, pattern: str) -> list[dict[str, Any]]:
    """The summaries of the resources of this kind whose names are the toolkit's under one
    name pattern (listed by its fixed start, then matched exactly)."""
    filters = {"StatusEquals": "InProgress"} if kind.in_progress_only else {}
    contains = pattern.split("*", 1)[0].removesuffix("-v").removesuffix("-")
    pages = sm.get_paginator(kind.lister).paginate(NameContains=contains, **filters)
    return [
        s
        for page in pages
        for s in page[kind.listed]
        if names.owned(settings, kind.resource_type, s[f"{kind.api}Name"])
    ]


def clean_sagemaker(settings: Settings, sm: Any, caller_arn: str, plan: Plan, kind: Kind) -> None:
    """Stop the caller's own jobs still in progress (or delete the caller's own models) that
    carry the toolkit's tag; anyone else's are left alone and said so. A resource whose tags
    this caller may not read (AccessDenied on ListTags) is not the caller's: left alone."""
    seen: set[str] = set()
    for pattern in names.patterns(settings, kind.resource_type):
        try:
            summaries = _listed(sm, settings, kind, pattern)
        except (ClientError, BotoCoreError) as exc:
            state = " in progress" if kind.in_progress_only else ""
            raise _failed(
                f"listing {kind.noun}s{state} (sagemaker:{sm.meta.method_to_api_mapping[kind.lister]})", exc
            ) from None
        for summary in summaries:
            if summary[f"{kind.api}Name"] not in seen:
                seen.add(summary[f"{kind.api}Name"])
                _clean_one(sm, kind, summary, launched_by_value(caller_arn), plan)


def _clean_one(sm: Any, kind: Kind, summary: dict[str, Any], me: str, plan: Plan) -> None:
    name = summary[f"{kind.api}Name"]
    try:
        tags = sagemaker_tags(sm, summary[f"{kind.api}Arn"])
    except ClientError as exc:
        if error_code(exc) not in DENIED:
            raise _failed(f"reading the tags of {name} (sagemaker:ListTags)", exc) from None
        log.info("not ours, left alone: %s %s (its tags are not ours to read: %s)", kind.noun, name, error_code(exc))
        return
    except BotoCoreError as exc:
        raise _failed(f"reading the tags of {name} (sagemaker:ListTags)", exc) from None
    if not is_toolkits(tags):
        log.info("not ours, left alone: %s %s (no %s tag)", kind.noun, name, TOOLKIT_TAG[0])
    elif tags.get(LAUNCHED_BY_TAG) != me:
        log.info("left alone: %s %s was made by %s, not by you", kind.noun, name, tags.get(LAUNCHED_BY_TAG))
    else:
        verb = "stop" if kind.in_progress_only else "delete"
        what = f"{'in-progress ' if kind.in_progress_only else ''}{kind.noun} {name} ({verb})"
        plan.act(what, lambda: getattr(sm, kind.remove)(**{f"{kind.api}Name": name}))


def clean_model_packages(settings: Settings, sm: Any, caller_arn: str, plan: Plan) -> None:
    """The caller's own versions in the toolkit's (tagged) model package group: who registered
    a version is in its customer metadata (a version in a group cannot carry tags of its own).
    moto has no DeleteModelPackage: on the embedded stack they are listed and kept, and said so."""
    group = settings.model_package_group
    try:
        arn = sm.describe_model_package_group(ModelPackageGroupName=group)["ModelPackageGroupArn"]
    except ClientError as exc:
        if error_code(exc) in NOT_FOUND:
            return  # no group, nothing registered
        raise _failed(f"reading model package group {group} (sagemaker:DescribeModelPackageGroup)", exc) from None
    except BotoCoreError as exc:
        raise _failed(f"reading model package group {group} (sagemaker:DescribeModelPackageGroup)", exc) from None
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
            log.info(
                "kept: model package %s version %s (the embedded stack cannot delete model packages: moto has "
                "no DeleteModelPackage)",
                group,
                version.get("ModelPackageVersion"),
            )
            continue
        try:
            described = sm.describe_model_package(ModelPackageName=version["ModelPackageArn"])
        except (ClientError, BotoCoreError) as exc:
            raise _failed(f"reading {version['ModelPackageArn']} (sagemaker:DescribeModelPackage)", exc) from None
        registered_by = (described.get("CustomerMetadataProperties") or {}).get(REGISTERED_BY_KEY)
        what = f"model package {group} version {version.get('ModelPackageVersion')}"
        if registered_by != metadata_value(me):
            log.info("left alone: %s was registered by %s, not by you", what, registered_by)
        else:
            plan.act(what, lambda a=version["ModelPackageArn"]: sm.delete_model_package(ModelPackageName=a))


def clean_pipeline(settings: Settings, sm: Any, caller_arn: str, plan: Plan) -> None:
    """The toolkit's (tagged) pipeline: the caller's own executions still running are stopped
    (SageMaker stops their running step's job), then the pipeline is deleted, unless someone
    else's execution still runs. The embedded stack's executions live in make pipeline's own
    process: there is nothing to find."""
    name = settings.pipeline_name
    try:
        arn = sm.describe_pipeline(PipelineName=name)["PipelineArn"]
    except ClientError as exc:
        if error_code(exc) in NOT_FOUND:
            return
        raise _failed(f"reading pipeline {name} (sagemaker:DescribePipeline)", exc) from None
    except BotoCoreError as exc:
        raise _failed(f"reading pipeline {name} (sagemaker:DescribePipeline)", exc) from None
    try:
        ours = is_toolkits(sagemaker_tags(sm, arn))
        running = executions.running(sm, settings) if ours else []
        owners = {e["PipelineExecutionArn"]: executions.started_by(sm, e["PipelineExecutionArn"]) for e in running}
    except (ClientError, BotoCoreError) as exc:
        raise _failed(f"listing the executions of pipeline {name}", exc) from None
    if not ours:
        log.info("not ours, left alone: pipeline %s (no %s tag)", name, TOOLKIT_TAG[0])
        return
    me = launched_by_value(caller_arn)
    for execution, owner in owners.items():
        if owner == me:
            plan.act(f"running pipeline execution {execution} (stop)", lambda e=execution: executions.stop(sm, e))
        else:
            log.info("left alone: pipeline execution %s was started by %s, not by you", execution, owner or "someone")
    if any(owner != me for owner in owners.values()):
        log.info("kept: pipeline %s (another's execution still runs)", name)
        return
    plan.act(
        f"pipeline {name} (delete; its executions' records stay in runs/pipelines/)",
        lambda: sm.delete_pipeline(PipelineName=name, ClientRequestToken=str(uuid.uuid4())),
    )


def clean_local_endpoint(settings: Settings, plan: Plan) -> None:
    """The embedded stack's serving containers for ENDPOINT_NAME (make deploy's)."""

    for container in local_containers(settings.endpoint_name):
        remove = ["docker", "rm", "-f", container["id"]]
        plan.act(
            f"local endpoint container {container['id']} (version {container['version']})",
            lambda r=remove: subprocess.run(r, capture_output=True, check=True),
        )


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
        log.info(
            "not ours, left alone: ECR repository %s (no %s tag) and its images",
            settings.ecr_repository,
            TOOLKIT_TAG[0],
        )
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


def teardown(settings: Settings, session: boto3.Session, plan: Plan, bootstrapped: Path, *, empty_bucket: bool) -> None:
    ecr, s3, iam = session.client("ecr"), session.client("s3"), session.client("iam")
    held = _teardown_stack(settings, session, plan, bootstrapped)
    found = _repository(settings, ecr)
    if found and found[1]:
        plan.act(
            f"ECR repository {settings.ecr_repository}",
            lambda: ecr.delete_repository(repositoryName=settings.ecr_repository, force=True),
            bootstrapped,
        )
    elif found:
        log.info("not ours, left alone: ECR repository %s", settings.ecr_repository)
    _teardown_bucket(settings, s3, plan, bootstrapped, empty_bucket=empty_bucket)
    # Roles of the toolkit's names that the stack does not hold (an older `make iam` made them).
    for role, policy_name, what in (
        (settings.role, INLINE_POLICY_NAME, "execution role"),
        (settings.pipeline_role, PIPELINE_POLICY_NAME, "pipeline role"),
    ):
        if role.name not in held:
            _teardown_role(iam, plan, role, policy_name, what)


def _teardown_stack(settings: Settings, session: boto3.Session, plan: Plan, bootstrapped: Path) -> set[str]:
    """Delete the set-up stack (its roles, runner policy and CI identity); the bucket and
    repository it retains are taken next, as everywhere. Returns what it held (physical ids)."""
    cloudformation, name = session.client("cloudformation"), stack.stack_name(settings)
    try:
        found = stack.deployed(cloudformation, name)
    except (ClientError, BotoCoreError) as exc:
        raise _failed(f"reading stack {name}", exc) from None
    if found is None:
        return set()
    if not is_toolkits(found.tags):
        log.info("not ours, left alone: stack %s (no %s tag)", name, TOOLKIT_TAG[0])
        return set()
    retained = [f"bucket s3://{b}" for b in found.physical("AWS::S3::Bucket")] + [
        f"ECR repository {r}" for r in found.physical("AWS::ECR::Repository")
    ]
    iam = session.client("iam")

    def delete() -> None:
        stack.delete(cloudformation, found, time.sleep)
        # moto's CloudFormation deletes a stack's managed policies from the stack only: take
        # any the stack held that is still there (on AWS none is).
        for arn in found.physical("AWS::IAM::ManagedPolicy"):
            try:
                iam.delete_policy(PolicyArn=arn)
                log.info("deleted %s, which the stack left behind", arn)
            except ClientError as exc:
                if error_code(exc) != "NoSuchEntity":
                    raise
        if retained:
            log.info("retained by the stack (DeletionPolicy Retain): %s", ", ".join(retained))

    plan.act(f"set-up stack {name} ({', '.join(sorted(found.held))})", delete, bootstrapped)
    return {pid for _, pid in found.held.values()}


def _teardown_bucket(settings: Settings, s3: Any, plan: Plan, bootstrapped: Path, *, empty_bucket: bool) -> None:
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
        if empty_bucket:
            _empty(s3, settings.bucket)
        try:
            s3.delete_bucket(Bucket=settings.bucket)
        except ClientError as exc:
            if error_code(exc) != "BucketNotEmpty":
                raise
            log.info(
                "kept bucket s3://%s: it still holds objects outside the toolkit's prefixes (rerun with "
                "EMPTY_BUCKET=yes to delete them and the bucket)",
                settings.bucket,
            )

    what = "and every object in it" if empty_bucket else "if it is then empty"
    plan.act(f"bucket s3://{settings.bucket} ({what})", delete, bootstrapped)


def _empty(s3: Any, bucket: str) -> None:
    """Delete every object in the bucket (EMPTY_BUCKET=yes: the operator asked for it)."""
    for page in s3.get_paginator("list_objects_v2").paginate(Bucket=bucket):
        keys = [{"Key": o["Key"]} for o in page.get("Contents", [])]
        if keys:
            refused = s3.delete_objects(Bucket=bucket, Delete={"Objects": keys, "Quiet": True}).get("Errors", [])
            if refused:
                first = refused[0]
                raise CleanupError(
                    f"S3 refused to delete {len(refused)} object(s) of s3://{bucket}, e.g. {first.get('Key')} "
                    f"({first.get('Code')}: {first.get('Message')}); the bucket is kept; fix that and rerun"
                )
            log.info("deleted %d object(s) from s3://%s", len(keys), bucket)


def _teardown_role(iam: Any, plan: Plan, role: RoleArn, policy_name: str, what: str) -> None:
    name = role.name
    try:
        found = iam.get_role(RoleName=name)["Role"]
    except ClientError as exc:
        if error_code(exc) == "NoSuchEntity":
            return
        raise _failed(f"reading role {name}", exc) from None
    if not is_toolkits({t["Key"]: t["Value"] for t in found.get("Tags", [])}):
        log.info("not ours, left alone: role %s", name)
        return

    def delete() -> None:
        try:
            iam.delete_role_policy(RoleName=name, PolicyName=policy_name)
        except ClientError as exc:
            if error_code(exc) != "NoSuchEntity":
                raise
        iam.delete_role(RoleName=name)

    plan.act(f"{what} {found['Arn']}", delete)


def run(
    settings: Settings,
    verb: str,
    session: boto3.Session,
    *,
    confirm: bool,
    deployed: Path,
    image_record: Path,
    empty_bucket: bool = False,
) -> Plan:
    plan = Plan(confirm=confirm)
    caller = whoami(session)
    sm = session.client("sagemaker")
    if settings.local:
        clean_local_endpoint(settings, plan)
    clean_pipeline(settings, sm, caller.arn, plan)  # first: a running execution would start new jobs
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
        teardown(settings, session, plan, deployed / "bootstrapped", empty_bucket=empty_bucket)
    return plan


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("verb", choices=("resources", "teardown"))
    args = parser.parse_args(argv)
    return errors.run("clean", lambda: _clean(args))


def _clean(args: argparse.Namespace) -> int:
    confirm = os.environ.get("CONFIRM", "no") == "yes"
    deployed = Path(os.environ.get("DEPLOYED", "build/local"))
    image_record = Path(os.environ.get("IMAGE_RECORD", str(deployed / "image.json")))
    if not confirm:
        log.info("dry run: nothing is deleted (rerun with CONFIRM=yes to delete)")
    settings = load()
    plan = run(
        settings,
        args.verb,
        boto3.Session(region_name=settings.region),
        confirm=confirm,
        deployed=deployed,
        image_record=image_record,
        empty_bucket=os.environ.get("EMPTY_BUCKET", "no") == "yes",
    )
    if plan.found == 0:
        log.info("nothing to delete: no toolkit resources found")
    elif not confirm:
        log.info("%d item(s) listed; rerun with CONFIRM=yes to delete them", plan.found)
    return 0


if __name__ == "__main__":
    sys.exit(main())
