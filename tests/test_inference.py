"""The inference contract in-process: the WSGI app the image serves, called as gunicorn calls it,
with a model from a real training run. The container tier (test_serving.py) repeats the
contract over HTTP against the image itself."""

from __future__ import annotations

import csv
import io
import json
import random
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
from conftest import REPO, training_probabilities
from request_cases import BAD_REQUESTS, CSV, JSON, JSONLINES, BadRequest
from titanic_model import inference
from titanic_model.data import typed
from titanic_model.server import INVOKE_ENDPOINT_LIMIT, App, ServeError, ServeSettings, load_model

SETTINGS = ServeSettings(
    address="127.0.0.1",
    port=8080,
    workers=2,
    threads=4,
    timeout=60,
    max_payload=INVOKE_ENDPOINT_LIMIT,
    lightgbm_threads=1,
)


@pytest.fixture(scope="module")
def app(trained_root: Path) -> App:
    return App(load_model(trained_root / "model", 1), SETTINGS)


@pytest.fixture(scope="module")
def trained(trained_root: Path) -> dict[str, float]:
    return training_probabilities(trained_root)


def call(
    app: App,
    path: str,
    body: bytes = b"",
    content_type: str = CSV,
    *,
    accept: str = "",
    method: str = "POST",
    length: int | None = None,
) -> tuple[int, dict[str, str], bytes]:
    environ: dict[str, Any] = {
        "REQUEST_METHOD": method,
        "PATH_INFO": path,
        "CONTENT_TYPE": content_type,
        # length -1: no Content-Length, as with a chunked body
        "CONTENT_LENGTH": "" if length == -1 else str(len(body) if length is None else length),
        "wsgi.input": io.BytesIO(body),
    }
    if accept:
        environ["HTTP_ACCEPT"] = accept
    answer: dict[str, Any] = {}

    def start_response(status: str, headers: list[tuple[str, str]]) -> None:
        answer["status"], answer["headers"] = int(status.split(maxsplit=1)[0]), dict(headers)

    data = b"".join(app(environ, start_response))
    return answer["status"], answer["headers"], data


def csv_body(frame: pd.DataFrame, header: bool = True) -> bytes:
    return frame.to_csv(index=False, header=header).encode()


def probabilities_from_csv(body: bytes) -> dict[str, float]:
    return {row[0]: float(row[1]) for row in csv.reader(io.StringIO(body.decode()))}


def test_served_probabilities_are_the_ones_training_computed(
    app: App, validation: pd.DataFrame, trained: dict[str, float]
) -> None:
    status, headers, body = call(app, "/invocations", csv_body(validation))
    assert status == 200, body
    assert headers["Content-Type"] == CSV
    served = probabilities_from_csv(body)
    assert served == trained  # exact floats: the same pipeline on the same rows, to the last digit
    lines = body.decode().splitlines()
    assert len(lines) == len(validation)
    assert all(line.split(",")[2] == str(int(trained[line.split(",")[0]] >= 0.5)) for line in lines)


def test_every_content_type_gives_the_same_answers(
    app: App, validation: pd.DataFrame, trained: dict[str, float]
) -> None:
    test_order = validation[list(inference.TEST_COLUMNS)]
    records = json.loads(validation.replace({"": None}).to_json(orient="records"))
    bodies = {
        "csv, header in another order, Survived extra": (CSV, csv_body(validation[validation.columns[::-1]])),
        "csv without header, test.csv order": (CSV, csv_body(test_order, header=False)),
        "csv without header, train.csv order": (CSV, csv_body(validation, header=False)),
        "json list": (JSON, json.dumps(records).encode()),
        "json instances of lists": (JSON, json.dumps({"instances": test_order.values.tolist()}).encode()),
        "json lines": (JSONLINES, "".join(json.dumps(r) + "\n" for r in records).encode()),
    }
    for name, (content_type, body) in bodies.items():
        status, _, answer = call(app, "/invocations", body, content_type, accept=JSON)
        assert status == 200, (name, answer)
        served = {str(p["PassengerId"]): p["probability"] for p in json.loads(answer)["predictions"]}
        assert served == trained, name


