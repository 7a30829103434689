"""SageMaker SDK sessions as the toolkit uses them: telemetry off, and in local mode each
container on the toolkit's networks (launcher/lib/local_compose.py) with serving on 127.0.0.1."""

from __future__ import annotations

import functools
import json
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass
from functools import partial
from pathlib import Path
from typing import Any

import boto3
import sagemaker.local.local_session
import sagemaker.session
import sagemaker.utils
from sagemaker.config import load_sagemaker_config, validate_sagemaker_config
from sagemaker.local import LocalSession, entities
from sagemaker.local.image import _SageMakerContainer
from sagemaker.local.utils import get_docker_host
from sagemaker.session import Session

from launcher.lib.config import Settings
from launcher.lib.local_compose import DETACH_FLAG, LABEL_FLAG, SERVING_FLAG

# How often local mode's wait for a serving container asks /ping. The SDK asks once, then every
# 5 s: a container that answers after 1.2 s was used after 5, in every make predict and deploy.
READY_POLL_SECONDS = 0.05
SDK_CONFIG = Path(__file__).resolve().parents[1] / "sagemaker-config.yaml"
LOCAL_COMPOSE = Path(__file__).resolve().parent / "local_compose.py"


@dataclass(frozen=True)
class Serving:
    """How local mode runs a serving container: its host port, whether it outlives the
    command (an endpoint) or not (a transform), and labels to find it by later."""

    port: int
    detach: bool = False
    labels: tuple[tuple[str, str], ...] = ()


def _local_compose_command(serving_network: str, serving: Serving) -> list[str]:
    command = [sys.executable, str(LOCAL_COMPOSE), SERVING_FLAG, serving_network]
    if serving.detach:
        command.append(DETACH_FLAG)
    for key, value in serving.labels:
        command += [LABEL_FLAG, f"{key}={value}"]
    return command


def use_toolkit_networks(settings: Settings, serving: Serving) -> None:
    """Local mode's compose command becomes launcher/lib/local_compose.py (the SDK has no setting for
    its network), told which network serving containers go on, and how they run."""
    command = partial(_local_compose_command, settings.local_serving_network, serving)
    _SageMakerContainer._get_compose_cmd_prefix = staticmethod(command)


def wait_until_serving(
    port: int,
    *,
    timeout: float = entities.HEALTH_CHECK_TIMEOUT_LIMIT,
    poll: float = READY_POLL_SECONDS,
    host: Callable[[], str] = get_docker_host,
    clock: Callable[[], float] = time.monotonic,
    sleep: Callable[[float], None] = time.sleep,
) -> None:
    """Local mode's wait for a serving container, on readiness: /ping until it answers 200, as
    the SDK's own wait does, within the SDK's limit and failing with the SDK's error."""
    url = f"http://{host()}:{port}/ping"
    direct = urllib.request.build_opener(urllib.request.ProxyHandler({}))  # a proxy never sees our container
    deadline = clock() + timeout
    while True:
        try:
            with direct.open(url, timeout=2) as answer:
                if answer.status == 200:
                    return
        except (urllib.error.URLError, OSError):
            pass  # not listening yet, or not healthy yet: ask again
        if clock() >= deadline:
            raise RuntimeError("Giving up, endpoint didn't launch correctly")
        sleep(poll)


def wait_on_readiness() -> None:
    """Local mode's serving wait becomes wait_until_serving (the SDK has no setting for it;
    tests/test_sdk.py checks the SDK still waits through this function)."""
    entities._wait_for_serving_container = wait_until_serving


# The SDK modules that check a config each time they are handed one or look a value up in it.
CONFIG_CHECKERS = (sagemaker.utils, sagemaker.session, sagemaker.local.local_session)


@functools.lru_cache(maxsize=4)
def _validated(config_json: str) -> None:
    validate_sagemaker_config(json.loads(config_json))


def validate_config_once(config: dict[str, Any]) -> None:
    """The SDK's config check, once per config: the SDK checks the same config against its
    JSON schema in each session it makes and on every value it looks up (50 ms each, 42 times
    in one make predict)."""
    _validated(json.dumps(config, sort_keys=True, default=str))


def sagemaker_config() -> dict[str, Any]:
    """The SDK's config (telemetry off), passed in rather than left to the environment."""
    # The SDK has no setting for this; tests/test_sdk.py checks it still calls it by these names.
    for module in CONFIG_CHECKERS:
        module.validate_sagemaker_config = validate_config_once
    return load_sagemaker_config([str(SDK_CONFIG)])


def session(settings: Settings, boto_session: boto3.Session, serving: Serving | None = None) -> Any:
    """A SageMaker session with the toolkit's config, local or remote as TARGET says."""
    config = sagemaker_config()
    if not settings.local:
        return Session(boto_session=boto_session, sagemaker_config=config)
    serving = serving or Serving(port=settings.local_serving_port)
    use_toolkit_networks(settings, serving)
    wait_on_readiness()
    local = LocalSession(boto_session=boto_session, sagemaker_config=config, disable_local_code=True)
    # The local-mode settings (not the SDK config above): where a serving container's port is
    # published on this host, and no copying of source code into containers.
    local.config = {"local": {"local_code": False, "serving_port": serving.port}}
    return local
