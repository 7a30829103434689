"""In CI a test that needs Docker must run: a skip there would hide a gap."""

from __future__ import annotations

import pytest
from conftest import truthy_ci


@pytest.mark.parametrize("value", ["true", "True", "1", "yes", "YES", "on", " true "])
def test_every_truthy_ci_value_demands_the_docker_tiers(value: str) -> None:
    assert truthy_ci({"CI": value})


@pytest.mark.parametrize("value", ["", "false", "0", "no", "off"])
def test_a_developer_machine_may_skip_them(value: str) -> None:
    assert not truthy_ci({"CI": value})
