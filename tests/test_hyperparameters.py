"""Hyperparameters arrive from SageMaker as strings; every one must be decoded or refused."""

from __future__ import annotations

import re

import pytest
from conftest import REPO, shipped
from lightgbm import LGBMClassifier
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


# The hyperparameters that shape the pipeline, the CV or the cluster rather than LightGBM itself.
NOT_LIGHTGBM = {"min_category_count", "cv_folds", "checkpoint_every", "cv_repeats", "cluster_timeout"}


def test_lightgbm_params_carry_every_model_setting() -> None:
    """Every model setting reaches LightGBM with the value asked for (each one changed from its
    default, so a setting left out or hard-coded shows), and LightGBM accepts every key."""
    defaults = parse_hyperparameters({}).as_dict()
    asked = {}
    for name, spec in SPECS.items():
        if name in NOT_LIGHTGBM:
            continue
        changed = spec.high if defaults[name] != spec.high else spec.low
        asked[name] = str(int(changed) if spec.kind is int else changed)
    params = parse_hyperparameters(asked).lightgbm_params()
    for name, value in asked.items():
        assert params[name] == SPECS[name].kind(value), name
    assert set(params) - set(asked) == {"subsample_freq", "n_jobs", "verbose"}
    assert params["subsample_freq"] == (1 if float(asked["subsample"]) < 1.0 else 0)
    assert parse_hyperparameters({"subsample": "1.0"}).lightgbm_params()["subsample_freq"] == 0  # no bagging asked
    assert params["n_jobs"] == 1
    LGBMClassifier(**params)  # every key is one of LightGBM's


def test_the_defaults_stated_elsewhere_are_the_images_own() -> None:
    """The image's Hyperparameters defaults and SPECS ranges are the source; docs/image.md's
    table and config.env's HP_* restate them, and must say exactly the same."""
    defaults = Hyperparameters().as_dict()
    table = {}
    for line in (REPO / "docs/image.md").read_text().splitlines():
        match = re.match(
            r"^\s*\| `(\w+)` \| ([^|]+) \| (int|float) ([-0-9.e]+)\u2013([-0-9.\u00b2\u00b3\u00b9e]+)", line
        )
        if match:
            table[match.group(1)] = (match.group(2).strip(), match.group(3), match.group(4))
    assert set(table) == set(SPECS) == set(defaults)
    for name, (default, kind, low) in table.items():
        spec = SPECS[name]
        assert spec.kind(default) == defaults[name], name
        assert kind == spec.kind.__name__ and float(low) == spec.low, name
    for key, value in shipped().items():
        if key.startswith("HP_") and value:
            name = key.removeprefix("HP_").lower()
            assert SPECS[name].kind(value) == defaults[name], key
