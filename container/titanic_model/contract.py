"""SageMaker's container contract: where things are under /opt/ml, and the media types the
image serves (the registry advertises the same ones).

The root can be moved with SAGEMAKER_BASE_DIR (the AWS training toolkit uses the same name),
so the whole contract can be exercised in a temporary folder outside any container.
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

BASE_DIR_ENV = "SAGEMAKER_BASE_DIR"
DEFAULT_BASE_DIR = "/opt/ml"
FAILURE_REASON_LIMIT = 1024  # SageMaker shows this many characters as FailureReason

# What /invocations reads (Content-Type) and writes (Accept).
CSV = "text/csv"
JSON = "application/json"
JSONLINES = "application/jsonlines"
CONTENT_TYPES = (CSV, JSON, JSONLINES)
ACCEPT_TYPES = (CSV, JSON, JSONLINES)

MODEL_ARCHIVE = "model.tar.gz"  # what a training job leaves in S3, and what evaluate reads
EVALUATION_FILE = "evaluation.json"
MODEL_FILE = "model.joblib"
METRICS_FILE = "metrics.json"
MODEL_CARD_FILE = "model_card.json"
# What a successful run leaves in the model folder; a failed run must leave none of it.
MODEL_ARTIFACTS = (MODEL_FILE, METRICS_FILE, MODEL_CARD_FILE)


@dataclass(frozen=True)
class Paths:
    root: Path

    @classmethod
    def from_env(cls, env: dict[str, str] | None = None) -> Paths:
        env = os.environ if env is None else env
        return cls(Path(env.get(BASE_DIR_ENV) or DEFAULT_BASE_DIR))

    @property
    def hyperparameters(self) -> Path:
        return self.root / "input" / "config" / "hyperparameters.json"

    @property
    def resource_config(self) -> Path:
        return self.root / "input" / "config" / "resourceconfig.json"

    def channel(self, name: str) -> Path:
        return self.root / "input" / "data" / name

    @property
    def model_dir(self) -> Path:
        return self.root / "model"

    @property
    def output_data_dir(self) -> Path:
        return self.root / "output" / "data"

    @property
    def failure_file(self) -> Path:
        return self.root / "output" / "failure"

    @property
    def checkpoint_config(self) -> Path:
        return self.root / "input" / "config" / "checkpointconfig.json"

    def checkpoint_dir(self) -> Path | None:
        """Where to keep spot checkpoints: SageMaker's LocalPath when the job has a checkpoint
        configuration, /opt/ml/checkpoints when that folder is there (mounted); else None."""
        default = self.root / "checkpoints"
        if self.checkpoint_config.is_file():
            try:
                local = json.loads(self.checkpoint_config.read_text(encoding="utf-8")).get("LocalPath")
            except ValueError:
                local = None
            if local and os.environ.get(BASE_DIR_ENV) is None:
                return Path(local)
            return default
        return default if default.is_dir() else None


@dataclass(frozen=True)
class ProcessingPaths:
    """SageMaker Processing's side of the contract, for `prepare` and `evaluate`: every input and output of a
    processing job is a folder under /opt/ml/processing, named by the job's request (the
    launcher uses these very names), and a failed job's reason goes to /opt/ml/output/message."""

    root: Path

    @classmethod
    def from_env(cls, env: dict[str, str] | None = None) -> ProcessingPaths:
        return cls(Paths.from_env(env).root)

    @property
    def model_dir(self) -> Path:
        """Where the job downloads the training job's model.tar.gz."""
        return self.root / "processing" / "model"

    def channel(self, name: str) -> Path:
        return self.root / "processing" / "input" / name

    @property
    def raw_dir(self) -> Path:
        """`prepare`'s input: Kaggle's train.csv and the SHA256SUMS that names it."""
        return self.root / "processing" / "input" / "raw"

    @property
    def split_dir(self) -> Path:
        """What `prepare` uploads when it ends: train/, validation/ and manifest.json."""
        return self.root / "processing" / "split"

    @property
    def evaluation_dir(self) -> Path:
        """What the job uploads when it ends: evaluation.json."""
        return self.root / "processing" / "evaluation"

    @property
    def message_file(self) -> Path:
        """Its first 1 KB becomes DescribeProcessingJob's ExitMessage."""
        return self.root / "output" / "message"


def write_atomically(path: Path, write: Callable[[Path], object]) -> None:
    """`write` fills a file beside `path`, which then replaces it: a reader sees the old file or
    the whole new one, never half of it."""
    partial = path.with_name(f".{path.name}.partial")
    write(partial)
    os.replace(partial, path)


def write_json(path: Path, data: object) -> None:
    write_atomically(path, lambda p: p.write_text(json.dumps(data, indent=2, sort_keys=True) + "\n", encoding="utf-8"))


def _write_reason(path: Path, reason: str) -> None:
    """One line a person can act on, at most the 1,024 characters SageMaker shows."""
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(" ".join(reason.split())[:FAILURE_REASON_LIMIT] + "\n", encoding="utf-8")


def write_failure(paths: Paths, reason: str) -> None:
    """Where SageMaker reads a training job's FailureReason from."""
    _write_reason(paths.failure_file, reason)


def write_exit_message(paths: ProcessingPaths, reason: str) -> None:
    """Where SageMaker reads a processing job's ExitMessage from."""
    _write_reason(paths.message_file, reason)


def remove_model_artifacts(paths: Paths) -> None:
    """After a failure, nothing in the model folder may look like a finished model."""
    for name in MODEL_ARTIFACTS:
        for path in (paths.model_dir / name, paths.model_dir / f".{name}.partial"):
            path.unlink(missing_ok=True)
