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

from launcher.lib import errors
from launcher.lib.caller import s3_bytes, whoami
from launcher.lib.config import Settings, load
from launcher.lib.metadata import TRAINING_JOB_KEY
from launcher.lib.model_registry import (
    APPROVED,
    PENDING,
    REJECTED,
    RegistryError,
    group_exists,
    pick_version,
    register_run,
    versions,
)

log = logging.getLogger("registry")


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
    if not group_exists(sm, group):
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
        done = register_run(settings, args.runs_dir, args.job, session)
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
