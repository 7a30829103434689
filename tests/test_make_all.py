"""The whole pipeline through the real Makefile and scripts, against the embedded stack.

Tests in this module share one copy (and its stack), and pass in any order: each one first
brings the copy to the state it needs with the same `make` a user would run, so a test that
kills the stack or cleans everything up leaves nothing the next one depends on.
"""

from __future__ import annotations

import csv
import json
import os
import re
import signal
import socket
import subprocess
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import joblib
import pandas as pd
import pytest
from checkout import Checkout, free_port, new_checkout, ran
from conftest import REPO, run_record
from titanic_model.data import typed

from launcher.lib import records

pytestmark = pytest.mark.stack
BUCKET = "titanic-sagemaker-toolkit-demo"


@pytest.fixture(scope="module")
def pipe(tmp_path_factory: pytest.TempPathFactory, offline_base: str) -> Iterator[Checkout]:
    pipeline = new_checkout(tmp_path_factory.mktemp("pipeline"), offline_base)
    # The first `make all` from the clean copy, and what it left in the emulated AWS, taken
    # before any test (in any order) changes it.
    pipeline.first_run = pipeline.make("all")
    pipeline.first_state = remote_state(pipeline) if pipeline.first_run.returncode == 0 else {}
    yield pipeline
    pipeline.cleanup()


@pytest.fixture(scope="module")
def first_run(pipe: Checkout) -> subprocess.CompletedProcess[str]:
    return pipe.first_run


def latest_record(pipe: Checkout) -> dict:
    paths = sorted((pipe.root / "runs").glob("*.json"), key=lambda p: p.stat().st_mtime)
    record = json.loads(paths[-1].read_text())
    assert records.shape_problems(record) == []  # the typed definition is what the code wrote
    return record


def remote_state(pipe: Checkout) -> dict[str, Any]:
    job = trained_job(pipe.first_run)
    key = f"titanic/output/{job}/output/model.tar.gz"
    ecr, s3, cloudformation = pipe.client("ecr"), pipe.client("s3"), pipe.client("cloudformation")
    repo = ecr.describe_repositories(repositoryNames=[pipe.settings["ECR_REPOSITORY"]])["repositories"][0]
    (stack,) = cloudformation.describe_stacks(StackName="titanic-lgbm-setup")["Stacks"]
    held = cloudformation.list_stack_resources(StackName="titanic-lgbm-setup")["StackResourceSummaries"]
    return {
        "model_size": s3.head_object(Bucket=BUCKET, Key=key)["ContentLength"],
        "repository": repo,
        # (moto lists the resource types it skipped under an empty logical id)
        "stack": (stack["StackStatus"], {r["LogicalResourceId"] for r in held} - {""}),
        "encryption": s3.get_bucket_encryption(Bucket=BUCKET)["ServerSideEncryptionConfiguration"],
        "image_id": image_id(pipe),
    }


def image_id(pipe: Checkout) -> str:
    """The id of the image `make build` last built in this copy."""
    name = f"{pipe.settings['ECR_REPOSITORY']}:local"
    inspected = subprocess.run(
        ["docker", "image", "inspect", "--format", "{{.Id}}", name], capture_output=True, text=True
    )
    return inspected.stdout.strip()


def ready(pipe: Checkout) -> None:
    """Stack up, data uploaded, image pushed (cheap when they are already): what every stage
    before training needs, whatever earlier tests did to the copy."""
    result = pipe.make("validate", "upload", "push")  # validate: every setting's stamp current too
    assert result.returncode == 0, result.stdout[-2000:] + result.stderr[-3000:]


def settled(pipe: Checkout) -> subprocess.CompletedProcess[str]:
    """Everything up to date (stack up, data uploaded, image pushed), a verified job done."""
    result = pipe.make("all")
    assert result.returncode == 0, result.stdout[-2000:] + result.stderr[-3000:]
    return result


def trained_job(result: subprocess.CompletedProcess[str]) -> str:
    return re.search(r"^job +(\S+) ", result.stdout, re.M).group(1)


