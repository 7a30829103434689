"""Prints the model's figures against the reference run: the fixed split and repeated CV.

Run it as `make benchmark` (which sets PYTHONPATH=container), or:
  PYTHONPATH=container python benchmarks/model_cv.py --data data/titanic/train.csv --split-dir build/data
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

import pandas as pd
from lightgbm import LGBMClassifier
from sklearn.compose import ColumnTransformer
from sklearn.model_selection import RepeatedStratifiedKFold, cross_validate
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import OrdinalEncoder
from titanic_model.hyperparameters import Hyperparameters
from titanic_model.metrics import binary_metrics
from titanic_model.model import build_model

RAW = ["Pclass", "Sex", "Age", "SibSp", "Parch", "Fare", "Embarked"]


def reference_model() -> Pipeline:
    """The reference run: LightGBM, 100 trees, depth 5, seven raw columns."""
    encode = ColumnTransformer(
        [("cat", OrdinalEncoder(handle_unknown="use_encoded_value", unknown_value=-1), ["Sex", "Embarked"])],
        remainder="passthrough",
    )
    return Pipeline(
        [
            ("select", ColumnTransformer([("raw", "passthrough", RAW)], verbose_feature_names_out=False)),
            ("encode", encode.set_output(transform="pandas")),
            ("model", LGBMClassifier(n_estimators=100, max_depth=5, random_state=42, verbose=-1, n_jobs=1)),
        ]
    ).set_output(transform="pandas")


def split_figures(name: str, model: Pipeline, split_dir: Path) -> dict[str, float]:
    train = pd.read_csv(split_dir / "train/train.csv")
    val = pd.read_csv(split_dir / "validation/val.csv")
    model.fit(train.drop(columns="Survived"), train["Survived"])
    probability = model.predict_proba(val.drop(columns="Survived"))[:, 1]
    return binary_metrics("val", val["Survived"].to_numpy(), probability)


def cv_figures(model: Pipeline, data: pd.DataFrame, repeats: int) -> dict[str, float]:
    folds = RepeatedStratifiedKFold(n_splits=5, n_repeats=repeats, random_state=0)
    scores = cross_validate(
        model, data.drop(columns="Survived"), data["Survived"], cv=folds, scoring=("roc_auc", "accuracy")
    )
    auc, acc = scores["test_roc_auc"], scores["test_accuracy"]
    return {
        "cv_auc_mean": statistics.fmean(auc),
        "cv_auc_median": statistics.median(auc),
        "cv_auc_sd": statistics.stdev(auc),
        "cv_acc_mean": statistics.fmean(acc),
        "fit_ms_median": 1000 * statistics.median(scores["fit_time"]),
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, required=True)
    parser.add_argument("--split-dir", type=Path, required=True)
    parser.add_argument("--repeats", type=int, default=5)
    args = parser.parse_args()
    data = pd.read_csv(args.data)
    print(f"model figures ({args.repeats}x repeated stratified 5-fold CV over {len(data)} rows; split 712/179)")
    print("model       val_acc  val_f1  val_auc  cv_auc  (median    sd)  cv_acc  fit ms")
    for name, make in (("reference", reference_model), ("ours", lambda: build_model(Hyperparameters()))):
        started = time.perf_counter()
        split = split_figures(name, make(), args.split_dir)
        cv = cv_figures(make(), data, args.repeats)
        print(
            f"{name:<10} {split['val_accuracy']:>8.4f} {split['val_f1']:>7.4f} {split['val_auc']:>8.4f} "
            f"{cv['cv_auc_mean']:>7.4f} {cv['cv_auc_median']:>8.4f} {cv['cv_auc_sd']:>6.4f} {cv['cv_acc_mean']:>7.4f} "
            f"{cv['fit_ms_median']:>7.1f}   ({time.perf_counter() - started:.1f}s)"
        )
    print("bar for ours: val_auc >= 0.85, val_accuracy >= 0.81, cv_auc >= 0.88")
    return 0


if __name__ == "__main__":
    sys.exit(main())
