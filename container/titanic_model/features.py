"""Feature engineering from Kaggle's raw Titanic columns.

Everything that depends on the data (imputation values, which titles and decks are common
enough to keep, how the other women and boys of a family or a ticket fared) is learned in
`fit` from the training rows only, so validation rows never leak into the features. The
transformer sits first in the model pipeline: the saved model takes the raw columns, and
inference needs no separate encoder.

Two feature sets. `groups` (the default, chosen by the protocol in benchmarks/model_cv.py)
is what carries to passengers the model has never seen: class, sex, being a boy, and how the
other women and boys of the same family (surname and class) and of the same ticket fared
among the training rows. `full` adds age, fares, family size, cabin deck, port and title: it
scores no better under repeated cross-validation and is kept as a benchmark candidate.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence

import numpy as np
import pandas as pd
from sklearn.base import BaseEstimator, TransformerMixin

# Kaggle columns the features are computed from; PassengerId and Survived are not used.
RAW_FEATURE_COLUMNS = ("Pclass", "Name", "Sex", "Age", "SibSp", "Parch", "Ticket", "Fare", "Cabin", "Embarked")
FEATURE_SETS = ("groups", "full")
GROUP_COLUMNS = (
    "pclass",
    "is_female",
    "is_boy",
    "family_wc_known",
    "family_wc_survival",
    "ticket_wc_known",
    "ticket_wc_survival",
)

# French and archaic forms folded into the four common titles before counting.
_TITLE_ALIASES = {"Mlle": "Miss", "Ms": "Miss", "Mme": "Mrs", "Lady": "Mrs", "Sir": "Mr"}
_TITLE_RE = re.compile(r",\s*(?:the\s+)?([^.,]+)\.")
_RARE = "Rare"
_UNKNOWN_DECK = "U"


def extract_title(name: object) -> str:
    """'Braund, Mr. Owen Harris' -> 'Mr'; anything unparseable -> 'Rare'."""
    match = _TITLE_RE.search(name) if isinstance(name, str) else None
    if not match:
        return _RARE
    title = match.group(1).strip()
    return _TITLE_ALIASES.get(title, title)


def extract_deck(cabin: object) -> str:
    """'C85' -> 'C'; a missing cabin -> 'U' (unknown, itself informative)."""
    if isinstance(cabin, str) and cabin.strip():
        return cabin.strip()[0].upper()
    return _UNKNOWN_DECK


class TitanicFeatures(TransformerMixin, BaseEstimator):
    """Raw Kaggle columns -> a numeric frame for a tree model.

    min_category_count: titles and decks seen fewer times than this in the training rows
    are folded into one 'rare' level, so the model does not memorise a handful of people.
    """

    def __init__(self, min_category_count: int = 10, feature_set: str = "groups") -> None:
        self.min_category_count = min_category_count
        self.feature_set = feature_set

    def fit(self, X: pd.DataFrame, y: object = None) -> TitanicFeatures:
        if self.feature_set not in FEATURE_SETS:
            raise ValueError(f"feature_set is {self.feature_set!r}; use one of {', '.join(FEATURE_SETS)}")
        self._fit_groups(X, y)
        titles = X["Name"].map(extract_title)
        counts = titles.value_counts()
        self.titles_ = sorted(t for t, n in counts.items() if n >= self.min_category_count and t != _RARE)
        decks = X["Cabin"].map(extract_deck)
        deck_counts = decks.value_counts()
        self.decks_ = sorted(d for d, n in deck_counts.items() if n >= self.min_category_count)

        folded = titles.where(titles.isin(self.titles_), _RARE)
        ages = pd.to_numeric(X["Age"], errors="coerce")
        self.age_by_title_ = ages.groupby(folded).median().dropna().to_dict()
        self.age_median_ = float(ages.median()) if ages.notna().any() else 30.0
        fares = pd.to_numeric(X["Fare"], errors="coerce")
        self.fare_by_class_ = fares.groupby(X["Pclass"]).median().dropna().to_dict()
        self.fare_median_ = float(fares.median()) if fares.notna().any() else 14.0
        embarked = X["Embarked"].dropna()
        self.embarked_mode_ = str(embarked.mode().iloc[0]) if len(embarked) else "S"
        # The default set's columns are fixed; only the full set's depend on the levels kept.
        groups = self.feature_set == "groups"
        self.feature_names_out_ = list(GROUP_COLUMNS) if groups else list(self._build(X).columns)
        return self

    def transform(self, X: pd.DataFrame) -> pd.DataFrame:
        frame = self._build(X)
        # Columns fixed at fit time: a level absent from these rows is an all-zero column.
        return frame.reindex(columns=self.feature_names_out_, fill_value=0.0)

    def fit_transform(self, X: pd.DataFrame, y: object = None, **fit_params: object) -> pd.DataFrame:
        """Fit, then transform the training rows leaving each row's own label out.

        The family feature of a training row must not see that row's own outcome, or the
        model learns to trust it far more than it deserves on new passengers (the same
        cross-fitting that scikit-learn's TargetEncoder does in fit_transform).
        """
        return self.fit(X, y).transform_training(X, y)

    def transform_training(self, X: pd.DataFrame, y: object = None) -> pd.DataFrame:
        """Training rows (some of those fit saw) with each row's own label left out: what
        fit_transform gives those rows, for a host that holds only its share of them."""
        frame = self._build(X, own_labels=None if y is None else np.asarray(y, dtype=float))
        return frame.reindex(columns=self.feature_names_out_, fill_value=0.0)

    def _fit_groups(self, X: pd.DataFrame, y: object) -> None:
        # Women and boys of one family, or of one ticket (travelling together under other
        # surnames too), tended to live or die together: keep, per group, how many of them
        # the training rows hold and how many of those survived.
        self.group_survivors_: dict[str, dict[str, float]] = {kind: {} for kind in _GROUP_KEYS}
        self.group_members_: dict[str, dict[str, float]] = {kind: {} for kind in _GROUP_KEYS}
        if y is None:
            return
        labels = pd.Series(np.asarray(y, dtype=float), index=X.index)
        mask = woman_or_boy(X)
        for kind in _GROUP_KEYS:
            keys = group_key(X, kind)[mask]
            self.group_survivors_[kind] = labels[mask].groupby(keys).sum().to_dict()
            self.group_members_[kind] = keys.value_counts().astype(float).to_dict()

    def get_feature_names_out(self, input_features: object = None) -> np.ndarray:
        return np.asarray(self.feature_names_out_, dtype=object)

    def group_columns(
        self, columns: Mapping[str, Sequence[object]], pclass: np.ndarray, own_labels: np.ndarray | None = None
    ) -> dict[str, np.ndarray]:
        """The default feature set from plain lists of the raw columns (Name, Sex, Ticket, and
        Pclass as given, for the family key) and Pclass as numbers: what transform() computes
        for a frame, without pandas, because serving one row must be fast."""
        is_female = np.fromiter((sex == "female" for sex in columns["Sex"]), bool, len(pclass))
        is_master = np.fromiter((extract_title(name) == "Master" for name in columns["Name"]), bool, len(pclass))
        mask = is_female | is_master
        out = {
            "pclass": pclass,
            "is_female": is_female.astype(float),
            # A boy by the folded title: 'Master' is a feature only when fit kept it as a level.
            "is_boy": (is_master & ("Master" in self.titles_)).astype(float),
        }
        for kind, keys in _GROUP_KEYS.items():
            out[f"{kind}_wc_known"], out[f"{kind}_wc_survival"] = self._group(kind, keys(columns), mask, own_labels)
        return {column: out[column] for column in GROUP_COLUMNS}

    def _group(
        self, kind: str, keys: list[str | None], mask: np.ndarray, own_labels: np.ndarray | None
    ) -> tuple[np.ndarray, np.ndarray]:
        survivors = np.fromiter((self.group_survivors_[kind].get(k, 0.0) for k in keys), float, len(keys))
        members = np.fromiter((self.group_members_[kind].get(k, 0.0) for k in keys), float, len(keys))
        if own_labels is not None:
            # A row fit counted (a woman or boy with a key) leaves itself out of its group.
            counted = mask & np.fromiter((k is not None for k in keys), bool, len(keys))
            survivors = survivors - np.where(counted, own_labels, 0.0)
            members = members - counted
        known = np.where(mask, members, 0.0)
        rate = np.full(len(keys), np.nan)
        np.divide(survivors, members, out=rate, where=mask & (members > 0))
        return known, rate

    def _groups(self, X: pd.DataFrame, own_labels: np.ndarray | None) -> pd.DataFrame:
        columns = {column: X[column].tolist() for column in _GROUP_INPUTS}
        pclass = pd.to_numeric(X["Pclass"], errors="coerce").to_numpy(dtype=float)
        return pd.DataFrame(self.group_columns(columns, pclass, own_labels), index=X.index)

    def _build(self, X: pd.DataFrame, own_labels: np.ndarray | None = None) -> pd.DataFrame:
        groups = self._groups(X, own_labels)
        if self.feature_set == "groups":
            return groups
        raw_titles = X["Name"].map(extract_title)
        titles = raw_titles.where(raw_titles.isin(self.titles_), _RARE)
        decks = X["Cabin"].map(extract_deck)
        decks = decks.where(decks.isin(self.decks_), _RARE)
        pclass = pd.to_numeric(X["Pclass"], errors="coerce")
        sibsp = pd.to_numeric(X["SibSp"], errors="coerce").fillna(0)
        parch = pd.to_numeric(X["Parch"], errors="coerce").fillna(0)
        family = sibsp + parch + 1

        raw_age = pd.to_numeric(X["Age"], errors="coerce")
        age = raw_age.fillna(titles.map(self.age_by_title_)).fillna(self.age_median_)
        raw_fare = pd.to_numeric(X["Fare"], errors="coerce")
        fare = raw_fare.fillna(pclass.map(self.fare_by_class_)).fillna(self.fare_median_)
        embarked = X["Embarked"].fillna(self.embarked_mode_)

        out = pd.DataFrame(
            {
                "pclass": pclass.astype(float),
                "is_female": (X["Sex"] == "female").astype(float),
                "age": age.astype(float),
                "age_missing": raw_age.isna().astype(float),
                "is_child": (age < 14).astype(float),
                "sibsp": sibsp.astype(float),
                "parch": parch.astype(float),
                "family_size": family.astype(float),
                "is_alone": (family == 1).astype(float),
                "log_fare": np.log1p(fare.clip(lower=0)).astype(float),
                "fare_per_person": (fare / family).astype(float),
                "has_cabin": (X["Cabin"].fillna("").astype(str).str.strip() != "").astype(float),
            },
            index=X.index,
        )
        # NaN (no other woman or boy of the group known) is a value LightGBM handles natively.
        for column in GROUP_COLUMNS:
            out[column] = groups[column]
        for level in ("C", "Q", "S"):
            out[f"embarked_{level}"] = (embarked == level).astype(float)
        for level in [*self.titles_, _RARE]:
            out[f"title_{level}"] = (titles == level).astype(float)
        for level in [*self.decks_, _RARE]:
            out[f"deck_{level}"] = (decks == level).astype(float)
        return out


def woman_or_boy(X: pd.DataFrame) -> pd.Series:
    return (X["Sex"] == "female") | (X["Name"].map(extract_title) == "Master")


def _text(value: object) -> str | None:
    return value if isinstance(value, str) else None


# The keys are built with plain Python over the columns' values: for the one or few rows of a
# request, pandas' per-call overhead would be most of the serving time.
def family_keys(columns: Mapping[str, Sequence[object]]) -> list[str]:
    """Surname and class: 'Andersson, Mr. Anders Johan' in 3rd class -> 'Andersson|3'."""
    return [
        f"{(_text(name) or '').split(',')[0].strip()}|{pclass}"
        for name, pclass in zip(columns["Name"], columns["Pclass"], strict=True)
    ]


def ticket_keys(columns: Mapping[str, Sequence[object]]) -> list[str | None]:
    """The ticket as printed ('CA. 2343'); a missing one is None: no group, shared with nobody."""
    return [ticket.strip() if isinstance(ticket, str) else None for ticket in columns["Ticket"]]


_GROUP_KEYS = {"family": family_keys, "ticket": ticket_keys}
_KEY_INPUTS = {"family": ("Name", "Pclass"), "ticket": ("Ticket",)}
# The raw columns the default feature set reads.
_GROUP_INPUTS = ("Pclass", "Name", "Sex", "Ticket")


def group_key(X: pd.DataFrame, kind: str) -> pd.Series:
    """The family or ticket key of each row of a frame."""
    keys = _GROUP_KEYS[kind]({column: X[column].tolist() for column in _KEY_INPUTS[kind]})
    return pd.Series(keys, index=X.index, dtype=object)
