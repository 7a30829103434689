"""The model is pickled in the image and loaded on the client: shared libraries must match."""

from __future__ import annotations

from conftest import REPO


def pins(path: str) -> dict[str, str]:
    result = {}
    for raw in (REPO / path).read_text().splitlines():
        line = raw.split("#", 1)[0].strip()
        if line:
            assert "==" in line, f"{path}: '{line}' is not an exact pin"
            name, version = line.split("==", 1)
            result[name.split("[")[0].lower().replace("_", "-")] = version
    return result


def test_every_image_dependency_is_pinned_to_the_clients_version() -> None:
    image, client = pins("container/requirements.txt"), pins("requirements.txt")
    assert image, "container/requirements.txt pins nothing"
    mismatched = {name: (version, client.get(name)) for name, version in image.items() if client.get(name) != version}
    assert not mismatched, f"image vs client versions differ: {mismatched}"


def test_direct_client_dependencies_are_in_the_lock() -> None:
    direct, locked = pins("requirements.in"), pins("requirements.txt")
    assert {name: locked.get(name) for name in direct} == direct
