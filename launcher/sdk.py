"""SageMaker SDK sessions as the toolkit uses them: telemetry off, and in local mode each
container on the toolkit's networks (launcher/local_compose.py) with serving on 127.0.0.1."""

from __future__ import annotations

import sys
from functools import partial
from pathlib import Path
from typing import Any

import boto3
from sagemaker.config import load_sagemaker_config
from sagemaker.local import LocalSession
from sagemaker.local.image import _SageMakerContainer
from sagemaker.session import Session

from launcher.local_compose import SERVING_FLAG
from launcher.settings import Settings

SDK_CONFIG = Path(__file__).resolve().parent / "sagemaker-config.yaml"
LOCAL_COMPOSE = Path(__file__).resolve().parent / "local_compose.py"


def _local_compose_command(serving_network: str) -> list[str]:
    return [sys.executable, str(LOCAL_COMPOSE), SERVING_FLAG, serving_network]


def use_toolkit_networks(settings: Settings) -> None:
    """Local mode's compose command becomes launcher/local_compose.py (the SDK has no setting for
    its network), told which network serving containers go on."""
    command = partial(_local_compose_command, settings.local_serving_network)
    _SageMakerContainer._get_compose_cmd_prefix = staticmethod(command)


def session(settings: Settings, boto_session: boto3.Session) -> Any:
    """A SageMaker session with telemetry off (its config passed in, not left to the
    environment), local or remote as TARGET says."""
    config = load_sagemaker_config([str(SDK_CONFIG)])
    if not settings.local:
        return Session(boto_session=boto_session, sagemaker_config=config)
    use_toolkit_networks(settings)
    local = LocalSession(boto_session=boto_session, sagemaker_config=config, disable_local_code=True)
    # The local-mode settings (not the SDK config above): where a serving container's port is
    # published on this host, and no copying of source code into containers.
    local.config = {"local": {"local_code": False, "serving_port": settings.local_serving_port}}
    return local
