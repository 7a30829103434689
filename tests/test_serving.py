"""The container tier for serving: the image built as CI builds it, `serve` run as SageMaker runs
it (model unpacked read-only into /opt/ml/model, read-only root), its port published on
127.0.0.1 only, with a model from a real training run in the same image."""

from __future__ import annotations

import csv
import http.client
import io
import json
import socket
import subprocess
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import pandas as pd
import pytest
from conftest import make_sm_root, training_probabilities
from request_cases import BAD_REQUESTS, CSV, JSON, JSONLINES, BadRequest

pytestmark = pytest.mark.docker
LIMIT = 6 * 1024 * 1024


@dataclass(frozen=True)
class Server:
    container: str
    port: int

    def connection(self) -> http.client.HTTPConnection:
        return http.client.HTTPConnection("127.0.0.1", self.port, timeout=60)

    def post(
        self, body: bytes, content_type: str = CSV, accept: str = "", conn: http.client.HTTPConnection | None = None
    ) -> tuple[int, bytes]:
        conn = conn or self.connection()
        headers = {"Content-Type": content_type, **({"Accept": accept} if accept else {})}
        conn.request("POST", "/invocations", body, headers)
        response = conn.getresponse()
        return response.status, response.read()


@pytest.fixture(scope="module")
def trained(image: str, tmp_path_factory: pytest.TempPathFactory, split_dir: Path) -> Path:
    """An /opt/ml tree after `docker run IMAGE train`: the model the server will load."""
    root = make_sm_root(tmp_path_factory.mktemp("serving") / "ml", split_dir)
    result = subprocess.run(
        ["docker", "run", "--rm", "--network", "none", "-v", f"{root}:/opt/ml", image, "train"],
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert result.returncode == 0, result.stderr[-2000:]
    return root


def start(image: str, model_dir: Path, *extra: str, port: int = 8080) -> str:
    return subprocess.run(
        [
            "docker",
            "run",
            "-d",
            "--read-only",
            "--tmpfs",
            "/tmp",
            "-p",
            f"127.0.0.1::{port}",
            "-v",
            f"{model_dir}:/opt/ml/model:ro",
            *extra,
            image,
            "serve",
        ],
        capture_output=True,
        text=True,
        check=True,
        timeout=120,
    ).stdout.strip()


def host_port(container: str, port: int = 8080) -> tuple[str, int]:
    published = subprocess.run(
        ["docker", "port", container, f"{port}/tcp"], capture_output=True, text=True, check=True
    ).stdout.split()[0]
    address, _, number = published.rpartition(":")
    return address, int(number)


def wait_for_log(container: str, text: str, seconds: float = 30) -> None:
    """Until the container's log holds `text`: the event itself, not a guess at its time."""
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        logs = subprocess.run(["docker", "logs", container], capture_output=True, text=True)
        if text in logs.stdout + logs.stderr:
            return
        time.sleep(0.05)
    raise AssertionError(f"{text!r} did not appear in {container}'s log within {seconds} s")


def wait_healthy(port: int, container: str, seconds: float = 60) -> None:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        try:
            conn = http.client.HTTPConnection("127.0.0.1", port, timeout=2)
            conn.request("GET", "/ping")
            if conn.getresponse().status == 200:
                return
        except OSError:
            pass
        time.sleep(0.1)
    logs = subprocess.run(["docker", "logs", container], capture_output=True, text=True).stderr
    raise AssertionError(f"no 200 from /ping within {seconds} s:\n{logs[-2000:]}")


def remove(container: str) -> None:
    subprocess.run(["docker", "rm", "-f", container], capture_output=True)


@pytest.fixture(scope="module")
def server(image: str, trained: Path) -> Iterator[Server]:
    container = start(image, trained / "model")
    try:
        address, port = host_port(container)
        assert address == "127.0.0.1"  # published on loopback only
        wait_healthy(port, container)
        yield Server(container, port)
    finally:
        remove(container)


@pytest.fixture(scope="module")
def expected(trained: Path) -> dict[str, float]:
    return training_probabilities(trained)


def served_csv(body: bytes) -> dict[str, float]:
    return {row[0]: float(row[1]) for row in csv.reader(io.StringIO(body.decode()))}


def test_the_image_declares_it_honours_bind_to_port(image: str) -> None:
    labels = json.loads(
        subprocess.run(
            ["docker", "image", "inspect", "--format", "{{json .Config.Labels}}", image],
            capture_output=True,
            text=True,
            check=True,
        ).stdout
    )
    assert labels["com.amazonaws.sagemaker.capabilities.accept-bind-to-port"] == "true"


def test_predictions_equal_trainings_own_in_every_format(
    server: Server, validation: pd.DataFrame, expected: dict[str, float]
) -> None:
    body = validation.to_csv(index=False).encode()
    status, answer = server.post(body)
    assert status == 200, answer
    assert served_csv(answer) == expected  # exact: the trained pipeline, to the last digit
    headerless = validation.drop(columns=["Survived"]).to_csv(index=False, header=False).encode()
    assert served_csv(server.post(headerless)[1]) == expected
    records = json.loads(validation.replace({"": None}).to_json(orient="records"))
    for content_type, payload in (
        (JSON, json.dumps({"instances": records})),
        (JSONLINES, "".join(json.dumps(r) + "\n" for r in records)),
    ):
        status, answer = server.post(payload.encode(), content_type, accept=JSON)
        assert status == 200, answer
        assert {str(p["PassengerId"]): p["probability"] for p in json.loads(answer)["predictions"]} == expected


def test_bad_requests_answer_their_status_and_leave_the_server_well(
    server: Server, validation: pd.DataFrame, expected: dict[str, float]
) -> None:
    conn = server.connection()  # one keep-alive connection, as batch transform uses
    good = validation.head(5).to_csv(index=False).encode()
    cases: list[tuple[BadRequest | None, bytes, str]] = [(c, c.body, c.content_type) for c in BAD_REQUESTS]
    cases.append((None, b"x" * (LIMIT + 1), CSV))
    for case, body, content_type in cases:
        status, answer = server.post(body, content_type, accept=case.accept if case else "", conn=conn)
        text = answer.decode()
        assert status == (case.status if case else 413), text
        assert (case.reason if case else "over this server's limit") in text
        assert text.count("\n") == 1 and "Traceback" not in text
        if status == 413:
            conn = server.connection()  # the server may close a connection whose body it did not read
        status, answer = server.post(good, conn=conn)
        assert status == 200 and served_csv(answer) == {k: expected[k] for k in validation.head(5)["PassengerId"]}


def test_many_requests_at_once_get_their_own_answers(
    server: Server, validation: pd.DataFrame, expected: dict[str, float]
) -> None:
    rows = [validation.iloc[[i]].to_csv(index=False).encode() for i in range(len(validation))]

    def ask(body: bytes) -> dict[str, float]:
        status, answer = server.post(body)
        assert status == 200, answer
        return served_csv(answer)

    with ThreadPoolExecutor(max_workers=16) as pool:
        answers = list(pool.map(ask, rows * 3))
    for body, answer in zip(rows * 3, answers, strict=True):
        passenger = body.decode().splitlines()[1].split(",")[0]
        assert answer == {passenger: expected[passenger]}


def test_execution_parameters_tell_batch_transform_what_to_send(server: Server) -> None:
    conn = server.connection()
    conn.request("GET", "/execution-parameters")
    response = conn.getresponse()
    assert response.status == 200
    parameters = json.loads(response.read())
    assert parameters["BatchStrategy"] == "MULTI_RECORD"
    assert parameters["MaxPayloadInMB"] == 6 and parameters["MaxConcurrentTransforms"] >= 1


def test_sigterm_lets_the_request_in_flight_finish(
    image: str, trained: Path, validation: pd.DataFrame, expected: dict[str, float]
) -> None:
    container = start(image, trained / "model")
    try:
        _, port = host_port(container)
        wait_healthy(port, container)
        body = validation.to_csv(index=False).encode()
        sock = socket.create_connection(("127.0.0.1", port), timeout=60)
        head = f"POST /invocations HTTP/1.1\r\nHost: x\r\nContent-Type: text/csv\r\nContent-Length: {len(body)}\r\n\r\n"
        sock.sendall(head.encode() + body[:100])  # the request is in flight: half its body sent
        # (gunicorn logs nothing when a worker accepts a connection: this short pause is the one
        # wait without an event to watch for.)
        time.sleep(0.5)
        subprocess.run(["docker", "kill", "--signal", "TERM", container], check=True, capture_output=True)
        wait_for_log(container, "Handling signal: term")  # the server is shutting down now
        sock.sendall(body[100:])
        response = http.client.HTTPResponse(sock)
        response.begin()
        assert response.status == 200
        assert served_csv(response.read()) == expected
        sock.close()
        exit_code = subprocess.run(["docker", "wait", container], capture_output=True, text=True, timeout=40)
        assert exit_code.stdout.strip() == "0"  # a clean, graceful stop well inside SageMaker's 30 s
    finally:
        remove(container)


def test_bind_to_port_moves_the_server(image: str, trained: Path) -> None:
    container = start(image, trained / "model", "-e", "SAGEMAKER_BIND_TO_PORT=9091", port=9091)
    try:
        _, port = host_port(container, 9091)
        wait_healthy(port, container)
    finally:
        remove(container)


def test_a_missing_model_stops_the_server_with_the_reason(image: str, tmp_path: Path) -> None:
    result = subprocess.run(
        ["docker", "run", "--rm", "--network", "none", "-v", f"{tmp_path}:/opt/ml/model:ro", image, "serve"],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 1
    assert "/opt/ml/model/model.joblib is missing" in result.stderr
