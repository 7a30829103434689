"""The container tier: build the image in a real Docker engine and run it as SageMaker does.

No image can be pulled here, so the image is built on the offline base (Debian packages,
scripts/build-offline-base.sh), built once per machine and reused.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import time
from pathlib import Path

import pytest
from conftest import long_run_root, make_sm_root, processing_tree, run_script
from corpus_cases import CASES, BadInput
from titanic_model import contract

pytestmark = pytest.mark.docker


def sagemaker_run(image: str, root: Path, *args: str) -> subprocess.CompletedProcess[str]:
    """What SageMaker does: /opt/ml mounted, no network, the one argument 'train'."""
    return subprocess.run(
        ["docker", "run", "--rm", "--network", "none", "-v", f"{root}:/opt/ml", image, *args],
        capture_output=True,
        text=True,
        timeout=600,
    )


def test_image_is_built_for_sagemakers_platform(image: str) -> None:
    inspect = json.loads(subprocess.run(["docker", "image", "inspect", image], capture_output=True, check=True).stdout)
    config = inspect[0]
    assert f"{config['Os']}/{config['Architecture']}" == "linux/amd64"
    assert config["Config"]["Entrypoint"] == ["python", "entrypoint.py"]


def test_trains_as_sagemaker_runs_it(image: str, sm_root: Path) -> None:
    (sm_root / "input/config/hyperparameters.json").write_text(json.dumps({"n_estimators": "120"}))
    result = sagemaker_run(image, sm_root, "train")
    assert result.returncode == 0, result.stderr
    metrics = json.loads((sm_root / "model/metrics.json").read_text())
    assert f"val_auc: {metrics['val_auc']:.6f}" in result.stdout.splitlines()
    card = json.loads((sm_root / "model/model_card.json").read_text())
    assert card["hyperparameters"]["n_estimators"] == 120
    assert (sm_root / "output/data/roc_curve.csv").is_file()
    assert not (sm_root / "output/failure").exists()

    # The artifact loads inside the image itself, from its working directory.
    load = subprocess.run(
        [
            "docker",
            "run",
            "--rm",
            "--network",
            "none",
            "-v",
            f"{sm_root}:/opt/ml",
            "--entrypoint",
            "python",
            image,
            "-c",
            "import joblib; m = joblib.load('/opt/ml/model/model.joblib'); print(type(m).__name__)",
        ],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert load.returncode == 0, load.stderr
    assert load.stdout.strip() == "Pipeline"


@pytest.mark.parametrize("case", CASES, ids=lambda c: c.file)
def test_bad_input_in_the_container(image: str, case: BadInput, tmp_path: Path, split_dir: Path) -> None:
    root = make_sm_root(tmp_path / "ml", split_dir)
    channel = root / "input/data" / case.channel
    shutil.rmtree(channel)
    channel.mkdir()
    shutil.copy(case.path, channel / case.path.name)
    result = sagemaker_run(image, root, "train")
    assert result.returncode == 1
    assert case.reason in (root / "output/failure").read_text()
    assert not any((root / "model").iterdir())


def test_evaluates_as_a_processing_job_runs_it(image: str, tmp_path: Path, trained_root: Path, split_dir: Path) -> None:
    """`docker run IMAGE evaluate` offline, over /opt/ml/processing as a job lays it out."""
    paths = processing_tree(tmp_path / "ml", trained_root / "model", split_dir)
    result = sagemaker_run(image, paths.root, "evaluate")
    assert result.returncode == 0, result.stderr[-3000:]
    written = json.loads((paths.evaluation_dir / contract.EVALUATION_FILE).read_text())
    assert written["reported"]["equal"] is True
    assert written["estimate"]["beats_every_rule"] is True


def test_refuses_any_other_command(image: str, sm_root: Path) -> None:
    result = sagemaker_run(image, sm_root, "predict")
    assert result.returncode == 1
    assert "knows 'train', 'serve', 'prepare', 'evaluate' and 'rescore'" in (sm_root / "output/failure").read_text()
    assert not any((sm_root / "model").iterdir())


def test_build_names_base_image_when_it_cannot_be_pulled() -> None:
    # A loopback address that refuses connections: the pull fails without leaving this machine.
    result = run_script(
        "build-image.sh",
        IMAGE_NAME="titanic-lightgbm:never",
        BASE_IMAGE="127.0.0.1:1/no-such-base:1",
        BASE_IMAGE_FALLBACK="none",
        OFFLINE_BASE_IMAGE="titanic-offline-base:bookworm",
    )
    assert result.returncode == 1
    last = result.stderr.strip().splitlines()[-1]
    assert "BASE_IMAGE=127.0.0.1:1/no-such-base:1 cannot be pulled" in last
    assert "make base-image" in last and "titanic-offline-base:bookworm" in last


def test_a_spot_interruption_checkpoints_and_the_restart_resumes(image: str, tmp_path: Path, split_dir: Path) -> None:
    """Managed spot: SageMaker sends SIGTERM, later starts the image again with the
    checkpoints it synced back. The first run must leave a checkpoint and exit promptly; the
    second must continue from it (not start over) and end with the configured trees."""
    root = long_run_root(tmp_path / "ml", split_dir)
    name = f"titanic-spot-{tmp_path.name[-12:].lower().replace('_', '-')}"
    started = subprocess.run(
        ["docker", "run", "-d", "--name", name, "--network", "none", "-v", f"{root}:/opt/ml", image, "train"],
        capture_output=True,
        text=True,
    )
    assert started.returncode == 0, started.stderr
    try:
        deadline = time.monotonic() + 180
        while not list((root / "checkpoints").glob("checkpoint-*.json")):
            assert time.monotonic() < deadline, subprocess.run(
                ["docker", "logs", name], capture_output=True, text=True
            ).stderr[-2000:]
            time.sleep(0.1)
        subprocess.run(["docker", "kill", "--signal", "TERM", name], check=True, capture_output=True)
        # SageMaker sends SIGKILL 120 s after SIGTERM: `docker wait` fails past that.
        code = subprocess.run(["docker", "wait", name], capture_output=True, text=True, timeout=120).stdout.strip()
        assert code == "143"
        logs = subprocess.run(["docker", "logs", name], capture_output=True, text=True).stderr
        assert "checkpoint saved" in logs and "Traceback" not in logs
    finally:
        subprocess.run(["docker", "rm", "-f", name], capture_output=True)
    assert not (root / "model/model.joblib").exists()
    saved = max(int(p.stem.split("-")[1]) for p in (root / "checkpoints").glob("checkpoint-*.json"))
    assert 0 < saved < 1500

    again = sagemaker_run(image, root, "train")
    assert again.returncode == 0, again.stderr[-2000:]
    assert f"resuming from checkpoint-{saved:05d}.txt: {saved} of 1500 rounds already done" in again.stderr
    card = json.loads((root / "model/model_card.json").read_text())
    assert card["boosting_rounds"] == 1500 and card["metrics"]["val_auc"] > 0.8
