"""Helpers for driving the real Makefile in a clean copy of the repository.

Each copy gets its own ports, state folder and ECR repository name, so tests never touch a
developer's running stack, and BASE_IMAGE is the offline base, so no image is pulled from a
registry. Two things are fetched from package mirrors, once per machine: the Debian packages
debootstrap builds the offline base from (scripts/build-offline-base.sh), and the image's pinned
wheels that `docker build` installs (container/requirements.txt); Docker's layer cache keeps
both, so later builds of the same inputs fetch nothing. The copy shares the repository's .venv
(same pins) instead of installing its own.
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import boto3
from botocore.config import Config

REPO = Path(__file__).resolve().parent.parent
# What a parent make (make test) passes down; a user's shell starts without them.
PARENT_MAKE_VARS = ("MAKEFLAGS", "MAKELEVEL", "MFLAGS", "MAKEOVERRIDES")


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def copy_repository(target: Path) -> Path:
    """What a clean clone holds: tracked and untracked-but-not-ignored files, mtimes kept,
    committed in a fresh git repository so the image tag is a clean commit."""
    files = subprocess.run(
        ["git", "ls-files", "-co", "--exclude-standard", "-z"], cwd=REPO, capture_output=True, check=True
    ).stdout.decode()
    for name in filter(None, files.split("\0")):
        source = REPO / name
        if source.is_file():
            (target / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(source, target / name)
    git = ["git", "-c", "user.name=test", "-c", "user.email=test@example.com"]
    subprocess.run([*git, "init", "-q"], cwd=target, check=True)
    subprocess.run([*git, "add", "-A"], cwd=target, check=True)
    subprocess.run([*git, "commit", "-qm", "test copy"], cwd=target, check=True)
    return target


@dataclass
class Checkout:
    root: Path
    settings: dict[str, str]
    env: dict[str, str] = field(default_factory=dict)
    first_run: subprocess.CompletedProcess[str] | None = None
    first_state: dict[str, Any] = field(default_factory=dict)

    def make(self, *args: str, timeout: int = 900, **overrides: str) -> subprocess.CompletedProcess[str]:
        variables = [f"{k}={v}" for k, v in {**self.settings, **overrides}.items()]
        return subprocess.run(
            ["make", "--no-print-directory", *args, *variables],
            cwd=self.root,
            env=self.env,
            capture_output=True,
            text=True,
            timeout=timeout,
        )

    def cleanup(self) -> None:
        """Stop this copy's stack and drop the image tags it made (the layers are shared)."""
        self.make("local-down")
        repository = self.settings["ECR_REPOSITORY"]
        listed = subprocess.run(
            ["docker", "image", "ls", "--format", "{{.Repository}}:{{.Tag}}"], capture_output=True, text=True
        ).stdout.split()
        tags = [t for t in listed if t.split(":")[-2].endswith(f"/{repository}") or t.startswith(f"{repository}:")]
        if tags:
            subprocess.run(["docker", "image", "rm", *tags], capture_output=True)

    @property
    def endpoint(self) -> str:
        return f"https://127.0.0.1:{self.settings['LOCAL_MOTO_PORT']}"

    def client(self, service: str) -> Any:
        return boto3.Session(
            aws_access_key_id="testing", aws_secret_access_key="testing", region_name="us-east-1"
        ).client(
            service,
            endpoint_url=self.endpoint,
            verify=str(self.root / ".local/tls/cert.pem"),
            config=Config(retries={"max_attempts": 2}),
        )


def new_checkout(tmp: Path, base_image: str) -> Checkout:
    root = copy_repository(tmp / "repo")
    settings = {
        "VENV": str(REPO / ".venv"),
        "BASE_IMAGE": base_image,
        "BASE_IMAGE_FALLBACK": "none",
        "ECR_REPOSITORY": f"titanic-it-{tmp.name[-8:].lower().replace('_', '-')}",
        "LOCAL_MOTO_PORT": str(free_port()),
        "LOCAL_REGISTRY_PORT": str(free_port()),
        "LOCAL_SERVING_PORT": str(free_port()),
    }
    # A clean environment, as a user's shell: no AWS or SDK settings, nothing a parent make
    # (make test) passes down.
    env = {
        k: v for k, v in os.environ.items() if not k.startswith(("AWS_", "SAGEMAKER_")) and k not in PARENT_MAKE_VARS
    }
    env["TARGET"] = "local"
    return Checkout(root=root, settings=settings, env=env)


def ran(result: subprocess.CompletedProcess[str], script: str) -> bool:
    """Whether make ran a recipe line calling this script or module."""
    return any(script in line for line in result.stdout.splitlines() if not line.startswith("["))
