"""The data stage: checksum first, then a byte-for-byte reproducible split."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from conftest import REPO
from titanic_model import cli, contract

from launcher.lib.dataset import PrepareError, write_split

SOURCE = REPO / "data/titanic/train.csv"
SUMS = REPO / "data/titanic/SHA256SUMS"


def test_split_is_the_reference_protocol_and_reproducible(tmp_path: Path, split_dir: Path) -> None:
    manifest = write_split(SOURCE, SUMS, tmp_path, 0.2, 42)
    assert manifest["channels"]["train"]["rows"] == 712
    assert manifest["channels"]["validation"]["rows"] == 179
    assert manifest["source"]["sha256"] == "7d118fef8b6ccf7f81111877bc388536f7b1e498a655e3d649d19aaa010e9f6f"
    for channel in ("train/train.csv", "validation/val.csv"):
        assert (tmp_path / channel).read_bytes() == (split_dir / channel).read_bytes()
    assert json.loads((tmp_path / "manifest.json").read_text()) == manifest
    # Stratified: both parts keep the 38% survival rate of the whole file.
    for info in manifest["channels"].values():
        assert abs(info["survived"] / info["rows"] - 342 / 891) < 0.01


def test_cells_are_copied_verbatim(split_dir: Path) -> None:
    original = set(SOURCE.read_text().splitlines()[1:])
    written = split_dir.joinpath("train/train.csv").read_text().splitlines()[1:]
    written += split_dir.joinpath("validation/val.csv").read_text().splitlines()[1:]
    assert set(written) == original and len(written) == 891


def test_a_changed_source_is_refused(tmp_path: Path) -> None:
    source = tmp_path / "train.csv"
    shutil.copy(SOURCE, source)
    source.write_bytes(source.read_bytes().replace(b"Braund", b"Brand"))
    with pytest.raises(PrepareError, match=r"has SHA-256 [0-9a-f]{64}, expected 7d118fef"):
        write_split(source, SUMS, tmp_path / "out", 0.2, 42)
    assert not (tmp_path / "out").exists()


def test_cli_reports_a_missing_source_in_one_line(tmp_path: Path) -> None:
    """As make runs it: one ERROR line on stderr naming the file and the fix, no traceback, exit 1."""
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "launcher.prepare_data",
            "--source",
            str(tmp_path / "nope.csv"),
            "--checksums",
            str(SUMS),
            "--out",
            str(tmp_path / "o"),
        ],
        cwd=REPO,
        capture_output=True,
        text=True,
        env={**os.environ, "PYTHONPATH": f"{REPO / 'container'}:{REPO}"},
    )
    assert result.returncode == 1
    assert "Traceback" not in result.stderr + result.stdout
    lines = result.stderr.splitlines()
    assert len(lines) == 1 and lines[0].startswith("[data] ERROR: "), result.stderr
    assert "nope.csv does not exist; restore it from git" in lines[0]
    assert not (tmp_path / "o").exists()  # nothing written


def test_the_images_prepare_command_writes_make_datas_split(
    tmp_path: Path, split_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """`<image> prepare` (the pipeline's Prepare job) under Processing's folders: the same bytes as make data."""
    paths = contract.ProcessingPaths(tmp_path / "ml")
    paths.raw_dir.mkdir(parents=True)
    shutil.copy(SOURCE, paths.raw_dir / "train.csv")
    shutil.copy(SUMS, paths.raw_dir / "SHA256SUMS")
    monkeypatch.setenv(contract.BASE_DIR_ENV, str(paths.root))
    assert cli.main([cli.PREPARE, "--validation-fraction", "0.2", "--seed", "42"]) == 0
    for name in ("train/train.csv", "validation/val.csv", "manifest.json"):
        assert (paths.split_dir / name).read_bytes() == (split_dir / name).read_bytes(), name


@pytest.mark.parametrize(
    ("change", "expected"),
    [
        ("edit", "has SHA-256"),
        ("no-seed", "the following arguments are required: --seed"),
    ],
)
def test_the_prepare_job_refuses_with_its_exit_message(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, change: str, expected: str
) -> None:
    paths = contract.ProcessingPaths(tmp_path / "ml")
    paths.raw_dir.mkdir(parents=True)
    data = SOURCE.read_bytes()
    (paths.raw_dir / "train.csv").write_bytes(data.replace(b"Braund", b"Brand") if change == "edit" else data)
    shutil.copy(SUMS, paths.raw_dir / "SHA256SUMS")
    monkeypatch.setenv(contract.BASE_DIR_ENV, str(paths.root))
    argv = [cli.PREPARE, "--validation-fraction", "0.2"] + ([] if change == "no-seed" else ["--seed", "42"])
    assert cli.main(argv) == 1
    message = paths.message_file.read_text()
    assert message.count("\n") == 1 and expected in message
    assert not (paths.split_dir / "train/train.csv").exists()
