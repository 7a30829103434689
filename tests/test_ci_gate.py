"""In CI a test that needs Docker must run: a skip there would hide a gap."""

from __future__ import annotations

import conftest
import pytest
from conftest import truthy_ci


@pytest.mark.parametrize("value", ["true", "True", "1", "yes", "YES", "on", " true "])
def test_every_truthy_ci_value_demands_the_docker_tiers(value: str) -> None:
    assert truthy_ci({"CI": value})


@pytest.mark.parametrize("value", ["", "false", "0", "no", "off"])
def test_a_developer_machine_may_skip_them(value: str) -> None:
    assert not truthy_ci({"CI": value})


class _Item:
    """What pytest_runtest_setup reads of a test item: its markers."""

    def __init__(self, *markers: str) -> None:
        self.markers = set(markers)

    def get_closest_marker(self, name: str) -> object | None:
        return name if name in self.markers else None


@pytest.mark.parametrize("marker", ["docker", "stack"])
def test_under_ci_a_docker_test_without_an_engine_fails_not_skips(marker: str, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(conftest, "docker_engine_up", lambda: False)
    monkeypatch.setattr(conftest, "IN_CI", True)
    with pytest.raises(pytest.fail.Exception, match="CI=true requires the Docker tier to run"):
        conftest.pytest_runtest_setup(_Item(marker))  # type: ignore[arg-type]
    monkeypatch.setattr(conftest, "IN_CI", False)
    with pytest.raises(pytest.skip.Exception, match="start dockerd to run this tier"):
        conftest.pytest_runtest_setup(_Item(marker))  # type: ignore[arg-type]


def test_the_gate_lets_other_tests_and_a_running_engine_through(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(conftest, "IN_CI", True)
    monkeypatch.setattr(conftest, "docker_engine_up", lambda: False)
    conftest.pytest_runtest_setup(_Item())  # type: ignore[arg-type]  # no marker: nothing to gate
    monkeypatch.setattr(conftest, "docker_engine_up", lambda: True)
    conftest.pytest_runtest_setup(_Item("docker"))  # type: ignore[arg-type]