def test_a_file_split_into_mini_batches_answers_like_the_whole(app: App, validation: pd.DataFrame) -> None:
    # Batch transform with SplitType=Line: only the first mini-batch carries the header.
    whole = call(app, "/invocations", csv_body(validation))[2]
    lines = csv_body(validation).decode().splitlines(keepends=True)
    batches = ["".join(lines[:40]), *("".join(lines[i : i + 39]) for i in range(40, len(lines), 39))]
    answers = [call(app, "/invocations", batch.encode()) for batch in batches]
    assert all(status == 200 for status, _, _ in answers)
    assert b"".join(body for _, _, body in answers) == whole


def test_rows_without_passenger_id_answer_probability_and_prediction(app: App, validation: pd.DataFrame) -> None:
    body = csv_body(validation.drop(columns=["PassengerId", "Survived"]).head(3))
    status, _, answer = call(app, "/invocations", body)
    assert status == 200
    for line in answer.decode().splitlines():
        probability, survived = line.split(",")
        assert 0 <= float(probability) <= 1 and survived in ("0", "1")
    jsonl = call(app, "/invocations", body, accept=JSONLINES)[2].decode().splitlines()
    assert [sorted(json.loads(line)) for line in jsonl] == [["probability", "survived"]] * 3


def test_a_name_with_commas_inside_quotes_is_one_field(app: App) -> None:
    row = b'1,1,"Astor, Col. John Jacob, Jr.",male,47,1,0,PC 17757,227.525,"C62 C64",C\n'
    status, _, answer = call(app, "/invocations", row)
    assert status == 200, answer
    assert answer.decode().startswith("1,")


@pytest.mark.parametrize("case", BAD_REQUESTS, ids=lambda c: f"{c.file}-{c.status}")
def test_a_bad_request_gets_its_status_and_one_line_then_the_next_is_served(
    app: App, case: BadRequest, validation: pd.DataFrame
) -> None:
    status, _, body = call(app, "/invocations", case.body, case.content_type, accept=case.accept)
    text = body.decode()
    assert status == case.status, text
    assert case.reason in text
    assert text.count("\n") == 1 and "Traceback" not in text
    good = call(app, "/invocations", csv_body(validation.head(2)))
    assert good[0] == 200 and len(good[2].decode().splitlines()) == 2


def test_a_body_over_the_limit_is_413_whether_or_not_its_length_is_declared(app: App) -> None:
    big = b"x" * (INVOKE_ENDPOINT_LIMIT + 1)
    declared = call(app, "/invocations", b"", length=INVOKE_ENDPOINT_LIMIT + 1)
    undeclared = call(app, "/invocations", big, length=-1)
    for status, _, body in (declared, undeclared):
        assert status == 413
        assert f"over this server's limit of {INVOKE_ENDPOINT_LIMIT} bytes" in body.decode()


@pytest.mark.parametrize(
    ("accept", "content_type", "chosen"),
    [
        ("", CSV, CSV),
        ("*/*", JSON, JSON),
        ("application/json", CSV, JSON),
        ("text/html, application/jsonlines;q=0.9", CSV, JSONLINES),
        ("application/x-jsonlines", CSV, JSONLINES),
        ("text/*", JSON, CSV),
    ],
)
def test_accept_picks_the_answers_type(accept: str, content_type: str, chosen: str) -> None:
    assert inference.response_type(accept, content_type) == chosen


def test_ping_paths_and_methods(app: App) -> None:
    assert call(app, "/ping", method="GET")[0] == 200
    assert call(app, "/ping", method="POST")[0] == 405
    assert call(app, "/predict", method="POST")[0] == 404
    status, _, body = call(app, "/execution-parameters", method="GET")
    assert status == 200
    assert json.loads(body) == {"MaxConcurrentTransforms": 8, "BatchStrategy": "MULTI_RECORD", "MaxPayloadInMB": 6}


