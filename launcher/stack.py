"""The one-time set-up as a CloudFormation stack (iam/stack.json, launcher/lib/stack.py).

  render --out DIR   write DIR/toolkit.json (the deployable template, with the documents of
                     iam/ in place) and DIR/parameters.json (its parameters, from config.env)
  deploy --out DIR   render, then create or update the stack through a change set: the changes
                     are printed before they are applied, a rerun with nothing to change is a
                     no-op, and the outputs the runner needs are printed at the end (make bootstrap)

A bucket, repository or GitHub OIDC provider that exists and is not the stack's is left out of
it (used as it is, never adopted or changed). A role of the toolkit's name that exists outside
the stack is refused with what to do: CloudFormation cannot take it over. `make lint` renders
the template and runs cfn-lint over it; `make teardown` deletes the stack (launcher/cleanup.py).
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
import time
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import boto3
from botocore.exceptions import ClientError

from launcher.lib import errors, stack
from launcher.lib.caller import whoami
from launcher.lib.config import Settings, load
from launcher.lib.errors import error_code
from launcher.lib.iam_documents import check_role_account
from launcher.lib.iam_documents import render as render_documents
from launcher.lib.records import write_files
from launcher.lib.stack import Deployed, StackError

log = logging.getLogger("stack")
# Logical ids of the roles the stack names itself (from ROLE_ARN, PIPELINE_ROLE_ARN).
NAMED_ROLES = {"ExecutionRole": "ROLE_ARN", "PipelineRole": "PIPELINE_ROLE_ARN"}


def render(out: Path) -> list[Path]:
    settings = load()
    files = {
        "toolkit.json": stack.template(settings),
        "parameters.json": stack.parameters(settings, create_bucket=settings.create_bucket, create_repository=True),
    }
    write_files(out, {name: (json.dumps(body, indent=2) + "\n").encode() for name, body in files.items()})
    return [out / name for name in files]


def _exists(probe: Callable[[], Any]) -> bool | None:
    """True: there; False: not found; None: there but not ours to read (403)."""
    try:
        probe()
    except ClientError as exc:
        code = error_code(exc)
        if code in ("404", "NoSuchBucket", "RepositoryNotFoundException", "NotFound", "NoSuchEntity"):
            return False
        if code in ("403", "AccessDenied"):
            return None
        raise
    return True


def creations(settings: Settings, session: boto3.Session, held: set[str]) -> dict[str, bool]:
    """Whether the stack creates (or keeps) the bucket, the repository and GitHub's OIDC provider:
    yes when it already holds them or they are missing; no when they exist outside it."""
    # GetBucketLocation, not HeadBucket (which needs s3:ListBucket): the setup policy's grant.
    there = _exists(lambda: session.client("s3").get_bucket_location(Bucket=settings.bucket))
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
    provider = "GitHubOidcProvider" in held
    if settings.ci_repository and not provider:
        # One provider per URL and account: one made by hand or by another stack is used as it is.
        arn = render_documents(settings, whoami(session))["ci-train-trust"]["Statement"][0]["Principal"]["Federated"]
        provider = not _exists(lambda: session.client("iam").get_open_id_connect_provider(OpenIDConnectProviderArn=arn))
    return {"create_bucket": bucket, "create_repository": repository, "create_oidc_provider": provider}


def refuse_roles_outside(settings: Settings, iam: Any, held: set[str]) -> None:
    """A role of the stack's name made some other way (an older `make iam`, a person) would fail
    the stack's creation halfway: say so before anything is made."""
    for logical, setting in NAMED_ROLES.items():
        role = settings.role if logical == "ExecutionRole" else settings.pipeline_role
        if logical not in held and _exists(lambda r=role: iam.get_role(RoleName=r.name)):
            raise StackError(
                f"role {role.name} ({setting}) exists outside the set-up stack, which cannot take it over; delete "
                f"it (aws iam delete-role-policy, then delete-role) or set {setting} to an unused name, and rerun"
            )


def current(cloudformation: Any, name: str, sleep: Callable[[float], None]) -> Deployed | None:
    """The stack as it stands, ready to change; a first creation that rolled back (which holds
    nothing and cannot be updated) is deleted so that it can be created afresh."""
    found = stack.deployed(cloudformation, name)
    if found is None or found.status == "REVIEW_IN_PROGRESS":
        return found
    if found.status in stack.STUCK:
        raise StackError(
            f"stack {name} is {found.status} ({stack.first_failure(cloudformation, name)}); fix the cause, then "
            "delete it or continue its rollback in the CloudFormation console, and rerun"
        )
    if found.status.endswith("_IN_PROGRESS"):
        raise StackError(f"stack {name} is {found.status}: another deploy or teardown is at work; rerun when it ends")
    if found.status == "ROLLBACK_COMPLETE":
        log.info("stack %s: its first creation failed and was rolled back; deleting it to create it afresh", name)
        stack.delete(cloudformation, found, sleep)
        return None
    return found


def deploy(settings: Settings, session: boto3.Session, *, sleep: Callable[[float], None] = time.sleep) -> list[str]:
    """Create or update the stack through a change set; the output lines the runner needs."""
    cloudformation = session.client("cloudformation")
    name = stack.stack_name(settings)
    found = current(cloudformation, name, sleep)
    held = set(found.held) if found else set()
    refuse_roles_outside(settings, session.client("iam"), held)
    parameters = stack.parameters(settings, **creations(settings, session, held))
    change_set = f"{name}-{datetime.now(UTC):%Y%m%d%H%M%S}"
    try:
        cloudformation.create_change_set(
            StackName=name,
            ChangeSetName=change_set,
            # A stack still in review (an earlier CREATE change set never executed) is created.
            ChangeSetType="UPDATE" if found and found.status != "REVIEW_IN_PROGRESS" else "CREATE",
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
    described = stack.wait(
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
    status = stack.settle(cloudformation, name, ("CREATE_COMPLETE", "UPDATE_COMPLETE"), sleep)
    log.info("stack %s: %s", name, status)
    return _outputs(cloudformation, name)


def _outputs(cloudformation: Any, name: str) -> list[str]:
    """`Key=value  # where it goes` for each output (the description names the setting)."""
    found = cloudformation.describe_stacks(StackName=name)["Stacks"][0].get("Outputs", [])
    return [f"{o['OutputKey']}={o['OutputValue']}    # {o.get('Description', '')}" for o in found]


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
        session = boto3.Session(region_name=settings.region)
        # The stack makes the roles in the caller's account: ROLE_ARN must name that account.
        check_role_account(settings, whoami(session), pipeline_role=True)
        for line in deploy(settings, session):
            print(line, flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
