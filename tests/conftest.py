"""Fixtures shared by every tier: the split data, a fake /opt/ml tree, the Docker gate."""

from __future__ import annotations

import csv
import functools
import json
import os
import shutil
import subprocess
import sys
import tarfile
import urllib.request
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import boto3
import pandas as pd
import pytest
from checkout import free_port
from moto.server import ThreadedMotoServer
from titanic_model import contract

from launcher.lib.config import Settings, load

REPO = Path(__file__).resolve().parent.parent
# The SDK's v2 deprecation banner, as make suppresses it for the launcher.
os.environ.setdefault("SAGEMAKER_SUPPRESS_V2_WARNING", "1")


def truthy_ci(env: dict[str, str] | os._Environ[str]) -> bool:
    """Any truthy CI (true, 1, yes, on; any case) turns a skipped Docker or stack test into a failure."""
    return env.get("CI", "").strip().lower() in ("true", "1", "yes", "on")


IN_CI = truthy_ci(os.environ)
# Written by Python or pytest when run outside `make test`, which turns both off.
_CACHES = ("__pycache__", ".pytest_cache", ".ruff_cache")
# A developer's running embedded stack logs every request, including make's read-only
# liveness check when a test runs `make config` in the checkout.
_SERVER_LOGS = ("moto.log", "registry.log", "moto-recording.jsonl")


def _checkout_files() -> dict[str, tuple[int, int]]:
    """Every file of the checkout (but .git, .venv's contents and caches) with its mtime and
    size, every folder (an empty one a test made counts), and .venv/.installed, the stamp a
    copy would touch if it reinstalled into the checkout's environment instead of sharing it."""
    found = {}
    for path in REPO.rglob("*"):
        parts = path.relative_to(REPO).parts
        if parts[0] in (".git", ".venv") or any(p in _CACHES for p in parts):
            continue
        if parts[0] == ".local" and path.name in _SERVER_LOGS:
            continue
        if path.is_dir():
            found[f"{path.relative_to(REPO)}/"] = (0, 0)
        elif path.is_file():
            stat = path.stat()
            found[str(path.relative_to(REPO))] = (stat.st_mtime_ns, stat.st_size)
    installed = REPO / ".venv/.installed"
    if installed.exists():
        found[".venv/.installed"] = (installed.stat().st_mtime_ns, installed.stat().st_size)
    return found


@pytest.fixture(scope="session", autouse=True)
def checkout_is_left_alone() -> Iterator[None]:
    """Tests run copies, temporary folders and their own servers: the developer's checkout
    (its build/ stamps, runs/, .local/ stack) must be exactly as it was."""
    before = _checkout_files()
    yield
    after = _checkout_files()
    changed = sorted(k for k in before.keys() | after.keys() if before.get(k) != after.get(k))
    assert not changed, f"tests wrote into the checkout: {changed[:10]}"


@functools.cache
def docker_engine_up() -> bool:
    try:
        return subprocess.run(["docker", "info"], capture_output=True, timeout=30).returncode == 0
    except (OSError, subprocess.TimeoutExpired):
        return False


def pytest_runtest_setup(item: pytest.Item) -> None:
    """No engine: a developer's run skips the Docker tiers; CI fails them (a skip there hides a gap)."""
    if not (item.get_closest_marker("docker") or item.get_closest_marker("stack")) or docker_engine_up():
        return
    reason = "no Docker engine answers 'docker info'"
    if IN_CI:
        pytest.fail(f"CI=true requires the Docker tier to run, but {reason}")
    pytest.skip(f"{reason}; start dockerd to run this tier")


def shipped() -> dict[str, str]:
    """The shipped settings, read from config.env's KEY=value lines as make reads them."""
    settings = {}
    for line in (REPO / "config.env").read_text().splitlines():
        if line and not line.startswith("#"):
            key, _, value = line.partition("=")
            settings[key] = value
    return settings


def settings_for(**changes: str) -> Settings:
    """The shipped settings with these changes, checked by the toolkit's own loader."""
    return load({**shipped(), **changes})


def aws_settings(**changes: str) -> Settings:
    """The shipped settings on TARGET=aws, with these changes."""
    return settings_for(**{"TARGET": "aws", **changes})


def run_record(**changes: Any) -> dict[str, Any]:
    """A run record as training writes it when a job starts (every key RunRecord requires,
    launcher/lib/records.py), with `changes` on top; tests add the sections they need."""
    channel = {"uri": "s3://titanic-sagemaker-toolkit-demo/titanic/data/train/", "sha256": "0" * 64, "rows": 712}
    record = {
        "job_name": "titanic-lgbm-2026-12-01-10-00-00-000",
        "target": "local",
        "region": "us-east-1",
        "started_at": "2026-12-01T10:00:00+00:00",
        "image": {"uri": "127.0.0.1:5000/titanic-lightgbm:t", "digest": "sha256:" + "a" * 64, "image_id": ""},
        "data": {"train": channel, "validation": {**channel, "rows": 179}},
        "hyperparameters": {"num_leaves": "15"},
        "instance": {
            "type": "local",
            "configured_type": "ml.m5.large",
            "count": 1,
            "spot": False,
            "max_run": 3600,
            "max_wait": 7200,
        },
        "checkpoint_uri": None,
        "launched_by": "arn:aws:iam::123456789012:user/me",
        "toolkit_commit": "abc",
        "status": "InProgress",
    }
    return {**record, **changes}


