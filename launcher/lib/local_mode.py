"""The containers SDK local mode leaves on this host: the training containers it leaves
behind after a job, and the serving containers that stand for an endpoint on the embedded
stack (found by the labels the toolkit puts on them).
"""

from __future__ import annotations

import os
import re
import subprocess

# Labels on a local endpoint's serving containers; the stack label keeps two embedded stacks
# on one host (for example the tests' and the developer's) from seeing each other's.
# SDK local mode names its containers <10 random>-algo-<n>-<5 random> and leaves them behind.
_LOCAL_CONTAINER = re.compile(r"^[a-z0-9]{10}-algo-\d+-[a-z0-9]{5}$")


def remove_local_containers(image_uri: str) -> None:
    """Remove the exited containers local mode left for this image (ours only: by image as
    named, status and local mode's naming), so that repeated runs do not pile them up.
    (`ancestor=` also matches another checkout's containers of an image with the same
    content under another registry's name: the name is compared too.)"""
    listed = subprocess.run(
        [
            "docker",
            "ps",
            "-a",
            "--filter",
            f"ancestor={image_uri}",
            "--filter",
            "status=exited",
            "--format",
            "{{.ID}} {{.Image}} {{.Names}}",
        ],
        capture_output=True,
        text=True,
    )
    rows = [line.split() for line in listed.stdout.splitlines()]
    ids = [row[0] for row in rows if len(row) == 3 and row[1] == image_uri and _LOCAL_CONTAINER.match(row[2])]
    if ids:
        subprocess.run(["docker", "rm", *ids], capture_output=True)


ENDPOINT_LABEL = "com.titanic-toolkit.endpoint"


VERSION_LABEL = "com.titanic-toolkit.model-package-version"


# Which embedded stack deployed it (its moto URL): two checkouts, or a checkout and the tests'
# copies, may use the same ENDPOINT_NAME on one Docker engine without touching each other's.
STACK_LABEL = "com.titanic-toolkit.stack"


def docker(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(["docker", *args], capture_output=True, text=True)


def stack_id() -> str:
    return os.environ.get("AWS_ENDPOINT_URL", "")


def local_containers(endpoint: str) -> list[dict[str, str]]:
    """The running containers serving `endpoint` for this embedded stack: id, version, host port."""
    listed = docker(
        "ps",
        "--filter",
        f"label={ENDPOINT_LABEL}={endpoint}",
        "--filter",
        f"label={STACK_LABEL}={stack_id()}",
        "--format",
        f'{{{{.ID}}}} {{{{.Label "{VERSION_LABEL}"}}}}',
    )
    found = []
    for line in listed.stdout.splitlines():
        container, version = line.split()
        port = docker("port", container, "8080/tcp").stdout.split()
        found.append({"id": container, "version": version, "address": port[0] if port else ""})
    return found