def test_make_all_from_a_clean_copy_leaves_a_verified_model(pipe: Checkout, first_run) -> None:
    """The first `make all` of the module; in whatever order the tests ran, the copy was clean
    when the module's fixture made it, and this run did everything from scratch then."""
    assert first_run.returncode == 0, first_run.stdout[-3000:] + first_run.stderr[-3000:]
    for stage in ("launcher.prepare_data", "upload-data.sh", "build-image.sh", "push-image.sh", "launcher.train"):
        assert ran(first_run, stage), stage
    job = trained_job(first_run)
    record = json.loads((pipe.root / "runs" / f"{job}.json").read_text())
    assert records.shape_problems(record) == []
    assert job.startswith("titanic-lgbm-")
    assert record["status"] == "Completed"
    assert record["verification"]["verified"] is True
    assert record["metrics"]["val_auc"] >= 0.85
    # SageMaker's own layout: <output_path>/<job>/output/model.tar.gz, in the emulated S3.
    key = f"titanic/output/{job}/output/model.tar.gz"
    assert record["model_artifact"] == f"s3://{BUCKET}/{key}"
    state = pipe.first_state
    assert state["model_size"] > 1000
    # The image went through the registry under a tag named by its content, and the record
    # holds the id of the very image that was built.
    built = state["image_id"]
    assert record["image"]["image_id"] == built
    assert record["image"]["uri"].endswith(f"/{pipe.settings['ECR_REPOSITORY']}:sha256-{built.removeprefix('sha256:')}")
    assert record["image"]["digest"].startswith("sha256:")
    commit = subprocess.run(["git", "rev-parse", "HEAD"], cwd=pipe.root, capture_output=True, text=True).stdout.strip()
    assert record["toolkit_commit"].startswith(commit)
    # Verified inside that image, offline: the host never unpickled the model.
    assert record["verification"]["rescored_in"] == built
    assert record["data"]["train"]["rows"] == 712
    assert (pipe.root / "runs" / job / "model" / "model.joblib").is_file()
    # The human summary says where everything went.
    assert f"model        s3://{BUCKET}/{key}" in first_run.stdout
    # The set-up is the CloudFormation stack (iam/stack.json). moto's CloudFormation applies no
    # scan-on-push, lifecycle or public-access block: tests/test_stack.py holds the template to them.
    assert state["stack"] == (
        "CREATE_COMPLETE",
        {"Bucket", "Repository", "ExecutionRole", "PipelineRole", "RunnerPolicy", "RunnerPolicyPart2"},
    )
    assert state["repository"]["imageTagMutability"] == "IMMUTABLE"
    assert state["encryption"]["Rules"][0]["ApplyServerSideEncryptionByDefault"]["SSEAlgorithm"] == "AES256"


def test_make_n_all_then_prints_only_training(pipe: Checkout) -> None:
    ready(pipe)
    plan = pipe.make("-n", "all")
    assert plan.returncode == 0
    lines = [line for line in plan.stdout.splitlines() if line.strip()]
    # The machine check (silent, changing nothing when all is there) is in every plan; the only
    # stage is training.
    stages = [line for line in lines if line != "scripts/setup-machine.sh stack"]
    assert len(stages) == 1 and len(lines) == 2, plan.stdout
    assert "launcher.train" in stages[0] and "--verify" in stages[0]


def test_second_make_all_rebuilds_and_reuploads_nothing(pipe: Checkout) -> None:
    ready(pipe)
    second = pipe.make("all")
    assert second.returncode == 0, second.stderr[-3000:]
    for stage in ("upload-data.sh", "build-image.sh", "push-image.sh", "launcher.prepare_data"):
        assert not ran(second, stage), stage
    assert ran(second, "launcher.train")
    assert trained_job(second) != trained_job(pipe.make("all"))  # training always starts a new job


def test_all_verifies_the_job_it_trained_not_the_newest_record(pipe: Checkout) -> None:
    """A teammate's (or a concurrent cron run's) record written meanwhile must not be the one
    this run verifies."""
    settled(pipe)
    decoy = pipe.root / "runs" / "titanic-lgbm-2099-01-01-00-00-00-000.json"
    decoy.write_text(json.dumps(run_record(job_name=decoy.stem, status="Failed")))
    try:
        result = pipe.make("all")
    finally:
        decoy.unlink()
    assert result.returncode == 0, result.stderr[-3000:]
    assert f"verified {trained_job(result)}:" in result.stderr


def test_a_hyperparameter_change_only_retrains(pipe: Checkout) -> None:
    ready(pipe)
    result = pipe.make("all", HP_N_ESTIMATORS="40")
    assert result.returncode == 0, result.stderr[-3000:]
    for stage in ("upload-data.sh", "build-image.sh", "push-image.sh"):
        assert not ran(result, stage), stage
    record = latest_record(pipe)
    assert record["hyperparameters"]["n_estimators"] == "40"
    card = json.loads((pipe.root / "runs" / record["job_name"] / "model" / "model_card.json").read_text())
    assert card["hyperparameters"]["n_estimators"] == 40  # it reached the model, not just the request


def test_two_instances_train_one_verified_model(pipe: Checkout) -> None:
    """INSTANCE_COUNT=2: local mode starts two containers on the internal network; they train
    one model together, and the job completes with it (verified by make all)."""
    ready(pipe)
    result = pipe.make("all", INSTANCE_COUNT="2")
    assert result.returncode == 0, result.stderr[-3000:] + result.stdout[-3000:]
    record = latest_record(pipe)
    assert record["status"] == "Completed" and record["instance"]["count"] == 2
    assert record["cost"]["instances"] == 2
    assert re.search(rf"verified {record['job_name']}: \d+ metrics match", result.stdout + result.stderr)
    card = json.loads((pipe.root / "runs" / record["job_name"] / "model" / "model_card.json").read_text())
    assert len(card["distributed"]["hosts"]) == 2 and card["distributed"]["shares"] == "replicated"
    assert sorted(card["distributed"]["rows_per_host"].values()) == [356, 356]
    assert sorted(p.name for p in (pipe.root / "runs" / record["job_name"] / "model").iterdir()) == [
        "metrics.json",
        "model.joblib",
        "model_card.json",
    ]


def test_local_mode_without_sharding_is_noticed_not_double_counted(pipe: Checkout) -> None:
    """Local mode refuses ShardedByS3Key: the launcher sends FullyReplicated and says so, and the
    image sees identical files on both hosts and gives each its own block of rows."""
    ready(pipe)
    result = pipe.make("train", INSTANCE_COUNT="2", TRAIN_DISTRIBUTION="ShardedByS3Key")
    assert result.returncode == 0, result.stderr[-3000:]
    assert "local mode runs only FullyReplicated channels" in result.stderr
    assert result.stdout.count("356 rows of the train channel (replicated)") == 2
    assert latest_record(pipe)["status"] == "Completed"


