"""scripts/test-tiers.sh: every tier runs, each with its own selection and in random order,
their output comes out whole (in a fixed order), and any tier failing fails the run."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest
from conftest import REPO

FAKE_PYTHON = """#!/usr/bin/env bash
# Stands in for python -m pytest: says which tier it is, and fails the tier named in FAIL.
tier=fast
[[ "$*" == *"--ignore=tests/test_make_all.py"* ]] && tier=docker
[[ "$*" == *"-m docker or stack tests/test_make_all.py"* ]] && tier=make-all
echo "$tier tier: $*"
[[ "${FAIL:-}" != "$tier" ]]
"""
TIERS = ("fast", "make-all", "docker")


def run(tmp_path: Path, fail: str = "") -> subprocess.CompletedProcess[str]:
    python = tmp_path / "python"
    python.write_text(FAKE_PYTHON)
    python.chmod(0o755)
    env = {**os.environ, "FAIL": fail}
    script = REPO / "scripts/test-tiers.sh"
    return subprocess.run([str(script), str(python), "-x"], capture_output=True, text=True, env=env, timeout=60)


def test_every_tier_runs_with_its_selection_in_random_order(tmp_path: Path) -> None:
    result = run(tmp_path)
    assert result.returncode == 0, result.stderr
    where = [
        result.stdout.index(f"{tier} tier: -m pytest -p no:cacheprovider -p random_order --random-order")
        for tier in TIERS
    ]
    assert where == sorted(where)  # printed in a fixed order, whatever order they ended in
    assert "-m not docker and not stack -x" in result.stdout
    assert "-m docker or stack tests/test_make_all.py -x" in result.stdout
    assert "-m docker or stack --ignore=tests/test_make_all.py -x" in result.stdout


@pytest.mark.parametrize("tier", TIERS)
def test_any_tier_failing_fails_the_run_and_every_output_is_shown(tmp_path: Path, tier: str) -> None:
    result = run(tmp_path, fail=tier)
    assert result.returncode == 1
    assert all(f"{name} tier:" in result.stdout for name in TIERS)
    assert f"==== the {tier} tier (exit 1)" in result.stdout
    assert "ERROR: a tier failed (above)" in result.stderr
