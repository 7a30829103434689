"""The Makefile's own promises: settings precedence, help for every target, a printable plan."""

from __future__ import annotations

import os
import re
import subprocess

from conftest import REPO


def make(*args: str, **env: str) -> subprocess.CompletedProcess[str]:
    clean = {k: v for k, v in os.environ.items() if k not in ("BUCKET", "TARGET", "HP_N_ESTIMATORS")}
    return subprocess.run(
        ["make", "--no-print-directory", *args], cwd=REPO, env={**clean, **env}, capture_output=True, text=True
    )


def setting(output: str, name: str) -> str:
    return re.search(rf"^{name}=(.*)$", output, re.M).group(1)


def test_config_env_then_environment_then_command_line() -> None:
    assert setting(make("config").stdout, "BUCKET") == "titanic-sagemaker-toolkit-demo"
    assert setting(make("config", BUCKET="from-the-environment").stdout, "BUCKET") == "from-the-environment"
    both = make("config", "BUCKET=from-the-command-line", BUCKET="from-the-environment")
    assert setting(both.stdout, "BUCKET") == "from-the-command-line"


def test_help_is_the_default_and_lists_every_phony_target() -> None:
    helped = make()
    assert helped.returncode == 0
    listed = set(re.findall(r"^  ([a-z-]+) ", helped.stdout, re.M))
    phony = set()
    for line in (REPO / "Makefile").read_text().splitlines():
        if line.startswith(".PHONY:"):
            phony.update(line.split(":", 1)[1].split())
    assert phony - {"FORCE"} <= listed, phony - listed
    for target in ("all", "train", "clean-resources", "instance-report", "iam", "local-up", "test"):
        assert target in listed


def test_every_action_target_is_phony() -> None:
    text = (REPO / "Makefile").read_text()
    phony = set(re.findall(r"^\.PHONY: (\S+)$", text, re.M))
    documented = set(re.findall(r"^([a-z-]+):.*## ", text, re.M))
    assert documented <= phony, documented - phony


def test_a_plan_is_printed_without_running_anything(tmp_path) -> None:
    plan = make("-n", "train", f"BUILD={tmp_path}/build-never-made", "TARGET=aws")
    assert plan.returncode == 0, plan.stderr
    assert "launcher.settings" in plan.stdout and "launcher.preflight" in plan.stdout
    assert "scripts/upload-data.sh" in plan.stdout and "scripts/push-image.sh" in plan.stdout
    assert "launcher.train" in plan.stdout
    assert not (tmp_path / "build-never-made" / "aws").exists()
