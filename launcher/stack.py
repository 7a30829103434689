"""The one-time set-up as a CloudFormation stack (iam/stack.json, launcher/lib/stack.py).

  render --out DIR   write DIR/toolkit.json (the deployable template, with the documents of
                     iam/ in place) and DIR/parameters.json (its parameters, from config.env)
  deploy --out DIR   render, then create or update the stack through a change set: the changes
                     are printed before they are applied, a rerun with nothing to change is a
                     no-op, and the outputs the runner needs are printed at the end

A bucket or repository that exists and is not the stack's is left out of it (used as it is,
never adopted or changed). `make lint` renders the template and runs cfn-lint over it.
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import boto3
from botocore.exceptions import ClientError

from launcher.lib import errors, stack
from launcher.lib.config import Settings, load
from launcher.lib.errors import ToolkitError, error_code
from launcher.lib.records import write_files

log = logging.getLogger("stack")
POLL_SECONDS = 5.0


def render(out: Path) -> list[Path]:
    settings = load()
    files = {
        "toolkit.json": stack.template(settings),
        "parameters.json": stack.parameters(settings, create_bucket=settings.create_bucket, create_repository=True),
    }
    write_files(out, {name: (json.dumps(body, indent=2) + "\n").encode() for name, body in files.items()})
    return [out / name for name in files]


class StackError(ToolkitError):
    """The stack cannot be deployed as asked; the message says why and what to do."""


def _exists(probe: Any) -> bool | None:
    """True: there; False: not found; None: there but not ours to read (403)."""
    try:
        probe()
    except ClientError as exc:
        code = error_code(exc)
        if code in ("404", "NoSuchBucket", "RepositoryNotFoundException", "NotFound"):
            return False
        if code in ("403", "AccessDenied"):
            return None
        raise
    return True


def _managed(cloudformation: Any, name: str) -> set[str] | None:
    """The logical ids the stack holds (None: no such stack)."""
    try:
        pages = cloudformation.get_paginator("list_stack_resources").paginate(StackName=name)
        return {r["LogicalResourceId"] for page in pages for r in page["StackResourceSummaries"]}
    except ClientError as exc:
        if "does not exist" in str(exc):
            return None
        raise


def creations(settings: Settings, session: boto3.Session, managed: set[str] | None) -> dict[str, bool]:
    """Whether the stack creates (or keeps) the bucket and the repository: yes when it already
    holds them or they are missing; no when they exist outside it (used as they are)."""
    held = managed or set()
    there = _exists(lambda: session.client("s3").head_bucket(Bucket=settings.bucket))
    if there is None:
        raise StackError(
            f"bucket s3://{settings.bucket} exists but you may not use it (another account's?); choose another BUCKET"
        )
    bucket = "Bucket" in held or not there
    if bucket and "Bucket" not in held and not settings.create_bucket:
        raise StackError(f"bucket s3://{settings.bucket} does not exist; create it, or set CREATE_BUCKET=yes")
    ecr = session.client("ecr")
    repository = "Repository" in held or not _exists(
        lambda: ecr.describe_repositories(repositoryNames=[settings.ecr_repository])
    )
    return {"create_bucket": bucket, "create_repository": repository}


def _wait(read: Any, done: Any, what: str, sleep: Any = time.sleep) -> dict[str, Any]:
    while True:
        found = read()
        if done(found):
            return found
        log.info("%s ...", what)
        sleep(POLL_SECONDS)


def deploy(settings: Settings, session: boto3.Session, *, sleep: Any = time.sleep) -> dict[str, str]:
    """Create or update the stack through a change set; the stack's outputs."""
    cloudformation = session.client("cloudformation")
    name = stack.stack_name(settings)
    managed = _managed(cloudformation, name)
    parameters = stack.parameters(settings, **creations(settings, session, managed))
    change_set = f"{name}-{datetime.now(UTC):%Y%m%d%H%M%S}"
    try:
        cloudformation.create_change_set(
            StackName=name,
            ChangeSetName=change_set,
            ChangeSetType="UPDATE" if managed is not None else "CREATE",
            TemplateBody=json.dumps(stack.template(settings)),
            Parameters=[{"ParameterKey": k, "ParameterValue": v} for k, v in parameters.items()],
            Capabilities=["CAPABILITY_NAMED_IAM"],
            Tags=stack.tags(settings),
        )
    except ClientError as exc:
        # AWS makes a FAILED change set for "no changes" (below); moto refuses the request.
        if "No updates are to be performed" not in str(exc):
            raise
        log.info("stack %s is up to date: nothing to change", name)
        return _outputs(cloudformation, name)
    described = _wait(
        lambda: cloudformation.describe_change_set(StackName=name, ChangeSetName=change_set),
        lambda d: d["Status"] in ("CREATE_COMPLETE", "FAILED"),
        f"change set {change_set}",
        sleep,
    )
    if described["Status"] == "FAILED":
        cloudformation.delete_change_set(StackName=name, ChangeSetName=change_set)
        if "didn't contain changes" in described.get("StatusReason", ""):
            log.info("stack %s is up to date: nothing to change", name)
            return _outputs(cloudformation, name)
        raise StackError(f"CloudFormation refused the change set for {name}: {described.get('StatusReason')}")
    for change in described.get("Changes", []):
        resource = change["ResourceChange"]
        log.info(
            "change: %s %s (%s)%s",
            resource["Action"],
            resource["LogicalResourceId"],
            resource["ResourceType"],
            f", replacement {resource['Replacement']}" if resource.get("Replacement") else "",
        )
    cloudformation.execute_change_set(StackName=name, ChangeSetName=change_set)
    final = _wait(
        lambda: cloudformation.describe_stacks(StackName=name)["Stacks"][0],
        lambda s: not s["StackStatus"].endswith("_IN_PROGRESS"),
        f"stack {name}",
        sleep,
    )
    if final["StackStatus"] not in ("CREATE_COMPLETE", "UPDATE_COMPLETE"):
        raise StackError(f"stack {name} ended {final['StackStatus']}: {_first_failure(cloudformation, name)}")
    log.info("stack %s: %s", name, final["StackStatus"])
    return _outputs(cloudformation, name)


def _first_failure(cloudformation: Any, name: str) -> str:
    events = cloudformation.describe_stack_events(StackName=name)["StackEvents"]
    failed = [e for e in events if e.get("ResourceStatus", "").endswith("_FAILED")]
    return failed[-1].get("ResourceStatusReason", "no reason given") if failed else "see its events in the console"


def _outputs(cloudformation: Any, name: str) -> dict[str, str]:
    found = cloudformation.describe_stacks(StackName=name)["Stacks"][0].get("Outputs", [])
    return {o["OutputKey"]: o["OutputValue"] for o in found}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("command", choices=("render", "deploy"))
    parser.add_argument("--out", type=Path, required=True, help="where the rendered template goes")
    args = parser.parse_args(argv)
    return errors.run("stack", lambda: _command(args))


def _command(args: argparse.Namespace) -> int:
    for path in render(args.out):
        log.info("wrote %s", path)
    if args.command == "deploy":
        settings = load()
        outputs = deploy(settings, boto3.Session(region_name=settings.region))
        for key, value in sorted(outputs.items()):
            print(f"{key}={value}", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
