"""Reading a SageMaker channel of Kaggle-format CSV files, refusing anything else clearly.

A channel folder holds the S3 objects under its prefix with their names kept (`train.csv`,
`part-00000`, several files): every regular file is read, in name order, and must share one
header. Each problem is reported with the channel, the file, the line and the fix.
"""

from __future__ import annotations

import hashlib
import io
import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path

import pandas as pd

LABEL = "Survived"
# Columns the features need; Name and Cabin may be blank, the rest are checked below.
REQUIRED_COLUMNS = ("Pclass", "Name", "Sex", "Age", "SibSp", "Parch", "Ticket", "Fare", "Cabin", "Embarked")
KAGGLE_HEADER = "PassengerId,Survived,Pclass,Name,Sex,Age,SibSp,Parch,Ticket,Fare,Cabin,Embarked"

_CATEGORIES = {"Sex": ("female", "male"), "Embarked": ("C", "Q", "S"), "Pclass": ("1", "2", "3")}
_OPTIONAL_CATEGORIES = {"Embarked"}  # Kaggle leaves two Embarked values blank
_COUNTS = ("SibSp", "Parch")  # whole numbers >= 0, required
_AMOUNTS = ("Age", "Fare")  # numbers >= 0, may be blank


Locator = Callable[[int], str]  # a frame's row index -> where a person finds that row


class DataError(ValueError):
    """The input data cannot be trained on; the message says what to fix."""


@dataclass(frozen=True)
class ChannelData:
    name: str
    frame: pd.DataFrame
    files: dict[str, str]  # file name -> SHA-256

    @property
    def rows(self) -> int:
        return len(self.frame)


def channel_files(channel_dir: Path) -> list[Path]:
    """Every regular, non-hidden file below the channel folder, in a stable order."""
    return sorted(
        p
        for p in channel_dir.rglob("*")
        if p.is_file() and not any(part.startswith(".") for part in p.relative_to(channel_dir).parts)
    )


def read_channel(name: str, channel_dir: Path, require_label: bool = True) -> ChannelData:
    if not channel_dir.is_dir():
        raise DataError(
            f"no '{name}' channel: {channel_dir} does not exist; pass it to fit(), e.g. fit({{'{name}': 's3://bucket/prefix/'}})"
        )
    files = channel_files(channel_dir)
    if not files:
        raise DataError(f"the '{name}' channel is empty ({channel_dir}); put at least one CSV file under its S3 prefix")
    frames = []
    digests = {}
    header: list[str] | None = None
    for path in files:
        raw = path.read_bytes()
        digests[str(path.relative_to(channel_dir))] = hashlib.sha256(raw).hexdigest()
        frame = _parse_file(name, path.name, raw, require_label)
        if header is not None and sorted(frame.columns) != sorted(header):
            raise DataError(
                f"{name}/{path.name} has columns {','.join(frame.columns)} but {name}/{files[0].name} has "
                f"{','.join(header)}; every file of a channel must share one header"
            )
        header = list(frame.columns)
        frames.append(frame)
    data = pd.concat(frames, ignore_index=True)
    if require_label:
        _require_both_classes(name, data)
    return ChannelData(name=name, frame=data, files=digests)


def _parse_file(channel: str, file_name: str, raw: bytes, require_label: bool) -> pd.DataFrame:
    where = f"{channel}/{file_name}"
    if not raw.strip():
        raise DataError(f"{where} is empty; it must be a CSV with Kaggle's header ({KAGGLE_HEADER}) and data rows")
    if b"\x00" in raw:
        raise DataError(
            f"{where} is binary, not CSV text (it holds NUL bytes); upload the CSV file itself, uncompressed"
        )
    try:
        text = raw.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise DataError(f"{where} is not UTF-8 text (bad byte at offset {exc.start}); save it as UTF-8 CSV") from None
    try:
        # Everything as text first: numbers are checked below, so a bad cell is named exactly.
        frame = pd.read_csv(io.StringIO(text), dtype=str, keep_default_na=False, na_values=[""])
    except pd.errors.ParserError as exc:
        raise DataError(
            f"{where} is not well-formed CSV ({exc}); check quoting and the number of fields per line"
        ) from None
    except pd.errors.EmptyDataError:
        raise DataError(f"{where} has no header; its first line must be {KAGGLE_HEADER}") from None
    frame.columns = [str(c).strip() for c in frame.columns]
    _check_columns(where, frame, require_label)
    if frame.empty:
        raise DataError(f"{where} has a header but no data rows; it needs at least one passenger per line")
    return typed(frame, require_label, lambda index: f"{where} line {index + 2}")


