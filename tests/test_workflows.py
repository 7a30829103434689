"""The GitHub Actions workflows (.github/workflows/), held to what they promise: every make target
they run exists and every setting they pass is a real one; third-party actions pinned by commit;
permissions minimal per job, with `id-token: write` only where AWS is called; one run at a time;
timeouts; no `${{ }}` in a `run:` line. (zizmor lints them in `make lint`.)"""

from __future__ import annotations

import re
import shlex
from pathlib import Path
from typing import Any

import pytest
import yaml
from conftest import REPO, shipped

WORKFLOWS = sorted((REPO / ".github/workflows").glob("*.yml"))
AWS_ACTION = "aws-actions/configure-aws-credentials"
# What a make command line may set besides config.env's settings: the Makefile's `NAME ?=` inputs.
OPERATOR_INPUTS = set(re.findall(r"^([A-Z][A-Z0-9_]*) \?=", (REPO / "Makefile").read_text(), re.MULTILINE))


def load(path: Path) -> dict[str, Any]:
    document = yaml.safe_load(path.read_text())
    document["on"] = document.pop(True, document.get("on"))  # YAML 1.1 reads the key `on` as True
    return document


def steps(path: Path) -> list[tuple[str, dict[str, Any]]]:
    return [(name, step) for name, job in load(path)["jobs"].items() for step in job["steps"]]


def make_targets() -> set[str]:
    text = (REPO / "Makefile").read_text()
    return set(re.findall(r"^([a-z][a-z0-9-]*):", text, flags=re.MULTILINE))


def test_there_are_the_two_workflows() -> None:
    assert [p.name for p in WORKFLOWS] == ["ci.yml", "train-and-deploy.yml"]


@pytest.mark.parametrize("path", WORKFLOWS, ids=lambda p: p.name)
def test_every_make_target_exists_and_every_setting_is_real(path: Path) -> None:
    settings = set(shipped())
    targets = make_targets()
    document = load(path)
    for key in document.get("env", {}):
        assert key in settings, f"{path.name}: env {key} is not a config.env setting"
    for _, step in steps(path):
        for line in step.get("run", "").splitlines():
            if not line.strip().startswith("make "):
                continue
            words = shlex.split(line)[1:]
            for word in words:
                if "=" in word:
                    name = word.split("=", 1)[0]
                    assert name in settings | OPERATOR_INPUTS, f"{path.name}: {name} is not a setting"
                else:
                    assert word in targets, f"{path.name}: 'make {word}' is not a Makefile target"
            for name in step.get("env", {}):
                assert name in settings | OPERATOR_INPUTS, f"{path.name}: {name} is not a setting"


@pytest.mark.parametrize("path", WORKFLOWS, ids=lambda p: p.name)
def test_actions_are_pinned_by_commit_and_checkouts_keep_no_token(path: Path) -> None:
    for _, step in steps(path):
        uses = step.get("uses")
        if uses:
            assert re.fullmatch(r"[\w.-]+/[\w.-]+@[0-9a-f]{40}", uses), f"{path.name}: {uses} is not pinned by commit"
        if uses and uses.startswith("actions/checkout@"):
            assert step["with"]["persist-credentials"] is False
    assert re.search(r"@[0-9a-f]{40} # v\d", path.read_text()), "each pin names its release in a comment"


@pytest.mark.parametrize("path", WORKFLOWS, ids=lambda p: p.name)
def test_permissions_are_minimal_per_job_and_id_token_only_where_aws_is_called(path: Path) -> None:
    document = load(path)
    assert document["permissions"] == {}  # nothing by default: each job says what it needs
    assert document["concurrency"]["group"]
    for name, job in document["jobs"].items():
        assert job["timeout-minutes"] <= 90, name
        calls_aws = any(step.get("uses", "").startswith(AWS_ACTION) for step in job["steps"])
        assert job["permissions"].get("id-token") == ("write" if calls_aws else None), name
        assert set(job["permissions"]) <= {"contents", "id-token"}, name
        assert job["permissions"]["contents"] == "read", name


@pytest.mark.parametrize("path", WORKFLOWS, ids=lambda p: p.name)
def test_no_expression_reaches_a_shell(path: Path) -> None:
    """Untrusted text (branch names, titles) must arrive as environment variables, never be
    pasted into a script."""
    for name, step in steps(path):
        assert "${{" not in step.get("run", ""), f"{path.name}: job {name} pastes an expression into run:"


def test_aws_is_reached_by_oidc_only_and_deploying_waits_for_a_person() -> None:
    document = load(REPO / ".github/workflows/train-and-deploy.yml")
    text = (REPO / ".github/workflows/train-and-deploy.yml").read_text()
    assert "aws-access-key-id" not in text and "secrets." not in text
    assert document["jobs"]["deploy"]["environment"] == "production"
    assert document["jobs"]["deploy"]["needs"] == "train"
    assert document["concurrency"]["cancel-in-progress"] is False
    roles = [
        step["with"]["role-to-assume"]
        for _, step in steps(REPO / ".github/workflows/train-and-deploy.yml")
        if "with" in step and "role-to-assume" in step["with"]
    ]
    assert roles == ["${{ vars.AWS_TRAIN_ROLE_ARN }}", "${{ vars.AWS_DEPLOY_ROLE_ARN }}"]
    assert {"push", "schedule", "workflow_dispatch"} <= set(document["on"])
    test = load(REPO / ".github/workflows/ci.yml")
    assert {"pull_request", "push"} <= set(test["on"])
    assert any("bash .ci/run" in step.get("run", "") for _, step in steps(REPO / ".github/workflows/ci.yml"))
