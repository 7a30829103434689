"""Reading the model registry: a group's versions, newest first, and one chosen version
(by number, or the newest with a given approval status).
"""

from __future__ import annotations

from typing import Any

from launcher.lib.errors import ToolkitError

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
