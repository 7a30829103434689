"""How good is the model on passengers it has never seen, and compared with what?

One protocol, shared by the training job (its model card) and benchmarks/model_cv.py (the
candidates table): repeated stratified k-fold cross-validation in which everything that
learns from data (imputation, category levels, the family and ticket outcomes) is fitted
inside each training fold, exactly as at prediction time; and three baseline rules scored on
the very same folds:

- "women live": every woman survives, every man dies;
- "women and boys follow their family": a woman or boy is predicted from how the other
  women and boys of the same family (surname and class) fared in the training fold (a boy
  whose family's women and boys all lived lives; a woman whose family's all died dies),
  everyone else by sex;
- "woman-child groups by surname": the same rule as published in Kaggle's "Titanic using
  Name only" notebook (public score 0.81818), whose groups are the surname alone: all men
  die except boys (title Master) of a group whose women and boys all lived; all women live
  except those of a group whose women and boys all died.

Fold-by-fold differences against the rules are paired (same folds), so their spread is the
honest yardstick for "better than the rule".
"""

from __future__ import annotations

import statistics
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import pandas as pd
from sklearn.metrics import accuracy_score, roc_auc_score
from sklearn.model_selection import StratifiedKFold

from titanic_model.features import extract_title, group_key, woman_or_boy
from titanic_model.metrics import THRESHOLD

# (training rows, their labels, rows to score) -> P(survived) for the rows to score
Predictor = Callable[[pd.DataFrame, pd.Series, pd.DataFrame], np.ndarray]


def women_live(X_train: pd.DataFrame, y_train: pd.Series, X: pd.DataFrame) -> np.ndarray:
    return (X["Sex"] == "female").to_numpy(dtype=float)


def _follow_group(key: Callable[[pd.DataFrame], pd.Series]) -> Predictor:
    """Women and boys live or die with the women and boys of their group (`key`) in the
    training rows; everyone else, and a group the training rows do not settle, by sex."""

    def predict(X_train: pd.DataFrame, y_train: pd.Series, X: pd.DataFrame) -> np.ndarray:
        mask = woman_or_boy(X_train)
        labels = pd.Series(np.asarray(y_train, dtype=float), index=X_train.index)
        rate = labels[mask].groupby(key(X_train)[mask]).mean()
        known = key(X).map(rate).to_numpy(dtype=float)
        women = (X["Sex"] == "female").to_numpy()
        boys = (X["Name"].map(extract_title) == "Master").to_numpy() & ~women
        predicted = women.astype(float)
        predicted[boys & (known == 1.0)] = 1.0
        predicted[women & (known == 0.0)] = 0.0
        return predicted

    return predict


def surname(X: pd.DataFrame) -> pd.Series:
    """'Palsson, Master. Gosta Leonard' -> 'Palsson' (the published rule's group)."""
    return X["Name"].map(lambda name: name.split(",")[0].strip() if isinstance(name, str) else "")


women_and_boys_follow_family = _follow_group(lambda X: group_key(X, "family"))
woman_child_groups_by_surname = _follow_group(surname)


# benchmarks/model_cv.py's nested loop (pick the best of its candidates by inner CV, score it
# on the outer fold), run 2026-11-26 over train.csv: what choosing among them costs.
SELECTION_OPTIMISM = {
    "accuracy": -0.0022,
    "sd": 0.0299,
    "how": "nested CV over the 4 candidates of benchmarks/model_cv.py (10 outer folds): the winner's inner CV "
    "accuracy minus its outer-fold accuracy; no measurable optimism",
}

RULES: dict[str, Predictor] = {
    "women live": women_live,
    "women and boys follow their family": women_and_boys_follow_family,
    "woman-child groups by surname": woman_child_groups_by_surname,
}


@dataclass(frozen=True)
class Scores:
    """Per-fold accuracy and AUC, and each row's out-of-fold probability per repeat."""

    accuracy: np.ndarray
    auc: np.ndarray
    oof: np.ndarray  # shape (repeats, rows)

    def summary(self) -> dict[str, float]:
        return {
            "accuracy_mean": _round(self.accuracy.mean()),
            "accuracy_sd": _round(_sd(self.accuracy)),
            "auc_mean": _round(self.auc.mean()),
            "auc_sd": _round(_sd(self.auc)),
        }


