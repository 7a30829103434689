"""The data stage's one implementation: check Kaggle's file against SHA256SUMS, split it
stratified on Survived, write the split and a manifest. `make data` runs it on this machine
(launcher/prepare_data.py) and the pipeline's Prepare step runs it in this image as a
processing job (`<image> prepare`), so the two splits are the same bytes.

Cells are copied as text, never re-formatted: the output depends only on the input bytes and
the seed, the same SHA-256 on every machine.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any

import pandas as pd
from sklearn.model_selection import train_test_split

from titanic_model.data import LABEL, DataError

# Each channel's file under the split folder (and, as uploaded, under the data prefix).
SPLIT_FILES = {"train": "train/train.csv", "validation": "validation/val.csv"}
MANIFEST = "manifest.json"
SOURCE = "train.csv"  # the processing job's raw input: Kaggle's file and its checksums
CHECKSUMS = "SHA256SUMS"


class SourceError(DataError):
    """The source data is not the file SHA256SUMS names; the message says what to do."""


def sha256_file(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def expected_checksum(sums_file: Path, name: str) -> str:
    if not sums_file.is_file():
        raise SourceError(f"{sums_file} is missing; restore it from git (git checkout -- {sums_file})")
    for line in sums_file.read_text(encoding="utf-8").splitlines():
        digest, _, file_name = line.partition("  ")
        if file_name.strip() == name:
            return digest.strip()
    raise SourceError(f"{sums_file} has no line for {name}; restore it from git")


def verified_bytes(source: Path, sums_file: Path) -> tuple[bytes, str]:
    """A file's bytes and SHA-256, refused unless SHA256SUMS lists that digest for its name."""
    if not source.is_file():
        raise SourceError(f"{source} does not exist; restore it from git (git checkout -- {source})")
    data = source.read_bytes()
    actual = hashlib.sha256(data).hexdigest()
    expected = expected_checksum(sums_file, source.name)
    if actual != expected:
        raise SourceError(
            f"{source} has SHA-256 {actual}, expected {expected} ({sums_file}); "
            "restore Kaggle's file from git, or update SHA256SUMS if the change is intended"
        )
    return data, actual


def split(frame: pd.DataFrame, validation_fraction: float, seed: int) -> tuple[pd.DataFrame, pd.DataFrame]:
    return train_test_split(frame, test_size=validation_fraction, stratify=frame[LABEL], random_state=seed)


def _write_if_changed(target: Path, content: bytes) -> None:
    """Leave an identical file untouched: its mtime tells aws s3 sync there is nothing to send."""
    if target.is_file() and target.read_bytes() == content:
        return
    partial = target.with_name(f".{target.name}.partial")
    partial.write_bytes(content)
    partial.replace(target)


def write_split(source: Path, sums_file: Path, out_dir: Path, validation_fraction: float, seed: int) -> dict[str, Any]:
    """The split's two files and manifest.json under out_dir; returns the manifest."""
    source_sha = verified_bytes(source, sums_file)[1]
    frame = pd.read_csv(source, dtype=str, keep_default_na=False)
    train, validation = split(frame, validation_fraction, seed)
    manifest: dict[str, Any] = {
        "source": {"file": source.name, "sha256": source_sha, "rows": len(frame)},
        "split": {"validation_fraction": validation_fraction, "random_state": seed, "stratify": LABEL},
        "channels": {},
    }
    for channel, part in (("train", train), ("validation", validation)):
        target = out_dir / SPLIT_FILES[channel]
        target.parent.mkdir(parents=True, exist_ok=True)
        _write_if_changed(target, part.to_csv(index=False, lineterminator="\n").encode("utf-8"))
        manifest["channels"][channel] = {
            "file": SPLIT_FILES[channel],
            "rows": len(part),
            "survived": int((part[LABEL] == "1").sum()),
            "sha256": sha256_file(target),
        }
    _write_if_changed(out_dir / MANIFEST, (json.dumps(manifest, indent=2, sort_keys=True) + "\n").encode())
    return manifest
