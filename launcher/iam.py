"""The toolkit's IAM documents: rendered from iam/*.json templates with config.env's
identifiers and the caller's account and partition (from STS, never from ROLE_ARN's text),
linted with parliament. The set-up stack (launcher/lib/stack.py) deploys these same documents.

  render --out build/iam     write the filled-in JSON (make iam-render)
  check  --out build/iam     render, then lint the permission policies (make iam-check)

Two principals, two policies: the runner's (iam/runner-policy.json: upload, push, train,
operate, clean up what its runs made) for cron, CI and people; the administrator's one-time
set-up (iam/setup-policy.json: deploy and delete the set-up stack, iam/stack.json, which
creates the roles with these very documents: make bootstrap).
"""

from __future__ import annotations

import argparse
import copy
import json
import logging
import sys
from pathlib import Path
from typing import Any

import boto3

from launcher.lib import errors
from launcher.lib.caller import whoami
from launcher.lib.config import load
from launcher.lib.iam_documents import (
    IAM_DIR,
    PERMISSION_POLICIES,
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


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("command", choices=("render", "check"))
    parser.add_argument("--out", type=Path, required=True, help="where the rendered JSON goes")
    args = parser.parse_args(argv)
    return errors.run("iam", lambda: _command(args))


def _command(args: argparse.Namespace) -> int:
    settings = load()
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
    return 0


if __name__ == "__main__":
    sys.exit(main())
