"""The vendored Kaggle data: its checksum check and the split's file layout, shared by the
data stage, batch transform and verification.
"""

from __future__ import annotations

import hashlib
from pathlib import Path

from launcher.lib.errors import ToolkitError

LABEL = "Survived"


# Each channel's file under the split folder (and, as uploaded, under DATA_PREFIX).
SPLIT_FILES = {"train": "train/train.csv", "validation": "validation/val.csv"}


class PrepareError(ToolkitError):
    """The source data is not what the toolkit expects; the message says what to do."""


def sha256_file(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def expected_checksum(sums_file: Path, name: str) -> str:
    if not sums_file.is_file():
        raise PrepareError(f"{sums_file} is missing; restore it from git (git checkout -- {sums_file})")
    for line in sums_file.read_text(encoding="utf-8").splitlines():
        digest, _, file_name = line.partition("  ")
        if file_name.strip() == name:
            return digest.strip()
    raise PrepareError(f"{sums_file} has no line for {name}; restore it from git")


def verified_bytes(source: Path, sums_file: Path) -> tuple[bytes, str]:
    """A vendored file's bytes and SHA-256, refused unless SHA256SUMS lists that digest (the
    data stage's train.csv, make predict's test.csv)."""
    if not source.is_file():
        raise PrepareError(f"{source} does not exist; restore it from git (git checkout -- {source})")
    data = source.read_bytes()
    actual = hashlib.sha256(data).hexdigest()
    expected = expected_checksum(sums_file, source.name)
    if actual != expected:
        raise PrepareError(
            f"{source} has SHA-256 {actual}, expected {expected} ({sums_file}); "
            "restore Kaggle's file from git, or update SHA256SUMS if the change is intended"
        )
    return data, actual


def verified_source(source: Path, sums_file: Path) -> str:
    return verified_bytes(source, sums_file)[1]
