"""The model: Kaggle's raw columns -> features -> LightGBM, as one scikit-learn pipeline."""

from __future__ import annotations

import logging
from pathlib import Path

import numpy as np
import pandas as pd
from lightgbm import LGBMClassifier
from sklearn.model_selection import StratifiedKFold, cross_val_predict
from sklearn.pipeline import Pipeline

from titanic_model import checkpoints
from titanic_model.data import DataError
from titanic_model.features import TitanicFeatures
from titanic_model.hyperparameters import Hyperparameters

log = logging.getLogger(__name__)


def build_model(hp: Hyperparameters, feature_set: str = "groups") -> Pipeline:
    return Pipeline(
        [
            ("features", TitanicFeatures(min_category_count=hp.min_category_count, feature_set=feature_set)),
            ("model", LGBMClassifier(**hp.lightgbm_params())),
        ]
    )


def fit_model(
    hp: Hyperparameters, X: pd.DataFrame, y: pd.Series, checkpoint_dir: Path | None = None, print_: str = ""
) -> Pipeline:
    """The fitted pipeline. With a checkpoint folder, boosting resumes from the newest valid
    checkpoint there, saves new ones as it goes, and stops cleanly on SIGTERM."""
    model = build_model(hp)
    if checkpoint_dir is None:
        return model.fit(X, y)
    features, classifier = model.named_steps["features"], model.named_steps["model"]
    transformed = features.fit_transform(X, y)  # deterministic: the same on every restart
    start = checkpoints.newest_valid(checkpoint_dir, print_)
    done = start.rounds if start else 0
    if start:
        log.info("resuming from %s: %d of %d rounds already done", start.model_file.name, done, hp.n_estimators)
    callback = checkpoints.Checkpointer(checkpoint_dir, hp.checkpoint_every, print_)
    callback.install()
    classifier.set_params(n_estimators=hp.n_estimators - done)
    classifier.fit(transformed, y, init_model=str(start.model_file) if start else None, callbacks=[callback])
    classifier.set_params(n_estimators=hp.n_estimators)  # the model's own account of its size
    return model


def survival_probability(model: Pipeline, X: pd.DataFrame) -> np.ndarray:
    return model.predict_proba(X)[:, 1]


def cross_validated_probability(X: pd.DataFrame, y: pd.Series, hp: Hyperparameters) -> np.ndarray:
    """Out-of-fold probabilities: each row scored by a model that never saw it."""
    smallest_class = int(y.value_counts().min())
    if smallest_class < hp.cv_folds:
        raise DataError(
            f"cross-validation needs at least cv_folds={hp.cv_folds} rows of each class, the train channel has "
            f"{smallest_class} of one; add a validation channel, add rows, or lower cv_folds"
        )
    folds = StratifiedKFold(n_splits=hp.cv_folds, shuffle=True, random_state=hp.random_state)
    return cross_val_predict(build_model(hp), X, y, cv=folds, method="predict_proba")[:, 1]


def feature_importance(model: Pipeline) -> pd.DataFrame:
    """Total gain per engineered feature, largest first."""
    booster = model.named_steps["model"].booster_
    names = model.named_steps["features"].get_feature_names_out()
    gain = booster.feature_importance(importance_type="gain")
    splits = booster.feature_importance(importance_type="split")
    table = pd.DataFrame({"feature": names, "gain": gain.astype(float), "splits": splits.astype(int)})
    return table.sort_values("gain", ascending=False, ignore_index=True)
