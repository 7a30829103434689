"""The model registry: `make register`, `approve`, `reject` and `models`.

A verified run becomes a version of the model package group MODEL_PACKAGE_GROUP, pinned to
its image *by digest* and its model.tar.gz, with its data's SHA-256s and the toolkit commit
as customer metadata and its metrics.json (uploaded beside the artifact) as the evaluation
report. Versions start PendingManualApproval. `approve` refuses a version whose val_auc is
below APPROVAL_MIN_AUC, saying both numbers, and records who approved and why; `reject`
needs a reason. A training job is registered once: a second `register` names the version it
already is. The same calls run against moto on the embedded stack and SageMaker on AWS.
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
from datetime import datetime
from pathlib import Path
from typing import Any

import boto3
from botocore.exceptions import ClientError
from titanic_model.contract import ACCEPT_TYPES, CONTENT_TYPES

from launcher.lib import errors, records
from launcher.lib.caller import s3_bytes, sagemaker_tags, whoami
from launcher.lib.config import TOOLKIT_TAG, Settings, instance_types, is_toolkits, job_tags, launched_by_value, load
from launcher.lib.errors import NOT_FOUND, error_code
from launcher.lib.metadata import REGISTERED_BY_KEY, TRAINING_JOB_KEY
from launcher.lib.metadata import value as metadata_value
from launcher.lib.model_registry import APPROVED, PENDING, REJECTED, RegistryError, pick_version, versions
from launcher.lib.pricing import PriceBook

log = logging.getLogger("registry")
MAX_TYPES = 10  # instance types listed per kind in a version's inference specification


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


def _group_exists(sm: Any, group: str) -> bool:
    """Only "not found" means no group; any other failure (denied, throttled) is raised."""
    try:
        sm.describe_model_package_group(ModelPackageGroupName=group)
    except ClientError as exc:
        if error_code(exc) in NOT_FOUND:
            return False
        raise
    return True


def register(settings: Settings, runs_dir: Path, job: str, session: boto3.Session) -> records.Registration:
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
    version = sm.describe_model_package(ModelPackageName=arn)
    record["registry"] = {
        "group": group,
        "arn": arn,
        "version": version["ModelPackageVersion"],
        "registered_at": str(version.get("CreationTime", "")),
    }
    records.write_record(runs_dir, record)
    return record["registry"]


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


def val_auc(s3: Any, version: dict[str, Any]) -> float:
    """The version's validation AUC from its registered evaluation report."""
    try:
        metrics = json.loads(s3_bytes(s3, version["ModelMetrics"]["ModelQuality"]["Statistics"]["S3Uri"]))
    except (ClientError, ValueError) as exc:
        raise RegistryError(
            f"the evaluation report of version {version['ModelPackageVersion']} cannot be read "
            f"({exc}); approval needs it"
        ) from None
    # evaluation.json holds its metrics under "metrics"; versions registered before it, a bare metrics.json.
    return float(metrics.get("metrics", metrics)["val_auc"])


def decide(settings: Settings, session: boto3.Session, *, approve: bool, version: str, reason: str) -> str:
    """Approve (gated by APPROVAL_MIN_AUC) or reject a version; returns what was done."""
    if not approve and not reason.strip():
        raise RegistryError("REASON is empty; say why the version is rejected: make reject REASON='...'")
    sm, s3 = session.client("sagemaker"), session.client("s3")
    group = settings.model_package_group
    chosen = pick_version(sm, group, version, PENDING)
    number, status = chosen["ModelPackageVersion"], chosen["ModelApprovalStatus"]
    wanted = APPROVED if approve else REJECTED
    if status == wanted:
        raise RegistryError(f"version {number} of {group} is already {status}")
    caller = whoami(session).arn
    auc = val_auc(s3, chosen)
    if approve and auc < settings.approval_min_auc:
        raise RegistryError(
            f"version {number} has val_auc {auc:.4f}, below APPROVAL_MIN_AUC "
            f"{settings.approval_min_auc}; it stays {status} (reject it, or register a better "
            "run)"
        )
    why = f"val_auc {auc:.4f} >= APPROVAL_MIN_AUC {settings.approval_min_auc}" if approve else reason.strip()
    description = f"{'approved' if approve else 'rejected'} by {caller}: {why}"
    if approve and reason.strip():
        description += f"; {reason.strip()}"
    # Sent again: an update that leaves them out must not lose them (moto clears them).
    sm.update_model_package(
        ModelPackageArn=chosen["ModelPackageArn"],
        ModelApprovalStatus=wanted,
        ApprovalDescription=description[:1024],
        CustomerMetadataProperties=chosen.get("CustomerMetadataProperties") or {},
    )
    return f"version {number} of {group}: {status} -> {wanted} ({description})"


def deployed_package(sm: Any, endpoint: str) -> str | None:
    """The model package ARN the endpoint serves, if it exists and serves one."""
    try:
        config = sm.describe_endpoint(EndpointName=endpoint)["EndpointConfigName"]
        variant = sm.describe_endpoint_config(EndpointConfigName=config)["ProductionVariants"][0]
        model = sm.describe_model(ModelName=variant["ModelName"])
    except ClientError:
        return None
    container = model.get("PrimaryContainer") or (model.get("Containers") or [{}])[0]
    return container.get("ModelPackageName")


def table(settings: Settings, session: boto3.Session) -> str:
    sm, s3 = session.client("sagemaker"), session.client("s3")
    group = settings.model_package_group
    if not _group_exists(sm, group):
        return f"no model package group {group} yet; 'make register' creates it"
    serving = deployed_package(sm, settings.endpoint_name)
    lines = [
        f"{group} (endpoint {settings.endpoint_name} serves the version marked *)",
        f"{'':1} {'version':>7}  {'status':<21}  {'val_auc':>7}  {'created':<19}  training job",
    ]
    for v in versions(sm, group):
        try:
            auc = f"{val_auc(s3, v):.4f}"
        except RegistryError:
            auc = "?"
        created = v.get("CreationTime")
        when = created.strftime("%Y-%m-%d %H:%M:%S") if isinstance(created, datetime) else str(created)
        job = (v.get("CustomerMetadataProperties") or {}).get(TRAINING_JOB_KEY, "?")
        mark = "*" if v["ModelPackageArn"] == serving else ""
        lines.append(
            f"{mark:1} {v['ModelPackageVersion']:>7}  {v['ModelApprovalStatus']:<21}  {auc:>7}  {when:<19}  {job}"
        )
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("verb", choices=("register", "approve", "reject", "models"))
    parser.add_argument("--runs-dir", type=Path, default=Path("runs"))
    parser.add_argument("--job", default="", help="register: the run (default: the latest verified)")
    parser.add_argument("--version", default="", help="approve/reject: the version (default: the newest pending)")
    parser.add_argument("--reason", default="", help="why (required to reject)")
    args = parser.parse_args(argv)
    return errors.run(args.verb, lambda: _registry(args))


def _registry(args: argparse.Namespace) -> int:
    settings = load()
    session = boto3.Session(region_name=settings.region)
    if args.verb == "register":
        done = register(settings, args.runs_dir, args.job, session)
        log.info(
            "registered version %s of %s (%s), PendingManualApproval; approve it with 'make approve'",
            done["version"],
            done["group"],
            done["arn"],
        )
    elif args.verb == "models":
        print(table(settings, session), flush=True)
    else:
        log.info(
            "%s", decide(settings, session, approve=args.verb == "approve", version=args.version, reason=args.reason)
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
