"""SageMaker SDK sessions as the toolkit uses them: telemetry off, and in local mode each
container on the toolkit's networks (launcher/lib/local_compose.py) with serving on 127.0.0.1."""

from __future__ import annotations

import sys
from dataclasses import dataclass
from functools import partial
from pathlib import Path
from typing import Any

import boto3
from sagemaker.config import load_sagemaker_config
from sagemaker.local import LocalSession
from sagemaker.local.image import _SageMakerContainer
from sagemaker.session import Session

from launcher.lib.config import Settings
from launcher.lib.local_compose import DETACH_FLAG, LABEL_FLAG, SERVING_FLAG

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


def session(settings: Settings, boto_session: boto3.Session, serving: Serving | None = None) -> Any:
    """A SageMaker session with telemetry off (its config passed in, not left to the
    environment), local or remote as TARGET says."""
    config = load_sagemaker_config([str(SDK_CONFIG)])
    if not settings.local:
        return Session(boto_session=boto_session, sagemaker_config=config)
    serving = serving or Serving(port=settings.local_serving_port)
    use_toolkit_networks(settings, serving)
    local = LocalSession(boto_session=boto_session, sagemaker_config=config, disable_local_code=True)
    # The local-mode settings (not the SDK config above): where a serving container's port is
    # published on this host, and no copying of source code into containers.
    local.config = {"local": {"local_code": False, "serving_port": serving.port}}
    return local