def test_tune_jobs_then_train_with_the_best(pipe: Checkout) -> None:
    """Three trials, each a real local-mode training job with its own run record; the report;
    then make train HYPERPARAMETERS_FROM=tuned sends exactly the best trial's values."""
    ready(pipe)
    tune = pipe.make("tune-jobs", TUNE_MAX_JOBS="3")
    assert tune.returncode == 0, tune.stdout[-2000:] + tune.stderr[-3000:]
    outcome = json.loads((pipe.root / "runs/tuning/best-hyperparameters.json").read_text())
    trials = [json.loads(p.read_text()) for p in (pipe.root / "runs").glob("*.json")]
    trials = [t for t in trials if (t.get("tuning") or {}).get("name") == outcome["name"]]
    assert [records.shape_problems(t) for t in trials] == [[], [], []]
    assert sorted(t["tuning"]["trial"] for t in trials) == [1, 2, 3]
    assert all(t["status"] == "Completed" for t in trials)
    best = max(trials, key=lambda t: t["metrics"]["val_auc"])
    assert outcome["best"]["job_name"] == best["job_name"]
    report = (pipe.root / "reports/tuning" / f"{outcome['name']}.md").read_text()
    assert report.count("(Completed)") == 3 and f"| {best['tuning']['trial']} **best** |" in report
    assert (pipe.root / "reports/tuning" / f"{outcome['name']}.png").read_bytes()[:4] == b"\x89PNG"

    trained = pipe.make("train", HYPERPARAMETERS_FROM="tuned")
    assert trained.returncode == 0, trained.stderr[-3000:]
    record = latest_record(pipe)
    assert record["hyperparameters_from"]["best_trial"] == best["job_name"]
    for name, value in outcome["hyperparameters"].items():
        assert record["hyperparameters"][name] == best["hyperparameters"][name] == value
    # Same values, same data, same image: the same model quality as the best trial.
    assert record["metrics"]["val_auc"] == best["metrics"]["val_auc"]


def test_evidence_targets_after_a_run(pipe: Checkout) -> None:
    job = trained_job(settled(pipe))
    instance = pipe.make("instance-report")
    assert instance.returncode == 0, instance.stderr
    assert "**Choice: ml.m5.large**" in instance.stdout
    assert json.loads((pipe.root / "reports/instance-report.json").read_text())["choice"] == "ml.m5.large"
    cost = pipe.make("cost")
    assert cost.returncode == 0 and job in cost.stdout and "not billed" in cost.stdout
    report = pipe.make("report", JOB=job)
    assert report.returncode == 0, report.stderr
    text = (pipe.root / "reports" / f"{job}.md").read_text()
    assert "## Instance evidence" in text and f"make verify JOB={job}" in text
    assert (pipe.root / "reports" / job / "roc.png").read_bytes()[:4] == b"\x89PNG"


def test_a_failed_job_exits_with_its_reason_and_leaves_no_model(pipe: Checkout) -> None:
    ready(pipe)
    s3 = pipe.client("s3")
    bad_key = "titanic/data/train/zz-extra.csv"
    s3.put_object(Bucket=BUCKET, Key=bad_key, Body=b"PassengerId;Survived;Pclass\n1;0;3\n")
    try:
        result = pipe.make("train")
    finally:
        s3.delete_object(Bucket=BUCKET, Key=bad_key)
    assert result.returncode != 0
    assert "train/zz-extra.csv is semicolon-separated" in result.stderr
    record = latest_record(pipe)
    assert record["status"] == "Failed"
    assert "semicolon-separated" in record["failure_reason"]
    assert record["model_artifact"] is None
    listed = s3.list_objects_v2(Bucket=BUCKET, Prefix=f"titanic/output/{record['job_name']}/")
    assert not [o["Key"] for o in listed.get("Contents", []) if o["Key"].endswith("model.tar.gz")]


def test_a_dead_stack_is_restarted_and_refilled(pipe: Checkout) -> None:
    ready(pipe)
    pid = int((pipe.root / ".local/moto.pid").read_text())
    subprocess.run(["kill", str(pid)], check=True)
    wait_gone(pid)
    result = pipe.make("all")
    assert result.returncode == 0, result.stderr[-3000:]
    # moto forgot everything: the stack restarts, and upload and push redo (not the build).
    assert ran(result, "local-stack.sh up")
    assert ran(result, "upload-data.sh") and ran(result, "push-image.sh")
    assert not ran(result, "build-image.sh")


def test_a_stack_that_answers_late_is_kept(pipe: Checkout) -> None:
    """A busy moto (here paused for longer than one probe waits) is still the stack upload and
    push filled: make waits for it instead of taking it for a new one and redoing both (whose
    `sync --delete` would also drop what others put under the data prefix)."""
    ready(pipe)
    stack_id = pipe.root / ".local/stack-id"
    before = (stack_id.read_text(), stack_id.stat().st_mtime_ns)
    pid = int((pipe.root / ".local/moto.pid").read_text())
    resume = threading.Timer(12, os.kill, (pid, signal.SIGCONT))
    os.kill(pid, signal.SIGSTOP)
    resume.start()
    try:
        result = pipe.make("upload")
    finally:
        resume.cancel()
        os.kill(pid, signal.SIGCONT)
    assert result.returncode == 0, result.stderr[-3000:]
    assert not ran(result, "local-stack.sh up") and not ran(result, "upload-data.sh")
    assert (stack_id.read_text(), stack_id.stat().st_mtime_ns) == before


