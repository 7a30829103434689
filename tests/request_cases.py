"""The bad-request corpus (tests/corpus/requests/): what each payload is sent as, and the status
and one-line reason the server must answer with. Used in-process and against the container."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

REQUESTS = Path(__file__).parent / "corpus" / "requests"
CSV, JSON, JSONLINES = "text/csv", "application/json", "application/jsonlines"


@dataclass(frozen=True)
class BadRequest:
    file: str
    content_type: str
    status: int
    reason: str  # a phrase the one-line answer must contain
    accept: str = ""

    @property
    def body(self) -> bytes:
        return (REQUESTS / self.file).read_bytes()


BAD_REQUESTS = [
    BadRequest("empty.csv", CSV, 400, "the request body is empty"),
    BadRequest("missing_sex.csv", CSV, 400, "the header lacks required column(s) Sex"),
    BadRequest("nonnumeric_age.csv", CSV, 400, "row 2: Age is 'forty', expected a number >= 0 or blank"),
    BadRequest("too_few_fields.csv", CSV, 400, "row 1 has 5 fields; a row without a header needs the 11"),
    BadRequest("ragged.csv", CSV, 400, "row 3 has 10 fields but the header has 11"),
    BadRequest("duplicate_column.csv", CSV, 400, "the header names Age more than once"),
    BadRequest("blank_pclass.csv", CSV, 400, "row 1: Pclass is (blank), expected one of 1, 2, 3"),
    BadRequest("negative_sibsp.csv", CSV, 400, "row 1: SibSp is '-1', expected a whole number >= 0"),
    BadRequest("latin1.csv", CSV, 400, "the body is not UTF-8"),
    BadRequest("nul.csv", CSV, 400, "holds NUL bytes"),
    BadRequest("unknown_sex.json", JSON, 400, "row 1: Sex is 'unknown', expected one of female, male"),
    BadRequest("truncated.json", JSON, 400, "the body is not JSON"),
    BadRequest("wrong_shape.json", JSON, 400, 'JSON must be a list of passengers or {"instances": [...]}'),
    BadRequest("no_rows.json", JSON, 400, "the request holds no passenger rows"),
    BadRequest("nested_value.json", JSON, 400, "row 1: Age is a JSON dict, expected a string, a number or null"),
    BadRequest("bad_line.jsonl", JSONLINES, 400, "row 2: not a JSON value"),
    BadRequest("missing_key.jsonl", JSONLINES, 400, "row 1: Sex is (blank), expected one of female, male"),
    BadRequest("nonnumeric_age.csv", "text/plain", 415, "text/plain is not accepted; send the rows as one of"),
    BadRequest("nonnumeric_age.csv", "", 415, "no Content-Type is not accepted"),
    BadRequest("unknown_sex.json", JSON, 406, "cannot answer in 'text/html'", accept="text/html"),
]
