"""The toolkit's one-time set-up as a CloudFormation template: iam/stack.json with the very
documents the IAM tests check (iam/*.json, rendered by iam_documents.render) put in place.

The template lives in iam/ because it is the set-up policy's counterpart: what an
administrator creates once, beside the documents it embeds. Inside it, `{"Toolkit::Document":
NAME}` becomes iam/NAME.json filled from config.env, with the account and partition left to
CloudFormation (`${AWS::AccountId}`, `${AWS::Partition}` under Fn::Sub), and
`{"Toolkit::Tags": ...}` the tags every toolkit resource carries. No value is written twice.

Below the template: reading, waiting for and deleting the deployed stack, shared by `make
bootstrap` (launcher/stack.py) and `make teardown` (launcher/cleanup.py).
"""

from __future__ import annotations

import json
import logging
import re
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from botocore.exceptions import ClientError

from launcher.lib.caller import Caller
from launcher.lib.config import TOOLKIT_TAG, Settings
from launcher.lib.errors import ToolkitError
from launcher.lib.iam_documents import IAM_DIR, IamError, render

log = logging.getLogger("stack")

TEMPLATE = IAM_DIR / "stack.json"
# What CloudFormation fills in at deploy time, in the account the stack is created in.
PSEUDO = Caller(account="${AWS::AccountId}", partition="${AWS::Partition}", arn="")
RUNNER_POLICY_SUFFIX = "-runner"
# IAM's quota for a customer managed policy: 6,144 characters, whitespace not counted.
MANAGED_POLICY_LIMIT = 6144


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
    raw = json.loads(TEMPLATE.read_text(encoding="utf-8"))
    places = part_counts(raw)

    def fill(node: Any) -> Any:
        if isinstance(node, dict) and set(node) in ({"Toolkit::Document"}, {"Toolkit::Document", "Toolkit::Part"}):
            name = node["Toolkit::Document"]
            if name not in docs:
                raise IamError(f"iam/stack.json embeds {name}, which is not one of iam/'s documents; fix the template")
            document = _substituted(docs[name])
            if "Toolkit::Part" not in node:
                return document
            return _part(name, parts(document), node["Toolkit::Part"], places[name])
        if isinstance(node, dict) and set(node) == {"Toolkit::Tags"}:
            return tags(settings)
        if isinstance(node, dict):
            return {key: fill(value) for key, value in node.items()}
        if isinstance(node, list):
            return [fill(item) for item in node]
        return node

    return fill(raw)


def policy_size(document: dict[str, Any]) -> int:
    """A policy's size as IAM counts it against its quotas: characters, whitespace not counted."""
    return len(re.sub(r"\s", "", json.dumps(document)))


def parts(document: dict[str, Any], limit: int = MANAGED_POLICY_LIMIT) -> list[dict[str, Any]]:
    """The document cut, between statements and in order, into policies of at most `limit`
    characters each. Measured as the template holds it (`${AWS::AccountId}` is longer than
    any account number), so each part fits once CloudFormation fills it in."""
    cut: list[list[Any]] = [[]]
    for statement in document["Statement"]:
        if cut[-1] and policy_size({**document, "Statement": [*cut[-1], statement]}) > limit:
            cut.append([])
        cut[-1].append(statement)
    return [{**document, "Statement": statements} for statements in cut]


def part_counts(node: Any) -> Counter[str]:
    """How many parts (managed policies) the template gives each document it cuts."""
    if isinstance(node, dict) and "Toolkit::Part" in node:
        return Counter([node["Toolkit::Document"]])
    children = node.values() if isinstance(node, dict) else node if isinstance(node, list) else []
    return sum((part_counts(child) for child in children), Counter())