def test_a_running_stack_that_never_answers_is_named_not_replaced(pipe: Checkout) -> None:
    """A hung moto is still the one upload and push filled: local-up names it and what to do,
    and starts nothing in its place."""
    ready(pipe)
    stack_id = pipe.root / ".local/stack-id"
    before = (stack_id.read_text(), stack_id.stat().st_mtime_ns)
    pid = int((pipe.root / ".local/moto.pid").read_text())
    env = {
        **pipe.env,
        **{name: pipe.settings[name] for name in ("LOCAL_MOTO_PORT", "LOCAL_REGISTRY_PORT")},
        "LOCAL_STATE_DIR": str(pipe.root / ".local"),
        "MOTO_SERVER": str(REPO / ".venv/bin/moto_server"),
        "LOCAL_SERVING_NETWORK": "unused-before-the-servers-answer",
    }
    os.kill(pid, signal.SIGSTOP)
    try:
        up = subprocess.run(
            [str(pipe.root / "scripts/local-stack.sh"), "up"], env=env, capture_output=True, text=True, timeout=300
        )
    finally:
        os.kill(pid, signal.SIGCONT)
    assert up.returncode != 0
    assert "has not answered for 30s" in up.stderr and "'make local-down'" in up.stderr
    assert (stack_id.read_text(), stack_id.stat().st_mtime_ns) == before
    assert (pipe.root / ".local/moto.pid").read_text().strip() == str(pid)


def running(pid: int) -> bool:
    """Alive and not a zombie (a killed child of this test process stays one until reaped)."""
    try:
        return Path(f"/proc/{pid}/stat").read_text().split(") ")[1][0] != "Z"
    except (OSError, IndexError):
        return False


def wait_gone(pid: int) -> None:
    """Until the process is gone (as after a reboot); a failure naming it after 10 s."""
    for _ in range(100):
        if not running(pid):
            return
        time.sleep(0.1)
    pytest.fail(f"process {pid} is still running 10 s after it was stopped")


