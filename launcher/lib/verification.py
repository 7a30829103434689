"""Verifying a run (make verify, make train --verify): fetch a job's model.tar.gz from S3,
rescore it inside the job's own training image and check the numbers equal its metrics.json.

The pickled model is never loaded by this machine's Python (unpickling runs code, and anyone
who can write under the output prefix could have written it): the archive is unpacked as
data only, then `docker run --network none` with read-only mounts runs the image's
`rescore` command on it. The image is the one the job trained with, identified by its id.
The unpacked artifact stays in runs/<job>/ (model/ and output/), and the run record gains
a `verification` section, with the archive's SHA-256.
"""

from __future__ import annotations

import hashlib
import io
import json
import logging
import subprocess
import tarfile
from pathlib import Path

import boto3

from launcher.lib import records
from launcher.lib.caller import s3_bytes
from launcher.lib.dataset import SPLIT_FILES, sha256_file
from launcher.lib.errors import ToolkitError

log = logging.getLogger("verify")
TOLERANCE = 1e-6  # metrics.json holds six decimals


class VerifyError(ToolkitError):
    """The artifact is missing, unreadable, or disagrees with its own metrics."""


def download(uri: str, region: str) -> bytes:
    s3 = boto3.Session(region_name=region).client("s3")
    try:
        return s3_bytes(s3, uri)
    except s3.exceptions.NoSuchKey:
        raise VerifyError(f"{uri} does not exist; the job wrote no artifact (see its run record)") from None


def unpack(tar_bytes: bytes, target: Path) -> list[str]:
    """Extract with tarfile's 'data' filter: no absolute paths, no links out, no devices."""
    target.mkdir(parents=True, exist_ok=True)
    with tarfile.open(fileobj=io.BytesIO(tar_bytes), mode="r:gz") as tar:
        tar.extractall(target, filter="data")
        return sorted(m.name.removeprefix("./") for m in tar.getmembers() if m.isfile())


def _docker(*args: str, timeout: int = 600) -> subprocess.CompletedProcess[str]:
    try:
        return subprocess.run(["docker", *args], capture_output=True, text=True, timeout=timeout)
    except FileNotFoundError:
        raise VerifyError("docker is not installed; verify rescores the model inside its image") from None


def training_image(image: dict[str, str]) -> str:
    """A local reference to the exact image the job ran: by id when this machine has it, else
    pulled by its URI and checked to have that id."""
    image_id = image.get("image_id") or ""
    if image_id and _docker("image", "inspect", image_id).returncode == 0:
        return image_id
    pulled = _docker("pull", image["uri"])
    if pulled.returncode != 0:
        raise VerifyError(
            f"this machine lacks image {image_id or image['uri']} and cannot pull {image['uri']} "
            f"({pulled.stderr.strip()[-200:]}); log in to the registry ('make push' does) or build it here, and rerun"
        )
    found = _docker("image", "inspect", "--format", "{{.Id}}", image["uri"]).stdout.strip()
    if image_id and found != image_id:
        raise VerifyError(f"{image['uri']} is image {found}, not the {image_id} the job trained with")
    return image["uri"]


def rescore_in_image(image_ref: str, model_dir: Path, split_dir: Path) -> dict[str, float]:
    mounts = ["-v", f"{model_dir.resolve()}:/opt/ml/model:ro"]
    for channel, file_name in SPLIT_FILES.items():
        folder = (split_dir / file_name).parent.resolve()
        mounts += ["-v", f"{folder}:/opt/ml/input/data/{channel}:ro"]
    isolated = ["--network", "none", "--read-only", "--tmpfs", "/tmp"]
    result = _docker("run", "--rm", *isolated, *mounts, image_ref, "rescore")
    if result.returncode != 0:
        raise VerifyError(f"rescoring inside {image_ref} failed: {result.stderr.strip()[-500:]}")
    try:
        return json.loads(result.stdout.strip().splitlines()[-1])
    except (IndexError, json.JSONDecodeError):
        raise VerifyError(f"rescoring inside {image_ref} printed no metrics: {result.stdout[-300:]}") from None


def compare(reported: dict[str, float], scored: dict[str, float]) -> dict[str, dict[str, float]]:
    checked = {}
    for name, value in sorted(reported.items()):
        if name not in scored:
            continue
        checked[name] = {"reported": value, "rescored": scored[name]}
        if abs(value - scored[name]) > TOLERANCE:
            raise VerifyError(
                f"{name} in metrics.json is {value} but the downloaded model scores {scored[name]:.6f}; "
                "the artifact does not match its metrics (different data or library versions?)"
            )
    if not checked:
        raise VerifyError("metrics.json shares no metric with the rescoring; was it written by this toolkit's image?")
    return checked


def verify(record_file: Path, split_dir: Path) -> records.RunRecord:
    record = records.read_record(record_file)
    if record.get("status") != "Completed" or not record.get("model_artifact"):
        raise VerifyError(f"job {record['job_name']} is {record.get('status')}, with no model to verify")
    for channel, file_name in SPLIT_FILES.items():
        expected = record["data"][channel]["sha256"]
        if sha256_file(split_dir / file_name) != expected:
            raise VerifyError(
                f"{split_dir / file_name} is not the data job {record['job_name']} trained on; run 'make data' again"
            )
    job_dir = record_file.parent / record["job_name"]
    archive = download(record["model_artifact"], record["region"])
    members = unpack(archive, job_dir / "model")
    log.info("model.tar.gz holds %s", ", ".join(members))
    try:
        unpack(download(record["output_data"], record["region"]), job_dir / "output")
    except VerifyError:
        log.warning("no output.tar.gz for %s; evaluation detail is unavailable", record["job_name"])
    reported = json.loads((job_dir / "model" / "metrics.json").read_text(encoding="utf-8"))
    image_ref = training_image(record["image"])
    checked = compare(reported, rescore_in_image(image_ref, job_dir / "model", split_dir))
    record["verification"] = {
        "verified": True,
        "local_dir": str(job_dir),
        "files": members,
        "metrics": checked,
        "model_tar_sha256": hashlib.sha256(archive).hexdigest(),
        "rescored_in": image_ref,
    }
    records.write_record(record_file.parent, record)
    return record


def verify_job(runs_dir: Path, split_dir: Path, job: str) -> records.RunRecord:
    """Verify `job` (the latest run when empty), log what matched, and return its record."""
    record_file = records.record_path(runs_dir, job) if job else records.latest_record(runs_dir)
    if record_file is None or not record_file.is_file():
        which = f" for {job}" if job else ""
        raise VerifyError(f"no run record{which} in {runs_dir}; run 'make train' first")
    record = verify(record_file, split_dir)
    checked = record["verification"]["metrics"]
    log.info(
        "verified %s: %d metrics match (%s)",
        record["job_name"],
        len(checked),
        ", ".join(f"{k} {v['rescored']:.4f}" for k, v in checked.items() if k.startswith("val_")),
    )
    log.info("artifact unpacked in %s", record["verification"]["local_dir"])
    return record
