"""The one place hyperparameters are declared, decoded and checked.

SageMaker hands a bring-your-own container its hyperparameters as a JSON object whose every
value is a string (`{"n_estimators": "300"}`), in /opt/ml/input/config/hyperparameters.json.
Nothing arrives as a command-line flag. The defaults below go with the `groups` feature set
that benchmarks/model_cv.py's protocol chose (repeated cross-validation on train.csv, the two
baseline rules under the same folds); a small, regularised booster, on purpose.
"""

from __future__ import annotations

import json
import math
from dataclasses import asdict, dataclass
from typing import Any


class HyperparameterError(ValueError):
    """A hyperparameter has an unknown name or a value outside what is allowed."""


@dataclass(frozen=True)
class _Spec:
    kind: type
    low: float
    high: float
    help: str


RESERVED_PREFIX = "sagemaker_"

# name -> (type, inclusive range, meaning). The dataclass below holds the defaults.
SPECS: dict[str, _Spec] = {
    "n_estimators": _Spec(int, 1, 5000, "number of boosting rounds"),
    "max_depth": _Spec(int, -1, 64, "tree depth limit (-1: none)"),
    "num_leaves": _Spec(int, 2, 1024, "leaves per tree"),
    "learning_rate": _Spec(float, 1e-4, 1.0, "shrinkage per round"),
    "min_child_samples": _Spec(int, 1, 500, "rows a leaf needs"),
    "subsample": _Spec(float, 0.1, 1.0, "fraction of rows per round (bagging)"),
    "colsample_bytree": _Spec(float, 0.1, 1.0, "fraction of features per tree"),
    "reg_lambda": _Spec(float, 0.0, 1000.0, "L2 regularisation"),
    "min_category_count": _Spec(int, 1, 1000, "titles/decks rarer than this are folded together"),
    "cv_folds": _Spec(int, 2, 20, "folds for the cross-validated metrics when there is no validation channel"),
    "checkpoint_every": _Spec(int, 1, 5000, "boosting rounds between spot-training checkpoints"),
    "cv_repeats": _Spec(int, 0, 20, "repeats of make evaluate's 5-fold CV estimate of the model's recipe (0: skip it)"),
    "random_state": _Spec(int, 0, 2**31 - 1, "seed for every random choice"),
    "cluster_timeout": _Spec(int, 5, 3600, "seconds a host of a multi-instance job waits for the others"),
}


@dataclass(frozen=True)
class Hyperparameters:
    n_estimators: int = 200
    max_depth: int = 4
    num_leaves: int = 8
    learning_rate: float = 0.03
    min_child_samples: int = 10
    subsample: float = 0.8
    colsample_bytree: float = 0.8
    reg_lambda: float = 0.0
    min_category_count: int = 10
    cv_folds: int = 5
    checkpoint_every: int = 50
    cv_repeats: int = 3
    random_state: int = 42
    cluster_timeout: int = 300

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)

    def lightgbm_params(self) -> dict[str, Any]:
        return {
            "n_estimators": self.n_estimators,
            "max_depth": self.max_depth,
            "num_leaves": self.num_leaves,
            "learning_rate": self.learning_rate,
            "min_child_samples": self.min_child_samples,
            "subsample": self.subsample,
            # LightGBM only bags when a frequency is set; 1 = every round.
            "subsample_freq": 1 if self.subsample < 1.0 else 0,
            "colsample_bytree": self.colsample_bytree,
            "reg_lambda": self.reg_lambda,
            "random_state": self.random_state,
            # One thread: on a few hundred rows threads cost more than they save, and
            # results stay identical whatever the machine's core count.
            "n_jobs": 1,
            "verbose": -1,
        }


def _allowed(name: str) -> str:
    spec = SPECS[name]
    return f"{spec.kind.__name__} in [{spec.low:g}, {spec.high:g}] ({spec.help})"


def _to_int(value: object) -> int:
    if isinstance(value, bool):
        raise ValueError("a boolean is not a count")
    if isinstance(value, float) and value.is_integer():
        return int(value)
    if isinstance(value, (int, str)):
        return int(value)
    raise ValueError(f"not an integer: {value!r}")


def _to_float(value: object) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float, str)):
        raise ValueError(f"not a number: {value!r}")
    number = float(value)
    if not math.isfinite(number):
        raise ValueError("not a finite number")
    return number


def _decode_one(name: str, raw: object) -> int | float:
    spec = SPECS[name]
    value: object = raw
    if isinstance(value, str):
        text = value.strip()
        # Framework estimators JSON-encode each value a second time ('"0.1"'); accept both.
        if len(text) >= 2 and text[0] == text[-1] == '"':
            text = text[1:-1].strip()
        value = text
    try:
        number = _to_int(value) if spec.kind is int else _to_float(value)
    except (TypeError, ValueError):
        raise HyperparameterError(
            f"hyperparameter {name}={raw!r} is not a valid {spec.kind.__name__}; allowed: {_allowed(name)}"
        ) from None
    if not spec.low <= number <= spec.high:
        raise HyperparameterError(f"hyperparameter {name}={raw!r} is out of range; allowed: {_allowed(name)}")
    return number


def parse_hyperparameters(raw: dict[str, object]) -> Hyperparameters:
    """Decode SageMaker's string-valued mapping, refusing unknown names and bad values.

    Names starting with 'sagemaker_' belong to SageMaker's own tooling and are skipped.
    """
    raw = {name: value for name, value in raw.items() if not name.startswith(RESERVED_PREFIX)}
    unknown = sorted(set(raw) - set(SPECS))
    if unknown:
        raise HyperparameterError(f"unknown hyperparameter(s) {', '.join(unknown)}; known: {', '.join(sorted(SPECS))}")
    values = {name: _decode_one(name, value) for name, value in raw.items()}
    return Hyperparameters(**values)


def load_hyperparameters_file(text: str) -> dict[str, object]:
    """The content of hyperparameters.json as a mapping; a clear error for anything else."""
    try:
        data = json.loads(text) if text.strip() else {}
    except json.JSONDecodeError as exc:
        raise HyperparameterError(f"hyperparameters.json is not valid JSON ({exc.msg} at line {exc.lineno})") from None
    if not isinstance(data, dict):
        raise HyperparameterError("hyperparameters.json must hold a JSON object of name: value pairs")
    return data