def test_a_fresh_empty_moto_behind_the_old_stack_id_is_noticed(pipe: Checkout) -> None:
    """An interrupted local-up can leave a new, empty moto running under the old stack's pid
    file. Its pid is alive and its port answers, but it is not the server upload and push
    filled: the stack id's start time says so, and the next run refills it."""
    ready(pipe)
    state = pipe.root / ".local"
    old = int((state / "moto.pid").read_text())
    subprocess.run(["kill", str(old)], check=True)
    wait_gone(old)
    port = pipe.settings["LOCAL_MOTO_PORT"]
    fresh = subprocess.Popen(  # what the interrupted local-up had started, and nothing more
        [
            str(Path(pipe.settings["VENV"]) / "bin/moto_server"),
            "-H",
            "127.0.0.1",
            "-p",
            port,
            "-c",
            str(state / "tls/cert.pem"),
            "-k",
            str(state / "tls/key.pem"),
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )
    (state / "moto.pid").write_text(f"{fresh.pid}\n")
    for _ in range(100):
        if (
            subprocess.run(
                ["curl", "-fsk", f"https://127.0.0.1:{port}/moto-api/data.json"], capture_output=True
            ).returncode
            == 0
        ):
            break
        time.sleep(0.2)
    else:
        pytest.fail(f"the fresh moto on port {port} did not answer within 20 s")
    result = pipe.make("all")
    assert result.returncode == 0, result.stderr[-3000:]
    assert ran(result, "upload-data.sh") and ran(result, "push-image.sh")


def test_a_recycled_pid_is_not_taken_for_the_stack(pipe: Checkout, tmp_path: Path) -> None:
    """After a reboot the pids in the stack id may belong to other processes."""
    ready(pipe)
    stack_id = (pipe.root / ".local/stack-id").read_text()
    state = tmp_path / "state"
    (state / "tls").mkdir(parents=True)
    (state / "tls/cert.pem").write_bytes((pipe.root / ".local/tls/cert.pem").read_bytes())
    strangers = [subprocess.Popen(["sleep", "60"]) for _ in range(2)]
    try:
        fake = re.sub(r"^moto_pid=\d+", f"moto_pid={strangers[0].pid}", stack_id, flags=re.M)
        fake = re.sub(r"^registry_pid=\d+", f"registry_pid={strangers[1].pid}", fake, flags=re.M)
        (state / "stack-id").write_text(fake)
        check = subprocess.run([str(pipe.root / "scripts/local-stack.sh"), "check", str(state)], capture_output=True)
        assert check.returncode != 0  # same pids would pass a pid-only check; the start times differ
        (state / "stack-id").write_text(stack_id)
        real = subprocess.run(
            [str(pipe.root / "scripts/local-stack.sh"), "check", str(state)], capture_output=True, text=True
        )
        assert real.returncode == 0 and real.stdout.split() == [
            pipe.settings["LOCAL_MOTO_PORT"],
            pipe.settings["LOCAL_REGISTRY_PORT"],
        ]
    finally:
        for process in strangers:
            process.kill()


def test_local_down_stops_exactly_what_local_up_started(pipe: Checkout) -> None:
    ready(pipe)
    pids = [int((pipe.root / f".local/{name}.pid").read_text()) for name in ("moto", "registry")]
    # A bystander of the same program on another port: local-down must not take it for its own.
    bystander = subprocess.Popen(
        [str(Path(pipe.settings["VENV"]) / "bin/moto_server"), "-H", "127.0.0.1", "-p", str(free_port())],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        assert pipe.make("local-down").returncode == 0
        for pid in pids:
            wait_gone(pid)
            assert not running(pid)
        assert running(bystander.pid), "local-down stopped a moto server it had not started"
    finally:
        bystander.kill()
        bystander.wait()
    status = pipe.make("local-status")
    assert status.returncode != 0 and "moto:     down" in status.stdout


def test_an_identical_rebuild_pushes_nothing_and_a_new_base_pushes_a_new_tag(pipe: Checkout, offline_base: str) -> None:
    """The reference run re-pushed an existing immutable tag from a dirty tree (refused four
    times), and reused the old remote image after BASE_IMAGE changed."""
    ready(pipe)
    readme = (pipe.root / "README.md").read_bytes()
    (pipe.root / "README.md").write_text("uncommitted change\n")  # a dirty tree
    (pipe.root / "build/stamps/image").unlink()  # rebuild from the same inputs
    try:
        again = pipe.make("push")
    finally:
        (pipe.root / "README.md").write_bytes(readme)  # the shared copy is clean again for the other tests
    assert again.returncode == 0, again.stderr[-3000:]
    assert ran(again, "build-image.sh") and "with exactly this content; nothing to push" in again.stderr
    first_id = json.loads((pipe.root / "build/local/image.json").read_text())["image_id"]

    other_base = f"{offline_base}-alt"
    subprocess.run(
        ["docker", "build", "-q", "-t", other_base, "-"],
        input=f"FROM {offline_base}\nLABEL alt=1\n",
        text=True,
        check=True,
        capture_output=True,
    )
    try:
        rebased = pipe.make("push", BASE_IMAGE=other_base)
        record = json.loads((pipe.root / "build/local/image.json").read_text())
        rebased_id = image_id(pipe)
    finally:
        restored = pipe.make("push")  # back to the shipped base for the other tests
        subprocess.run(["docker", "image", "rm", other_base], capture_output=True)
    assert rebased.returncode == 0, rebased.stderr[-3000:]
    assert record["image_id"] == rebased_id != first_id
    assert record["tag"] == f"sha256-{record['image_id'].removeprefix('sha256:')}"
    assert restored.returncode == 0, restored.stderr[-3000:]


def test_two_runs_take_turns(pipe: Checkout) -> None:
    """A cron run overlapping a manual one: the second waits LOCK_WAIT seconds, then gives up
    with a message naming the holder, having changed nothing."""
    ready(pipe)
    lock = pipe.root / "build/toolkit.lock"
    holder = subprocess.Popen(
        ["flock", str(lock), "sh", "-c", "echo 'pid 1: make all, since now' > " + str(lock) + "; sleep 30"]
    )
    runs = pipe.root / "runs"
    before = {p: p.stat().st_mtime_ns for p in runs.rglob("*")}
    try:
        for _ in range(100):  # the holder has the lock once it has written its line into the file
            if lock.is_file() and lock.read_text().startswith("pid 1"):
                break
            time.sleep(0.1)
        else:
            pytest.fail("the lock holder did not take the lock within 10 s")
        refused = pipe.make("train")
        assert refused.returncode != 0
        assert "another toolkit run holds" in refused.stderr and "LOCK_WAIT" in refused.stderr
        assert "starting training job" not in refused.stderr  # what train logs (to stderr) as it starts one
        assert {p: p.stat().st_mtime_ns for p in runs.rglob("*")} == before  # no record written or touched
    finally:
        holder.kill()
        holder.wait()
    queued = pipe.make("train", LOCK_WAIT="60")
    assert queued.returncode == 0, queued.stderr[-2000:]


def test_verify_never_unpickles_on_this_machine(pipe: Checkout, tmp_path: Path) -> None:
    """Anyone who can write under the output prefix could plant a pickle that runs code when
    loaded: verify loads it only inside the image, offline, on read-only mounts."""
    job = trained_job(settled(pipe))
    marker = tmp_path / "pwned"
    payload = f"import os\nclass Evil:\n    def __reduce__(self):\n        return (os.system, ('touch {marker}',))\n"
    planted = tmp_path / "planted"
    planted.mkdir()
    subprocess.run(
        [
            str(Path(pipe.settings["VENV"]) / "bin/python"),
            "-c",
            payload + f"import joblib; joblib.dump(Evil(), '{planted}/model.joblib')",
        ],
        check=True,
    )
    members = pipe.root / "runs" / job / "model"
    (planted / "metrics.json").write_bytes((members / "metrics.json").read_bytes())
    archive = tmp_path / "model.tar.gz"
    subprocess.run(["tar", "-czf", str(archive), "-C", str(planted), "model.joblib", "metrics.json"], check=True)
    s3 = pipe.client("s3")
    key = f"titanic/output/{job}/output/model.tar.gz"
    s3.upload_file(str(archive), BUCKET, key)
    result = pipe.make("verify", JOB=job)
    assert result.returncode != 0 and "rescoring inside" in result.stderr
    assert not marker.exists(), "the planted pickle ran on this machine"


def test_clean_resources_removes_only_the_toolkits(pipe: Checkout) -> None:
    ready(pipe)
    s3, ecr = pipe.client("s3"), pipe.client("ecr")
    foreign_keys = ["titanic/data-other/keep.csv", "other/titanic/data/keep.csv", "titanic/keep.txt"]
    for key in foreign_keys:
        s3.put_object(Bucket=BUCKET, Key=key, Body=b"not ours")
    s3.create_bucket(Bucket="someone-elses-bucket")
    s3.put_object(Bucket="someone-elses-bucket", Key="titanic/data/train/train.csv", Body=b"theirs")
    ecr.create_repository(repositoryName="someone-elses-repo")
    try:
        dry = pipe.make("clean-resources")
        assert dry.returncode == 0
        assert "would delete ECR image" in dry.stderr and "dry run" in dry.stderr
        assert s3.list_objects_v2(Bucket=BUCKET, Prefix="titanic/data/")["KeyCount"] > 0  # nothing deleted yet

        done = pipe.make("clean-resources", CONFIRM="yes")
        assert done.returncode == 0, done.stderr
        keys = [o["Key"] for o in s3.list_objects_v2(Bucket=BUCKET).get("Contents", [])]
        assert sorted(keys) == sorted(foreign_keys)
        repo = pipe.settings["ECR_REPOSITORY"]
        assert ecr.list_images(repositoryName=repo)["imageIds"] == []  # the images go, the repository stays
        assert not (pipe.root / "build/local/uploaded").exists() and not (pipe.root / "build/local/image.json").exists()

        again = pipe.make("clean-resources", CONFIRM="yes")
        assert again.returncode == 0 and "nothing to delete" in again.stderr

        # teardown deletes the set-up stack, then what it retained, if tagged ours; a bucket with
        # others' objects stays.
        down = pipe.make("teardown", CONFIRM="yes")
        assert down.returncode == 0, down.stderr
        assert "retained by the stack" in down.stderr and "kept bucket" in down.stderr
        assert pipe.client("cloudformation").describe_stacks()["Stacks"] == []
        repos = [r["repositoryName"] for r in ecr.describe_repositories()["repositories"]]
        assert "someone-elses-repo" in repos and repo not in repos
        assert s3.head_object(Bucket="someone-elses-bucket", Key="titanic/data/train/train.csv")
    finally:
        for key in foreign_keys:
            s3.delete_object(Bucket=BUCKET, Key=key)
    # After a clean-up the next run puts everything back.
    refill = pipe.make("all")
    assert refill.returncode == 0, refill.stderr[-3000:]
    assert ran(refill, "launcher.stack deploy") and ran(refill, "upload-data.sh") and ran(refill, "push-image.sh")


def test_an_untagged_repository_is_not_ours(pipe: Checkout) -> None:
    """A shared repository the toolkit did not create keeps its images and lifecycle policy."""
    ready(pipe)
    ecr = pipe.client("ecr")
    repo = ecr.describe_repositories(repositoryNames=[pipe.settings["ECR_REPOSITORY"]])["repositories"][0]
    ecr.untag_resource(resourceArn=repo["repositoryArn"], tagKeys=["created-by"])
    try:
        listed = pipe.make("clean-resources", CONFIRM="yes")
        assert listed.returncode == 0
        assert f"not ours, left alone: ECR repository {repo['repositoryName']}" in listed.stderr
        assert ecr.list_images(repositoryName=repo["repositoryName"])["imageIds"]
    finally:
        ecr.tag_resource(
            resourceArn=repo["repositoryArn"], tags=[{"Key": "created-by", "Value": "titanic-sagemaker-toolkit"}]
        )


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        ({"BUCKET": "Bad_Bucket"}, "BUCKET: 'Bad_Bucket' is not a valid bucket name"),
        ({"MAX_WAIT": "600", "MAX_RUN": "900"}, "MAX_WAIT: is 600 but MAX_RUN is 900; with USE_SPOT=yes"),
        ({"ROLE_ARN": "arn:aws:iam::123456789012:titanic"}, "ROLE_ARN: 'arn:aws:iam::123456789012:titanic' is not"),
        ({"INSTANCE_TYPE": "ml.c5.large"}, "INSTANCE_TYPE: 'ml.c5.large' is not a SageMaker training instance type"),
        ({"HP_N_ESTIMATORS": "lots"}, "HP_N_ESTIMATORS: n_estimators='lots' is not a valid int"),
        ({"TARGET": "cloud"}, "TARGET: is 'cloud'; use one of local, aws"),
    ],
)
def test_config_errors_stop_before_any_aws_call(pipe: Checkout, overrides: dict, message: str) -> None:
    result = pipe.make("all", **overrides)
    assert result.returncode != 0
    assert message in result.stderr
    # Nothing but the settings check ran: no script, no other launcher module (each reaches AWS,
    # the embedded stack or Docker).
    scripts = [p.name for p in (REPO / "scripts").glob("*.sh")]
    modules = [f"launcher.{p.stem}" for p in (REPO / "launcher").glob("*.py") if p.stem not in ("settings", "__init__")]
    steps = [*scripts, *modules]
    assert [step for step in steps if ran(result, step)] == []
    assert ran(result, "launcher.settings")