def _part(name: str, cut: list[dict[str, Any]], number: int, places: int) -> dict[str, Any]:
    if len(cut) != places:
        raise IamError(
            f"iam/{name}.json now takes {len(cut)} managed policies of at most {MANAGED_POLICY_LIMIT} characters, "
            f"and iam/stack.json gives it {places}: add or remove a Toolkit::Part resource (and its grants)"
        )
    return cut[number - 1]


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


# ---- the deployed stack --------------------------------------------------------------
POLL_SECONDS = 5.0
# Stack states from which neither an update nor a new creation can start: a person must look.
STUCK = ("ROLLBACK_FAILED", "DELETE_FAILED", "UPDATE_ROLLBACK_FAILED", "IMPORT_ROLLBACK_FAILED")


@dataclass(frozen=True)
class Deployed:
    """The set-up stack as CloudFormation holds it."""

    stack_id: str
    status: str
    tags: dict[str, str]
    held: dict[str, tuple[str, str]]  # logical id -> (resource type, physical id)

    def physical(self, resource_type: str) -> list[str]:
        return sorted(pid for kind, pid in self.held.values() if kind == resource_type and pid)


def deployed(cloudformation: Any, name: str) -> Deployed | None:
    """The stack called `name`, or None when there is none (a deleted stack is none)."""
    try:
        (found,) = cloudformation.describe_stacks(StackName=name)["Stacks"]
    except ClientError as exc:
        if "does not exist" in str(exc):
            return None
        raise
    pages = cloudformation.get_paginator("list_stack_resources").paginate(StackName=name)
    held = {
        r["LogicalResourceId"]: (r["ResourceType"], r.get("PhysicalResourceId", ""))
        for page in pages
        for r in page["StackResourceSummaries"]
        if r["LogicalResourceId"]  # moto lists each resource type it skipped under an empty id
    }
    return Deployed(
        stack_id=found["StackId"],
        status=found["StackStatus"],
        tags={t["Key"]: t["Value"] for t in found.get("Tags", [])},
        held=held,
    )


def wait(read: Callable[[], Any], done: Callable[[Any], bool], what: str, sleep: Callable[[float], None]) -> Any:
    """Poll `read` until `done` says so (CloudFormation's own waiters give up after a fixed time)."""
    while True:
        found = read()
        if done(found):
            return found
        log.info("%s ...", what)
        sleep(POLL_SECONDS)


def first_failure(cloudformation: Any, name: str) -> str:
    """The reason CloudFormation gave for the first resource that failed (events are newest first)."""
    events = cloudformation.describe_stack_events(StackName=name)["StackEvents"]
    failed = [e for e in events if e.get("ResourceStatus", "").endswith("_FAILED")]
    return failed[-1].get("ResourceStatusReason", "no reason given") if failed else "see its events in the console"


def settle(cloudformation: Any, stack: str, wanted: tuple[str, ...], sleep: Callable[[float], None]) -> str:
    """Wait until the stack (a name, or the id of a deleted one) is no longer in progress; its
    final status, or StackError with the first failure's reason when it is not one of `wanted`."""
    final = wait(
        lambda: cloudformation.describe_stacks(StackName=stack)["Stacks"][0],
        lambda s: not s["StackStatus"].endswith("_IN_PROGRESS"),
        f"stack {stack}",
        sleep,
    )
    if final["StackStatus"] not in wanted:
        reason = first_failure(cloudformation, stack)
        raise StackError(f"stack {final['StackName']} ended {final['StackStatus']}: {reason}; fix that and rerun")
    return final["StackStatus"]


def delete(cloudformation: Any, found: Deployed, sleep: Callable[[float], None]) -> None:
    """Delete the stack and wait; its Retain resources (bucket, repository) stay behind."""
    cloudformation.delete_stack(StackName=found.stack_id)
    # A deleted stack is found by its id only (its name then means none).
    settle(cloudformation, found.stack_id, ("DELETE_COMPLETE",), sleep)


class StackError(ToolkitError):
    """The stack cannot be deployed or deleted as asked; the message says why and what to do."""
