"""`<image> evaluate` under SageMaker Processing's contract (container/titanic_model/evaluate.py),
run in process on a tree laid out as a processing job lays it out; tests/test_image.py runs the
same command in the image, offline."""

from __future__ import annotations

import json
import shutil
import tarfile
from pathlib import Path

import pytest
from conftest import processing_tree
from titanic_model import cli, contract, evaluation


@pytest.fixture
def evaluated(tmp_path: Path, trained_root: Path, split_dir: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    paths = processing_tree(tmp_path / "ml", trained_root / "model", split_dir)
    monkeypatch.setenv(contract.BASE_DIR_ENV, str(paths.root))
    assert cli.main([cli.EVALUATE]) == 0
    return paths.evaluation_dir / contract.EVALUATION_FILE


def test_the_evaluation_recomputes_what_training_reported(evaluated: Path, trained_root: Path) -> None:
    result = json.loads(evaluated.read_text())
    reported = json.loads((trained_root / "model" / contract.METRICS_FILE).read_text())
    assert result["reported"] == {"equal": True, "differing": []}
    for name in ("val_auc", "val_accuracy", "train_auc"):
        assert result["metrics"][name] == pytest.approx(reported[name], abs=1e-6)
    assert len(result["model"]["archive_sha256"]) == 64


def test_the_estimate_puts_the_recipe_beside_every_rule_on_the_same_folds(evaluated: Path) -> None:
    estimate = json.loads(evaluated.read_text())["estimate"]
    assert set(estimate["baselines"]) == set(evaluation.RULES)
    for rule in estimate["baselines"].values():
        assert set(rule["model_minus_rule_accuracy"]) == {"mean", "sd"}
    assert 0.8 < estimate["model"]["auc_mean"] <= 1.0
    assert estimate["threshold"]["value"] == 0.5 and estimate["weakest_groups"]


def test_a_missing_archive_is_the_jobs_exit_message(
    tmp_path: Path, split_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    paths = contract.ProcessingPaths(tmp_path / "ml")
    for channel in ("train", "validation"):
        shutil.copytree(split_dir / channel, paths.channel(channel))
    monkeypatch.setenv(contract.BASE_DIR_ENV, str(paths.root))
    assert cli.main([cli.EVALUATE]) == 1
    message = paths.message_file.read_text()
    assert message.count("\n") == 1 and "model.tar.gz is missing" in message
    assert not (paths.evaluation_dir / contract.EVALUATION_FILE).exists()


def test_an_archive_reaching_outside_its_folder_is_refused(
    tmp_path: Path, trained_root: Path, split_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    paths = processing_tree(tmp_path / "ml", trained_root / "model", split_dir)
    archive = paths.model_dir / contract.MODEL_ARCHIVE
    outside = tmp_path / "outside.txt"
    outside.write_text("x")
    with tarfile.open(archive, "w:gz") as tar:
        tar.add(trained_root / "model" / contract.MODEL_FILE, arcname=contract.MODEL_FILE)
        tar.add(outside, arcname="../escaped.txt")
    monkeypatch.setenv(contract.BASE_DIR_ENV, str(paths.root))
    assert cli.main([cli.EVALUATE]) == 1
    assert "'../escaped.txt', which is not a plain file inside the archive" in paths.message_file.read_text()
    assert not (paths.root / "processing" / "escaped.txt").exists()
