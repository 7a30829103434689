"""The vendored Kaggle data as the launcher uses it: the image's own checksum check and split
layout (titanic_model.prepare, the one implementation), with its errors as the toolkit's."""

from __future__ import annotations

from pathlib import Path

from titanic_model import prepare
from titanic_model.data import LABEL

from launcher.lib.errors import ToolkitError

__all__ = ["LABEL", "SPLIT_FILES", "PrepareError", "sha256_file", "verified_bytes", "write_split"]
SPLIT_FILES = prepare.SPLIT_FILES
sha256_file = prepare.sha256_file


class PrepareError(ToolkitError):
    """The source data is not what the toolkit expects; the message says what to do."""


def verified_bytes(source: Path, sums_file: Path) -> tuple[bytes, str]:
    """A vendored file's bytes and SHA-256, refused unless SHA256SUMS lists that digest (the
    data stage's train.csv, make predict's and the pipeline's test.csv)."""
    try:
        return prepare.verified_bytes(source, sums_file)
    except prepare.SourceError as exc:
        raise PrepareError(str(exc)) from None


def write_split(source: Path, sums_file: Path, out_dir: Path, validation_fraction: float, seed: int) -> dict:
    """make data's split (titanic_model.prepare.write_split), refused as the toolkit refuses."""
    try:
        return prepare.write_split(source, sums_file, out_dir, validation_fraction, seed)
    except prepare.SourceError as exc:
        raise PrepareError(str(exc)) from None
