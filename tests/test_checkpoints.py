"""Spot training that really resumes: checkpoints while training, SIGTERM handled, resume
from the newest valid checkpoint, the configured number of trees at the end.

The image's own entry point runs here as a process (SAGEMAKER_BASE_DIR moves /opt/ml); the
Docker tier (test_image.py) runs the same sequence in the built image. SDK local mode refuses
checkpoint settings, so the container is the only place this can be exercised.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import lightgbm
import numpy as np
import pytest
from conftest import REPO, long_run_root
from titanic_model import checkpoints


def start(root: Path) -> subprocess.Popen[str]:
    env = {**os.environ, "SAGEMAKER_BASE_DIR": str(root), "PYTHONPATH": str(REPO / "container")}
    return subprocess.Popen(
        [sys.executable, str(REPO / "container/entrypoint.py"), "train"],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def wait_for_checkpoint(folder: Path, process: subprocess.Popen[str], seconds: float = 120) -> None:
    deadline = time.monotonic() + seconds
    while not list(folder.glob("checkpoint-*.json")):
        assert process.poll() is None, "training ended before its first checkpoint"
        assert time.monotonic() < deadline, "no checkpoint was written"
        time.sleep(0.05)


def test_sigterm_checkpoints_exits_promptly_and_a_restart_resumes(tmp_path: Path, split_dir: Path) -> None:
    root = long_run_root(tmp_path / "ml", split_dir)
    first = start(root)
    wait_for_checkpoint(root / "checkpoints", first)
    first.send_signal(signal.SIGTERM)
    # SageMaker's contract: SIGKILL follows SIGTERM after 120 s; communicate fails past that.
    _, err = first.communicate(timeout=120)
    assert first.returncode == 143, err[-2000:]
    assert "Traceback" not in err and "checkpoint saved" in err
    saved = checkpoints.newest_valid(
        root / "checkpoints", json.loads((sorted((root / "checkpoints").glob("*.json"))[-1]).read_text())["fingerprint"]
    )
    assert saved is not None and 0 < saved.rounds < 1500
    assert not list((root / "model").iterdir())  # nothing that looks like a finished model
    assert not (root / "output/failure").exists()  # an interruption is not a failure

    second = start(root)
    _, err = second.communicate(timeout=600)
    assert second.returncode == 0, err[-2000:]
    assert f"resuming from checkpoint-{saved.rounds:05d}.txt: {saved.rounds} of 1500 rounds already done" in err
    card = json.loads((root / "model/model_card.json").read_text())
    assert card["boosting_rounds"] == 1500  # the configured number of trees, not 1500 more
    resumed_auc = card["metrics"]["val_auc"]

    fresh = long_run_root(tmp_path / "fresh", split_dir)
    whole = start(fresh)
    whole.communicate(timeout=600)
    uninterrupted = json.loads((fresh / "model/model_card.json").read_text())["metrics"]["val_auc"]
    assert uninterrupted > 0.8  # a real model, not a degenerate one
    assert abs(resumed_auc - uninterrupted) < 0.02  # the same quality (bagging draws differ after a resume)


def _booster(rounds: int) -> lightgbm.Booster:
    data = lightgbm.Dataset(np.arange(20.0).reshape(-1, 1), label=[0, 1] * 10, params={"verbose": -1})
    return lightgbm.train({"objective": "binary", "verbose": -1, "min_data_in_leaf": 1}, data, num_boost_round=rounds)


def test_the_newest_valid_checkpoint_is_chosen(tmp_path: Path) -> None:
    folder = tmp_path / "checkpoints"
    for rounds in (5, 10, 15):
        checkpoints.save(folder, _booster(rounds), rounds, "mine")
    checkpoints.save(folder, _booster(20), 20, "another job's")  # foreign: other hyperparameters or data
    torn = folder / "checkpoint-00015.txt"
    torn.write_text(torn.read_text()[:100])  # cut off mid-write, as by a reclaimed instance
    chosen = checkpoints.newest_valid(folder, "mine")
    assert chosen is not None and chosen.rounds == 10
    assert checkpoints.newest_valid(tmp_path / "none", "mine") is None


@pytest.mark.parametrize("bad", ["not json", '{"rounds": 5}'])
def test_a_broken_description_is_passed_over(tmp_path: Path, bad: str) -> None:
    folder = tmp_path / "checkpoints"
    checkpoints.save(folder, _booster(5), 5, "mine")
    checkpoints.save(folder, _booster(10), 10, "mine")
    (folder / "checkpoint-00010.json").write_text(bad)
    assert checkpoints.newest_valid(folder, "mine").rounds == 5
