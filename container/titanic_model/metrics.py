"""Metric names, how they are printed, and the regexes SageMaker uses to pick them up.

This module is the single source for both sides of the contract: the container prints
`name: value` lines with `metric_line`, and the launcher passes `METRIC_DEFINITIONS` to the
Estimator so that SageMaker (and CloudWatch) record the same numbers.
"""

from __future__ import annotations

import math

import numpy as np
from sklearn.metrics import accuracy_score, f1_score, log_loss, precision_score, recall_score, roc_auc_score, roc_curve

# Printed in this order. No name ends with another, so each regex matches one line only.
METRIC_NAMES = (
    "train_accuracy",
    "train_auc",
    "val_accuracy",
    "val_precision",
    "val_recall",
    "val_f1",
    "val_auc",
    "val_logloss",
)
_NUMBER = r"([-+]?[0-9]*\.?[0-9]+(?:[eE][-+]?[0-9]+)?)"
METRIC_DEFINITIONS = [{"Name": name, "Regex": rf"(?:^|\s){name}: {_NUMBER}"} for name in METRIC_NAMES]
THRESHOLD = 0.5


def predicted_class(probability: np.ndarray) -> np.ndarray:
    """0/1 per row: survived when P(survived) >= THRESHOLD (metrics, reports and serving alike)."""
    return (probability >= THRESHOLD).astype(int)


def metric_line(name: str, value: float) -> str:
    return f"{name}: {value:.6f}"


def binary_metrics(prefix: str, y_true: np.ndarray, probability: np.ndarray) -> dict[str, float]:
    """Accuracy, precision, recall, F1 at 0.5, ROC AUC and log loss, keyed '<prefix>_<name>'."""
    predicted = predicted_class(probability)
    values = {
        "accuracy": accuracy_score(y_true, predicted),
        "precision": precision_score(y_true, predicted, zero_division=0),
        "recall": recall_score(y_true, predicted, zero_division=0),
        "f1": f1_score(y_true, predicted, zero_division=0),
        "auc": roc_auc_score(y_true, probability),
        "logloss": log_loss(y_true, np.clip(probability, 1e-15, 1 - 1e-15), labels=[0, 1]),
    }
    return {f"{prefix}_{k}": round(float(v), 6) for k, v in values.items() if not math.isnan(v)}


def roc_points(y_true: np.ndarray, probability: np.ndarray) -> list[dict[str, float]]:
    fpr, tpr, thresholds = roc_curve(y_true, probability)
    # roc_curve's first threshold is +inf; clip it so the CSV holds only finite numbers.
    return [
        {"fpr": float(f), "tpr": float(t), "threshold": float(min(th, 1.0))}
        for f, t, th in zip(fpr, tpr, thresholds, strict=True)
    ]
