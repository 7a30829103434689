"""The model as the server runs it (container/titanic_model/serving_model.py): features from
lists and LightGBM's own prediction must give the trained pipeline's predict_proba bit for bit,
on every Kaggle row and on the rows that take the unusual branches; a model it cannot run
directly is served through its pipeline."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from conftest import REPO
from titanic_model.data import REQUIRED_COLUMNS, read_channel, typed_columns, typed_frame
from titanic_model.hyperparameters import Hyperparameters
from titanic_model.model import build_model
from titanic_model.server import load_model
from titanic_model.serving_model import ServingModel
from titanic_model.training import features_and_label

KAGGLE = REPO / "data/titanic"
KAGGLE_FILES = ("train.csv", "test.csv")


def columns_of(frame: pd.DataFrame) -> dict[str, list[object]]:
    """A typed frame's rows as the server holds them: plain lists, blanks as None or NaN."""
    raw = {column: [None if pd.isna(v) else v for v in frame[column].tolist()] for column in frame.columns}
    return typed_columns(raw, require_label=False, locate=str)


def kaggle_rows() -> pd.DataFrame:
    """train.csv and test.csv, as text, the columns a passenger is described by."""
    files = [pd.read_csv(KAGGLE / name, dtype=str, keep_default_na=False, na_values=[""]) for name in KAGGLE_FILES]
    return pd.concat(files, ignore_index=True)[list(REQUIRED_COLUMNS)]


def unusual_rows() -> pd.DataFrame:
    """A boy and a woman of families the model knows and does not know, no name, no ticket,
    titles with odd spacing, and the smallest and largest values the checks allow."""
    header = ["Pclass", "Name", "Sex", "Age", "SibSp", "Parch", "Ticket", "Fare", "Cabin", "Embarked"]
    rows = [
        ["3", "Andersson, Master. Sigvard Harald Elias", "male", "4", "4", "2", "347082", "31.275", "", "S"],
        ["3", "Nobody, Mrs. Unknown", "female", "", "0", "0", "NOT-A-TICKET", "", "", ""],
        ["1", "", "female", "0", "0", "0", "", "0", "", "C"],
        ["2", "Odd,   Master .  Spaces", "male", "80", "8", "9", "  113803  ", "512.3292", "C123", "Q"],
        [
            "1",
            "Rothes, the Countess. of (Lucy Noel Martha Dyer-Edwards)",
            "female",
            "33",
            "0",
            "0",
            "110152",
            "86.5",
            "B77",
            "S",
        ],
    ]
    return pd.DataFrame(rows, columns=header, dtype=object).replace({"": None})


@pytest.fixture(scope="module")
def pipeline(trained_root: Path) -> object:
    return load_model(trained_root / "model", 1).pipeline


@pytest.mark.parametrize("rows", [kaggle_rows, unusual_rows], ids=["every Kaggle row", "unusual rows"])
def test_the_direct_path_is_the_pipelines_predict_proba_bit_for_bit(pipeline: object, rows: object) -> None:
    frame = rows()
    columns = columns_of(frame)
    served = ServingModel.of(pipeline)
    assert served.direct
    expected = pipeline.predict_proba(typed_frame(columns))[:, 1]
    got = served.probabilities(columns)
    assert got.dtype == np.float64 and got.shape == expected.shape
    assert got.tobytes() == expected.tobytes()


def test_one_row_at_a_time_gives_the_same_bits_as_the_whole(pipeline: object) -> None:
    frame = unusual_rows()
    served = ServingModel.of(pipeline)
    whole = served.probabilities(columns_of(frame))
    alone = [served.probabilities(columns_of(frame.iloc[[i]]))[0] for i in range(len(frame))]
    assert np.array(alone).tobytes() == whole.tobytes()


def test_a_model_with_the_full_feature_set_is_served_through_its_pipeline(split_dir: Path) -> None:
    X, y = features_and_label(read_channel("train", split_dir / "train").frame)
    hp = dataclasses.replace(Hyperparameters(), n_estimators=20)
    model = build_model(hp, feature_set="full").fit(X, y)
    served = ServingModel.of(model)
    assert not served.direct
    columns = columns_of(unusual_rows())
    assert served.probabilities(columns).tobytes() == model.predict_proba(typed_frame(columns))[:, 1].tobytes()
