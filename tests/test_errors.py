"""No command ends in a traceback on an AWS error: every verb that calls AWS, its first call
answered AccessDenied, throttling or an expired token, ends in one line and exit 1.

The answers come from a small HTTP server on 127.0.0.1 that speaks each AWS protocol's error
format (the query protocol's XML for STS and IAM, JSON for SageMaker, ECR, Logs, Service
Quotas and Pricing, REST XML for S3), so botocore parses them exactly as it parses AWS's.
"""

from __future__ import annotations

import json
import logging
import os
import subprocess
import sys
import threading
from collections.abc import Callable, Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest
from conftest import REPO, run_record, shipped

from launcher import cleanup, endpoint, iam, instances, operate, predict, preflight, registry, train, tuning
from launcher.lib import errors, watch

JOB = "titanic-lgbm-2026-12-01-10-00-00-000"
# (kind, code in the query and REST XML protocols, code in the JSON protocol, HTTP status)
FAILURES = {
    "denied": ("AccessDenied", "AccessDeniedException", 403),
    "throttled": ("Throttling", "ThrottlingException", 400),
    "expired": ("ExpiredToken", "ExpiredTokenException", 400),
}


class _AwsErrors(BaseHTTPRequestHandler):
    """Answers every request with one AWS error, in the protocol the request came in."""

    kind = "denied"
    seen: list[str]

    def _answer(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length).decode("utf-8", "replace") if length else ""
        query_code, json_code, status = FAILURES[self.kind]
        target = self.headers.get("X-Amz-Target")
        self.seen.append(target or body.partition("&")[0] or f"{self.command} {self.path}")
        if target or self.path.startswith("/endpoints/"):  # JSON: SageMaker (and its runtime), ECR, Logs, ...
            payload = json.dumps({"__type": json_code, "message": f"{json_code} from the test server"}).encode()
            content_type = "application/x-amz-json-1.1"
        elif "Action=" in body:  # query: STS, IAM
            payload = (
                f"<ErrorResponse><Error><Type>Sender</Type><Code>{query_code}</Code><Message>{query_code} from the "
                "test server</Message></Error><RequestId>test</RequestId></ErrorResponse>"
            ).encode()
            content_type = "text/xml"
        else:  # REST XML: S3
            payload = f"<Error><Code>{query_code}</Code><Message>{query_code} from the test server</Message></Error>"
            payload = payload.encode()
            content_type = "application/xml"
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("X-Amzn-ErrorType", json_code)  # how REST JSON (InvokeEndpoint) names the code
        self.send_header("Content-Length", str(len(payload)))
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(payload)

    def __getattr__(self, name: str) -> Callable[[], None]:
        if name.startswith("do_"):  # do_GET, do_POST, ...: every method gets the same error
            return self._answer
        raise AttributeError(name)

    def log_message(self, *args: object) -> None:  # quiet
        pass


@pytest.fixture
def failing_aws(monkeypatch: pytest.MonkeyPatch) -> Iterator[Callable[[str], list[str]]]:
    """Point every AWS client at the error server; the returned function picks the failure
    and returns the list of requests the server saw."""
    seen: list[str] = []
    handler = type("Handler", (_AwsErrors,), {"seen": seen})
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    for key in ("AWS_CA_BUNDLE", "AWS_PROFILE", "AWS_SESSION_TOKEN"):
        monkeypatch.delenv(key, raising=False)
    settings = {**shipped(), "TARGET": "aws", "LOCK_WAIT": "0"}
    for key, value in settings.items():
        monkeypatch.setenv(key, value)
    monkeypatch.setenv("AWS_ENDPOINT_URL", f"http://127.0.0.1:{server.server_address[1]}")
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    monkeypatch.setenv("AWS_MAX_ATTEMPTS", "1")  # one answer is enough: no retries of the throttle
    monkeypatch.setattr(watch, "DESCRIBE_TRIES", 1)  # likewise for the status polls' own retries

    def choose(kind: str) -> list[str]:
        handler.kind = kind
        return seen

    yield choose
    server.shutdown()


@pytest.fixture
def inputs(tmp_path: Path, split_dir: Path) -> dict[str, Path]:
    """What the verbs read before their first AWS call: a pushed image's record, the split,
    a verified run's record."""
    image = tmp_path / "image.json"
    digest = "sha256:" + "a" * 64
    image.write_text(
        json.dumps(
            {
                "image_uri": f"123456789012.dkr.ecr.us-east-1.amazonaws.com/r:{digest[7:19]}",
                "digest": digest,
                "content_tag": digest[7:19],
            }
        )
    )
    runs = tmp_path / "runs"
    runs.mkdir()
    job = JOB
    record = run_record(
        job_name=job,
        status="Completed",
        model_artifact=f"s3://b/titanic/output/{job}/output/model.tar.gz",
        image={"uri": "123456789012.dkr.ecr.us-east-1.amazonaws.com/r@" + digest, "digest": digest, "image_id": ""},
        verification={"verified": True, "local_dir": str(tmp_path)},
        evaluation={
            "uri": f"s3://b/titanic/output/{job}/evaluation/evaluation.json",
            "val_auc": 0.9,
            "reported_equal": True,
        },
    )
    (runs / f"{job}.json").write_text(json.dumps(record))
    return {"image": image, "split": split_dir, "runs": runs, "reports": tmp_path / "reports", "out": tmp_path / "out"}