def test_a_port_held_by_another_process_is_named(pipe: Checkout) -> None:
    with socket.socket() as squatter:
        squatter.bind(("127.0.0.1", 0))
        squatter.listen()
        port = str(squatter.getsockname()[1])
        result = pipe.make("local-up", LOCAL_MOTO_PORT=port, LOCAL_STATE_DIR=str(pipe.root / ".local-other"))
    assert result.returncode != 0
    assert f"port {port} on 127.0.0.1 is in use by another process; set LOCAL_MOTO_PORT" in result.stderr


def test_evaluate_judges_the_verified_model_as_a_processing_job(pipe: Checkout) -> None:
    """make evaluate on the embedded stack: the image's evaluate command in local mode's
    processing job, evaluation.json beside the model in S3 and in runs/<job>/, the record's
    section, and no container left behind."""
    job = trained_job(settled(pipe))
    result = pipe.make("evaluate")
    assert result.returncode == 0, result.stdout[-2000:] + result.stderr[-3000:]
    record = latest_record(pipe)
    evaluation = record["evaluation"]
    assert record["job_name"] == job and evaluation["job_name"].startswith("titanic-lgbm-eval-")
    assert evaluation["val_auc"] == pytest.approx(record["metrics"]["val_auc"], abs=1e-6)
    assert evaluation["reported_equal"] is True and evaluation["beats_every_rule"] is True
    written = json.loads((pipe.root / "runs" / job / "evaluation.json").read_text())
    assert len(written["estimate"]["baselines"]) == 3
    key = evaluation["uri"].removeprefix(f"s3://{BUCKET}/")
    assert key == f"titanic/output/{job}/evaluation/evaluation.json"
    assert json.loads(pipe.client("s3").get_object(Bucket=BUCKET, Key=key)["Body"].read()) == written
    assert "val_auc 0.8964 (equal to training's), beats every rule" in result.stderr
    # By the image's name as this copy runs it: `ancestor=` alone also matches the Docker tier's
    # containers of the same image content under its own registry's name.
    uri = record["image"]["uri"]
    exited = [
        "docker",
        "ps",
        "-a",
        "--filter",
        f"ancestor={uri}",
        "--filter",
        "status=exited",
        "--format",
        "{{.Image}}",
    ]
    assert uri not in subprocess.run(exited, capture_output=True, text=True).stdout.split()


