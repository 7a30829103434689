"""Hyperparameters arrive from SageMaker as strings; every one must be decoded or refused."""

from __future__ import annotations

import pytest
from titanic_model.hyperparameters import (
    SPECS,
    HyperparameterError,
    Hyperparameters,
    load_hyperparameters_file,
    parse_hyperparameters,
)


def test_string_values_are_typed() -> None:
    hp = parse_hyperparameters({"n_estimators": "100", "max_depth": "3", "learning_rate": "0.1"})
    assert (hp.n_estimators, hp.max_depth, hp.learning_rate) == (100, 3, 0.1)
    assert isinstance(hp.n_estimators, int)
    assert isinstance(hp.learning_rate, float)


def test_empty_mapping_gives_the_defaults() -> None:
    assert parse_hyperparameters({}) == Hyperparameters()


def test_framework_style_json_quoted_strings_are_accepted() -> None:
    assert parse_hyperparameters({"n_estimators": '"50"'}).n_estimators == 50


def test_sagemaker_reserved_names_are_ignored() -> None:
    assert parse_hyperparameters({"sagemaker_program": "train.py", "max_depth": "4"}).max_depth == 4


def test_every_spec_has_a_default() -> None:
    assert set(SPECS) == set(Hyperparameters().as_dict())


@pytest.mark.parametrize(
    ("raw", "phrase"),
    [
        ({"n_trees": "5"}, "unknown hyperparameter(s) n_trees; known: checkpoint_every, cluster_timeout, "),
        ({"n_estimators": "many"}, "n_estimators='many' is not a valid int"),
        ({"n_estimators": "1.5"}, "n_estimators='1.5' is not a valid int"),
        ({"n_estimators": "0"}, "n_estimators='0' is out of range; allowed: int in [1, 5000]"),
        ({"learning_rate": "nan"}, "learning_rate='nan' is not a valid float"),
        ({"learning_rate": "2"}, "learning_rate='2' is out of range"),
        ({"subsample": ""}, "subsample='' is not a valid float"),
        ({"max_depth": True}, "max_depth=True is not a valid int"),
    ],
)
def test_bad_values_name_the_parameter_and_what_is_allowed(raw: dict, phrase: str) -> None:
    with pytest.raises(HyperparameterError) as caught:
        parse_hyperparameters(raw)
    assert phrase in str(caught.value)


@pytest.mark.parametrize(
    ("text", "phrase"),
    [("{not json", "is not valid JSON"), ('["n_estimators"]', "must hold a JSON object")],
)
def test_malformed_file_is_refused(text: str, phrase: str) -> None:
    with pytest.raises(HyperparameterError, match=phrase):
        load_hyperparameters_file(text)


def test_lightgbm_params_carry_every_model_setting() -> None:
    params = parse_hyperparameters({"n_estimators": "7", "subsample": "1.0"}).lightgbm_params()
    assert params["n_estimators"] == 7
    assert params["subsample_freq"] == 0  # no bagging asked for, none done
    assert params["n_jobs"] == 1