TRAINING_JOB = "titanic-lgbm-2026-11-26-10-00-00-000"


def described_training_job(status: str, secondary: str = "Training", **extra: Any) -> dict[str, Any]:
    """A DescribeTrainingJob answer with the fields the API reference marks required."""
    now = datetime(2026, 11, 26, 10, 0, tzinfo=UTC)
    return {
        "TrainingJobName": TRAINING_JOB,
        "TrainingJobArn": f"arn:aws:sagemaker:us-east-1:123456789012:training-job/{TRAINING_JOB}",
        "TrainingJobStatus": status,
        "SecondaryStatus": secondary,
        "ModelArtifacts": {"S3ModelArtifacts": f"s3://b/titanic/output/{TRAINING_JOB}/output/model.tar.gz"},
        "AlgorithmSpecification": {"TrainingImage": "i", "TrainingInputMode": "File"},
        "ResourceConfig": {"InstanceType": "ml.m5.large", "InstanceCount": 1, "VolumeSizeInGB": 5},
        "StoppingCondition": {"MaxRuntimeInSeconds": 900},
        "CreationTime": now,
        "TrainingStartTime": now,
        **extra,
    }


def no_sleep(_: float) -> None:
    return None


TRUST = {
    "Version": "2012-10-17",
    "Statement": [{"Effect": "Allow", "Principal": {"Service": "sagemaker.amazonaws.com"}, "Action": "sts:AssumeRole"}],
}


def seeded_account(role_path: str = "/service-role/", trust: dict = TRUST, bucket_region: str = "us-east-1") -> None:
    iam = boto3.client("iam", region_name="us-east-1")
    iam.create_role(RoleName="titanic-sagemaker-execution", Path=role_path, AssumeRolePolicyDocument=json.dumps(trust))
    s3 = boto3.client("s3", region_name=bucket_region)
    config = (
        {} if bucket_region == "us-east-1" else {"CreateBucketConfiguration": {"LocationConstraint": bucket_region}}
    )
    s3.create_bucket(Bucket="titanic-sagemaker-toolkit-demo", **config)
    boto3.client("ecr", region_name="us-east-1").create_repository(repositoryName="titanic-lightgbm")


def offline_client(service: str) -> Any:
    """A client with dummy credentials for botocore's Stubber: every request it would send is
    checked against the API model, and none leaves this process."""
    return boto3.client(service, region_name="us-east-1", aws_access_key_id="x", aws_secret_access_key="x")


class OneClientSession:
    """A boto3 session stand-in whose every client is the one given (a stubbed client)."""

    def __init__(self, client: Any) -> None:
        self.given = client

    def client(self, name: str, *args: Any, **kwargs: Any) -> Any:
        return self.given


@pytest.fixture(scope="session")
def offline_base() -> str:
    """No image can be pulled here: a Python base built from Debian packages, once per machine."""
    name = os.environ.get("TEST_BASE_IMAGE", shipped()["OFFLINE_BASE_IMAGE"])
    result = subprocess.run(
        [str(REPO / "scripts/build-offline-base.sh"), name], capture_output=True, text=True, timeout=1800
    )
    assert result.returncode == 0, result.stderr
    return name


TEST_IMAGE = "titanic-lightgbm:test"


def run_script(script: str, **env: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(REPO / "scripts" / script)], env={**os.environ, **env}, capture_output=True, text=True, timeout=1800
    )


@pytest.fixture(scope="session")
def image(offline_base: str) -> str:
    """The image as CI builds it: scripts/build-image.sh on the offline base."""
    result = run_script("build-image.sh", IMAGE_NAME=TEST_IMAGE, BASE_IMAGE=offline_base, BASE_IMAGE_FALLBACK="none")
    assert result.returncode == 0, result.stderr[-3000:]
    return TEST_IMAGE


@pytest.fixture(scope="session")
def split_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The data stage's output (train/train.csv, validation/val.csv, manifest.json)."""
    out = tmp_path_factory.mktemp("split")
    subprocess.run(
        [
            sys.executable,
            "-m",
            "launcher.prepare_data",
            "--source",
            str(REPO / "data/titanic/train.csv"),
            "--checksums",
            str(REPO / "data/titanic/SHA256SUMS"),
            "--out",
            str(out),
        ],
        cwd=REPO,
        env={**os.environ, "PYTHONPATH": f"{REPO / 'container'}:{REPO}"},
        check=True,
        capture_output=True,
    )
    return out


