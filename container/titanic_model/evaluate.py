"""`<image> evaluate`: a trained model judged on its own, as a SageMaker Processing job runs it.

Inputs (folders the job's request names, contract.ProcessingPaths): the training job's
model.tar.gz and the train and validation channels. Output: evaluation.json, which the registry's
quality report, the approval gate and a pipeline's condition read:

  metrics     train and validation metrics recomputed from the artifact's own model
  reported    whether they equal the metrics.json the training job wrote beside the model
  estimate    the model's recipe (its hyperparameters, refitted inside each fold) under repeated
              cross-validation on the train channel, with the three baseline rules on the same
              folds, the paired differences, the weakest groups and the threshold
              (titanic_model.evaluation, the same protocol as benchmarks/model_cv.py)
  model       the archive's SHA-256 and the training job's name (from the model card)

The archive is unpacked as data (no links, no paths outside its folder) before the model is
loaded, in this container, which is the image that made it.
"""

from __future__ import annotations

import hashlib
import json
import tarfile
import tempfile
from pathlib import Path
from typing import Any

import joblib
import pandas as pd
from sklearn.base import clone

from titanic_model import contract, evaluation
from titanic_model.data import DataError, features_and_label, read_channel
from titanic_model.metrics import binary_metrics
from titanic_model.model import survival_probability

DEFAULT_CV_REPEATS = 3  # when the model card does not say (the hyperparameter's default)
TOLERANCE = 1e-6  # metrics.json holds six decimals


def _unpack(archive: Path, into: Path) -> None:
    if not archive.is_file():
        raise DataError(
            f"{archive} is missing; the processing job's model input must be the training job's model.tar.gz"
        )
    try:
        with tarfile.open(archive, mode="r:gz") as tar:
            members = tar.getmembers()
            for member in members:
                inside = (into / member.name).resolve().is_relative_to(into.resolve())
                if not (member.isfile() or member.isdir()) or not inside:
                    raise DataError(f"{archive} holds {member.name!r}, which is not a plain file inside the archive")
            tar.extractall(into, members=members)
    except (tarfile.TarError, OSError) as exc:
        raise DataError(f"{archive} is not a model archive a training job wrote ({exc})") from None
    if not (into / contract.MODEL_FILE).is_file():
        raise DataError(f"{archive} holds no {contract.MODEL_FILE}; give the processing job a completed job's model")


def _json(path: Path) -> dict[str, Any]:
    return json.loads(path.read_text(encoding="utf-8")) if path.is_file() else {}


def recipe(model: Any) -> evaluation.Predictor:
    """The fitted pipeline's recipe as a predictor: the same steps and settings, fitted anew
    on each fold's training rows."""

    def predict(X_train: pd.DataFrame, y_train: pd.Series, X: pd.DataFrame) -> Any:
        return survival_probability(clone(model).fit(X_train, y_train), X)

    return predict


def evaluate(paths: contract.ProcessingPaths) -> dict[str, Any]:
    archive = paths.model_dir / contract.MODEL_ARCHIVE
    with tempfile.TemporaryDirectory() as tmp:
        unpacked = Path(tmp)
        _unpack(archive, unpacked)
        model = joblib.load(unpacked / contract.MODEL_FILE)
        reported = _json(unpacked / contract.METRICS_FILE)
        card = _json(unpacked / contract.MODEL_CARD_FILE)
    channels = {name: read_channel(name, paths.channel(name)) for name in ("train", "validation")}
    metrics: dict[str, float] = {}
    for prefix, name in (("train", "train"), ("val", "validation")):
        X, y = features_and_label(channels[name].frame)
        metrics.update(binary_metrics(prefix, y.to_numpy(), survival_probability(model, X)))
    differing = sorted(k for k in reported if k in metrics and abs(reported[k] - metrics[k]) > TOLERANCE)
    repeats = int((card.get("hyperparameters") or {}).get("cv_repeats", DEFAULT_CV_REPEATS))
    X_train, y_train = features_and_label(channels["train"].frame)
    return {
        "model": {
            "archive_sha256": hashlib.sha256(archive.read_bytes()).hexdigest(),
            "training_job": card.get("training_job_name"),
        },
        "metrics": metrics,
        "reported": {"equal": not differing, "differing": differing},
        "estimate": evaluation.estimate(recipe(model), X_train, y_train, repeats),
    }


def write(paths: contract.ProcessingPaths, result: dict[str, Any]) -> Path:
    """evaluation.json, whole or not at all (the job uploads the folder when it ends)."""
    paths.evaluation_dir.mkdir(parents=True, exist_ok=True)
    target = paths.evaluation_dir / contract.EVALUATION_FILE
    contract.write_json(target, result)
    return target
