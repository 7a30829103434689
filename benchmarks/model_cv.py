"""The model's figures, chosen and judged from train.csv alone: the candidates table.

Protocol (titanic_model.evaluation): 5 x repeated stratified 5-fold cross-validation over
train.csv, everything fitted inside each fold; the three baseline rules on the same folds. A
candidate is adopted only if its accuracy beats *both* rules by more than the spread of its
fold-by-fold (paired) differences; among adopted candidates the simplest (fewest features)
is chosen, and it is marked. Then: how optimistic picking the best of these candidates is
(a nested loop), the decision threshold chosen inside folds, what each feature group adds,
where the chosen model errs, and the reference split's bars.

Run it as `make benchmark`, or:
  PYTHONPATH=container:. python benchmarks/model_cv.py --data data/titanic/train.csv --split-dir build/data
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np
import pandas as pd
from lightgbm import LGBMClassifier
from sklearn.compose import ColumnTransformer
from sklearn.metrics import accuracy_score
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import OrdinalEncoder
from titanic_model import evaluation
from titanic_model.hyperparameters import Hyperparameters
from titanic_model.metrics import binary_metrics
from titanic_model.model import build_model

from launcher.lib.dataset import SPLIT_FILES

RAW = ["Pclass", "Sex", "Age", "SibSp", "Parch", "Fare", "Embarked"]
# The model shipped before this protocol: all features, its own tuned hyperparameters.
PREVIOUS = replace(
    Hyperparameters(), n_estimators=300, max_depth=5, learning_rate=0.02, min_child_samples=5, colsample_bytree=0.5
)


@dataclass(frozen=True)
class Candidate:
    name: str
    features: int  # how many inputs the learner sees: the measure of "simpler"
    predict: evaluation.Predictor


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


def fitted(make: object) -> evaluation.Predictor:
    def predict(X_train: pd.DataFrame, y_train: pd.Series, X: pd.DataFrame) -> np.ndarray:
        return make().fit(X_train, y_train).predict_proba(X)[:, 1]  # type: ignore[operator]

    return predict


def without(columns: tuple[str, ...]) -> evaluation.Predictor:
    """The chosen model with some of its feature columns taken away (the ablation)."""

    def make() -> Pipeline:
        model = build_model(Hyperparameters())
        keep = ColumnTransformer(
            [("keep", "passthrough", [c for c in _groups_columns() if c not in columns])],
            verbose_feature_names_out=False,
        ).set_output(transform="pandas")
        return Pipeline([model.steps[0], ("keep", keep), model.steps[1]])

    return fitted(make)


def _groups_columns() -> list[str]:
    from titanic_model.features import GROUP_COLUMNS

    return list(GROUP_COLUMNS)


def candidates() -> list[Candidate]:
    return [
        Candidate("reference (7 raw columns)", 7, fitted(reference_model)),
        Candidate("full features, previous defaults", 38, fitted(lambda: build_model(PREVIOUS, "full"))),
        Candidate("full features, new defaults", 38, fitted(lambda: build_model(Hyperparameters(), "full"))),
        Candidate("groups (class, sex, boy, family, ticket)", 7, fitted(lambda: build_model(Hyperparameters()))),
    ]


def table(data: pd.DataFrame, repeats: int) -> str:
    X, y = data.drop(columns="Survived"), data["Survived"]
    rules = {name: evaluation.cross_validate(rule, X, y, repeats) for name, rule in evaluation.RULES.items()}
    scored = {c.name: (c, evaluation.cross_validate(c.predict, X, y, repeats)) for c in candidates()}
    adopted = [c for c, s in scored.values() if all(evaluation.beats(s, r) for r in rules.values())]
    chosen = min(adopted, key=lambda c: (c.features, c.name)) if adopted else None
    lines = [
        f"{'candidate':<44} {'accuracy':>15} {'AUC':>15}   vs women-live   vs family rule   vs surname rule   adopted"
    ]
    for name, s in rules.items():
        lines.append(f"{'rule: ' + name:<44} {_pm(s.accuracy)} {_pm(s.auc)}")
    for c, s in scored.values():
        versus = [evaluation.paired_difference(s, r) for r in rules.values()]
        mark = "  <- CHOSEN" if chosen is c else ""
        differences = "   ".join(f"{v['mean']:+.4f}±{v['sd']:.4f}" for v in versus)
        verdict = "yes" if c in adopted else "no"
        lines.append(f"{c.name:<44} {_pm(s.accuracy)} {_pm(s.auc)}   {differences}   {verdict:>4}{mark}")
    lines.append("accuracy and AUC: mean ± sd over the folds; vs: paired accuracy difference, mean ± sd")
    lines.append("adopted: beats every rule by more than that sd; chosen: the simplest adopted (fewest features)")
    if chosen is None:
        lines.append("no candidate is adopted: ship the simpler model (the rules' equal) and say so")
    return "\n".join(lines)


def _pm(values: np.ndarray) -> str:
    return f"{values.mean():.4f}±{statistics.stdev(values.tolist()):.4f}"


def nested_optimism(data: pd.DataFrame, repeats: int) -> str:
    """Pick the best candidate by inner CV on each outer training set, score it on the outer
    fold: the winner's inner score minus its outer score is what choosing costs."""
    X, y = data.drop(columns="Survived"), data["Survived"]
    inner_best, outer = [], []
    for train, test in evaluation.folds(y, repeats):
        Xt, yt = X.iloc[train].reset_index(drop=True), y.iloc[train].reset_index(drop=True)
        inner = {c.name: evaluation.cross_validate(c.predict, Xt, yt, 1).accuracy.mean() for c in candidates()}
        best = max(candidates(), key=lambda c: inner[c.name])
        inner_best.append(inner[best.name])
        probability = best.predict(Xt, yt, X.iloc[test])
        outer.append(accuracy_score(y.iloc[test], probability >= 0.5))
    gap = np.array(inner_best) - np.array(outer)
    return (
        f"selection optimism (nested, {len(outer)} outer folds): winner's inner CV accuracy "
        f"{np.mean(inner_best):.4f}, on its outer folds {np.mean(outer):.4f}: optimism {gap.mean():+.4f} "
        f"± {statistics.stdev(gap.tolist()):.4f}"
    )


