"""The model registry: registering a run (make register; the pipeline on the embedded stack),
a group's versions, newest first, and one chosen version (by number, or the newest with a
given approval status).
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import boto3
from botocore.exceptions import ClientError
from titanic_model.contract import ACCEPT_TYPES, CONTENT_TYPES

from launcher.lib import records
from launcher.lib.caller import sagemaker_tags, whoami
from launcher.lib.config import TOOLKIT_TAG, Settings, instance_types, is_toolkits, job_tags, launched_by_value
from launcher.lib.errors import NOT_FOUND, ToolkitError, error_code
from launcher.lib.metadata import REGISTERED_BY_KEY, TRAINING_JOB_KEY
from launcher.lib.metadata import value as metadata_value
from launcher.lib.pricing import PriceBook

log = logging.getLogger("registry")
MAX_TYPES = 10  # instance types listed per kind in a version's inference specification

PENDING, APPROVED, REJECTED = "PendingManualApproval", "Approved", "Rejected"


class RegistryError(ToolkitError):
    """The registry refuses (or cannot do) what was asked; the message says why and what next."""


def summaries(sm: Any, group: str, status: str | None = None) -> list[dict[str, Any]]:
    """The group's versions as ListModelPackages summarises them (number, ARN, status), newest first."""
    filters = {"ModelApprovalStatus": status} if status else {}
    pages = sm.get_paginator("list_model_packages").paginate(
        ModelPackageGroupName=group, SortBy="CreationTime", SortOrder="Descending", **filters
    )
    return [s for page in pages for s in page["ModelPackageSummaryList"]]


def versions(sm: Any, group: str, status: str | None = None) -> list[dict[str, Any]]:
    """The group's versions, described (metadata, metrics), newest first."""
    return [sm.describe_model_package(ModelPackageName=s["ModelPackageArn"]) for s in summaries(sm, group, status)]


def pick_version(sm: Any, group: str, version: str, status: str | None) -> dict[str, Any]:
    """VERSION's description, or the newest with `status` when VERSION is empty (only the
    chosen version is described)."""
    if version:
        if not version.isdigit():
            raise RegistryError(f"VERSION={version!r} is not a version number; 'make models' lists them")
        found = [v for v in summaries(sm, group) if str(v["ModelPackageVersion"]) == version]
        if not found:
            raise RegistryError(f"{group} has no version {version}; 'make models' lists them")
    else:
        found = summaries(sm, group, status)
        if not found:
            raise RegistryError(f"{group} has no version that is {status}; register one with 'make register'")
    return sm.describe_model_package(ModelPackageName=found[0]["ModelPackageArn"])


def image_by_digest(image: dict[str, str]) -> str:
    """'host/repo:tag' + 'sha256:…' -> 'host/repo@sha256:…': the version pins content, not a tag."""
    uri = image["uri"]
    # A ':' after the last '/' starts the tag; one before it belongs to the registry's port.
    repository = uri[: uri.rfind(":")] if uri.rfind(":") > uri.rfind("/") else uri
    return f"{repository}@{image['digest']}"


def supported_types(settings: Settings) -> tuple[list[str], list[str]]:
    """(real-time, transform) types a version may run on: those the instance report would let
    serve it (priced, memory enough, accepted by the API), cheapest first."""
    book = PriceBook(settings.region, None)
    priced = []
    for kind in ("ProductionVariantInstanceType", "TransformInstanceType"):
        rows = []
        for instance_type in instance_types(kind):
            price, specs = book.lookup(instance_type)
            if price and specs and specs.memory_gib >= 4 and not instance_type.startswith(("ml.p", "ml.g", "ml.inf")):
                rows.append((price.usd_per_hour, instance_type))
        priced.append([t for _, t in sorted(rows)[:MAX_TYPES]])
    return priced[0], priced[1]


def ensure_group(sm: Any, settings: Settings, tags: list[dict[str, str]]) -> str:
    """The group's ARN, created (tagged as ours) when missing; a group someone else made is
    used only when it carries the toolkit's tag."""
    name = settings.model_package_group
    try:
        group = sm.describe_model_package_group(ModelPackageGroupName=name)
    except ClientError as exc:
        if error_code(exc) not in NOT_FOUND:
            raise
        log.info("creating model package group %s", name)
        return sm.create_model_package_group(
            ModelPackageGroupName=name,
            ModelPackageGroupDescription="Titanic survival models registered by the toolkit (make register)",
            Tags=tags,
        )["ModelPackageGroupArn"]
    arn = group["ModelPackageGroupArn"]
    if not is_toolkits(sagemaker_tags(sm, arn)):
        raise RegistryError(
            f"model package group {name} exists without the toolkit's {TOOLKIT_TAG[0]} tag: it is "
            "someone else's; set MODEL_PACKAGE_GROUP to another name"
        )
    return arn


