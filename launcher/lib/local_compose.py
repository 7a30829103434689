"""docker compose as SDK local mode calls it, with each container on the toolkit's network.

Local mode writes one compose file per job and puts every container on one network it names
`sagemaker-local`, with a serving container's port published on all of the host's interfaces.
The toolkit wants two things local mode cannot express: training containers on an internal
network (no route off this host), and serving containers reachable from this host only.
Docker publishes no port from an internal network, so serving needs a network of its own:
LOCAL_SERVING_NETWORK in config.env, made by scripts/local-stack.sh without NAT and with its ports bound
to 127.0.0.1. This program rewrites the compose file local mode wrote (serving containers to
that network, training containers stay on `sagemaker-local`; both declared external, so compose
neither creates nor second-guesses them) and then becomes the real compose command (exec, so
local mode's stop signal reaches compose itself).

The SDK offers no setting for this: launcher.sdk.local_session() points the SDK's choice of
compose command at this file (tests/test_predict.py checks the SDK still asks that way).
Usage (as the SDK calls it): local_compose.py --serving-network NET -f FILE up --build ...
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import yaml

TRANSFORM_STOP_SECONDS = 0
SDK_NETWORK = "sagemaker-local"  # hard-coded in sagemaker.local.image
SERVING_FLAG = "--serving-network"
DETACH_FLAG = "--detach-serving"  # make deploy: the endpoint outlives the command that made it
LABEL_FLAG = "--label"  # KEY=VALUE on serving containers, so a later command can find them


def rewrite(compose: dict[str, Any], serving_network: str, labels: dict[str, str] | None = None) -> dict[str, Any]:
    """Serving containers onto serving_network (with `labels`); every network declared external."""
    used = set()
    for service in compose.get("services", {}).values():
        serving = service.get("command") == "serve"
        network = serving_network if serving else SDK_NETWORK
        aliases = (service.get("networks") or {}).get(SDK_NETWORK, {}).get("aliases", [])
        service["networks"] = {network: {"aliases": aliases}}
        if serving and labels:
            service["labels"] = dict(labels)
        used.add(network)
    compose["networks"] = {name: {"external": True, "name": name} for name in sorted(used)}
    return compose


def real_compose() -> list[str]:
    """The compose command local mode itself would choose: v2 when the CLI has it."""
    try:
        version = subprocess.run(["docker", "compose", "version"], capture_output=True, text=True).stdout
    except OSError:
        version = ""
    if "v2" in version:
        return ["docker", "compose"]
    found = shutil.which("docker-compose")
    if found is None:
        raise SystemExit("local mode needs 'docker compose' (v2) or 'docker-compose'; install one and rerun")
    return [found]


def compose_file(argv: list[str]) -> Path | None:
    return Path(argv[argv.index("-f") + 1]) if "-f" in argv[:-1] else None


def own_options(argv: list[str]) -> tuple[str, bool, dict[str, str], list[str]]:
    """(serving network, detach, labels, compose's own arguments) from the front of argv."""
    if argv[:1] != [SERVING_FLAG] or len(argv) < 2:
        raise SystemExit(
            f"usage: local_compose.py {SERVING_FLAG} NETWORK [{DETACH_FLAG}] [{LABEL_FLAG} K=V ...] "
            "-f FILE ...; the toolkit's SDK sessions call it so (launcher/lib/sdk.py)"
        )
    network, rest, detach, labels = argv[1], argv[2:], False, {}
    while rest[:1] in ([DETACH_FLAG], [LABEL_FLAG]):
        if rest[0] == DETACH_FLAG:
            detach, rest = True, rest[1:]
        else:
            key, _, value = rest[1].partition("=")
            labels[key], rest = value, rest[2:]
    return network, detach, labels, rest


def up_arguments(argv: list[str], *, serves: bool, detach: bool) -> list[str]:
    """Compose's arguments for how the container runs. An endpoint's serving container runs on
    after this process (local mode's waiting thread ends at once). A transform's is stopped
    only once every batch has been answered, so compose may kill it at once
    (TRANSFORM_STOP_SECONDS) instead of asking gunicorn to stop gracefully, which holds each
    worker open for the SDK's idle keep-alive connection for 2 s."""
    if not serves or "--abort-on-container-exit" not in argv:
        return argv
    if detach:
        return [a if a != "--abort-on-container-exit" else "--detach" for a in argv]
    return [*argv, "--timeout", str(TRANSFORM_STOP_SECONDS)]


def main(argv: list[str]) -> int:
    serving_network, detach, labels, argv = own_options(argv)
    path = compose_file(argv)
    if path is not None:
        compose = yaml.safe_load(path.read_text(encoding="utf-8"))
        rewritten = rewrite(compose, serving_network, labels)
        path.write_text(yaml.safe_dump(rewritten, default_flow_style=False), encoding="utf-8")
        serves = any(s.get("command") == "serve" for s in rewritten.get("services", {}).values())
        argv = up_arguments(argv, serves=serves, detach=detach)
    command = real_compose()
    os.execvp(command[0], [*command, *argv])
    return 127  # not reached: exec replaced this process


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