def processing_tree(root: Path, model_dir: Path, split_dir: Path) -> contract.ProcessingPaths:
    """/opt/ml as a processing job lays it out for evaluate: the model's archive and the two
    channels (titanic_model.contract.ProcessingPaths)."""
    paths = contract.ProcessingPaths(root)
    paths.model_dir.mkdir(parents=True)
    with tarfile.open(paths.model_dir / contract.MODEL_ARCHIVE, "w:gz") as tar:
        for member in sorted(model_dir.iterdir()):
            tar.add(member, arcname=member.name)
    for channel in ("train", "validation"):
        shutil.copytree(split_dir / channel, paths.channel(channel))
    return paths


def make_sm_root(root: Path, split_dir: Path, channels: tuple[str, ...] = ("train", "validation")) -> Path:
    """A fresh /opt/ml tree as SageMaker lays it out, with the given channels filled."""
    for sub in ("input/config", "input/data", "model", "output"):
        (root / sub).mkdir(parents=True, exist_ok=True)
    for channel in channels:
        shutil.copytree(split_dir / channel, root / "input/data" / channel)
    return root


def long_training_channel(root: Path, split_dir: Path, copies: int = 20) -> None:
    """A train channel `copies` times the size of the split, each copy its own set of families
    (surnames and tickets suffixed), so training runs long enough to interrupt and still learns what the
    real data teaches; the validation channel is the real one."""
    train = pd.read_csv(split_dir / "train/train.csv")
    parts = []
    for k in range(copies):
        part = train.copy()
        part["Name"] = part["Name"].str.replace(",", f"{k},", n=1, regex=False)
        part["Ticket"] = part["Ticket"].astype(str) + f"-{k}"
        part["PassengerId"] = part["PassengerId"] + 10_000 * k
        parts.append(part)
    (root / "input/data/train").mkdir(parents=True, exist_ok=True)
    pd.concat(parts, ignore_index=True).to_csv(root / "input/data/train/train.csv", index=False)
    (root / "input/data/validation").mkdir(parents=True, exist_ok=True)
    shutil.copy(split_dir / "validation/val.csv", root / "input/data/validation/val.csv")


LONG_RUN = {"n_estimators": "1500", "checkpoint_every": "50", "learning_rate": "0.01"}


def long_run_root(root: Path, split_dir: Path) -> Path:
    """An /opt/ml tree for a training run long enough to interrupt, with a checkpoint folder."""
    for sub in ("input/config", "model", "output", "checkpoints"):
        (root / sub).mkdir(parents=True, exist_ok=True)
    long_training_channel(root, split_dir)
    (root / "input/config/hyperparameters.json").write_text(json.dumps(LONG_RUN))
    return root


@pytest.fixture(scope="session")
def trained_root(tmp_path_factory: pytest.TempPathFactory, split_dir: Path) -> Path:
    """An /opt/ml tree after a real training run on this host (model/ and output/data/)."""
    root = make_sm_root(tmp_path_factory.mktemp("trained") / "ml", split_dir)
    env = {**os.environ, "SAGEMAKER_BASE_DIR": str(root), "PYTHONPATH": str(REPO / "container")}
    result = subprocess.run(
        [sys.executable, str(REPO / "container/entrypoint.py"), "train"],
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    return root


@pytest.fixture(scope="session")
def validation(split_dir: Path) -> pd.DataFrame:
    """The validation split as text cells, as a client would send it."""
    return pd.read_csv(split_dir / "validation/val.csv", dtype=str, keep_default_na=False)


def training_probabilities(root: Path) -> dict[str, float]:
    """PassengerId -> the probability training itself wrote for each validation row."""
    with (root / "output/data/validation_predictions.csv").open() as handle:
        return {row["PassengerId"]: float(row["probability"]) for row in csv.DictReader(handle)}


@pytest.fixture
def sm_root(tmp_path: Path, split_dir: Path) -> Path:
    return make_sm_root(tmp_path / "ml", split_dir)


class WithSageMaker(boto3.Session):
    """The real session (moto for S3, ECR, STS), with a stubbed SageMaker client, for what moto
    lacks: in-progress jobs to stop, StopTrainingJob, a tuning job's trials."""

    def __init__(self, sm: Any) -> None:
        super().__init__(region_name="us-east-1")
        self.sm = sm

    def client(self, name: str, *args: Any, **kwargs: Any) -> Any:  # type: ignore[override]
        return self.sm if name == "sagemaker" else super().client(name, *args, **kwargs)


@pytest.fixture
def moto_endpoint(monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    """A fresh moto server on 127.0.0.1 (plain HTTP), with the AWS variables pointing at it."""
    port = free_port()
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=port, verbose=False)
    server.start()
    endpoint = f"http://127.0.0.1:{port}"
    # moto's state is per process, not per server: start every test from an empty account.
    urllib.request.urlopen(urllib.request.Request(f"{endpoint}/moto-api/reset", method="POST"), timeout=30)
    for key in ("AWS_CA_BUNDLE", "AWS_PROFILE", "AWS_SESSION_TOKEN"):
        monkeypatch.delenv(key, raising=False)
    monkeypatch.setenv("AWS_ENDPOINT_URL", endpoint)
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    yield endpoint
    server.stop()