VERBS: dict[str, Callable[[dict[str, Path]], int]] = {
    "train": lambda p: train.main(
        ["--image-record", str(p["image"]), "--split-dir", str(p["split"]), "--runs-dir", str(p["runs"])]
    ),
    "tune-jobs": lambda p: tuning.main(
        [
            "--image-record",
            str(p["image"]),
            "--split-dir",
            str(p["split"]),
            "--runs-dir",
            str(p["runs"]),
            "--reports-dir",
            str(p["reports"]),
        ]
    ),
    "predict": lambda p: predict.main(
        [
            "--runs-dir",
            str(p["runs"]),
            "--test",
            str(REPO / "data/titanic/test.csv"),
            "--checksums",
            str(REPO / "data/titanic/SHA256SUMS"),
        ]
    ),
    "register": lambda p: registry.main(["register", "--runs-dir", str(p["runs"])]),
    "approve": lambda p: registry.main(["approve"]),
    "reject": lambda p: registry.main(["reject", "--reason", "worse than the last"]),
    "models": lambda p: registry.main(["models"]),
    "deploy": lambda p: endpoint.main(["deploy"]),
    "invoke": lambda p: endpoint.main(["invoke"]),
    "undeploy": lambda p: endpoint.main(["undeploy"]),
    "status": lambda p: operate.main(["status", "--runs-dir", str(p["runs"])]),
    "logs": lambda p: operate.main(["logs", "--runs-dir", str(p["runs"])]),
    "describe": lambda p: operate.main(["describe", "--runs-dir", str(p["runs"])]),
    "stop": lambda p: operate.main(["stop", "--runs-dir", str(p["runs"]), "--job", JOB]),
    "clean-resources": lambda p: cleanup.main(["resources"]),
    "teardown": lambda p: cleanup.main(["teardown"]),
    "preflight": lambda p: preflight.main(),
    "iam-render": lambda p: iam.main(["render", "--out", str(p["out"])]),
}


@pytest.mark.parametrize("kind", sorted(FAILURES))
@pytest.mark.parametrize("verb", sorted(VERBS))
def test_an_aws_error_on_the_first_call_ends_in_one_line_and_exit_1(
    verb: str,
    kind: str,
    failing_aws: Callable[[str], list[str]],
    inputs: dict[str, Path],
    caplog: pytest.LogCaptureFixture,
) -> None:
    seen = failing_aws(kind)
    caplog.set_level(logging.INFO)
    code = VERBS[verb](inputs)
    errors_logged = [r.getMessage() for r in caplog.records if r.levelno >= logging.ERROR]
    assert seen, f"{verb} made no AWS call"
    assert code == 1, (verb, kind, code, errors_logged)
    assert len(errors_logged) == 1, errors_logged
    line = errors_logged[0]
    assert "\n" not in line and "Traceback" not in line
    query_code, json_code, _ = FAILURES[kind]
    assert query_code in line or json_code in line, line
    # The line says what to do about that code, not only that something failed.
    assert errors.aws_hint(json_code) in line or errors.aws_hint(query_code) in line, line


@pytest.mark.parametrize("kind", sorted(FAILURES))
def test_the_instance_report_degrades_to_the_snapshot_and_says_why(
    kind: str, failing_aws: Callable[[str], list[str]], inputs: dict[str, Path]
) -> None:
    """A report, not a job: prices fall back to the snapshot and quotas to unknown, and the
    report names the AWS error in its notes instead of failing."""
    seen = failing_aws(kind)
    assert instances.main(["--out", str(inputs["out"])]) == 0
    assert seen
    report = json.loads((inputs["out"] / "instance-report.json").read_text())
    json_code = FAILURES[kind][1]
    assert json_code in report["quota_note"] and json_code in report["price_note"], report


@pytest.mark.parametrize(
    "module, args",
    [
        ("launcher.cleanup", ["resources"]),
        ("launcher.registry", ["models"]),
        ("launcher.preflight", []),
    ],
)
def test_as_a_process_the_error_is_one_stderr_line_and_no_traceback(
    module: str, args: list[str], failing_aws: Callable[[str], list[str]]
) -> None:
    failing_aws("denied")
    result = subprocess.run(
        [sys.executable, "-m", module, *args],
        cwd=REPO,
        capture_output=True,
        text=True,
        env={**os.environ, "PYTHONPATH": f"{REPO / 'container'}:{REPO}"},
        timeout=120,
    )
    assert result.returncode == 1, result.stderr
    assert "Traceback" not in result.stderr + result.stdout
    error_lines = [line for line in result.stderr.splitlines() if "ERROR" in line]
    assert len(error_lines) == 1, result.stderr
    assert "AccessDenied" in error_lines[0] and "runner policy" in error_lines[0]


def test_an_unexpected_exception_is_one_line_too(caplog: pytest.LogCaptureFixture) -> None:
    def broken() -> int:
        raise ZeroDivisionError("division by zero\nsecond line")

    assert errors.run("test", broken) == 1
    lines = [r.getMessage() for r in caplog.records if r.levelno >= logging.ERROR]
    assert lines == [
        "ERROR: unexpected ZeroDivisionError: division by zero; rerun with TOOLKIT_DEBUG=1 for the "
        "traceback and report it"
    ]


def test_work_left_running_exits_130_with_its_commands(caplog: pytest.LogCaptureFixture) -> None:
    def interrupted() -> int:
        raise errors.StillRunning("job j runs on:\n  stop it: make stop JOB=j")

    assert errors.run("test", interrupted) == 130
    lines = [r.getMessage() for r in caplog.records if r.levelno >= logging.ERROR]
    assert lines == ["ERROR: interrupted: job j runs on:", "ERROR:   stop it: make stop JOB=j"]
