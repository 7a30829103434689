"""The SageMaker contract, run in-process against a fake /opt/ml (SAGEMAKER_BASE_DIR)."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import joblib
import pandas as pd
import pytest
from conftest import REPO, make_sm_root
from corpus_cases import CASES, BadInput
from titanic_model import cli, contract
from titanic_model.metrics import METRIC_DEFINITIONS, METRIC_NAMES


def run(root: Path, monkeypatch: pytest.MonkeyPatch, *argv: str) -> int:
    monkeypatch.setenv(contract.BASE_DIR_ENV, str(root))
    return cli.main(list(argv))


def assert_failed_cleanly(root: Path, code: int, phrase: str) -> str:
    assert code != 0
    reason = (root / "output/failure").read_text(encoding="utf-8")
    assert phrase in reason
    assert reason.count("\n") == 1 and len(reason) <= contract.FAILURE_REASON_LIMIT + 1
    assert not any((root / "model").iterdir()), "a failed run left something in /opt/ml/model"
    return reason


def test_success_writes_every_artifact(sm_root: Path, monkeypatch: pytest.MonkeyPatch, capsys) -> None:
    assert run(sm_root, monkeypatch, "train") == 0
    model_dir = sm_root / "model"
    assert sorted(p.name for p in model_dir.iterdir()) == ["metrics.json", "model.joblib", "model_card.json"]
    metrics = json.loads((model_dir / "metrics.json").read_text())
    for name in ("train_accuracy", "val_accuracy", "val_f1", "val_auc"):
        assert 0.0 <= metrics[name] <= 1.0
    card = json.loads((model_dir / "model_card.json").read_text())
    assert card["data"]["train"]["rows"] == 712 and card["data"]["validation"]["rows"] == 179
    assert len(card["data"]["train"]["files"]["train.csv"]) == 64
    assert card["libraries"]["lightgbm"] == "4.7.0"
    assert not (sm_root / "output/failure").exists()
    outputs = sorted(p.name for p in (sm_root / "output/data").iterdir())
    assert outputs == ["feature_importance.csv", "roc_curve.csv", "validation_predictions.csv"]
    predictions = pd.read_csv(sm_root / "output/data/validation_predictions.csv")
    assert len(predictions) == 179 and predictions["probability"].between(0, 1).all()

    # The model is one object that takes Kaggle's raw columns.
    model = joblib.load(model_dir / "model.joblib")
    raw = pd.read_csv(sm_root / "input/data/validation/val.csv").drop(columns="Survived")
    assert model.predict_proba(raw).shape == (179, 2)

    # Every metric is printed once, and SageMaker's regex reads back the same number.
    printed = capsys.readouterr().out.splitlines()
    for definition in METRIC_DEFINITIONS:
        hits = [re.search(definition["Regex"], line) for line in printed]
        values = [float(h.group(1)) for h in hits if h]
        assert values == [pytest.approx(metrics[definition["Name"]], abs=1e-6)], definition["Name"]


def test_hyperparameters_file_is_what_trains(sm_root: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The reference run's silent bug: values that never reached the model. Use odd ones."""
    (sm_root / "input/config/hyperparameters.json").write_text(
        json.dumps({"n_estimators": "7", "num_leaves": "3", "learning_rate": "0.3"})
    )
    assert run(sm_root, monkeypatch, "train") == 0
    model = joblib.load(sm_root / "model/model.joblib")
    booster = model.named_steps["model"].booster_
    assert booster.num_trees() == 7
    assert model.named_steps["model"].get_params()["num_leaves"] == 3
    card = json.loads((sm_root / "model/model_card.json").read_text())
    assert card["hyperparameters"]["n_estimators"] == 7


