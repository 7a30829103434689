"""The inference contract's data side: request body -> Kaggle rows -> predictions -> response body.

No HTTP here (titanic_model.server does that): every function takes and returns plain values,
and every bad request is a RequestError carrying the HTTP status and a one-line reason that
names the row and the column. Rows are numbered from 1 in the order they came, header and
blank lines not counted, so the reason points at the same row in every content type.

The rows go through the same checks and conversions as a training channel (data.typed_columns)
and then through the trained model as serving_model.ServingModel runs it, so a served
probability is the training code's predict_proba on that row, to the last digit.
"""

from __future__ import annotations

import csv
import io
import json
from dataclasses import dataclass
from typing import Any

import numpy as np

from titanic_model.contract import ACCEPT_TYPES, CONTENT_TYPES, CSV, JSON, JSONLINES
from titanic_model.data import KAGGLE_HEADER, REQUIRED_COLUMNS, DataError, typed_columns
from titanic_model.metrics import predicted_class
from titanic_model.serving_model import ServingModel

PASSENGER_ID = "PassengerId"
# A headerless row is read by its number of fields: Kaggle's test.csv order, or train.csv's.
TEST_COLUMNS = ("PassengerId", "Pclass", "Name", "Sex", "Age", "SibSp", "Parch", "Ticket", "Fare", "Cabin", "Embarked")
TRAIN_COLUMNS = tuple(KAGGLE_HEADER.split(","))
HEADERLESS = {len(TEST_COLUMNS): TEST_COLUMNS, len(TRAIN_COLUMNS): TRAIN_COLUMNS}

# The columns a request's rows are read into: what the model reads, and the id to answer with.
_WANTED = (*REQUIRED_COLUMNS, PASSENGER_ID)
# Other spellings of JSON Lines that clients send; answered as application/jsonlines.
_JSONLINES_ALIASES = ("application/jsonl", "application/x-jsonlines", "application/json-lines")


class RequestError(ValueError):
    """A request the contract refuses: `status` is the HTTP status, the message one line."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status


@dataclass(frozen=True)
class Rows:
    columns: dict[str, list[Any]]  # typed Kaggle columns (data.typed_columns), rows in request order
    ids: list[str | None] | None  # PassengerId per row when the request gave that column


def media_type(header: str | None) -> str:
    """'text/csv; charset=utf-8' -> 'text/csv'; JSON Lines' other names -> application/jsonlines."""
    kind = (header or "").split(";", 1)[0].strip().lower()
    return JSONLINES if kind in _JSONLINES_ALIASES else kind


def response_type(accept: str | None, content_type: str) -> str:
    """The first type in Accept this server writes; none given (or */*) answers in the
    request's own type. Raises 406 when Accept names only types it cannot write."""
    offered = [media_type(part) for part in (accept or "").split(",") if part.strip()]
    if not offered or any(kind in ("*/*", "") for kind in offered):
        return CSV if content_type == CSV else JSON if content_type == JSON else JSONLINES
    for kind in offered:
        if kind in ACCEPT_TYPES:
            return kind
        if kind == "text/*":
            return CSV
        if kind == "application/*":
            return JSON
    raise RequestError(406, f"cannot answer in {accept!r}; set Accept to one of {', '.join(ACCEPT_TYPES)}")


def parse(body: bytes, content_type: str) -> Rows:
    if content_type not in CONTENT_TYPES:
        shown = content_type or "no Content-Type"
        raise RequestError(415, f"{shown} is not accepted; send the rows as one of {', '.join(CONTENT_TYPES)}")
    if not body.strip():
        raise RequestError(400, "the request body is empty; send at least one passenger row")
    try:
        text = body.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise RequestError(400, f"the body is not UTF-8 (bad byte at offset {exc.start}); encode it as UTF-8") from None
    if "\x00" in text:
        raise RequestError(400, "the body holds NUL bytes, so it is not text; send CSV or JSON text")
    if content_type == CSV:
        records, columns = _csv_records(text)
    elif content_type == JSON:
        records, columns = _json_records(text)
    else:
        records, columns = _jsonlines_records(text)
    return _rows(records, columns)


def _csv_records(text: str) -> tuple[list[list[str]], tuple[str, ...] | None]:
    try:
        lines = [row for row in csv.reader(io.StringIO(text), strict=True) if row]
    except csv.Error as exc:
        raise RequestError(400, f"the body is not well-formed CSV ({exc}); quote fields that hold commas") from None
    if not lines:
        raise RequestError(400, "the request body has no rows; send at least one passenger row")
    first = [cell.strip() for cell in lines[0]]
    if any(cell in TRAIN_COLUMNS for cell in first):  # no passenger's cell is a column's name
        return lines[1:], tuple(first)
    return lines, None


def _json_records(text: str) -> tuple[list[Any], None]:
    try:
        document = json.loads(text)
    except json.JSONDecodeError as exc:
        raise RequestError(400, f"the body is not JSON ({exc.msg} at line {exc.lineno} column {exc.colno})") from None
    if isinstance(document, dict) and "instances" in document:
        document = document["instances"]
    if not isinstance(document, list):
        raise RequestError(400, 'JSON must be a list of passengers or {"instances": [...]}, one object per passenger')
    return document, None


def _jsonlines_records(text: str) -> tuple[list[Any], None]:
    records = []
    for number, line in enumerate((line for line in text.splitlines() if line.strip()), start=1):
        try:
            records.append(json.loads(line))
        except json.JSONDecodeError as exc:
            raise RequestError(
                400, f"row {number}: not a JSON value ({exc.msg}); send one JSON object per line"
            ) from None
    return records, None