def group_exists(sm: Any, group: str) -> bool:
    """Only "not found" means no group; any other failure (denied, throttled) is raised."""
    try:
        sm.describe_model_package_group(ModelPackageGroupName=group)
    except ClientError as exc:
        if error_code(exc) in NOT_FOUND:
            return False
        raise
    return True


def register_run(settings: Settings, runs_dir: Path, job: str, session: boto3.Session) -> records.Registration:
    """make register (and an embedded-stack pipeline's last step): a verified, evaluated run
    becomes a new version, PendingManualApproval, recorded in its run record."""
    path = records.verified_record(runs_dir, job, use="register")
    record = records.read_record(path)
    evaluation = evaluated(record)  # before any AWS call: its fix needs none
    sm = session.client("sagemaker")
    group = settings.model_package_group
    caller = whoami(session).arn
    ensure_group(sm, settings, job_tags(settings, caller))
    for version in versions(sm, group):
        if (version.get("CustomerMetadataProperties") or {}).get(TRAINING_JOB_KEY) == record["job_name"]:
            raise RegistryError(
                f"job {record['job_name']} is already version {version['ModelPackageVersion']} "
                f"of {group} ({version['ModelPackageArn']}); a run is registered once"
            )
    metrics = {"val_auc": evaluation["val_auc"]}
    realtime, transform = supported_types(settings)
    arn = sm.create_model_package(
        ModelPackageGroupName=group,
        ModelPackageDescription=f"training job {record['job_name']}: val_auc {metrics.get('val_auc')}",
        InferenceSpecification={
            "Containers": [{"Image": image_by_digest(record["image"]), "ModelDataUrl": record["model_artifact"]}],
            "SupportedContentTypes": list(CONTENT_TYPES),
            "SupportedResponseMIMETypes": list(ACCEPT_TYPES),
            "SupportedRealtimeInferenceInstanceTypes": realtime,
            "SupportedTransformInstanceTypes": transform,
        },
        ModelApprovalStatus=PENDING,
        ModelMetrics=evaluation_report(evaluation["uri"]),
        # No Tags: a version in a group takes the group's, and AWS refuses any of its own.
        CustomerMetadataProperties=metadata(record, metrics, launched_by_value(caller)),
    )["ModelPackageArn"]
    record["registry"] = registration(sm.describe_model_package(ModelPackageName=arn))
    records.write_record(runs_dir, record)
    return record["registry"]


def registration(version: dict[str, Any]) -> records.Registration:
    """A version, as DescribeModelPackage has it, in the run record's words."""
    return {
        "group": version["ModelPackageGroupName"],
        "arn": version["ModelPackageArn"],
        "version": version["ModelPackageVersion"],
        "registered_at": str(version.get("CreationTime", "")),
    }


def evaluated(record: records.RunRecord) -> records.Evaluation:
    """The run's make evaluate, which the version's quality report and the approval gate read;
    a run without one, or whose model did not score as its training said, is not registered."""
    job = record["job_name"]
    evaluation = record.get("evaluation")
    if evaluation is None:
        raise RegistryError(
            f"job {job} has no evaluation; run 'make evaluate JOB={job}' first (its evaluation.json is the "
            "version's quality report)"
        )
    if not evaluation["reported_equal"]:
        raise RegistryError(
            f"job {job}'s model does not score as its training reported (make evaluate said so); train again"
        )
    return evaluation


def evaluation_report(uri: str) -> dict[str, Any]:
    return {"ModelQuality": {"Statistics": {"ContentType": "application/json", "S3Uri": uri}}}


def metadata(record: records.RunRecord, metrics: dict[str, float], registered_by: str) -> dict[str, str]:
    """What ties a version to its run (the job, the image's content, the data, the code) and
    who registered it, each value in the alphabet and length AWS accepts."""
    raw = {
        TRAINING_JOB_KEY: record["job_name"],
        REGISTERED_BY_KEY: registered_by,
        "ImageUri": record["image"]["uri"],
        "ImageDigest": record["image"]["digest"],
        "TrainSha256": record["data"]["train"]["sha256"],
        "ValidationSha256": record["data"]["validation"]["sha256"],
        "ToolkitCommit": record.get("toolkit_commit", "unknown"),
        "ValAuc": str(metrics.get("val_auc")),
        "ModelTarSha256": record["verification"].get("model_tar_sha256", ""),
    }
    return {key: metadata_value(value) for key, value in raw.items()}