def test_flags_override_the_file_for_local_runs(sm_root: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    (sm_root / "input/config/hyperparameters.json").write_text(json.dumps({"n_estimators": "9"}))
    assert run(sm_root, monkeypatch, "train", "--n_estimators", "4") == 0
    assert joblib.load(sm_root / "model/model.joblib").named_steps["model"].booster_.num_trees() == 4


def test_without_validation_channel_metrics_are_cross_validated(
    tmp_path: Path, split_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    root = make_sm_root(tmp_path / "ml", split_dir, channels=("train",))
    assert run(root, monkeypatch, "train") == 0
    card = json.loads((root / "model/model_card.json").read_text())
    assert card["metrics_source"].startswith("5-fold cross-validation on the train channel (712 rows")
    assert card["data"]["validation"] is None
    assert len(pd.read_csv(root / "output/data/validation_predictions.csv")) == 712


def test_a_channel_of_several_files_is_read_whole(
    tmp_path: Path, split_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    root = make_sm_root(tmp_path / "ml", split_dir)
    train = pd.read_csv(split_dir / "train/train.csv", dtype=str, keep_default_na=False)
    channel = root / "input/data/train"
    shutil.rmtree(channel)
    (channel / "nested").mkdir(parents=True)
    train.iloc[:300].to_csv(channel / "part-00000", index=False)
    train.iloc[300:].to_csv(channel / "nested/part-00001", index=False)
    assert run(root, monkeypatch, "train") == 0
    card = json.loads((root / "model/model_card.json").read_text())
    assert card["data"]["train"]["rows"] == 712
    assert sorted(card["data"]["train"]["files"]) == ["nested/part-00001", "part-00000"]


@pytest.mark.parametrize("case", CASES, ids=lambda c: c.file)
def test_bad_input_fails_with_a_reason_and_no_model(
    case: BadInput, tmp_path: Path, split_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    root = make_sm_root(tmp_path / "ml", split_dir)
    channel = root / "input/data" / case.channel
    shutil.rmtree(channel)
    channel.mkdir()
    shutil.copy(case.path, channel / case.path.name)
    assert_failed_cleanly(root, run(root, monkeypatch, "train"), case.reason)


def test_absent_train_channel(tmp_path: Path, split_dir: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    root = make_sm_root(tmp_path / "ml", split_dir, channels=("validation",))
    assert_failed_cleanly(root, run(root, monkeypatch, "train"), "no 'train' channel")


def test_empty_train_channel(tmp_path: Path, split_dir: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    root = make_sm_root(tmp_path / "ml", split_dir, channels=("validation",))
    (root / "input/data/train").mkdir()
    assert_failed_cleanly(root, run(root, monkeypatch, "train"), "the 'train' channel is empty")


@pytest.mark.parametrize(
    ("hyperparameters", "phrase"),
    [
        ('{"n_estimators": "lots"}', "n_estimators='lots' is not a valid int"),
        ('{"depth": "3"}', "unknown hyperparameter(s) depth"),
        ("{broken", "hyperparameters.json is not valid JSON"),
    ],
)
def test_bad_hyperparameters(sm_root: Path, monkeypatch: pytest.MonkeyPatch, hyperparameters: str, phrase: str) -> None:
    (sm_root / "input/config/hyperparameters.json").write_text(hyperparameters)
    assert_failed_cleanly(sm_root, run(sm_root, monkeypatch, "train"), phrase)


@pytest.mark.parametrize(
    ("argv", "phrase"),
    [
        ((), "got no command; this image knows 'train', 'serve', 'prepare', 'evaluate' and 'rescore'"),
        (
            ("predict",),
            "got the command 'predict'; this image knows 'train', 'serve', 'prepare', 'evaluate' and 'rescore'",
        ),
        (("train", "--n_trees", "3"), "unrecognized arguments: --n_trees 3"),
    ],
)
def test_only_the_train_command_is_accepted(
    sm_root: Path, monkeypatch: pytest.MonkeyPatch, argv: tuple[str, ...], phrase: str
) -> None:
    assert_failed_cleanly(sm_root, run(sm_root, monkeypatch, *argv), phrase)


def test_a_failed_rerun_removes_the_previous_success(sm_root: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    assert run(sm_root, monkeypatch, "train") == 0
    (sm_root / "input/config/hyperparameters.json").write_text('{"max_depth": "-5"}')
    assert_failed_cleanly(sm_root, run(sm_root, monkeypatch, "train"), "max_depth='-5' is out of range")


def test_metric_definitions_are_unambiguous() -> None:
    assert [d["Name"] for d in METRIC_DEFINITIONS] == list(METRIC_NAMES)
    lines = [f"{name}: 0.5" for name in METRIC_NAMES]
    for definition in METRIC_DEFINITIONS:
        assert sum(bool(re.search(definition["Regex"], line)) for line in lines) == 1


@pytest.mark.parametrize(("argv", "code"), [(["train"], 0), (["train", "--n_estimators", "0"], 1)])
def test_the_entrypoints_quick_exit_keeps_every_line_file_and_exit_code(
    sm_root: Path, argv: list[str], code: int
) -> None:
    """entrypoint.py ends with os._exit (no interpreter teardown): the metric lines SageMaker
    parses must still reach a piped stdout, the log stderr, and the exit code the shell."""
    env = {**os.environ, "SAGEMAKER_BASE_DIR": str(sm_root), "PYTHONPATH": str(REPO / "container")}
    result = subprocess.run(
        [sys.executable, str(REPO / "container/entrypoint.py"), *argv], env=env, capture_output=True, text=True
    )
    assert result.returncode == code, result.stderr[-2000:]
    if code == 0:
        printed = [line.split(":")[0] for line in result.stdout.splitlines() if ": " in line]
        assert set(METRIC_NAMES) <= set(printed), result.stdout
        assert "training finished" in result.stderr.splitlines()[-1]
        assert (sm_root / "model/model.joblib").is_file()
    else:
        assert "training failed" in result.stderr and (sm_root / "output/failure").is_file()
