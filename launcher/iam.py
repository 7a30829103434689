"""The toolkit's IAM documents: rendered from iam/*.json templates with config.env's
identifiers and the caller's account and partition (from STS, never from ROLE_ARN's text),
linted with parliament, and applied to the execution role.

  render --out build/iam     write the filled-in JSON (make iam-render)
  check  --out build/iam     render, then lint the permission policies (make iam-check)
  apply  --out build/iam     create or update the execution role, print its ARN (make iam)

Two principals, two policies: the runner's (iam/runner-policy.json: upload, push, train,
operate, clean up what its runs made) for cron, CI and people; the administrator's one-time
set-up (iam/setup-policy.json: create and harden the bucket, the repository, the role).
"""

from __future__ import annotations

import argparse
import copy
import json
import logging
import os
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import boto3

from launcher.lib import errors
from launcher.lib.caller import whoami
from launcher.lib.config import TOOLKIT_TAG, RoleArn, Settings, load
from launcher.lib.iam_documents import (
    IAM_DIR,
    INLINE_POLICY_NAME,
    PERMISSION_POLICIES,
    PIPELINE_POLICY_NAME,
    IamError,
    as_list,
    check_role_account,
    render,
)

log = logging.getLogger("iam")
# The everyday runner may hold nothing that needs excusing: no parliament finding is
# accepted for it, whatever the allow-list says.
NEVER_EXCUSED = ("runner-policy",)
# moto authorizes these services against real resource ARNs; all others only against "*".
RESOURCE_CHECKED_BY_EMULATOR = ("s3", "iam")


def widen_for_emulator(document: dict[str, Any]) -> dict[str, Any]:
    """A copy whose statements for services moto checks only against "*" have Resource "*".

    Run under moto's IAM enforcement, this copy proves the action list is sufficient, while
    S3 and IAM statements keep their real resources, which moto does check."""
    widened = copy.deepcopy(document)
    for statement in widened["Statement"]:
        services = {action.split(":")[0] for action in as_list(statement["Action"])}
        if not services & set(RESOURCE_CHECKED_BY_EMULATOR):
            statement["Resource"] = "*"
    return widened


def write_documents(documents: dict[str, dict[str, Any]], out: Path) -> list[Path]:
    out.mkdir(parents=True, exist_ok=True)
    written = []
    for name, document in documents.items():
        path = out / f"{name}.json"
        path.write_text(json.dumps(document, indent=2) + "\n", encoding="utf-8")
        written.append(path)
    return written


def lint(documents: dict[str, dict[str, Any]], allowlist: list[dict[str, str]]) -> tuple[list[str], list[str]]:
    """parliament's findings on the permission policies: (not allowed, allowed with reason).

    Trust policies have no Resource, which parliament reports as malformed: they are
    checked by tests/test_iam.py instead."""
    from parliament import analyze_policy_string

    failing, accepted = [], []
    for name in PERMISSION_POLICIES:
        for finding in analyze_policy_string(json.dumps(documents[name])).findings:
            text = f"{name}: {finding.issue}: {finding.detail}"
            allowed = name not in NEVER_EXCUSED and any(
                a["document"] == name and a["issue"] == finding.issue and a["detail_contains"] in str(finding.detail)
                for a in allowlist
            )
            (accepted if allowed else failing).append(text)
    return failing, accepted


def refuse_embedded_stack(settings: Settings, env: dict[str, str]) -> None:
    if settings.local and env.get("IAM_ON_EMBEDDED_STACK", "no") != "yes":
        raise IamError(
            "TARGET=local: this would create the role in the embedded AWS, not in your account. For your account run "
            "'make iam TARGET=aws' (with an administrator's credentials); to try it on the emulator, add "
            "IAM_ON_EMBEDDED_STACK=yes"
        )


@dataclass(frozen=True)
class RoleDocuments:
    """One role the toolkit keeps: where it is, which rendered documents it takes, and why it exists."""

    role: RoleArn
    setting: str  # the config.env setting that names it
    trust: str  # the trust policy's document name
    policy: str  # the inline permission policy's document name
    policy_name: str
    description: str


