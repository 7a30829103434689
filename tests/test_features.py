"""Feature engineering: parsed right, learned from training rows only, robust to new values."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from titanic_model.features import GROUP_COLUMNS, TitanicFeatures, extract_deck, extract_title


@pytest.fixture(scope="module")
def frames(split_dir: Path) -> tuple[pd.DataFrame, pd.DataFrame]:
    train = pd.read_csv(split_dir / "train/train.csv")
    val = pd.read_csv(split_dir / "validation/val.csv")
    return train, val


@pytest.mark.parametrize(
    ("name", "title"),
    [
        ("Braund, Mr. Owen Harris", "Mr"),
        ("Rothes, the Countess. of (Lucy Noel Martha Dyer-Edwards)", "Countess"),
        ("Aubart, Mme. Leontine Pauline", "Mrs"),
        ("Reynaldo, Ms. Encarnacion", "Miss"),
        ("no comma here", "Rare"),
        (None, "Rare"),
    ],
)
def test_extract_title(name: object, title: str) -> None:
    assert extract_title(name) == title


@pytest.mark.parametrize(("cabin", "deck"), [("C85", "C"), (" e12 ", "E"), (None, "U"), (np.nan, "U"), ("", "U")])
def test_extract_deck(cabin: object, deck: str) -> None:
    assert extract_deck(cabin) == deck


def test_transform_is_learned_from_training_rows_only(frames: tuple[pd.DataFrame, pd.DataFrame]) -> None:
    """What transform gives validation rows depends on the training rows alone: flipping the
    validation labels, or blanking their ages, changes nothing that was learned, and a blanked
    age is the median of the training rows of the same title, computed here from scratch."""
    train, val = frames
    X, y = train.drop(columns="Survived"), train["Survived"]
    rows = val.drop(columns="Survived")
    before = TitanicFeatures(feature_set="full").fit(X, y).transform(rows)
    # The validation labels flipped: fitting on the same training rows learns the same thing.
    flipped = val.assign(Survived=1 - val["Survived"])
    refit = TitanicFeatures(feature_set="full").fit(X, y).transform(flipped.drop(columns="Survived"))
    pd.testing.assert_frame_equal(before, refit, check_exact=True)
    tampered = rows.assign(Age=np.nan)  # imputation must come from the training medians, not these rows
    after = TitanicFeatures(feature_set="full").fit(X, y).transform(tampered)
    assert before.columns.tolist() == after.columns.tolist()
    # The oracle: titles kept when at least min_category_count training rows carry them.
    train_titles = X["Name"].map(extract_title)
    kept = {t for t, n in train_titles.value_counts().items() if n >= TitanicFeatures().min_category_count}
    folded = train_titles.where(train_titles.isin(kept), "Rare")
    medians = pd.to_numeric(X["Age"], errors="coerce").groupby(folded).median()
    val_titles = rows["Name"].map(extract_title)
    expected = val_titles.where(val_titles.isin(kept), "Rare").map(medians).fillna(X["Age"].median())
    assert np.allclose(after["age"].to_numpy(), expected.to_numpy())
    assert not np.allclose(after["age"].to_numpy(), before["age"].to_numpy())  # the blanking did something


@pytest.mark.parametrize("kind", ["family", "ticket"])
def test_training_rows_do_not_see_their_own_label(frames: tuple[pd.DataFrame, pd.DataFrame], kind: str) -> None:
    """fit_transform gives each training row the outcome of the *other* women and boys of its
    family (or ticket), computed here by brute force, row by row. A row that saw its own label
    would get one more member and its own outcome mixed in, and fail this."""
    train, _ = frames
    X, y = train.drop(columns="Survived"), train["Survived"]
    out = TitanicFeatures().fit_transform(X, y)
    if kind == "family":
        key = X["Name"].str.split(",").str[0].str.strip() + "|" + X["Pclass"].astype(str)
    else:
        key = X["Ticket"].astype(str).str.strip()
    woman_or_boy = (X["Sex"] == "female") | X["Name"].str.contains(r",\s*Master\.", regex=True)
    expected_known, expected_rate = [], []
    for i in X.index:
        others = X.index[(key == key[i]) & woman_or_boy & (X.index != i)]
        known = len(others) if woman_or_boy[i] else 0
        expected_known.append(float(known))
        expected_rate.append(float(y[others].mean()) if known else np.nan)
    assert out[f"{kind}_wc_known"].tolist() == expected_known
    assert np.allclose(out[f"{kind}_wc_survival"].to_numpy(), np.array(expected_rate), equal_nan=True)
    assert (out[f"{kind}_wc_known"] > 0).sum() > 50  # the check covers many groups, not a handful


def test_family_feature_counts_only_other_known_women_and_boys() -> None:
    rows = pd.DataFrame(
        {
            "Pclass": [3, 3, 3, 3],
            "Name": ["Smith, Mrs. A", "Smith, Miss. B", "Smith, Mr. C", "Smith, Master. D"],
            "Sex": ["female", "female", "male", "male"],
            "Age": [40, 10, 42, 4],
            "SibSp": [1, 1, 1, 1],
            "Parch": [2, 2, 2, 2],
            "Ticket": ["A/1", "A/2", "A/3", "A/4"],  # each their own: only the family groups them
            "Fare": [20.0] * 4,
            "Cabin": [None] * 4,
            "Embarked": ["S"] * 4,
        }
    )
    y = pd.Series([0, 1, 1, 1])
    out = TitanicFeatures().fit_transform(rows, y)
    assert out["family_wc_known"].tolist() == [2, 2, 0, 2]
    assert out["family_wc_survival"].tolist()[:2] == [1.0, 0.5]
    assert np.isnan(out["family_wc_survival"].iloc[2])  # adult men get no family rate
    newcomer = rows.iloc[[1]].assign(Name="Smith, Miss. E")
    fitted = TitanicFeatures().fit(rows, y)
    assert fitted.transform(newcomer)["family_wc_survival"].item() == pytest.approx(2 / 3)


def test_unseen_categories_become_known_columns(frames: tuple[pd.DataFrame, pd.DataFrame]) -> None:
    train, val = frames
    fitted = TitanicFeatures(feature_set="full").fit(train.drop(columns="Survived"), train["Survived"])
    odd = val.drop(columns="Survived").head(3).copy()
    odd["Name"] = ["Doe, Jonkheer. X", "Doe, Capt. Y", "weird name"]
    odd["Cabin"] = ["T1", "Z99", None]
    odd["Embarked"] = [None, None, None]
    out = fitted.transform(odd)
    assert out.columns.tolist() == fitted.feature_names_out_
    assert out["title_Rare"].tolist() == [1.0, 1.0, 1.0]
    assert out[[c for c in out.columns if c.startswith("embarked_")]].sum(axis=1).tolist() == [1.0, 1.0, 1.0]
    assert not out.drop(columns=["family_wc_survival", "ticket_wc_survival"]).isna().any().any()


def test_the_default_feature_set_is_the_groups_the_protocol_chose(frames: tuple[pd.DataFrame, pd.DataFrame]) -> None:
    train, val = frames
    out = (
        TitanicFeatures().fit(train.drop(columns="Survived"), train["Survived"]).transform(val.drop(columns="Survived"))
    )
    assert out.columns.tolist() == list(GROUP_COLUMNS)
    with pytest.raises(ValueError, match="feature_set is 'huge'; use one of groups, full"):
        TitanicFeatures(feature_set="huge").fit(train.drop(columns="Survived"), train["Survived"])


def test_ticket_groups_reach_fellow_travellers_under_other_surnames() -> None:
    """A married daughter travels under her husband's name but on her mother's ticket: the
    ticket group carries the mother's outcome to her, and never a row's own outcome."""
    rows = pd.DataFrame(
        {
            "Pclass": [2, 2, 2],
            "Name": ["Hart, Mrs. Esther", "Wells, Mrs. Addie", "Hart, Mr. Benjamin"],
            "Sex": ["female", "female", "male"],
            "Age": [45, 29, 47],
            "SibSp": [1, 0, 1],
            "Parch": [1, 1, 1],
            "Ticket": ["F.C.C. 13529", "F.C.C. 13529", "F.C.C. 13529"],
            "Fare": [26.25] * 3,
            "Cabin": [None] * 3,
            "Embarked": ["S"] * 3,
        }
    )
    y = pd.Series([1, 1, 0])
    out = TitanicFeatures().fit_transform(rows, y)
    assert out["ticket_wc_known"].tolist() == [1, 1, 0]  # each woman sees the other one only
    assert out["ticket_wc_survival"].tolist()[:2] == [1.0, 1.0]
    assert out["family_wc_known"].tolist() == [0, 0, 0]  # no other woman or boy shares a surname
    newcomer = rows.iloc[[1]].assign(Name="Wells, Miss. Joan")
    fitted = TitanicFeatures().fit(rows, y)
    assert fitted.transform(newcomer)["ticket_wc_survival"].item() == 1.0


def test_the_default_set_alone_equals_its_columns_of_the_full_set(frames: tuple[pd.DataFrame, pd.DataFrame]) -> None:
    """Serving computes only the seven default columns (one row must be fast): they must be the
    very columns the full set computes, for fitting rows (own label left out) and new rows,
    one row at a time or all at once."""
    train, val = frames
    X, y = train.drop(columns=["Survived"]), train["Survived"]
    groups, full = TitanicFeatures(feature_set="groups"), TitanicFeatures(feature_set="full")
    pd.testing.assert_frame_equal(
        groups.fit_transform(X, y), full.fit_transform(X, y)[list(GROUP_COLUMNS)], check_exact=True
    )
    new = val.drop(columns=["Survived"])
    pd.testing.assert_frame_equal(groups.transform(new), full.transform(new)[list(GROUP_COLUMNS)], check_exact=True)
    one_by_one = pd.concat([groups.transform(new.iloc[[i]]) for i in range(len(new))])
    pd.testing.assert_frame_equal(one_by_one, groups.transform(new), check_exact=True)


def test_a_missing_ticket_shares_a_group_with_nobody() -> None:
    """A training row without a ticket must not lend its outcome to a new passenger without
    one: missing tickets were keyed by their row's position, so the first row of a request
    matched the first row of the training data."""
    rows = pd.DataFrame(
        {
            "Pclass": [3, 3],
            "Name": ["Ware, Mrs. Ann", "Rush, Mr. Alfred"],
            "Sex": ["female", "male"],
            "Age": [30, 40],
            "SibSp": [0, 0],
            "Parch": [0, 0],
            "Ticket": [None, "A/4 5"],
            "Fare": [8.05] * 2,
            "Cabin": [None] * 2,
            "Embarked": ["S"] * 2,
        }
    )
    y = pd.Series([1, 0])
    fitted = TitanicFeatures().fit(rows, y)
    stranger = rows.iloc[[0]].assign(Name="Other, Mrs. Beth").reset_index(drop=True)
    served = fitted.transform(stranger)
    assert served["ticket_wc_known"].item() == 0
    assert np.isnan(served["ticket_wc_survival"].item())
    # The training rows' own features are as before: nobody shares the missing ticket.
    trained = TitanicFeatures().fit_transform(rows, y)
    assert trained["ticket_wc_known"].tolist() == [0, 0]