def threshold_inside_folds(data: pd.DataFrame, repeats: int) -> str:
    """Choose the threshold on each training fold's own out-of-fold predictions, apply it to
    the held-out fold; compare with 0.5 on the same folds."""
    X, y = data.drop(columns="Survived"), data["Survived"]
    model = candidates()[-1].predict
    grid = np.round(np.arange(0.30, 0.71, 0.05), 2)
    tuned, fixed, chosen = [], [], []
    for train, test in evaluation.folds(y, repeats):
        Xt, yt = X.iloc[train].reset_index(drop=True), y.iloc[train].reset_index(drop=True)
        inner = evaluation.cross_validate(model, Xt, yt, 1).oof[0]
        threshold = max(grid, key=lambda t: (accuracy_score(yt, inner >= t), -abs(t - 0.5)))
        probability = model(Xt, yt, X.iloc[test])
        tuned.append(accuracy_score(y.iloc[test], probability >= threshold))
        fixed.append(accuracy_score(y.iloc[test], probability >= 0.5))
        chosen.append(threshold)
    gain = np.array(tuned) - np.array(fixed)
    return (
        f"threshold chosen inside the folds: median {statistics.median(chosen):.2f} (range {min(chosen):.2f}-"
        f"{max(chosen):.2f}); accuracy {np.mean(tuned):.4f} vs {np.mean(fixed):.4f} at 0.5, "
        f"gain {gain.mean():+.4f} ± {statistics.stdev(gain.tolist()):.4f}"
    )


def diagnosis(data: pd.DataFrame, repeats: int) -> str:
    X, y = data.drop(columns="Survived"), data["Survived"]
    lines = []
    for name, candidate in (("previous model", candidates()[1]), ("chosen model", candidates()[-1])):
        s = evaluation.cross_validate(candidate.predict, X, y, repeats)
        said = s.oof >= 0.5
        flips = (said.min(axis=0) != said.max(axis=0)).mean()
        adult_men = ((X["Sex"] == "male") & (X["Name"].str.contains(r",\s*Mr\.", regex=True))).to_numpy()
        men_called_survivors = (said[:, adult_men]).mean(axis=1).mean() * adult_men.sum()
        weakest = ", ".join(
            f"{g['group']} {g['accuracy']:.2f} ({g['rows']})" for g in evaluation.weakest_groups(X, y, s.oof)[:3]
        )
        lines.append(
            f"{name}: adult men called survivors {men_called_survivors:.0f} of {adult_men.sum()} "
            f"(truly survived {int(y[adult_men].sum())}); rows whose call flips across seeds "
            f"{flips:.1%}; weakest: {weakest}"
        )
    accuracy = {}
    chosen = evaluation.cross_validate(candidates()[-1].predict, X, y, repeats)
    for t in (0.3, 0.4, 0.5, 0.6, 0.7):
        accuracy[t] = np.mean([accuracy_score(y, chosen.oof[r] >= t) for r in range(repeats)])
    lines.append("chosen model, accuracy by threshold: " + ", ".join(f"{t:.1f}: {a:.4f}" for t, a in accuracy.items()))
    full = chosen.accuracy.mean()
    for label, columns in (
        ("ticket groups", ("ticket_wc_known", "ticket_wc_survival")),
        ("family groups", ("family_wc_known", "family_wc_survival")),
        ("both group kinds", ("ticket_wc_known", "ticket_wc_survival", "family_wc_known", "family_wc_survival")),
        ("boy", ("is_boy",)),
        ("class", ("pclass",)),
    ):
        less = evaluation.cross_validate(without(columns), X, y, repeats).accuracy.mean()
        lines.append(f"  without {label:<18} accuracy {less:.4f} ({less - full:+.4f})")
    return "\n".join(lines)


def split_figures(split_dir: Path) -> str:
    train = pd.read_csv(split_dir / SPLIT_FILES["train"])
    val = pd.read_csv(split_dir / SPLIT_FILES["validation"])
    model = build_model(Hyperparameters()).fit(train.drop(columns="Survived"), train["Survived"])
    m = binary_metrics("val", val["Survived"].to_numpy(), model.predict_proba(val.drop(columns="Survived"))[:, 1])
    return (
        f"reference split (stratified 80:20, seed 42), chosen model: val_accuracy {m['val_accuracy']:.4f} "
        f"(bar 0.81), val_f1 {m['val_f1']:.4f}, val_auc {m['val_auc']:.4f} (bar 0.85)"
    )


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, required=True)
    parser.add_argument("--split-dir", type=Path, required=True)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--nested-repeats", type=int, default=2)
    args = parser.parse_args()
    data = pd.read_csv(args.data)
    started = time.perf_counter()
    print(
        f"candidates: {args.repeats}x repeated stratified 5-fold CV over train.csv ({len(data)} rows), "
        "everything fitted inside each fold; rules on the same folds"
    )
    print(table(data, args.repeats))
    print("bar: repeated-CV AUC >= 0.88 for the chosen model")
    print(nested_optimism(data, args.nested_repeats))
    print(threshold_inside_folds(data, args.nested_repeats))
    print(diagnosis(data, args.repeats))
    print(split_figures(args.split_dir))
    print(f"({time.perf_counter() - started:.0f} s)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
