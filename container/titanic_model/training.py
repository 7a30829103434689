"""One training run: read the channels, fit, evaluate, write the artifacts SageMaker uploads."""

from __future__ import annotations

import json
import logging
import os
import platform
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from importlib.metadata import version
from typing import Any

import joblib
import pandas as pd

from titanic_model import contract, distributed
from titanic_model.checkpoints import fingerprint
from titanic_model.cluster import Cluster, peers, resolve
from titanic_model.data import LABEL, ChannelData, features_and_label, read_channel
from titanic_model.hyperparameters import Hyperparameters, load_hyperparameters_file, parse_hyperparameters
from titanic_model.metrics import METRIC_NAMES, binary_metrics, metric_line, predicted_class, roc_points
from titanic_model.model import (
    cross_validated_probability,
    feature_importance,
    fit_model,
    survival_probability,
)

log = logging.getLogger(__name__)
LIBRARIES = ("pandas", "numpy", "scikit-learn", "lightgbm", "joblib")


@dataclass(frozen=True)
class Evaluation:
    metrics: dict[str, float]
    source: str  # what the val_* metrics were computed on
    frame: pd.DataFrame  # the evaluated rows
    probability: Any  # their survival probabilities


def resolve_hyperparameters(paths: contract.Paths, overrides: dict[str, str]) -> Hyperparameters:
    """hyperparameters.json (what SageMaker writes), then explicit local flags on top."""
    raw: dict[str, object] = {}
    if paths.hyperparameters.is_file():
        raw.update(load_hyperparameters_file(paths.hyperparameters.read_text(encoding="utf-8")))
    raw.update(overrides)
    return parse_hyperparameters(raw)


def evaluate(model: Any, train: ChannelData, validation: ChannelData | None, hp: Hyperparameters) -> Evaluation:
    if validation is not None:
        X_val, y_val = features_and_label(validation.frame)
        probability = survival_probability(model, X_val)
        source = f"validation channel ({validation.rows} rows)"
        frame = validation.frame
    else:
        X, y = features_and_label(train.frame)
        probability = cross_validated_probability(X, y, hp)
        y_val = y
        source = f"{hp.cv_folds}-fold cross-validation on the train channel ({train.rows} rows, out-of-fold)"
        frame = train.frame
    X_train, y_train = features_and_label(train.frame)
    metrics = binary_metrics("train", y_train.to_numpy(), survival_probability(model, X_train))
    metrics = {k: v for k, v in metrics.items() if k in METRIC_NAMES}
    metrics.update(binary_metrics("val", y_val.to_numpy(), probability))
    return Evaluation(metrics=metrics, source=source, frame=frame, probability=probability)


def write_output_data(paths: contract.Paths, model: Any, evaluation: Evaluation) -> None:
    """Evaluation detail for output.tar.gz: per-row predictions, ROC points, importances."""
    out = paths.output_data_dir
    out.mkdir(parents=True, exist_ok=True)
    y_true = evaluation.frame[LABEL].to_numpy()
    predictions = pd.DataFrame(
        {
            "PassengerId": evaluation.frame.get("PassengerId", pd.Series(range(len(y_true)))).to_numpy(),
            "Survived": y_true,
            "probability": evaluation.probability,
            "predicted": predicted_class(evaluation.probability),
        }
    )
    predictions.to_csv(out / "validation_predictions.csv", index=False)
    pd.DataFrame(roc_points(y_true, evaluation.probability)).to_csv(out / "roc_curve.csv", index=False)
    feature_importance(model).to_csv(out / "feature_importance.csv", index=False)


