"""scripts/setup-machine.sh's decisions, without touching the real machine: apt-get, dpkg-query,
sudo, id, docker and dockerd are shims in a temporary folder that is the script's whole PATH
(with the few real tools it uses linked in), and they write down what they were asked to do.
CI's clean machine exercises the real path (.ci/run calls the same script)."""

from __future__ import annotations

import os
import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path

import pytest
from conftest import REPO

SCRIPT = REPO / "scripts/setup-machine.sh"
STACK = [
    "docker.io",
    "docker-compose",
    "debootstrap",
    "docker-registry",
    "make",
    "curl",
    "openssl",
    "procps",
    "python3-venv",
]
REAL_TOOLS = ("bash", "sh", "grep", "dirname", "basename", "tail", "sleep", "nohup", "env", "cat", "touch", "rm")

SHIMS = {
    "id": '[ "$1" = -u ] && echo "${SHIM_UID:-0}"',
    "sudo": """echo "sudo $*" >>"$SHIM_LOG"
[ "${SHIM_SUDO:-no}" = yes ] || { echo "sudo: a password is required" >&2; exit 1; }
[ "$1" = -n ] && shift
[ "$1" = true ] && exit 0
SHIM_UID=0 exec "$@\"""",
    "dpkg-query": """for pkg in $SHIM_INSTALLED; do
  [ "$pkg" = "${*: -1}" ] && { printf 'install ok installed'; exit 0; }
done
exit 1""",
    "apt-get": 'echo "apt-get uid=$(id -u) $*" >>"$SHIM_LOG"',
    "docker": """[ "$1" = info ] || exit 2
[ -e "$SHIM_STATE/engine-up" ] && exit 0
echo "Cannot connect to the Docker daemon" >&2; exit 1""",
    "dockerd": """echo "dockerd uid=$(id -u)" >>"$SHIM_LOG"
echo "dockerd: starting"; echo "dockerd: failed to mount overlay: permission denied"
[ "${SHIM_DOCKERD:-starts}" = starts ] && touch "$SHIM_STATE/engine-up"
sleep 30""",
}


@dataclass
class Machine:
    """A pretend machine: what is installed, whether the engine answers, who we are."""

    root: Path
    installed: list[str]
    uid: int = 0
    sudo: bool = False
    engine_up: bool = True
    dockerd: str = "starts"  # or "hangs"
    apt: bool = True

    def run(self, need: str = "stack", **env: str) -> subprocess.CompletedProcess[str]:
        bin_dir = self.root / "bin"
        bin_dir.mkdir(exist_ok=True)
        for tool in REAL_TOOLS:
            if not (bin_dir / tool).exists():
                (bin_dir / tool).symlink_to(shutil.which(tool))
        for name, body in SHIMS.items():
            if name in ("apt-get", "dpkg-query") and not self.apt:
                continue
            (bin_dir / name).write_text(f"#!/bin/bash\n{body}\n")
            (bin_dir / name).chmod(0o755)
        state = self.root / "state"
        state.mkdir(exist_ok=True)
        (state / "engine-up").unlink(missing_ok=True)
        if self.engine_up:
            (state / "engine-up").touch()
        variables = {
            "PATH": str(bin_dir),
            "SHIM_LOG": str(self.log),
            "SHIM_STATE": str(state),
            "SHIM_INSTALLED": " ".join(self.installed),
            "SHIM_UID": str(self.uid),
            "SHIM_SUDO": "yes" if self.sudo else "no",
            "SHIM_DOCKERD": self.dockerd,
            "DOCKERD_LOG": str(self.root / "dockerd.log"),
            "DOCKERD_WAIT": "2",
            **env,
        }
        return subprocess.run(
            ["/bin/bash", str(SCRIPT), need], env=variables, capture_output=True, text=True, timeout=60
        )

    @property
    def log(self) -> Path:
        return self.root / "calls.log"

    def calls(self) -> list[str]:
        return self.log.read_text().splitlines() if self.log.exists() else []


@pytest.fixture
def machine(tmp_path: Path) -> Machine:
    return Machine(root=tmp_path, installed=list(STACK))


def test_nothing_missing_prints_nothing_and_installs_nothing(machine: Machine) -> None:
    result = machine.run()
    assert result.returncode == 0 and result.stdout == "" and result.stderr == ""
    assert machine.calls() == []


