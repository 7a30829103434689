"""Every SDK session the launcher makes (launcher/lib/sdk.py), and local mode's wait for a
serving container, which the toolkit makes wait on readiness."""

from __future__ import annotations

import http.server
import inspect
import socket
import threading
from collections.abc import Iterator

import boto3
import jsonschema
import pytest
import sagemaker.utils
from conftest import shipped
from sagemaker.local import entities
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


class Warming(http.server.BaseHTTPRequestHandler):
    """A serving container that answers /ping 503 until its model is loaded (the Nth ask)."""

    asked = 0
    ready_at = 3

    def do_GET(self) -> None:
        type(self).asked += 1
        self.send_response(200 if type(self).asked >= type(self).ready_at and self.path == "/ping" else 503)
        self.send_header("Content-Length", "0")
        self.end_headers()

    def log_message(self, *_: object) -> None:
        return None


@pytest.fixture
def warming() -> Iterator[int]:
    Warming.asked = 0
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Warming)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield server.server_address[1]
    server.shutdown()


def test_the_serving_wait_asks_until_ready_not_every_five_seconds(warming: int) -> None:
    slept: list[float] = []
    sdk.wait_until_serving(warming, host=lambda: "127.0.0.1", sleep=slept.append)
    assert Warming.asked == Warming.ready_at
    assert slept == [sdk.READY_POLL_SECONDS] * (Warming.ready_at - 1)


def test_a_container_that_never_answers_fails_as_the_sdk_does() -> None:
    with socket.socket() as closed:
        closed.bind(("127.0.0.1", 0))
        port = closed.getsockname()[1]  # bound, never listening: every ask is refused
        ticks = iter(range(1000))
        with pytest.raises(RuntimeError, match="Giving up, endpoint didn't launch correctly"):
            sdk.wait_until_serving(
                port, timeout=5, host=lambda: "127.0.0.1", clock=lambda: float(next(ticks)), sleep=lambda _: None
            )


def test_the_sdk_still_waits_through_the_function_the_toolkit_replaces() -> None:
    """Transform and endpoint start-up call entities._wait_for_serving_container by name; an SDK
    that stops doing so would bring the 5-second poll back unnoticed."""
    for caller in (entities._LocalTransformJob.start, entities._LocalEndpoint.serve):
        assert "_wait_for_serving_container(serving_port)" in inspect.getsource(caller)
    settings = load({**shipped(), "TARGET": "local"})
    sdk.session(settings, boto3.Session(region_name="us-east-1"))
    assert entities._wait_for_serving_container is sdk.wait_until_serving


def test_the_sdks_config_is_checked_once_and_still_checked() -> None:
    """The SDK checks its config on every value it looks up; the toolkit checks each config
    once. A bad config is still refused."""
    assert "validate_sagemaker_config(config_to_check)" in inspect.getsource(sagemaker.utils.get_sagemaker_config_value)
    for module in sdk.CONFIG_CHECKERS:
        assert "validate_sagemaker_config(sagemaker_config)" in inspect.getsource(module) or module is sagemaker.utils
    settings = load({**shipped(), "TARGET": "local"})
    session = sdk.session(settings, boto3.Session(region_name="us-east-1"))
    assert all(module.validate_sagemaker_config is sdk.validate_config_once for module in sdk.CONFIG_CHECKERS)
    sdk.validate_config_once(session.sagemaker_config)
    bad = {"SchemaVersion": "1.0", "SageMaker": {"PythonSDK": {"Modules": {"TelemetryOptOut": "yes"}}}}
    with pytest.raises(jsonschema.ValidationError):
        sdk.validate_config_once(bad)