def model_card(
    model: Any,
    *,
    hp: Hyperparameters,
    train: ChannelData,
    validation: ChannelData | None,
    evaluation: Evaluation,
    seconds: float,
) -> dict[str, Any]:
    def channel(c: ChannelData) -> dict[str, Any]:
        counts = c.frame[LABEL].value_counts()
        return {"rows": c.rows, "survived": int(counts.get(1, 0)), "died": int(counts.get(0, 0)), "files": c.files}

    return {
        "model": "LightGBM binary classifier behind Titanic features (scikit-learn Pipeline): class, sex, being a boy, "
        "and how the other women and boys of the passenger's family and ticket fared in the training rows",
        "input": "a DataFrame with Kaggle's raw columns; predict_proba(...)[:, 1] is P(survived)",
        "created_at": datetime.now(UTC).isoformat(timespec="seconds"),
        "training_job_name": os.environ.get("TRAINING_JOB_NAME", "local"),
        "data": {"train": channel(train), "validation": channel(validation) if validation else None},
        "metrics_source": evaluation.source,
        "metrics": evaluation.metrics,
        "hyperparameters": hp.as_dict(),
        "boosting_rounds": model.named_steps["model"].booster_.num_trees(),
        "training_seconds": round(seconds, 3),
        "libraries": {"python": platform.python_version(), **{name: version(name) for name in LIBRARIES}},
    }


def read_channels(paths: contract.Paths) -> tuple[ChannelData, ChannelData | None]:
    train = read_channel("train", paths.channel("train"))
    validation_dir = paths.channel("validation")
    validation = read_channel("validation", validation_dir) if validation_dir.exists() else None
    log.info(
        "train rows: %d; validation rows: %s", train.rows, validation.rows if validation else "none (cross-validating)"
    )
    return train, validation


def write_artifacts(
    paths: contract.Paths,
    model: Any,
    hp: Hyperparameters,
    channels: tuple[ChannelData, ChannelData | None],
    *,
    started: float,
    card_extra: dict[str, Any],
) -> dict[str, float]:
    """Evaluate the fitted model and write everything SageMaker uploads, the model last.
    How the model fares on passengers it has not seen is make evaluate's job (a processing
    job, titanic_model.evaluate), not the training job's."""
    train, validation = channels
    evaluation = evaluate(model, train, validation, hp)
    seconds = time.perf_counter() - started
    paths.model_dir.mkdir(parents=True, exist_ok=True)
    write_output_data(paths, model, evaluation)
    contract.write_json(paths.model_dir / contract.METRICS_FILE, evaluation.metrics)
    card = model_card(model, hp=hp, train=train, validation=validation, evaluation=evaluation, seconds=seconds)
    card.update(card_extra)
    contract.write_json(paths.model_dir / contract.MODEL_CARD_FILE, card)
    # The model goes last: its presence means every other artifact is complete.
    contract.write_atomically(paths.model_dir / contract.MODEL_FILE, lambda p: joblib.dump(model, p))
    for name in METRIC_NAMES:
        if name in evaluation.metrics:
            print(metric_line(name, evaluation.metrics[name]), flush=True)
    return evaluation.metrics


def run_training(paths: contract.Paths, overrides: dict[str, str]) -> dict[str, float]:
    hp = resolve_hyperparameters(paths, overrides)
    log.info("hyperparameters: %s", json.dumps(hp.as_dict(), sort_keys=True))
    cluster = Cluster.from_file(paths.resource_config)
    if cluster.distributed:
        return run_distributed(paths, hp, cluster)
    train, validation = read_channels(paths)
    started = time.perf_counter()
    X, y = features_and_label(train.frame)
    print_ = fingerprint(hp.as_dict(), {"train": train.files})
    model = fit_model(hp, X, y, paths.checkpoint_dir(), print_)
    return write_artifacts(paths, model, hp, (train, validation), started=started, card_extra={})


def run_distributed(paths: contract.Paths, hp: Hyperparameters, cluster: Cluster) -> dict[str, float]:
    """One model from every host (titanic_model.distributed); only the leader writes."""
    log.info(
        "multi-instance training: host %s of %s; leader %s; no checkpoints (a restarted job starts over)",
        cluster.current_host,
        ", ".join(cluster.hosts),
        cluster.leader,
    )
    addresses = resolve(cluster.hosts, hp.cluster_timeout)
    with peers(cluster, addresses, hp.cluster_timeout) as links:
        channels = read_channels(paths)
        started = time.perf_counter()
        model, everything, facts = distributed.fit(cluster, links, addresses, hp, channels[0])
        if everything is None:
            distributed.await_leader(cluster, links)
            return {}
        metrics = write_artifacts(
            paths,
            model,
            hp,
            (everything, channels[1]),
            started=started,
            card_extra={"distributed": facts},
        )
        distributed.release(links)
        return metrics
