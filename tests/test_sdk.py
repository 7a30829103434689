"""Every SDK session the launcher makes (launcher/lib/sdk.py)."""

from __future__ import annotations

import boto3
from conftest import shipped
from sagemaker.telemetry.telemetry_logging import TELEMETRY_OPT_OUT_PATH
from sagemaker.utils import resolve_value_from_config

from launcher.lib import sdk
from launcher.lib.config import load


def test_telemetry_is_off_in_every_session_the_launcher_makes(moto_endpoint: str) -> None:
    for target in ("local", "aws"):
        settings = load({**shipped(), "TARGET": target})
        session = sdk.session(settings, boto3.Session(region_name="us-east-1"))
        opted_out = resolve_value_from_config(
            direct_input=None, config_path=TELEMETRY_OPT_OUT_PATH, default_value=False, sagemaker_session=session
        )
        assert opted_out is True, target
