"""make train on TARGET=aws up to the API (launcher/train.py, launcher/lib/training.py): the
CreateTrainingJob request, and what Ctrl-C, SIGTERM and re-attaching leave behind.

Real SageMaker cannot be reached here. moto (in server mode, on 127.0.0.1) answers the
calls; botocore validates every request against the real API model before it is sent, and
the request is captured on the client side as it leaves. moto runs nothing (every job is
Completed at once), so a botocore hook makes DescribeTrainingJob answer InProgress where a test
needs a job that is still running.
"""

from __future__ import annotations

import json
import signal
from pathlib import Path
from typing import Any

import boto3
import pytest
from conftest import aws_settings, no_sleep, offline_client, seeded_account, shipped

from launcher import train
from launcher.lib import records, training

client = offline_client


def seeded(split_dir: Path, tmp_path: Path) -> Path:
    boto3.client("s3", region_name="us-east-1").create_bucket(Bucket="titanic-sagemaker-toolkit-demo")
    record = tmp_path / "image.json"
    uri = "123456789012.dkr.ecr.us-east-1.amazonaws.com/titanic-lightgbm:sha256-" + "1" * 64
    record.write_text(json.dumps({"image_uri": uri, "digest": "sha256:" + "0" * 64, "image_id": "sha256:" + "1" * 64}))
    return record


def still_running(session: boto3.Session) -> None:
    """moto completes jobs at once; make its DescribeTrainingJob say what SageMaker says
    while a job trains."""

    def in_progress(parsed: dict[str, Any], **_: Any) -> None:
        parsed.update(TrainingJobStatus="InProgress", SecondaryStatus="Training")

    session.events.register("after-call.sagemaker.DescribeTrainingJob", in_progress)


def test_sigterm_while_waiting_leaves_an_in_progress_record_and_the_commands(
    moto_endpoint: str, split_dir: Path, tmp_path: Path
) -> None:
    image = seeded(split_dir, tmp_path)
    session = boto3.Session(region_name="us-east-1")
    still_running(session)

    def terminated(_: float) -> None:  # the cron job's timeout, or a person's kill, mid-wait
        signal.raise_signal(signal.SIGTERM)

    runs = tmp_path / "runs"
    with pytest.raises(training.Interrupted) as stop:
        training.run(aws_settings(), image, split_dir, runs, boto_session=session, sleep=terminated)
    record = stop.value.record
    assert record["status"] == "InProgress" and record["secondary_status"] == "Training"
    saved = records.read_record(records.record_path(runs, record["job_name"]))
    assert saved["status"] == "InProgress" and saved["interrupted_at"]
    assert saved["image"]["image_id"] == "sha256:" + "1" * 64  # enough to re-attach and verify later
    advice = training.follow_up_commands(record["job_name"])
    for verb in ("make logs", "make stop", "make train"):
        assert f"{verb} JOB={record['job_name']}" in advice
    assert signal.getsignal(signal.SIGTERM) is signal.SIG_DFL  # the handler does not outlive the run

    # Later, `make train JOB=...` re-attaches, waits for the end, and completes the record.
    finished = training.run(
        aws_settings(),
        image,
        split_dir,
        runs,
        boto_session=boto3.Session(region_name="us-east-1"),
        attach=record["job_name"],
        sleep=no_sleep,
    )
    assert finished["job_name"] == record["job_name"] and finished["status"] == "Completed"
    assert records.read_record(records.record_path(runs, record["job_name"]))["status"] == "Completed"


def test_re_attaching_to_an_unknown_job_names_the_way_to_find_one(
    moto_endpoint: str, split_dir: Path, tmp_path: Path
) -> None:
    with pytest.raises(training.TrainError, match=r"no run record for nope in .*; 'make status' lists"):
        training.run(aws_settings(), seeded(split_dir, tmp_path), split_dir, tmp_path / "runs", attach="nope")