def test_as_root_exactly_the_missing_packages_are_installed_in_one_call(machine: Machine) -> None:
    machine.installed = [p for p in STACK if p not in ("debootstrap", "docker-registry")]
    result = machine.run()
    assert result.returncode == 0, result.stderr
    assert "installing Debian packages: debootstrap docker-registry" in result.stderr
    installs = [c for c in machine.calls() if " install " in c]
    assert installs == ["apt-get uid=0 install -y -qq --no-install-recommends debootstrap docker-registry"]
    assert machine.calls()[0] == "apt-get uid=0 update -qq"


def test_a_user_with_passwordless_sudo_installs_through_sudo(machine: Machine) -> None:
    machine.installed, machine.uid, machine.sudo = [p for p in STACK if p != "docker-compose"], 1000, True
    result = machine.run()
    assert result.returncode == 0, result.stderr
    assert "apt-get uid=0 install -y -qq --no-install-recommends docker-compose" in machine.calls()
    assert any(c.startswith("sudo -n apt-get") or c.startswith("sudo -n env") for c in machine.calls())


def test_a_user_without_sudo_is_told_the_one_command_and_nothing_runs(machine: Machine) -> None:
    machine.installed, machine.uid = [p for p in STACK if p not in ("docker.io", "make")], 1000
    result = machine.run()
    assert result.returncode == 1
    lines = result.stderr.splitlines()
    assert len(lines) == 1, result.stderr
    assert "sudo apt-get update && sudo apt-get install -y --no-install-recommends docker.io make" in lines[0]
    assert not [c for c in machine.calls() if c.startswith("apt-get")]


def test_an_engine_that_is_down_is_started_and_waited_for(machine: Machine) -> None:
    machine.engine_up = False
    result = machine.run()
    assert result.returncode == 0, result.stderr
    assert f"starting dockerd (its log: {machine.root / 'dockerd.log'})" in result.stderr
    assert "the Docker engine is up" in result.stderr
    assert machine.calls() == ["dockerd uid=0"]


def test_an_engine_that_never_answers_times_out_with_the_logs_tail(machine: Machine) -> None:
    machine.engine_up, machine.dockerd = False, "hangs"
    result = machine.run()
    assert result.returncode == 1
    assert "failed to mount overlay: permission denied" in result.stderr  # the log's tail
    assert f"dockerd did not answer within 2s; its log's last lines are above ({machine.root / 'dockerd.log'})" in (
        result.stderr
    )


def test_without_apt_get_the_needed_packages_are_named(machine: Machine) -> None:
    machine.apt = False  # and no dpkg-query: the commands on PATH decide
    result = machine.run()
    assert result.returncode == 1
    assert "not a Debian or Ubuntu machine (no apt-get)" in result.stderr
    for package in ("docker-compose", "debootstrap", "docker-registry"):
        assert package in result.stderr
    assert machine.calls() == []


def test_the_off_switch_checks_names_and_installs_or_starts_nothing(machine: Machine) -> None:
    machine.installed = [p for p in STACK if p != "debootstrap"]
    missing = machine.run(MACHINE_SETUP="off")
    assert missing.returncode == 1
    assert "missing Debian packages: debootstrap (MACHINE_SETUP=off installs nothing)" in missing.stderr
    machine.installed, machine.engine_up = list(STACK), False
    down = machine.run(MACHINE_SETUP="off")
    assert down.returncode == 1 and "MACHINE_SETUP=off starts nothing" in down.stderr
    assert machine.calls() == []  # neither apt-get nor dockerd
    assert machine.run(MACHINE_SETUP="sometimes").returncode == 1


def test_on_aws_only_the_engine_is_needed(machine: Machine) -> None:
    machine.installed = ["docker.io"]  # none of the embedded stack's packages
    result = machine.run("docker")
    assert result.returncode == 0 and result.stderr == ""
    assert machine.calls() == []


def test_ci_and_make_call_the_same_script() -> None:
    """One set-up: .ci/run is a thin caller of the script, then make test; make test and the
    embedded stack's stages call it too."""
    ci = (REPO / ".ci/run").read_text()
    assert "scripts/setup-machine.sh stack" in ci and "make test" in ci and "apt-get" not in ci
    makefile = (REPO / "Makefile").read_text()
    assert "\t@scripts/setup-machine.sh stack\n" in makefile  # make test's first step
    assert os.access(SCRIPT, os.X_OK)
