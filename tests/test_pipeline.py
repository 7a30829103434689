"""The whole pipeline through the real Makefile and scripts, against the embedded stack.

Tests in this module share one copy and run in order: a first `make all` from a clean
copy, then what a user does next.
"""

from __future__ import annotations

import json
import socket
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from pipeline import Pipeline, new_pipeline, ran

pytestmark = pytest.mark.stack
BUCKET = "titanic-sagemaker-toolkit-demo"


@pytest.fixture(scope="module")
def pipe(tmp_path_factory: pytest.TempPathFactory, offline_base: str) -> Iterator[Pipeline]:
    pipeline = new_pipeline(tmp_path_factory.mktemp("pipeline"), offline_base)
    yield pipeline
    pipeline.cleanup()


@pytest.fixture(scope="module")
def first_run(pipe: Pipeline) -> subprocess.CompletedProcess[str]:
    return pipe.make("all")


def latest_record(pipe: Pipeline) -> dict:
    records = sorted((pipe.root / "runs").glob("*.json"), key=lambda p: p.stat().st_mtime)
    return json.loads(records[-1].read_text())


def test_make_all_from_a_clean_copy_leaves_a_verified_model(pipe: Pipeline, first_run) -> None:
    assert first_run.returncode == 0, first_run.stdout[-3000:] + first_run.stderr[-3000:]
    for stage in ("launcher.prepare_data", "upload-data.sh", "build-image.sh", "push-image.sh", "launcher.train"):
        assert ran(first_run, stage), stage
    record = latest_record(pipe)
    job = record["job_name"]
    assert job.startswith("titanic-lgbm-")
    assert record["status"] == "Completed"
    assert record["verification"]["verified"] is True
    assert record["metrics"]["val_auc"] >= 0.85
    # SageMaker's own layout: <output_path>/<job>/output/model.tar.gz, in the emulated S3.
    key = f"titanic/output/{job}/output/model.tar.gz"
    assert record["model_artifact"] == f"s3://{BUCKET}/{key}"
    assert pipe.client("s3").head_object(Bucket=BUCKET, Key=key)["ContentLength"] > 1000
    # The image went through the registry and is tagged with the commit of the copy.
    commit = subprocess.run(["git", "rev-parse", "--short=12", "HEAD"], cwd=pipe.root, capture_output=True,
                            text=True).stdout.strip()  # fmt: skip
    assert record["image"]["uri"].endswith(f"/{pipe.settings['ECR_REPOSITORY']}:{commit}")
    assert record["image"]["digest"].startswith("sha256:")
    assert record["toolkit_commit"].startswith(commit)
    assert record["data"]["train"]["rows"] == 712
    assert (pipe.root / "runs" / job / "model" / "model.joblib").is_file()
    # The human summary says where everything went.
    assert f"model        s3://{BUCKET}/{key}" in first_run.stdout
    ecr = pipe.client("ecr")
    repo = ecr.describe_repositories(repositoryNames=[pipe.settings["ECR_REPOSITORY"]])["repositories"][0]
    assert repo["imageTagMutability"] == "IMMUTABLE"
    assert repo["imageScanningConfiguration"]["scanOnPush"] is True
    assert "untagged" in ecr.get_lifecycle_policy(repositoryName=repo["repositoryName"])["lifecyclePolicyText"]
    s3 = pipe.client("s3")
    assert s3.get_public_access_block(Bucket=BUCKET)["PublicAccessBlockConfiguration"]["BlockPublicAcls"]
    encryption = s3.get_bucket_encryption(Bucket=BUCKET)["ServerSideEncryptionConfiguration"]
    assert encryption["Rules"][0]["ApplyServerSideEncryptionByDefault"]["SSEAlgorithm"] == "AES256"


def test_make_n_all_then_prints_only_training(pipe: Pipeline, first_run) -> None:
    plan = pipe.make("-n", "all")
    assert plan.returncode == 0
    lines = [line for line in plan.stdout.splitlines() if line.strip()]
    assert len(lines) == 2, plan.stdout
    assert "launcher.train" in lines[0] and "launcher.verify" in lines[1]


def test_second_make_all_rebuilds_and_reuploads_nothing(pipe: Pipeline, first_run) -> None:
    before = latest_record(pipe)["job_name"]
    second = pipe.make("all")
    assert second.returncode == 0, second.stderr[-3000:]
    for stage in ("upload-data.sh", "build-image.sh", "push-image.sh", "launcher.prepare_data"):
        assert not ran(second, stage), stage
    assert ran(second, "launcher.train")
    assert latest_record(pipe)["job_name"] != before  # training always starts a new job