@pytest.mark.usefixtures("moto_endpoint")
def test_sigterm_through_make_trains_main_exits_130_and_prints_the_commands(
    split_dir: Path,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    caplog: pytest.LogCaptureFixture,
) -> None:
    """The path a person or cron meets: `python -m launcher.train` (what make train runs), a
    SIGTERM while the job runs on SageMaker, exit 130, the record summary on stdout and the
    follow/stop/re-attach commands on stderr."""
    image = seeded(split_dir, tmp_path)
    signals: list[int] = []

    def terminate_once(**_: Any) -> None:
        if not signals:  # the cron job's timeout, once, while the job is followed
            signals.append(signal.SIGTERM)
            signal.raise_signal(signal.SIGTERM)

    class Terminated(boto3.Session):
        """Every session main makes: the job still trains, and SIGTERM arrives while it is followed."""

        def __init__(self, *args: Any, **kwargs: Any) -> None:
            super().__init__(*args, **kwargs)
            still_running(self)
            self.events.register("after-call.sagemaker.DescribeTrainingJob", terminate_once)

    monkeypatch.setattr(boto3, "Session", Terminated)
    for key, value in {**shipped(), "TARGET": "aws"}.items():
        monkeypatch.setenv(key, value)
    runs = tmp_path / "runs"
    code = train.main(["--image-record", str(image), "--split-dir", str(split_dir), "--runs-dir", str(runs)])
    assert code == 130
    [record_file] = runs.glob("*.json")
    job = record_file.stem
    assert records.read_record(record_file)["status"] == "InProgress"
    assert f"job          {job} (InProgress" in capsys.readouterr().out
    printed = "\n".join(r.getMessage() for r in caplog.records if r.levelname == "ERROR")
    for command in (f"make logs JOB={job}", f"make stop JOB={job}", f"make train JOB={job}"):
        assert command in printed, printed
    assert signal.getsignal(signal.SIGTERM) is signal.SIG_DFL


# ---- the CreateTrainingJob request ----------------------------------------------------


ROLE = "arn:aws:iam::123456789012:role/service-role/titanic-sagemaker-execution"


def test_the_create_training_job_request(moto_endpoint: str, split_dir: Path, tmp_path: Path) -> None:
    seeded_account()
    record = tmp_path / "image.json"
    uri = "123456789012.dkr.ecr.us-east-1.amazonaws.com/titanic-lightgbm:0123456789ab"
    record.write_text(json.dumps({"image_uri": uri, "digest": "sha256:" + "0" * 64}))
    sent: list[dict[str, Any]] = []
    session = boto3.Session(region_name="us-east-1")
    session.events.register(
        "provide-client-params.sagemaker.CreateTrainingJob",
        lambda params, **_: sent.append(json.loads(json.dumps(params))),
    )

    result = training.run(aws_settings(), record, split_dir, tmp_path / "runs", boto_session=session)

    assert len(sent) == 1
    request = sent[0]
    assert request["AlgorithmSpecification"]["TrainingImage"] == uri
    assert request["AlgorithmSpecification"]["TrainingInputMode"] == "File"
    names = [d["Name"] for d in request["AlgorithmSpecification"]["MetricDefinitions"]]
    assert {"train_accuracy", "val_accuracy", "val_f1", "val_auc"} <= set(names)
    assert request["RoleArn"] == ROLE
    assert request["ResourceConfig"] == {"InstanceType": "ml.m5.large", "InstanceCount": 1, "VolumeSizeInGB": 5}
    assert request["EnableManagedSpotTraining"] is True
    assert request["StoppingCondition"] == {"MaxRuntimeInSeconds": 900, "MaxWaitTimeInSeconds": 1800}
    job = request["TrainingJobName"]
    # Each job its own checkpoints: a new job never resumes from an old job's trees.
    assert request["CheckpointConfig"]["S3Uri"] == f"s3://titanic-sagemaker-toolkit-demo/titanic/checkpoints/{job}/"
    channels = {c["ChannelName"]: c["DataSource"]["S3DataSource"]["S3Uri"] for c in request["InputDataConfig"]}
    assert channels == {
        "train": "s3://titanic-sagemaker-toolkit-demo/titanic/data/train/",
        "validation": "s3://titanic-sagemaker-toolkit-demo/titanic/data/validation/",
    }
    assert request["OutputDataConfig"]["S3OutputPath"] == "s3://titanic-sagemaker-toolkit-demo/titanic/output/"
    assert request["HyperParameters"]["n_estimators"] == "200"
    assert all(isinstance(v, str) for v in request["HyperParameters"].values())
    tags = {t["Key"]: t["Value"] for t in request["Tags"]}
    caller = boto3.client("sts", region_name="us-east-1").get_caller_identity()["Arn"]
    assert tags == {
        "project": "titanic-toolkit",
        "cost-center": "ml-research",
        "created-by": "titanic-sagemaker-toolkit",
        "launched-by": caller,  # clean-up stops only the jobs its own caller launched
    }
    assert request["EnableNetworkIsolation"] is True
    assert not request.get("EnableInterContainerTrafficEncryption")  # one instance: no traffic to protect
    assert request["TrainingJobName"].startswith("titanic-lgbm-")
    assert "DebugHookConfig" not in request and request["ProfilerConfig"]["DisableProfiler"] is True
    # moto completes the job at once and writes no artifact: the record says so honestly.
    assert result["status"] == "Completed" and result["model_artifact"] is None
    assert result["job_name"] == job and result["checkpoint_uri"].endswith(f"/{job}/")
    assert (tmp_path / "runs" / f"{result['job_name']}.json").is_file()