def _headerless(number: int, cells: list[Any]) -> dict[str, Any]:
    columns = HEADERLESS.get(len(cells))
    if columns is None:
        raise RequestError(
            400,
            f"row {number} has {len(cells)} fields; a row without a header needs the {len(TEST_COLUMNS)} of Kaggle's "
            f"test.csv ({','.join(TEST_COLUMNS)}), or send a header row first",
        )
    return dict(zip(columns, cells, strict=True))


def _record(number: int, item: Any, header: tuple[str, ...] | None) -> dict[str, Any]:
    if header is not None:
        if len(item) != len(header):
            raise RequestError(400, f"row {number} has {len(item)} fields but the header has {len(header)}")
        return dict(zip(header, item, strict=True))
    if isinstance(item, dict):
        return item
    if isinstance(item, list):
        return _headerless(number, item)
    raise RequestError(400, f"row {number} is a JSON {type(item).__name__}; each passenger must be an object or a list")


def _cell(number: int, column: str, value: Any) -> str | None:
    """A cell as the text a CSV file would hold (None for blank), so one set of checks applies."""
    if value is None or value == "":
        return None
    if isinstance(value, bool) or not isinstance(value, str | int | float):
        raise RequestError(
            400, f"row {number}: {column} is a JSON {type(value).__name__}, expected a string, a number or null"
        )
    return value if isinstance(value, str) else repr(value)


def _rows(items: list[Any], header: tuple[str, ...] | None) -> Rows:
    if header is not None:
        duplicated = sorted({c for c in header if header.count(c) > 1})
        if duplicated:
            raise RequestError(400, f"the header names {', '.join(duplicated)} more than once; name each column once")
        _require_columns(header)
    if not items:
        raise RequestError(400, "the request holds no passenger rows; send at least one")
    table = _text_columns(items, header) or _cells(items, header)
    has_ids = (header is not None and PASSENGER_ID in header) or any(v is not None for v in table[PASSENGER_ID])
    ids = table.pop(PASSENGER_ID)
    try:
        columns = typed_columns(table, require_label=False, locate=lambda position: f"row {position + 1}")
    except DataError as exc:
        raise RequestError(400, str(exc)) from None
    return Rows(columns=columns, ids=ids if has_ids else None)


def _cells(items: list[Any], header: tuple[str, ...] | None) -> dict[str, list[str | None]]:
    """The wanted columns of any rows (JSON objects or lists, CSV lines), cell by cell."""
    table: dict[str, list[str | None]] = {column: [] for column in _WANTED}
    for number, item in enumerate(items, start=1):
        record = _record(number, item, header)  # a key a JSON object leaves out is a blank cell
        for column in _WANTED:
            table[column].append(_cell(number, column, record.get(column)))
    return table


def _text_columns(items: list[Any], header: tuple[str, ...] | None) -> dict[str, list[str | None]] | None:
    """The wanted columns of CSV lines that all have one layout, taken column by column: the
    same cells as _cells() gives (text, blank as None) at a fraction of the cost for many rows.
    None for anything else (JSON, mixed layouts, a line of the wrong length), which _cells()
    then reads, naming the row at fault."""
    if not items or not all(type(item) is list for item in items):
        return None
    columns = header if header is not None else HEADERLESS.get(len(items[0]))
    if columns is None or any(len(item) != len(columns) for item in items):
        return None
    if not all(type(cell) is str for item in items for cell in item):
        return None
    by_position = list(zip(*items, strict=True))
    where = {column: position for position, column in enumerate(columns)}
    blank: list[str | None] = [None] * len(items)
    return {
        column: [cell or None for cell in by_position[where[column]]] if column in where else blank[:]
        for column in _WANTED
    }


def _require_columns(header: tuple[str, ...]) -> None:
    missing = [c for c in REQUIRED_COLUMNS if c not in header]
    if missing:
        raise RequestError(
            400, f"the header lacks required column(s) {', '.join(missing)}; name Kaggle's columns ({KAGGLE_HEADER})"
        )


def predict(model: ServingModel, rows: Rows) -> np.ndarray:
    """P(survived) per row, exactly as the trained pipeline scores it."""
    return model.probabilities(rows.columns)


def _id_value(raw: str | None) -> int | str | None:
    if raw is None:
        return None
    text = raw.strip()
    return int(text) if text.isdigit() else text


def render(rows: Rows, probability: np.ndarray, accept: str) -> bytes:
    """One answer per input row, in input order: PassengerId when given, the probability
    (shortest text that reads back as the same float), the 0/1 prediction."""
    survived = predicted_class(probability)
    ids = rows.ids if rows.ids is not None else [None] * len(probability)
    if accept == CSV:
        buffer = io.StringIO()
        writer = csv.writer(buffer, lineterminator="\n")
        for pid, p, s in zip(ids, probability, survived, strict=True):
            writer.writerow(([pid or ""] if rows.ids is not None else []) + [repr(float(p)), int(s)])
        return buffer.getvalue().encode()
    answers = []
    for pid, p, s in zip(ids, probability, survived, strict=True):
        answer: dict[str, Any] = {PASSENGER_ID: _id_value(pid)} if rows.ids is not None else {}
        answer.update(probability=float(p), survived=int(s))
        answers.append(answer)
    if accept == JSONLINES:
        return "".join(json.dumps(a) + "\n" for a in answers).encode()
    return json.dumps({"predictions": answers}).encode()
