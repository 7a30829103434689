"""Reading a SageMaker channel of Kaggle-format CSV files, refusing anything else clearly.

A channel folder holds the S3 objects under its prefix with their names kept (`train.csv`,
`part-00000`, several files): every regular file is read, in name order, and must share one
header. Each problem is reported with the channel, the file, the line and the fix.
"""

from __future__ import annotations

import hashlib
import io
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
    return _typed(where, frame, require_label)


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


def _bad_cell(where: str, frame: pd.DataFrame, column: str, bad: pd.Series, expected: str) -> DataError:
    index = bad[bad].index[0]
    line = int(index) + 2  # 1-based, after the header line
    value = frame.at[index, column]
    shown = "(blank)" if pd.isna(value) else repr(value)
    return DataError(f"{where} line {line}: {column} is {shown}, expected {expected}; fix or remove that row")


def _typed(where: str, frame: pd.DataFrame, require_label: bool) -> pd.DataFrame:
    frame = frame.copy()
    for column, allowed in _CATEGORIES.items():
        values = frame[column].str.strip()
        bad = ~values.isin(allowed)
        if column in _OPTIONAL_CATEGORIES:
            bad &= values.notna()
        if bad.any():
            raise _bad_cell(where, frame, column, bad, f"one of {', '.join(allowed)}")
        frame[column] = values
    frame["Pclass"] = frame["Pclass"].astype(int)
    for column in _COUNTS:
        numbers = pd.to_numeric(frame[column], errors="coerce")
        bad = numbers.isna() | (numbers < 0) | (numbers % 1 != 0)
        if bad.any():
            raise _bad_cell(where, frame, column, bad, "a whole number >= 0")
        frame[column] = numbers.astype(int)
    for column in _AMOUNTS:
        numbers = pd.to_numeric(frame[column], errors="coerce")
        bad = (numbers.isna() & frame[column].notna()) | (numbers < 0)
        if bad.any():
            raise _bad_cell(where, frame, column, bad, "a number >= 0 or blank")
        frame[column] = numbers.astype(float)
    if require_label:
        label = frame[LABEL].str.strip()
        bad = ~label.isin(("0", "1"))
        if bad.any():
            raise _bad_cell(where, frame, LABEL, bad, "0 or 1")
        frame[LABEL] = label.astype(int)
    return frame


def _require_both_classes(name: str, data: pd.DataFrame) -> None:
    classes = sorted(data[LABEL].unique())
    if len(classes) < 2:
        raise DataError(
            f"the '{name}' channel has only Survived={classes[0]} ({len(data)} rows); "
            "a survival model needs both 0 and 1, so add rows of the other class"
        )


def features_and_label(data: pd.DataFrame) -> tuple[pd.DataFrame, pd.Series]:
    return data.drop(columns=[LABEL]), data[LABEL]
