"""scripts/test-tiers.sh: both tiers run, each with its markers and in random order, their
output comes out whole (the fast tier's first), and either tier failing fails the run."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest
from conftest import REPO

FAKE_PYTHON = """#!/usr/bin/env bash
# Stands in for python -m pytest: says which tier it is, and fails the tier named in FAIL.
tier=fast
[[ "$*" == *"-m docker or stack"* ]] && tier=docker
echo "$tier tier: $*"
[[ "${FAIL:-}" != "$tier" ]]
"""


def run(tmp_path: Path, fail: str = "") -> subprocess.CompletedProcess[str]:
    python = tmp_path / "python"
    python.write_text(FAKE_PYTHON)
    python.chmod(0o755)
    env = {**os.environ, "FAIL": fail}
    script = REPO / "scripts/test-tiers.sh"
    return subprocess.run([str(script), str(python), "-x"], capture_output=True, text=True, env=env, timeout=60)


def test_both_tiers_run_with_their_markers_in_random_order(tmp_path: Path) -> None:
    result = run(tmp_path)
    assert result.returncode == 0, result.stderr
    fast = result.stdout.index("fast tier: -m pytest -p no:cacheprovider -p random_order --random-order")
    docker = result.stdout.index("docker tier: ")
    assert fast < docker
    assert "-m not docker and not stack -x" in result.stdout
    assert "-m docker or stack -x" in result.stdout


@pytest.mark.parametrize("tier", ["fast", "docker"])
def test_either_tier_failing_fails_the_run_and_both_outputs_are_shown(tmp_path: Path, tier: str) -> None:
    result = run(tmp_path, fail=tier)
    assert result.returncode == 1
    assert "fast tier:" in result.stdout and "docker tier:" in result.stdout
    assert "ERROR: a tier failed (above)" in result.stderr
