"""make evaluate's processing job on TARGET=aws up to the API (launcher/evaluate.py,
launcher/lib/processing.py): the CreateProcessingJob request as it leaves botocore (validated
against the API model), sent to moto, which stores it and runs nothing; and what a failed or
interrupted job leaves the user. The embedded stack's real run is in tests/test_make_all.py."""

from __future__ import annotations

import json
import signal
from pathlib import Path
from typing import Any

import boto3
import pytest
from conftest import aws_settings, run_record, seeded_account

from launcher import evaluate
from launcher.lib import evaluations, processing, records
from launcher.lib.errors import StillRunning

BUCKET = "titanic-sagemaker-toolkit-demo"
JOB = "titanic-lgbm-2026-12-01-10-00-00-000"
ARTIFACT = f"s3://{BUCKET}/titanic/output/{JOB}/output/model.tar.gz"


def verified_run(runs: Path) -> None:
    seeded_account()
    boto3.client("s3", region_name="us-east-1").put_object(Bucket=BUCKET, Key=ARTIFACT.split("/", 3)[3], Body=b"x")
    uri = "123456789012.dkr.ecr.us-east-1.amazonaws.com/titanic-lightgbm:sha256-" + "1" * 64
    record = run_record(job_name=JOB, target="aws", status="Completed", model_artifact=ARTIFACT)
    record["image"] = {"uri": uri, "digest": "sha256:" + "0" * 64, "image_id": ""}
    record["verification"] = {"verified": True}
    records.write_record(runs, record)


def sent_request(session: boto3.Session) -> list[dict[str, Any]]:
    sent: list[dict[str, Any]] = []
    session.events.register(
        "provide-client-params.sagemaker.CreateProcessingJob",
        lambda params, **_: sent.append(json.loads(json.dumps(params))),
    )
    return sent


def test_the_create_processing_job_request(moto_endpoint: str, tmp_path: Path) -> None:
    runs = tmp_path / "runs"
    verified_run(runs)
    session = boto3.Session(region_name="us-east-1")
    sent = sent_request(session)
    with pytest.raises(
        evaluations.EvaluationError, match=r"completed but s3://.*/evaluation/evaluation.json cannot be read"
    ):
        evaluate.run(aws_settings(), runs, boto_session=session)  # moto completes the job and writes nothing
    (request,) = sent
    assert request["ProcessingJobName"].startswith("titanic-lgbm-eval-")
    assert request["RoleArn"] == aws_settings().role_arn
    assert request["AppSpecification"]["ContainerEntrypoint"] == ["python", "entrypoint.py", "evaluate"]
    assert "ContainerArguments" not in request["AppSpecification"]  # local mode cannot take them alone
    assert request["NetworkConfig"]["EnableNetworkIsolation"] is True
    resources = request["ProcessingResources"]["ClusterConfig"]
    assert resources["InstanceType"] == aws_settings().instance_type and resources["InstanceCount"] == 1
    inputs = {i["InputName"]: i["S3Input"] for i in request["ProcessingInputs"]}
    assert inputs["model"]["S3Uri"] == ARTIFACT
    assert inputs["train"]["S3Uri"] == aws_settings().channel_uri("train")
    output = request["ProcessingOutputConfig"]["Outputs"][0]["S3Output"]
    assert output["S3Uri"] == f"s3://{BUCKET}/titanic/output/{JOB}/evaluation"
    # Processing's contract: every folder in the container is under /opt/ml/processing/.
    for local in [i["LocalPath"] for i in inputs.values()] + [output["LocalPath"]]:
        assert local.startswith("/opt/ml/processing/"), local
    tags = {t["Key"]: t["Value"] for t in request["Tags"]}
    assert tags["created-by"] == "titanic-sagemaker-toolkit" and tags["launched-by"].startswith("arn:aws:")


def test_the_container_folders_are_the_images_own() -> None:
    """The request's LocalPaths and the image's evaluate command read one contract."""
    from titanic_model import cli
    from titanic_model.contract import ProcessingPaths

    inside = ProcessingPaths(Path("/opt/ml"))
    assert inside == processing.INSIDE
    assert str(inside.model_dir) == "/opt/ml/processing/model"
    assert processing.ENTRYPOINT == ["python", "entrypoint.py"]  # the Dockerfile's WORKDIR holds it
    assert (processing.EVALUATE, processing.PREPARE) == (cli.EVALUATE, cli.PREPARE)


def test_a_failed_job_says_the_containers_own_reason(moto_endpoint: str, tmp_path: Path) -> None:
    runs = tmp_path / "runs"
    verified_run(runs)
    session = boto3.Session(region_name="us-east-1")

    def failed(parsed: dict[str, Any], **_: Any) -> None:
        parsed.update(ProcessingJobStatus="Failed", ExitMessage="model.tar.gz is missing; the model input ...\n")

    session.events.register("after-call.sagemaker.DescribeProcessingJob", failed)
    with pytest.raises(evaluate.EvaluateError, match=r"Failed: model.tar.gz is missing; the model input \.\.\.$"):
        evaluate.run(aws_settings(), runs, boto_session=session)


def test_sigterm_while_it_runs_leaves_it_running_and_says_how_to_stop_it(
    moto_endpoint: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    runs = tmp_path / "runs"
    verified_run(runs)
    session = boto3.Session(region_name="us-east-1")

    def running(parsed: dict[str, Any], **_: Any) -> None:
        parsed.update(ProcessingJobStatus="InProgress")
        signal.raise_signal(signal.SIGTERM)  # a cron timeout, or a person's kill, mid-wait

    session.events.register("after-call.sagemaker.DescribeProcessingJob", running)
    with pytest.raises(StillRunning, match=r"keeps running on SageMaker .* stop-processing-job --processing-job-name"):
        evaluate.run(aws_settings(), runs, boto_session=session)
    assert signal.getsignal(signal.SIGTERM) is signal.SIG_DFL
