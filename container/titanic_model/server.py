"""`serve`: SageMaker's inference contract over HTTP, with gunicorn in front of a small WSGI app.

gunicorn because the work is CPU-bound and Python holds a lock while pandas runs: worker
processes (one per CPU by default) give real parallelism, a few threads per worker keep slow
clients from blocking it, and its master process does SageMaker's graceful shutdown (SIGTERM:
finish in-flight requests, then exit, within the 30 s before SIGKILL). The app loads the model
once per worker, before that worker accepts a connection, and LightGBM gets CPUs / workers
threads so the workers do not fight over the cores.

This module imports only the standard library and gunicorn at the top: the master starts and
binds the port at once; each worker imports pandas, scikit-learn and LightGBM itself.

Settings (environment):
  SAGEMAKER_BIND_TO_PORT          port, default 8080
  SERVE_ADDRESS                   default 0.0.0.0, the container's every interface (127.0.0.1 outside one)
  SAGEMAKER_MODEL_SERVER_WORKERS  processes, default the CPUs this container may use
  SAGEMAKER_MODEL_SERVER_THREADS  threads per process, default 4
  SAGEMAKER_MODEL_SERVER_TIMEOUT  seconds a request may take, default 60
  SAGEMAKER_MAX_PAYLOAD_IN_MB     set by batch transform; default InvokeEndpoint's 6 MB
"""

from __future__ import annotations

import json
import logging
import os
import sys
import traceback
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from titanic_model import contract

log = logging.getLogger("titanic_model.serve")

DEFAULT_PORT = 8080
DEFAULT_THREADS = 4
DEFAULT_TIMEOUT = 60
MEBIBYTE = 1024 * 1024
INVOKE_ENDPOINT_LIMIT = 6 * MEBIBYTE  # InvokeEndpoint's body limit, 6,291,456 bytes
GRACEFUL_SECONDS = 25  # SageMaker sends SIGKILL 30 s after SIGTERM
WORKER_BOOT_ERROR = 3  # gunicorn halts the whole server when a worker exits with this

StartResponse = Callable[[str, list[tuple[str, str]]], Any]
_REASONS = {
    200: "OK",
    400: "Bad Request",
    404: "Not Found",
    405: "Method Not Allowed",
    406: "Not Acceptable",
    413: "Content Too Large",
    415: "Unsupported Media Type",
    500: "Internal Server Error",
    503: "Service Unavailable",
}


class ServeError(RuntimeError):
    """The server cannot start: a setting or the model is wrong; the message says which."""


# Batch transform's bound on MaxConcurrentTransforms x MaxPayloadInMB.
TRANSFORM_MB_IN_FLIGHT = 100


