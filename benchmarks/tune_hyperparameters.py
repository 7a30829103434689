"""Random search for the image's default hyperparameters, on the training rows only.

It reads the data stage's train split (712 rows) and never the validation split, so the
defaults are not chosen by looking at the numbers they are judged on. Prints the best
settings by repeated stratified 5-fold CV AUC.
Run it as `make tune` (which sets PYTHONPATH=container), or:
  PYTHONPATH=container python benchmarks/tune_hyperparameters.py --train build/data/train/train.csv
"""

from __future__ import annotations

import argparse
import random
import sys
import time
from dataclasses import replace
from pathlib import Path

import pandas as pd
from sklearn.model_selection import RepeatedStratifiedKFold, cross_val_score
from titanic_model.hyperparameters import Hyperparameters
from titanic_model.model import build_model

SPACE = {
    "n_estimators": [100, 200, 300, 500],
    "learning_rate": [0.01, 0.02, 0.03, 0.05],
    "num_leaves": [4, 8, 16],
    "max_depth": [3, 4, 5],
    "min_child_samples": [5, 10, 20, 30],
    "colsample_bytree": [0.5, 0.6, 0.8, 1.0],
    "reg_lambda": [0.0, 1.0, 5.0, 10.0],
    "subsample": [0.7, 0.8, 1.0],
}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--train", type=Path, required=True, help="the train split (never the validation split)")
    parser.add_argument("--trials", type=int, default=50)
    parser.add_argument("--seed", type=int, default=7)
    args = parser.parse_args()
    data = pd.read_csv(args.train)
    X, y = data.drop(columns="Survived"), data["Survived"]
    folds = RepeatedStratifiedKFold(n_splits=5, n_repeats=3, random_state=0)
    rng = random.Random(args.seed)
    started = time.perf_counter()
    results = []
    drawn = [replace(Hyperparameters(), **{k: rng.choice(v) for k, v in SPACE.items()}) for _ in range(args.trials)]
    candidates = list(dict.fromkeys([Hyperparameters(), *drawn]))  # the defaults once, drawn or not
    for hp in candidates:
        auc = cross_val_score(build_model(hp), X, y, cv=folds, scoring="roc_auc")
        results.append((auc.mean(), auc.std(), hp))
    results.sort(key=lambda r: -r[0])
    seconds = time.perf_counter() - started
    print(f"{len(candidates)} settings, 3x5-fold CV AUC on {len(data)} training rows ({seconds:.0f} s)")
    for mean, sd, hp in results[:5]:
        shown = {k: getattr(hp, k) for k in SPACE}
        print(f"  {mean:.4f} (sd {sd:.4f})  {shown}" + ("   <- current defaults" if hp == Hyperparameters() else ""))
    rank = next(i for i, r in enumerate(results) if r[2] == Hyperparameters()) + 1
    print(f"current defaults rank {rank} of {len(results)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
