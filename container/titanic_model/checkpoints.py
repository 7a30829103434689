"""Checkpoints for managed spot training: save the boosting state as it grows, resume from it.

SageMaker copies /opt/ml/checkpoints to the job's checkpoint_s3_uri while the job runs and
back into a restarted container after a spot interruption. Here:
- every `checkpoint_every` rounds (and when SIGTERM arrives) the booster so far is written
  as checkpoint-NNNNN.txt beside a small JSON naming its round and a fingerprint of the
  hyperparameters and data it was trained on, each written to a temporary name and renamed;
- at start, the newest checkpoint whose JSON, model text and fingerprint all check out is
  the one to continue from (a torn or foreign one is passed over, never trusted);
- SIGTERM sets a flag that the next round's callback sees: it saves, then stops training,
  so the container exits within one round of the signal.
Training the features is deterministic, so a resumed run refits them and only the boosting
continues (LightGBM's init_model).
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import signal
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import lightgbm

log = logging.getLogger(__name__)
_NAME = "checkpoint-{:05d}"


class TrainingInterrupted(RuntimeError):
    """SIGTERM arrived; the checkpoint of the last finished round has been written."""


@dataclass(frozen=True)
class Checkpoint:
    rounds: int
    model_file: Path


def fingerprint(hyperparameters: dict[str, Any], data_digests: dict[str, dict[str, str]]) -> str:
    """What a checkpoint must have been trained with to be continued."""
    text = json.dumps({"hyperparameters": hyperparameters, "data": data_digests}, sort_keys=True)
    return hashlib.sha256(text.encode()).hexdigest()


def _atomic_write(path: Path, text: str) -> None:
    partial = path.with_name(f".{path.name}.partial")
    partial.write_text(text, encoding="utf-8")
    os.replace(partial, path)


def save(directory: Path, booster: lightgbm.Booster, rounds: int, print_: str) -> Path:
    """Model text first, then the JSON that vouches for it: a JSON never names a torn model."""
    directory.mkdir(parents=True, exist_ok=True)
    stem = _NAME.format(rounds)
    model_file = directory / f"{stem}.txt"
    text = booster.model_to_string()
    _atomic_write(model_file, text)
    meta = {"rounds": rounds, "fingerprint": print_, "sha256": hashlib.sha256(text.encode()).hexdigest()}
    _atomic_write(directory / f"{stem}.json", json.dumps(meta, sort_keys=True))
    return model_file


def newest_valid(directory: Path, print_: str) -> Checkpoint | None:
    """The newest checkpoint that is whole and was made from the same hyperparameters and data."""
    if not directory.is_dir():
        return None
    for meta_file in sorted(directory.glob("checkpoint-*.json"), reverse=True):
        try:
            meta = json.loads(meta_file.read_text(encoding="utf-8"))
            model_file = meta_file.with_suffix(".txt")
            text = model_file.read_text(encoding="utf-8")
        except (OSError, ValueError) as exc:
            log.warning("skipping checkpoint %s: unreadable (%s)", meta_file.name, exc)
            continue
        if meta.get("fingerprint") != print_:
            log.warning("skipping checkpoint %s: made from other hyperparameters or data", meta_file.name)
            continue
        if hashlib.sha256(text.encode()).hexdigest() != meta.get("sha256"):
            log.warning("skipping checkpoint %s: its model file is not the one it describes", meta_file.name)
            continue
        return Checkpoint(rounds=int(meta["rounds"]), model_file=model_file)
    return None


class Checkpointer:
    """A LightGBM callback that checkpoints every `every` rounds and stops on SIGTERM."""

    def __init__(self, directory: Path, every: int, print_: str) -> None:
        self.directory, self.every, self.print_ = directory, every, print_
        self.stop_requested = False
        self.order = 20  # after LightGBM's own callbacks

    def install(self) -> None:
        signal.signal(signal.SIGTERM, self._on_sigterm)

    def _on_sigterm(self, signum: int, frame: object) -> None:
        log.warning("SIGTERM: saving a checkpoint after this round, then stopping")
        self.stop_requested = True

    def __call__(self, env: Any) -> None:
        rounds = env.iteration + 1  # LightGBM counts on from the rounds of its init_model
        last = env.iteration + 1 == env.end_iteration
        if self.stop_requested or (rounds % self.every == 0 and not last):
            save(self.directory, env.model, rounds, self.print_)
        if self.stop_requested and not last:
            raise TrainingInterrupted(
                f"stopped by SIGTERM after {rounds} rounds; checkpoint saved in {self.directory}, "
                "a restart resumes from it"
            )