@dataclass(frozen=True)
class ServeSettings:
    address: str
    port: int
    workers: int
    threads: int
    timeout: int
    max_payload: int  # bytes
    lightgbm_threads: int

    @classmethod
    def from_env(cls, env: dict[str, str] | None = None) -> ServeSettings:
        env = dict(os.environ) if env is None else env
        cpus = len(os.sched_getaffinity(0))
        workers = _whole(env, "SAGEMAKER_MODEL_SERVER_WORKERS", cpus)
        payload = _whole(env, "SAGEMAKER_MAX_PAYLOAD_IN_MB", 0, high=100) * MEBIBYTE or INVOKE_ENDPOINT_LIMIT
        return cls(
            address=env.get("SERVE_ADDRESS", "").strip() or "0.0.0.0",
            port=_whole(env, "SAGEMAKER_BIND_TO_PORT", DEFAULT_PORT, high=65535),
            workers=workers,
            threads=_whole(env, "SAGEMAKER_MODEL_SERVER_THREADS", DEFAULT_THREADS),
            timeout=_whole(env, "SAGEMAKER_MODEL_SERVER_TIMEOUT", DEFAULT_TIMEOUT),
            max_payload=payload,
            lightgbm_threads=max(1, cpus // workers),
        )


def _whole(env: dict[str, str], name: str, default: int, high: int = 1024) -> int:
    raw = env.get(name, "").strip()
    if not raw:
        return default
    if not raw.isdigit() or not 1 <= int(raw) <= high:
        raise ServeError(f"{name}={raw!r} is not a whole number from 1 to {high}; fix it or leave it unset")
    return int(raw)


def load_model(model_dir: Path, lightgbm_threads: int) -> Any:
    """The pipeline training saved, as serving runs it, with LightGBM held to this worker's
    share of the CPUs."""
    import joblib

    from titanic_model.serving_model import ServingModel

    path = model_dir / contract.MODEL_FILE
    if not path.is_file():
        raise ServeError(
            f"{path} is missing; SageMaker unpacks model.tar.gz there: point the model at a training job's artifact"
        )
    try:
        model = joblib.load(path)
    except Exception as exc:  # noqa: BLE001 - any unpickling failure is the same problem to the user
        raise ServeError(
            f"{path} cannot be loaded ({type(exc).__name__}: {exc}); it must come from this image's "
            "training, whose libraries match"
        ) from None
    model.named_steps["model"].set_params(n_jobs=lightgbm_threads)
    return ServingModel.of(model)


class App:
    """The WSGI application: /ping, /invocations, /execution-parameters."""

    def __init__(self, model: Any, settings: ServeSettings) -> None:
        from titanic_model import inference

        self.inference = inference
        self.model = model
        self.settings = settings
        self.routes = {
            "/ping": ("GET", self.ping),
            "/invocations": ("POST", self.invocations),
            "/execution-parameters": ("GET", self.execution_parameters),
        }

    def __call__(self, environ: dict[str, Any], start_response: StartResponse) -> Iterable[bytes]:
        method, path = environ.get("REQUEST_METHOD", "GET"), environ.get("PATH_INFO", "")
        if path not in self.routes:
            return _answer(start_response, 404, f"no such path {path}; use /ping or /invocations")
        allowed, handler = self.routes[path]
        if method != allowed:
            return _answer(start_response, 405, f"{path} takes {allowed}, not {method}", [("Allow", allowed)])
        try:
            return handler(environ, start_response)
        except Exception as exc:  # noqa: BLE001 - never a stack trace to the client
            log.error("unexpected error on %s:\n%s", path, traceback.format_exc())
            return _answer(start_response, 500, f"internal error {type(exc).__name__} (a bug: see the container log)")

    def ping(self, environ: dict[str, Any], start_response: StartResponse) -> Iterable[bytes]:
        # The model is loaded before a worker takes its first connection: answering is healthy.
        return _answer(start_response, 200, "")

    def execution_parameters(self, environ: dict[str, Any], start_response: StartResponse) -> Iterable[bytes]:
        """What batch transform should send: many rows per request, one request in flight per
        worker thread, payloads as large as this server accepts; and never more than batch
        transform allows, MaxConcurrentTransforms x MaxPayloadInMB <= 100 (botocore's
        CreateTransformJob), which many threads on a large instance would pass."""
        payload_mb = max(1, self.settings.max_payload // MEBIBYTE)
        concurrent = min(self.settings.workers * self.settings.threads, TRANSFORM_MB_IN_FLIGHT // payload_mb)
        body = {"MaxConcurrentTransforms": concurrent, "BatchStrategy": "MULTI_RECORD", "MaxPayloadInMB": payload_mb}
        return _answer(start_response, 200, json.dumps(body), content_type=self.inference.JSON)

    def invocations(self, environ: dict[str, Any], start_response: StartResponse) -> Iterable[bytes]:
        inference = self.inference
        try:
            content_type = inference.media_type(environ.get("CONTENT_TYPE"))
            accept = inference.response_type(environ.get("HTTP_ACCEPT"), content_type)
            body = self._body(environ)
            rows = inference.parse(body, content_type)
            answer = inference.render(rows, inference.predict(self.model, rows), accept)
        except inference.RequestError as exc:
            return _answer(start_response, exc.status, str(exc))
        return _answer(start_response, 200, answer, content_type=accept)

    def _body(self, environ: dict[str, Any]) -> bytes:
        limit = self.settings.max_payload
        declared = (environ.get("CONTENT_LENGTH") or "").strip()
        too_large = self.inference.RequestError(
            413, f"the body is over this server's limit of {limit} bytes; send fewer rows per request"
        )
        stream = environ["wsgi.input"]
        if declared.isdigit() and int(declared) > limit:
            # Read what the client declared (and drop it): a client still sending when the
            # server closes gets a broken pipe instead of the reason.
            while stream.read(MEBIBYTE):
                pass
            raise too_large
        body = stream.read(limit + 1)
        if len(body) > limit:
            raise too_large
        return body


def _answer(
    start_response: StartResponse,
    status: int,
    body: str | bytes,
    extra: list[tuple[str, str]] | None = None,
    content_type: str = "text/plain; charset=utf-8",
) -> list[bytes]:
    data = body.encode() if isinstance(body, str) else body
    if status >= 400:
        data = (" ".join(body.split()) if isinstance(body, str) else data.decode()).encode() + b"\n"
        log.warning("%d: %s", status, data.decode().strip())
    headers = [("Content-Type", content_type), ("Content-Length", str(len(data))), *(extra or [])]
    start_response(f"{status} {_REASONS.get(status, '')}".strip(), headers)
    return [data]


def gunicorn_options(settings: ServeSettings) -> dict[str, Any]:
    return {
        "bind": f"{settings.address}:{settings.port}",
        "workers": settings.workers,
        "worker_class": "gthread",
        "threads": settings.threads,
        "timeout": settings.timeout,
        "graceful_timeout": GRACEFUL_SECONDS,
        "keepalive": 20,
        "accesslog": None,
        "errorlog": "-",
        "loglevel": "info",
        "preload_app": False,  # each worker loads its own model (OpenMP does not survive a fork)
        "worker_tmp_dir": "/dev/shm" if Path("/dev/shm").is_dir() else None,
        "proc_name": "titanic-serve",
        "control_socket_disable": True,  # gunicorn 27's admin socket: nothing here uses it
    }


def run(paths: contract.Paths, settings: ServeSettings) -> None:
    """Serve until SIGTERM; returns when gunicorn has shut down gracefully."""
    from gunicorn.app.base import BaseApplication

    model_file = paths.model_dir / contract.MODEL_FILE
    if not model_file.is_file():
        raise ServeError(
            f"{model_file} is missing; SageMaker unpacks the model's model.tar.gz into "
            f"{paths.model_dir}: give the model a training job's artifact"
        )

    class Server(BaseApplication):  # type: ignore[misc]
        def load_config(self) -> None:
            for key, value in gunicorn_options(settings).items():
                if value is not None:
                    self.cfg.set(key, value)

        def load(self) -> App:
            os.environ["OMP_NUM_THREADS"] = str(settings.lightgbm_threads)
            try:
                return App(load_model(paths.model_dir, settings.lightgbm_threads), settings)
            except ServeError as exc:
                log.error("cannot serve: %s", exc)
                sys.exit(WORKER_BOOT_ERROR)

    log.info(
        "serving %s on port %d: %d workers x %d threads, LightGBM %d thread(s) each",
        model_file,
        settings.port,
        settings.workers,
        settings.threads,
        settings.lightgbm_threads,
    )
    Server().run()


def main(argv: list[str]) -> int:
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s", stream=sys.stderr)
    if argv:
        log.error("serve takes no arguments (got %s); settings come from the environment", " ".join(argv))
        return 2
    try:
        run(contract.Paths.from_env(), ServeSettings.from_env())
    except ServeError as exc:
        log.error("cannot serve: %s", exc)
        return 1
    return 0