def test_predict_writes_a_kaggle_submission_equal_to_the_models_own_predictions(pipe: Checkout) -> None:
    job = trained_job(settled(pipe))
    result = pipe.make("predict")
    assert result.returncode == 0, result.stdout[-2000:] + result.stderr[-3000:]
    job_dir = pipe.root / "runs" / job
    submission = pd.read_csv(job_dir / "submission.csv")
    assert list(submission.columns) == ["PassengerId", "Survived"] and len(submission) == 418
    assert submission["PassengerId"].dtype.kind == "i" and set(submission["Survived"]) <= {0, 1}
    # The served answers are the trained pipeline's own, to the last digit (our own artifact,
    # unpacked by verify; loading it here is the test's business, not the toolkit's).
    model = joblib.load(job_dir / "model" / "model.joblib")
    raw = pd.read_csv(REPO / "data/titanic/test.csv", dtype=str, keep_default_na=False, na_values=[""])
    expected = model.predict_proba(typed(raw, require_label=False, locate=str))[:, 1]
    with (job_dir / "probabilities.csv").open() as handle:
        served = list(csv.DictReader(handle))
    assert [row["PassengerId"] for row in served] == list(raw["PassengerId"])
    assert [float(row["probability"]) for row in served] == expected.tolist()
    assert (submission["Survived"] == (expected >= 0.5).astype(int)).all()
    predicted = json.loads((pipe.root / "runs" / f"{job}.json").read_text())
    assert records.shape_problems(predicted) == []
    transform = predicted["transforms"][-1]
    assert transform["input"]["rows"] == 418 and transform["instance_type"] == "local"
    key = transform["submission_uri"].removeprefix(f"s3://{BUCKET}/")
    uploaded = pipe.client("s3").get_object(Bucket=BUCKET, Key=key)["Body"].read()
    assert uploaded == (job_dir / "submission.csv").read_bytes()
    # Local mode's serving container is gone, and its network published on loopback only.
    left = subprocess.run(
        ["docker", "ps", "-a", "--filter", "name=-algo-", "--format", "{{.Image}}"], capture_output=True, text=True
    ).stdout
    assert pipe.settings["ECR_REPOSITORY"] not in left
    inspect = ["docker", "network", "inspect", "--format", "{{json .Options}}", "sagemaker-local-serving"]
    options = subprocess.run(inspect, capture_output=True, text=True, check=True).stdout
    assert json.loads(options)["com.docker.network.bridge.host_binding_ipv4"] == "127.0.0.1"


def test_predict_refuses_a_model_that_was_not_verified(pipe: Checkout) -> None:
    ready(pipe)
    decoy = pipe.root / "runs" / "titanic-lgbm-2099-01-01-00-00-00-001.json"
    decoy.write_text(json.dumps(run_record(job_name=decoy.stem, status="Failed")))
    try:
        result = pipe.make("predict", JOB=decoy.stem)
    finally:
        decoy.unlink()
    assert result.returncode != 0
    assert f"job {decoy.stem} is Failed; predict with only a verified model" in result.stderr