@pytest.mark.parametrize(("workers", "threads", "payload_mb"), [(8, 4, 6), (48, 4, 6), (2, 4, 100), (1, 1, 6)])
def test_execution_parameters_stay_within_batch_transforms_limit(
    trained_root: Path, workers: int, threads: int, payload_mb: int
) -> None:
    """botocore: MaxConcurrentTransforms x MaxPayloadInMB must not exceed 100 MB, however many
    CPUs (workers x threads) a large transform instance gives the server."""
    env = {
        "SAGEMAKER_MODEL_SERVER_WORKERS": str(workers),
        "SAGEMAKER_MODEL_SERVER_THREADS": str(threads),
        "SAGEMAKER_MAX_PAYLOAD_IN_MB": str(payload_mb),
    }
    app = App(load_model(trained_root / "model", 1), ServeSettings.from_env(env))
    parameters = json.loads(call(app, "/execution-parameters", method="GET")[2])
    assert parameters["MaxPayloadInMB"] == payload_mb
    assert parameters["MaxConcurrentTransforms"] * parameters["MaxPayloadInMB"] <= 100
    assert parameters["MaxConcurrentTransforms"] == min(workers * threads, 100 // payload_mb)


@pytest.mark.parametrize(
    ("env", "phrase"),
    [
        ({"SAGEMAKER_MODEL_SERVER_WORKERS": "0"}, "SAGEMAKER_MODEL_SERVER_WORKERS='0' is not a whole number from 1"),
        ({"SAGEMAKER_BIND_TO_PORT": "http"}, "SAGEMAKER_BIND_TO_PORT='http'"),
        ({"SAGEMAKER_MAX_PAYLOAD_IN_MB": "500"}, "from 1 to 100"),
    ],
)
def test_bad_server_settings_are_named(env: dict[str, str], phrase: str) -> None:
    with pytest.raises(ServeError, match=phrase):
        ServeSettings.from_env(env)


def test_batch_transforms_payload_setting_sets_the_limit() -> None:
    assert ServeSettings.from_env({"SAGEMAKER_MAX_PAYLOAD_IN_MB": "20"}).max_payload == 20 * 1024 * 1024
    assert ServeSettings.from_env({}).max_payload == INVOKE_ENDPOINT_LIMIT


def test_a_missing_or_foreign_model_is_named(tmp_path: Path) -> None:
    with pytest.raises(ServeError, match=r"model\.joblib is missing"):
        load_model(tmp_path, 1)
    (tmp_path / "model.joblib").write_bytes(b"not a pickle")
    with pytest.raises(ServeError, match="cannot be loaded"):
        load_model(tmp_path, 1)


def test_typed_agrees_with_pandas_own_parsing_of_kaggles_files() -> None:
    """The equality tests (training = serving = predict) parse rows with data.typed; here
    typed is held once to pandas' own reading of Kaggle's files, so those tests' expected
    values do not rest on the code they check."""
    for name, label in (("test.csv", False), ("train.csv", True)):
        path = REPO / "data/titanic" / name
        raw = pd.read_csv(path, dtype=str, keep_default_na=False, na_values=[""])
        ours = typed(raw, require_label=label, locate=str)
        theirs = pd.read_csv(path)  # pandas infers numbers and blanks itself
        for column in ("Pclass", "Age", "SibSp", "Parch", "Fare", *(("Survived",) if label else ())):
            assert np.allclose(ours[column].astype(float), theirs[column].astype(float), equal_nan=True), column
        for column in ("Sex", "Embarked"):
            assert ours[column].fillna("").tolist() == theirs[column].fillna("").tolist(), column


def test_the_column_reader_reads_what_the_cell_reader_reads() -> None:
    """Many CSV lines of one layout are read column by column; it must give exactly the cells
    the row-by-row reader gives, for every layout, blanks included, and hand anything else back."""
    rng = random.Random(3)
    header = (*inference.TRAIN_COLUMNS, "Extra")
    layouts = [(header, len(header)), (None, len(inference.TEST_COLUMNS)), (None, len(inference.TRAIN_COLUMNS))]
    for columns, width in layouts:
        for _ in range(20):
            cells = ["", "3", "x y", " 1.5 ", "S"]
            items = [[rng.choice(cells) for _ in range(width)] for _ in range(rng.randint(1, 9))]
            assert inference._text_columns(items, columns) == inference._cells(items, columns)
    mixed = [["1"] * len(inference.TEST_COLUMNS), ["1"] * len(inference.TRAIN_COLUMNS)]
    assert inference._text_columns(mixed, None) is None  # two layouts: read row by row
    assert inference._text_columns([{"Pclass": "1"}], None) is None  # JSON objects
    assert inference._text_columns([[1] * len(inference.TEST_COLUMNS)], None) is None  # JSON numbers