def _check_columns(where: str, frame: pd.DataFrame, require_label: bool) -> None:
    needed = [*REQUIRED_COLUMNS, LABEL] if require_label else list(REQUIRED_COLUMNS)
    missing = [c for c in needed if c not in frame.columns]
    if not missing:
        return
    header = ",".join(frame.columns)
    for sep, label in ((";", "semicolon"), ("\t", "tab"), ("|", "pipe")):
        if len(frame.columns) == 1 and sep in header:
            raise DataError(f"{where} is {label}-separated; channels must be comma-separated CSV ({KAGGLE_HEADER})")
    raise DataError(f"{where} lacks column(s) {', '.join(missing)}; its header must be {KAGGLE_HEADER}")


def _blank(value: object) -> bool:
    return value is None or (isinstance(value, float) and math.isnan(value))


def _number(value: object) -> float | None:
    """A cell's number: None when blank, NaN when it is no finite number."""
    if _blank(value):
        return None
    text = str(value).strip()
    try:
        number = float(text) if "_" not in text else math.nan  # float() takes '1_0'; CSV readers do not
    except ValueError:
        return math.nan
    return number if math.isfinite(number) else math.nan


def _level(value: object) -> str | None:
    return None if _blank(value) else str(value).strip()


# Each check turns one cell into its typed value, or None when the cell is bad. Plain Python
# per cell: pandas' per-call overhead would be most of the time of a one-row request.
def _category(allowed: tuple[str, ...], optional: bool) -> Callable[[object], object]:
    def check(value: object) -> object:
        level = _level(value)
        if level is None and optional:
            return math.nan
        return level if level in allowed else None

    return check


def _count(value: object) -> int | None:
    number = _number(value)
    return int(number) if number is not None and number >= 0 and number % 1 == 0 else None


def _amount(value: object) -> float | None:
    number = _number(value)
    if number is None:
        return math.nan
    return number if number >= 0 else None


def _label(value: object) -> int | None:
    level = _level(value)
    return int(level) if level in ("0", "1") else None


def _checks(require_label: bool) -> dict[str, tuple[Callable[[object], object], str]]:
    """Per checked column: the cell check and what it expects, in the order cells are checked."""
    checks: dict[str, tuple[Callable[[object], object], str]] = {
        column: (_category(allowed, column in _OPTIONAL_CATEGORIES), f"one of {', '.join(allowed)}")
        for column, allowed in _CATEGORIES.items()
    }
    checks.update({column: (_count, "a whole number >= 0") for column in _COUNTS})
    checks.update({column: (_amount, "a number >= 0 or blank") for column in _AMOUNTS})
    if require_label:
        checks[LABEL] = (_label, "0 or 1")
    return checks


def typed_columns(
    columns: Mapping[str, list[object]], require_label: bool, locate: Callable[[int], str]
) -> dict[str, list[object]]:
    """The checked columns' text cells converted to numbers and levels, the others as given;
    the first bad cell is named by `locate(its position)`. Plain lists, no pandas: serving one
    row goes through here (typed() below is the same checks for a frame)."""
    converted = dict(columns)
    for column, (check, expected) in _checks(require_label).items():
        raw = columns[column]
        values = [check(value) for value in raw]
        if None in values:
            position = values.index(None)
            shown = "(blank)" if _blank(raw[position]) else repr(raw[position])
            raise DataError(f"{locate(position)}: {column} is {shown}, expected {expected}; fix or remove that row")
        converted[column] = values
    converted["Pclass"] = [int(level) for level in converted["Pclass"]]  # type: ignore[call-overload]
    return converted


def typed(frame: pd.DataFrame, require_label: bool, locate: Locator) -> pd.DataFrame:
    """typed_columns() for a frame: the same checks, the numbers in numeric columns."""
    converted = typed_columns(
        {column: frame[column].tolist() for column in frame.columns},
        require_label,
        lambda position: locate(int(frame.index[position])),
    )
    return typed_frame(converted, frame.index, require_label)


def typed_frame(
    columns: Mapping[str, list[object]], index: pd.Index | None = None, require_label: bool = False
) -> pd.DataFrame:
    """Typed columns as a frame: whole numbers as int, amounts as float, the rest as objects
    (the label too, unless it was checked)."""
    dtypes = {**dict.fromkeys(_COUNTS, int), **dict.fromkeys(_AMOUNTS, float), "Pclass": int}
    if require_label:
        dtypes[LABEL] = int
    return pd.DataFrame(
        {
            column: pd.Series(values, index=index, dtype=dtypes.get(column, object))
            for column, values in columns.items()
        },
        index=index,
    )


def _require_both_classes(name: str, data: pd.DataFrame) -> None:
    classes = sorted(data[LABEL].unique())
    if len(classes) < 2:
        raise DataError(
            f"the '{name}' channel has only Survived={classes[0]} ({len(data)} rows); "
            "a survival model needs both 0 and 1, so add rows of the other class"
        )


def features_and_label(data: pd.DataFrame) -> tuple[pd.DataFrame, pd.Series]:
    return data.drop(columns=[LABEL]), data[LABEL]