def registered_and_approved(pipe: Checkout) -> str:
    """A new verified run, evaluated, registered and approved: the job's name."""
    job = trained_job(settled(pipe))
    for verb in ("evaluate", "register", "approve"):
        result = pipe.make(verb)
        assert result.returncode == 0, result.stderr[-3000:]
    return job


def invoked(pipe: Checkout) -> dict[str, float]:
    result = pipe.make("invoke")
    assert result.returncode == 0, result.stderr[-3000:]
    rows = [line.split() for line in result.stdout.splitlines() if line.split()[:1] and line.split()[0].isdigit()]
    return {pid: float(probability) for pid, probability, _ in rows}


def own_predictions(pipe: Checkout, job: str) -> dict[str, float]:
    """The registered artifact's own predictions on make invoke's default rows (test.csv's first 5)."""
    model = joblib.load(pipe.root / "runs" / job / "model" / "model.joblib")
    raw = pd.read_csv(REPO / "data/titanic/test.csv", dtype=str, keep_default_na=False, na_values=[""]).head(5)
    probabilities = model.predict_proba(typed(raw, require_label=False, locate=str))[:, 1]
    return dict(zip(raw["PassengerId"], probabilities.tolist(), strict=True))


def serving_containers(pipe: Checkout) -> list[str]:
    """This copy's endpoint containers (a developer's own endpoint of the same name is another stack's)."""
    labels = [
        "--filter",
        "label=com.titanic-toolkit.endpoint=titanic-survival",
        "--filter",
        f"label=com.titanic-toolkit.stack={pipe.endpoint}",
    ]
    listed = subprocess.run(["docker", "ps", "-q", *labels], capture_output=True, text=True, check=True).stdout
    return listed.split()


def test_register_approve_deploy_invoke_redeploy_undeploy(pipe: Checkout) -> None:
    first = registered_and_approved(pipe)
    again = pipe.make("register", JOB=first)
    assert again.returncode != 0 and f"job {first} is already version" in again.stderr
    deployed = pipe.make("deploy")
    assert deployed.returncode == 0, deployed.stderr[-3000:]
    assert "nothing while idle" in deployed.stderr  # the cost is said before anything is made
    assert invoked(pipe) == own_predictions(pipe, first)  # the approved version's artifact, to the last digit
    # A second approved version: the redeploy serves it, and one container serves at a time.
    second = registered_and_approved(pipe)
    redeployed = pipe.make("deploy")
    assert redeployed.returncode == 0, redeployed.stderr[-3000:]
    assert invoked(pipe) == own_predictions(pipe, second)
    assert len(serving_containers(pipe)) == 1
    listing = pipe.make("models")
    marked = [line for line in listing.stdout.splitlines() if line.startswith("*")]
    assert len(marked) == 1 and marked[0].split()[-1] == second
    address = re.search(r"at http://(127\.0\.0\.1:\d+)", redeployed.stderr).group(1)
    bad = pipe.root / "bad.csv"
    bad.write_text(
        'PassengerId,Pclass,Name,Sex,Age,SibSp,Parch,Ticket,Fare,Cabin,Embarked\n1,3,"A, Mr. B",male,old,0,0,1,7,,S\n'
    )
    refused = pipe.make("invoke", ROWS=str(bad))
    assert refused.returncode != 0 and "row 1: Age is 'old', expected a number >= 0 or blank" in refused.stderr
    removed = pipe.make("undeploy")
    assert removed.returncode == 0, removed.stderr[-3000:]
    assert not serving_containers(pipe)
    host, port = address.split(":")
    with pytest.raises(OSError):
        socket.create_connection((host, int(port)), timeout=2).close()
    models = pipe.make("models")
    assert models.returncode == 0, models.stderr[-2000:]  # the versions stay; none is marked serving
    assert second in models.stdout and "*" not in "".join(line[:1] for line in models.stdout.splitlines())
    gone = pipe.make("invoke")
    assert gone.returncode == 2  # make's code when a recipe failed (the command itself exited 1)
    assert "[invoke] ERROR: no container serves titanic-survival; run 'make deploy'" in gone.stderr


def test_the_registry_refuses_misuse_with_a_reason(pipe: Checkout) -> None:
    ready(pipe)
    reject = pipe.make("reject")
    assert reject.returncode != 0 and "REASON is empty; say why" in reject.stderr
    strict = pipe.make("approve", VERSION="999")
    assert strict.returncode != 0 and "has no version 999" in strict.stderr
    job = trained_job(settled(pipe))
    unevaluated = pipe.make("register", JOB=job)
    assert unevaluated.returncode != 0 and f"run 'make evaluate JOB={job}' first" in unevaluated.stderr
    assert pipe.make("evaluate", JOB=job).returncode == 0
    assert pipe.make("register", JOB=job).returncode == 0
    gate = pipe.make("approve", APPROVAL_MIN_AUC="0.99")
    assert gate.returncode != 0 and "below APPROVAL_MIN_AUC 0.99; it stays PendingManualApproval" in gate.stderr
    assert pipe.make("reject", REASON="not better than the last").returncode == 0