def _sd(values: np.ndarray) -> float:
    return statistics.stdev(values.tolist()) if len(values) > 1 else 0.0


def _round(value: float) -> float:
    return round(float(value), 4)


def folds(y: pd.Series, repeats: int, k: int = 5) -> list[tuple[np.ndarray, np.ndarray]]:
    """The same folds for every candidate and rule: seeds 0..repeats-1."""
    return [
        (train, test)
        for seed in range(repeats)
        for train, test in StratifiedKFold(n_splits=k, shuffle=True, random_state=seed).split(np.zeros(len(y)), y)
    ]


def cross_validate(predict: Predictor, X: pd.DataFrame, y: pd.Series, repeats: int, k: int = 5) -> Scores:
    accuracy, auc = [], []
    oof = np.zeros((repeats, len(y)))
    for i, (train, test) in enumerate(folds(y, repeats, k)):
        probability = predict(X.iloc[train], y.iloc[train], X.iloc[test])
        oof[i // k, test] = probability
        truth = y.iloc[test].to_numpy()
        accuracy.append(accuracy_score(truth, probability >= THRESHOLD))
        auc.append(roc_auc_score(truth, probability))
    return Scores(accuracy=np.array(accuracy), auc=np.array(auc), oof=oof)


def paired_difference(candidate: Scores, baseline: Scores) -> dict[str, float]:
    """Mean and spread (sd over folds) of candidate minus baseline accuracy, fold by fold."""
    difference = candidate.accuracy - baseline.accuracy
    return {"mean": _round(difference.mean()), "sd": _round(_sd(difference))}


def beats(candidate: Scores, baseline: Scores) -> bool:
    """Better than the baseline by more than the spread of the paired differences."""
    difference = paired_difference(candidate, baseline)
    return difference["mean"] > difference["sd"]


def estimate(model: Predictor, X: pd.DataFrame, y: pd.Series, repeats: int) -> dict[str, object]:
    """The model card's account of the model on unseen passengers: the model and every rule
    under the same folds, the paired differences, the threshold, the weakest groups."""
    if repeats == 0:
        return {"skipped": "cv_repeats=0"}
    smallest = int(y.value_counts().min()) if y.nunique() == 2 else 0
    if smallest < 5:
        return {"skipped": f"the train channel has {smallest} rows of one class; 5-fold CV needs at least 5"}
    scores = cross_validate(model, X, y, repeats)
    rules = {name: cross_validate(rule, X, y, repeats) for name, rule in RULES.items()}
    return {
        "protocol": f"{repeats}x repeated stratified 5-fold CV on the train channel, everything fitted inside each "
        "fold; the baseline rules on the same folds",
        "model": scores.summary(),
        "baselines": {
            name: {**s.summary(), "model_minus_rule_accuracy": paired_difference(scores, s)}
            for name, s in rules.items()
        },
        "beats_every_rule": all(beats(scores, s) for s in rules.values()),
        "threshold": {
            "value": THRESHOLD,
            "how": "chosen inside the folds by benchmarks/model_cv.py: the median inner-fold choice is 0.50, and no "
            "other value gained accuracy on the held-out folds",
        },
        "weakest_groups": weakest_groups(X, y, scores.oof)[:3],
        "selection_optimism": SELECTION_OPTIMISM,
    }


def weakest_groups(X: pd.DataFrame, y: pd.Series, oof: np.ndarray, smallest: int = 20) -> list[dict[str, object]]:
    """Out-of-fold accuracy by sex, age group and class, worst first (groups of `smallest`+ rows)."""
    correct = ((oof >= THRESHOLD) == y.to_numpy()).mean(axis=0)
    boys = X["Name"].map(extract_title) == "Master"
    who = np.where(X["Sex"] == "female", "women", np.where(boys, "boys", "men"))
    frame = pd.DataFrame(
        {"group": [f"{w}, class {c}" for w, c in zip(who, X["Pclass"], strict=True)], "correct": correct}
    )
    table = frame.groupby("group")["correct"].agg(["mean", "size"]).reset_index()
    table = table[table["size"] >= smallest].sort_values("mean")
    return [{"group": r.group, "rows": int(r.size), "accuracy": _round(r.mean)} for r in table.itertuples()]