def test_a_hyperparameter_change_only_retrains(pipe: Pipeline, first_run) -> None:
    result = pipe.make("all", HP_N_ESTIMATORS="40")
    assert result.returncode == 0, result.stderr[-3000:]
    for stage in ("upload-data.sh", "build-image.sh", "push-image.sh"):
        assert not ran(result, stage), stage
    record = latest_record(pipe)
    assert record["hyperparameters"]["n_estimators"] == "40"
    card = json.loads((pipe.root / "runs" / record["job_name"] / "model" / "model_card.json").read_text())
    assert card["hyperparameters"]["n_estimators"] == 40  # it reached the model, not just the request


def test_evidence_targets_after_a_run(pipe: Pipeline, first_run) -> None:
    job = latest_record(pipe)["job_name"]
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


def test_a_failed_job_exits_with_its_reason_and_leaves_no_model(pipe: Pipeline, first_run) -> None:
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


def test_a_dead_stack_is_restarted_and_refilled(pipe: Pipeline, first_run) -> None:
    pid = int((pipe.root / ".local/moto.pid").read_text())
    subprocess.run(["kill", str(pid)], check=True)
    for _ in range(100):  # gone, as after a reboot
        if not Path(f"/proc/{pid}").exists():
            break
        time.sleep(0.1)
    result = pipe.make("all")
    assert result.returncode == 0, result.stderr[-3000:]
    # moto forgot everything: the stack restarts, and upload and push redo (not the build).
    assert ran(result, "local-stack.sh up")
    assert ran(result, "upload-data.sh") and ran(result, "push-image.sh")
    assert not ran(result, "build-image.sh")


def test_local_down_stops_exactly_what_local_up_started(pipe: Pipeline, first_run) -> None:
    pids = [int((pipe.root / f".local/{name}.pid").read_text()) for name in ("moto", "registry")]
    assert pipe.make("local-down").returncode == 0
    for pid in pids:
        assert not Path(f"/proc/{pid}").exists()
    status = pipe.make("local-status")
    assert status.returncode != 0 and "moto:     down" in status.stdout
    assert pipe.make("local-up").returncode == 0


def test_clean_resources_removes_only_the_toolkits(pipe: Pipeline, first_run) -> None:
    assert pipe.make("upload", "push").returncode == 0
    s3, ecr = pipe.client("s3"), pipe.client("ecr")
    foreign_keys = ["titanic/data-other/keep.csv", "other/titanic/data/keep.csv", "titanic/keep.txt"]
    for key in foreign_keys:
        s3.put_object(Bucket=BUCKET, Key=key, Body=b"not ours")
    s3.create_bucket(Bucket="someone-elses-bucket")
    s3.put_object(Bucket="someone-elses-bucket", Key="titanic/data/train/train.csv", Body=b"theirs")
    ecr.create_repository(repositoryName="someone-elses-repo")

    dry = pipe.make("clean-resources")
    assert dry.returncode == 0
    assert "would delete ECR repository" in dry.stderr and "dry run" in dry.stderr
    assert s3.list_objects_v2(Bucket=BUCKET, Prefix="titanic/data/")["KeyCount"] > 0  # nothing deleted yet

    done = pipe.make("clean-resources", CONFIRM="yes", DELETE_BUCKET="yes")
    assert done.returncode == 0, done.stderr
    keys = [o["Key"] for o in s3.list_objects_v2(Bucket=BUCKET).get("Contents", [])]
    assert sorted(keys) == sorted(foreign_keys)
    assert "keeping bucket" in done.stderr  # foreign objects remain, so the bucket stays
    repos = [r["repositoryName"] for r in ecr.describe_repositories()["repositories"]]
    assert "someone-elses-repo" in repos and pipe.settings["ECR_REPOSITORY"] not in repos
    assert s3.head_object(Bucket="someone-elses-bucket", Key="titanic/data/train/train.csv")

    again = pipe.make("clean-resources", CONFIRM="yes")
    assert again.returncode == 0 and "nothing to delete" in again.stderr

    # After a clean-up the next run puts everything back.
    refill = pipe.make("all")
    assert refill.returncode == 0, refill.stderr[-3000:]
    assert ran(refill, "upload-data.sh") and ran(refill, "push-image.sh")


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
def test_config_errors_stop_before_any_aws_call(pipe: Pipeline, overrides: dict, message: str) -> None:
    result = pipe.make("all", **overrides)
    assert result.returncode != 0
    assert message in result.stderr
    assert not ran(result, "local-stack.sh") and not ran(result, "upload-data.sh")


def test_a_port_held_by_another_process_is_named(pipe: Pipeline, first_run) -> None:
    with socket.socket() as squatter:
        squatter.bind(("127.0.0.1", 0))
        squatter.listen()
        port = str(squatter.getsockname()[1])
        result = pipe.make("local-up", LOCAL_MOTO_PORT=port, LOCAL_STATE_DIR=str(pipe.root / ".local-other"))
    assert result.returncode != 0
    assert f"port {port} on 127.0.0.1 is in use by another process; set LOCAL_MOTO_PORT" in result.stderr