def test_spot_off_sends_no_max_wait(moto_endpoint: str, split_dir: Path, tmp_path: Path) -> None:
    seeded_account()
    request = captured_create(moto_endpoint, tmp_path, split_dir, USE_SPOT="no")["request"]
    assert request["StoppingCondition"] == {"MaxRuntimeInSeconds": 900}
    assert not request.get("EnableManagedSpotTraining")


def captured_create(moto_endpoint: str, tmp_path: Path, split_dir: Path, **changes: str) -> dict[str, Any]:
    """The CreateTrainingJob request of one training.run with these settings."""
    record = tmp_path / "image.json"
    record.write_text(json.dumps({"image_uri": "123456789012.dkr.ecr.us-east-1.amazonaws.com/r:t", "digest": "x"}))
    sent: list[dict[str, Any]] = []
    session = boto3.Session(region_name="us-east-1")
    session.events.register(
        "provide-client-params.sagemaker.CreateTrainingJob", lambda params, **_: sent.append(params)
    )
    result = training.run(aws_settings(**changes), record, split_dir, tmp_path / "runs", boto_session=session)
    assert len(sent) == 1
    return {"request": sent[0], "record": result}


@pytest.mark.parametrize("count", [4, 8])
def test_a_multi_instance_request(moto_endpoint: str, split_dir: Path, tmp_path: Path, count: int) -> None:
    seeded_account()
    captured = captured_create(moto_endpoint, tmp_path, split_dir, INSTANCE_COUNT=str(count))
    request = captured["request"]
    assert request["ResourceConfig"] == {"InstanceType": "ml.m5.large", "InstanceCount": count, "VolumeSizeInGB": 5}
    # Rows and histograms cross between instances: that traffic is encrypted.
    assert request["EnableInterContainerTrafficEncryption"] is True
    distribution = {
        c["ChannelName"]: c["DataSource"]["S3DataSource"]["S3DataDistributionType"] for c in request["InputDataConfig"]
    }
    assert distribution == {"train": "FullyReplicated", "validation": "FullyReplicated"}
    assert captured["record"]["instance"]["count"] == count


def test_a_sharded_request_gives_each_instance_whole_files(moto_endpoint: str, split_dir: Path, tmp_path: Path) -> None:
    seeded_account()
    s3 = boto3.client("s3", region_name="us-east-1")
    for part in range(3):
        s3.put_object(Bucket="titanic-sagemaker-toolkit-demo", Key=f"titanic/data/train/part-{part}.csv", Body=b"x")
    captured = captured_create(
        moto_endpoint, tmp_path, split_dir, INSTANCE_COUNT="2", TRAIN_DISTRIBUTION="ShardedByS3Key"
    )
    distribution = {
        c["ChannelName"]: c["DataSource"]["S3DataSource"]["S3DataDistributionType"]
        for c in captured["request"]["InputDataConfig"]
    }
    assert distribution == {"train": "ShardedByS3Key", "validation": "FullyReplicated"}


def test_too_few_shard_files_stop_before_anything_is_paid_for(
    moto_endpoint: str, split_dir: Path, tmp_path: Path
) -> None:
    seeded_account()
    boto3.client("s3", region_name="us-east-1").put_object(
        Bucket="titanic-sagemaker-toolkit-demo", Key="titanic/data/train/train.csv", Body=b"x"
    )
    with pytest.raises(training.TrainError, match=r"has 1 for INSTANCE_COUNT=4: split the train data into at least 4"):
        captured_create(moto_endpoint, tmp_path, split_dir, INSTANCE_COUNT="4", TRAIN_DISTRIBUTION="ShardedByS3Key")
    assert not boto3.client("sagemaker", region_name="us-east-1").list_training_jobs()["TrainingJobSummaries"]
