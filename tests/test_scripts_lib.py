"""scripts/lib.sh, the bash side of facts the Python side also states: each copy is proven
equal here, and every library function says what it does."""

from __future__ import annotations

import os
import re
import subprocess

import pytest
from conftest import REPO

from launcher.lib import errors
from launcher.lib.config import TOOLKIT_TAG

LIB = REPO / "scripts/lib.sh"


def bash(snippet: str, **env: str) -> str:
    script = f'source "{LIB}"\n{snippet}'
    clean = {k: v for k, v in os.environ.items() if k != "AWS_ENDPOINT_URL"}
    return subprocess.run(
        ["bash", "-c", script], capture_output=True, text=True, check=True, env={**clean, **env}
    ).stdout


def test_the_toolkit_tag_is_the_settings_one() -> None:
    assert bash('printf "%s=%s" "$TOOLKIT_TAG_KEY" "$TOOLKIT_TAG_VALUE"') == f"{TOOLKIT_TAG[0]}={TOOLKIT_TAG[1]}"
    assert "titanic-sagemaker-toolkit" not in (REPO / "scripts/local-stack.sh").read_text()  # it uses lib.sh's


@pytest.mark.parametrize("endpoint", ["", "https://127.0.0.1:4566"])
def test_the_unreachable_endpoint_hint_is_the_python_one(endpoint: str, monkeypatch: pytest.MonkeyPatch) -> None:
    env = {"AWS_ENDPOINT_URL": endpoint} if endpoint else {}
    if endpoint:
        monkeypatch.setenv("AWS_ENDPOINT_URL", endpoint)
    else:
        monkeypatch.delenv("AWS_ENDPOINT_URL", raising=False)
    assert bash("endpoint_hint", **env) == errors.endpoint_hint()


def test_every_library_function_says_what_it_does() -> None:
    lines = LIB.read_text().splitlines()
    for number, line in enumerate(lines):
        if re.match(r"^[a-z_]+\(\) *\{", line):
            assert lines[number - 1].startswith("# "), f"lib.sh: {line.split('(')[0]} has no comment"


def test_local_modes_network_is_named_alike_in_bash_and_python() -> None:
    """The SDK's own training network: local-stack.sh creates it internal, local_compose.py
    keeps training containers on it, the settings refuse it for serving."""
    from launcher.lib.local_compose import SDK_NETWORK

    stated = re.search(r"^readonly SM_NETWORK=(\S+)$", (REPO / "scripts/local-stack.sh").read_text(), re.M)
    assert stated and stated.group(1) == SDK_NETWORK