def roles(settings: Settings) -> tuple[RoleDocuments, RoleDocuments]:
    """The jobs' execution role, and the role SageMaker Pipelines starts the steps with."""
    return (
        RoleDocuments(
            settings.role,
            "ROLE_ARN",
            "execution-role-trust",
            "execution-role-policy",
            INLINE_POLICY_NAME,
            "SageMaker execution role of the Titanic training toolkit",
        ),
        RoleDocuments(
            settings.pipeline_role,
            "PIPELINE_ROLE_ARN",
            "pipeline-role-trust",
            "pipeline-role-policy",
            PIPELINE_POLICY_NAME,
            "The role SageMaker Pipelines starts the Titanic toolkit's pipeline steps with",
        ),
    )


def apply(settings: Settings, documents: dict[str, dict[str, Any]], iam: Any) -> list[str]:
    """Both roles, each created if missing, else its trust policy brought up to date; then
    their inline permissions and tags (re)written. Safe to run again. Returns their ARNs."""
    return [apply_role(settings, documents, iam, role) for role in roles(settings)]


def apply_role(settings: Settings, documents: dict[str, dict[str, Any]], iam: Any, wanted: RoleDocuments) -> str:
    path, name = wanted.role.path, wanted.role.name
    trust = json.dumps(documents[wanted.trust])
    tags = [
        {"Key": TOOLKIT_TAG[0], "Value": TOOLKIT_TAG[1]},
        *({"Key": k, "Value": v} for k, v in settings.tags.items()),
    ]
    try:
        role = iam.get_role(RoleName=name)["Role"]
        if role["Path"] != path:
            raise IamError(
                f"role {name} exists with path {role['Path']}, not {path}; set {wanted.setting} to {role['Arn']} or "
                "delete it"
            )
        iam.update_assume_role_policy(RoleName=name, PolicyDocument=trust)
        log.info("updated the trust policy of %s", role["Arn"])
    except iam.exceptions.NoSuchEntityException:
        role = iam.create_role(
            RoleName=name, Path=path, AssumeRolePolicyDocument=trust, Tags=tags, Description=wanted.description
        )["Role"]
        log.info("created %s", role["Arn"])
    iam.put_role_policy(
        RoleName=name, PolicyName=wanted.policy_name, PolicyDocument=json.dumps(documents[wanted.policy])
    )
    iam.tag_role(RoleName=name, Tags=tags)
    return role["Arn"]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("command", choices=("render", "check", "apply"))
    parser.add_argument("--out", type=Path, required=True, help="where the rendered JSON goes")
    args = parser.parse_args(argv)
    return errors.run("iam", lambda: _command(args))


def _command(args: argparse.Namespace) -> int:
    settings = load()
    if args.command == "apply":
        refuse_embedded_stack(settings, dict(os.environ))
    session = boto3.Session(region_name=settings.region)
    caller = whoami(session)
    check_role_account(settings, caller)
    documents = render(settings, caller)
    for path in write_documents(documents, args.out):
        log.info("wrote %s", path)
    if args.command == "check":
        allowlist = json.loads((IAM_DIR / "parliament-allowlist.json").read_text(encoding="utf-8"))["allowed"]
        failing, accepted = lint(documents, allowlist)
        for line in accepted:
            log.info("accepted finding: %s", line)
        for line in failing:
            log.error("ERROR: %s", line)
        if failing:
            raise IamError(
                f"{len(failing)} parliament finding(s) above; fix the template or justify them in "
                "iam/parliament-allowlist.json"
            )
        log.info(
            "parliament: no findings beyond the allow-list (%d accepted, reasons in iam/parliament-allowlist.json)",
            len(accepted),
        )
    if args.command == "apply":
        execution, pipeline = apply(settings, documents, session.client("iam"))
        print(f"ROLE_ARN={execution}    # put these in config.env")
        print(f"PIPELINE_ROLE_ARN={pipeline}")
        print(f"\nAttach {args.out}/runner-policy.json to the principal that runs the toolkit (cron, CI, people);")
        print(f"{args.out}/setup-policy.json is what 'make bootstrap' and 'make teardown' need, once.")
    return 0


if __name__ == "__main__":
    sys.exit(main())
