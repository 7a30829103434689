"""make predict below the pipeline: the join, the checks before a job starts, local mode's
compose rewrite, and on TARGET=aws the CreateModel and CreateTransformJob requests as they
leave botocore (validated against the API model), against moto, with the answers written
where SageMaker writes them, shuffled."""

from __future__ import annotations

import csv
import io
import json
import random
import re
from functools import partial
from pathlib import Path
from typing import Any

import boto3
import pytest
import yaml
from botocore.response import StreamingBody
from botocore.stub import Stubber
from conftest import REPO, offline_client, run_record, shipped
from sagemaker.local.image import _SageMakerContainer
from titanic_model import inference
from titanic_model.server import load_model

from launcher import predict
from launcher.lib import local_compose, records, sdk, submission
from launcher.lib.config import load
from launcher.lib.dataset import PrepareError, verified_bytes

TEST_CSV = REPO / "data/titanic/test.csv"
CHECKSUMS = REPO / "data/titanic/SHA256SUMS"
ROLE = "arn:aws:iam::123456789012:role/service-role/titanic-sagemaker-execution"
JOB = "titanic-lgbm-2026-11-26-10-00-00-000"
ARTIFACT = f"s3://titanic-sagemaker-toolkit-demo/titanic/output/{JOB}/output/model.tar.gz"


def answers_for(trained_root: Path, batch_rows: int = 50) -> list[str]:
    """What the serving container answers for test.csv in mini-batches (header only in the first)."""
    model = load_model(trained_root / "model", 1)
    lines = TEST_CSV.read_text().splitlines(keepends=True)
    out: list[str] = []
    for start in range(1, len(lines), batch_rows):
        chunk = "".join((lines[:1] if start == 1 else []) + lines[start : start + batch_rows])
        rows = inference.parse(chunk.encode(), inference.CSV)
        out += inference.render(rows, inference.predict(model, rows), inference.CSV).decode().splitlines()
    return out


def ids() -> list[str]:
    return submission.passenger_ids(TEST_CSV.read_bytes())


def test_the_join_does_not_depend_on_the_order_answers_come_back(trained_root: Path) -> None:
    answers = answers_for(trained_root)
    in_order = submission.join(ids(), "\n".join(answers))
    shuffled = answers[:]
    random.Random(7).shuffle(shuffled)
    assert submission.join(ids(), "\n".join(shuffled)) == in_order
    assert [pid for pid, _, _ in in_order] == ids() and len(in_order) == 418


@pytest.mark.parametrize(
    ("change", "phrase"),
    [
        (lambda a: a[:-1], "1 PassengerIds unanswered (1309)"),
        (lambda a: [*a, a[0]], "PassengerId 892 was answered twice"),
        (lambda a: [*a, "99999,0.5,1"], "1 unknown (99999)"),
        (lambda a: [a[0] + ",extra", *a[1:]], "answer line 1 is"),
    ],
)
def test_answers_that_do_not_match_the_input_are_refused(trained_root: Path, change: Any, phrase: str) -> None:
    with pytest.raises(submission.SubmissionError, match=re.escape(phrase)):
        submission.join(ids(), "\n".join(change(answers_for(trained_root))))


def test_a_changed_test_file_is_refused(tmp_path: Path) -> None:
    changed = tmp_path / "test.csv"
    changed.write_bytes(TEST_CSV.read_bytes().replace(b"Kelly", b"Kelley"))
    with pytest.raises(PrepareError, match=r"has SHA-256 \w+, expected 56023b99"):
        verified_bytes(changed, CHECKSUMS)
    data, digest = verified_bytes(TEST_CSV, CHECKSUMS)
    assert digest.startswith("56023b99") and data == TEST_CSV.read_bytes()


def record(runs: Path, job: str = JOB, **changes: Any) -> Path:
    image = {
        "uri": "123456789012.dkr.ecr.us-east-1.amazonaws.com/titanic-lightgbm:sha256-0",
        "digest": "x",
        "image_id": "",
    }
    body = run_record(job_name=job, status="Completed", model_artifact=ARTIFACT, image=image)
    body.update({"verification": {"verified": True}, **changes})
    runs.mkdir(parents=True, exist_ok=True)
    path = runs / f"{job}.json"
    path.write_text(json.dumps(body))
    return path


def test_only_a_verified_model_predicts(tmp_path: Path) -> None:
    runs = tmp_path / "runs"
    pick = partial(records.verified_record, use="predict with")
    with pytest.raises(records.RecordError, match="no verified run"):
        pick(runs, "")
    record(runs, "titanic-lgbm-a", verification=None)
    with pytest.raises(
        records.RecordError, match=r"is not verified; predict with only .*make verify JOB=titanic-lgbm-a"
    ):
        pick(runs, "titanic-lgbm-a")
    record(runs, "titanic-lgbm-b", status="Failed")
    with pytest.raises(records.RecordError, match="job titanic-lgbm-b is Failed"):
        pick(runs, "titanic-lgbm-b")
    good = record(runs, JOB)
    record(runs, "titanic-lgbm-newest-unverified", verification={"verified": False})
    assert pick(runs, "") == good  # the newest *verified* run, not the newest record


def test_serving_containers_go_on_the_serving_network_and_training_stays_internal() -> None:
    compose = {
        "version": "2.3",
        "services": {
            "algo-1-abcde": {
                "command": "serve",
                "ports": ["8080:8080"],
                "networks": {"sagemaker-local": {"aliases": ["algo-1-abcde"]}},
            },
            "algo-2-fghij": {"command": "train", "networks": {"sagemaker-local": {"aliases": ["algo-2-fghij"]}}},
        },
        "networks": {"sagemaker-local": {"name": "sagemaker-local"}},
    }
    out = local_compose.rewrite(compose, "toolkit-serving")
    assert out["services"]["algo-1-abcde"]["networks"] == {"toolkit-serving": {"aliases": ["algo-1-abcde"]}}
    assert out["services"]["algo-2-fghij"]["networks"] == {"sagemaker-local": {"aliases": ["algo-2-fghij"]}}
    assert out["networks"] == {
        "sagemaker-local": {"external": True, "name": "sagemaker-local"},
        "toolkit-serving": {"external": True, "name": "toolkit-serving"},
    }
    yaml.safe_dump(out)  # still a compose file


def test_how_compose_runs_each_kind_of_container() -> None:
    """The SDK's compose command, as local mode builds it, for training, a transform and an
    endpoint (tests/test_predict.py's SDK check above keeps the command's shape honest)."""
    up = ["-f", "docker-compose.yaml", "up", "--build", "--abort-on-container-exit"]
    assert local_compose.up_arguments(up, serves=False, detach=False) == up  # training: as the SDK says
    assert local_compose.up_arguments(up, serves=True, detach=True)[-1] == "--detach"  # an endpoint runs on
    stopped = local_compose.up_arguments(up, serves=True, detach=False)  # a transform: short stop
    assert stopped == [*up, "--timeout", str(local_compose.TRANSFORM_STOP_SECONDS)]


def test_local_sessions_route_the_sdks_compose_command_through_the_rewrite(moto_endpoint: str) -> None:
    """The SDK has no setting for its network: the launcher replaces how it picks its compose
    command. If an SDK upgrade renames that method, this fails instead of serving on 0.0.0.0."""
    assert callable(_SageMakerContainer.__dict__["_get_compose_cmd_prefix"].__func__)
    settings = load({**shipped(), "TARGET": "local"})
    session = sdk.session(settings, boto3.Session(region_name="us-east-1"))
    command = _SageMakerContainer._get_compose_cmd_prefix()
    assert command[1].endswith("launcher/lib/local_compose.py")
    assert command[2:] == ["--serving-network", settings.local_serving_network]
    assert session.config["local"]["serving_port"] == settings.local_serving_port


def test_the_aws_requests_and_a_submission_joined_from_shuffled_answers(
    moto_endpoint: str, trained_root: Path, tmp_path: Path
) -> None:
    s3 = boto3.client("s3", region_name="us-east-1")
    s3.create_bucket(Bucket="titanic-sagemaker-toolkit-demo")
    s3.put_object(Bucket="titanic-sagemaker-toolkit-demo", Key=ARTIFACT.split("demo/", 1)[1], Body=b"model")
    runs = tmp_path / "runs"
    record(runs)
    answers = answers_for(trained_root)
    random.Random(3).shuffle(answers)
    sent: dict[str, dict[str, Any]] = {}
    session = boto3.Session(region_name="us-east-1")

    def capture(params: dict[str, Any], model: Any, **_: Any) -> None:
        sent[model.name] = json.loads(json.dumps(params, default=str))
        if model.name == "CreateTransformJob":  # SageMaker's layout: <S3OutputPath>/<input file>.out
            output = params["TransformOutput"]["S3OutputPath"].removeprefix("s3://").split("/", 1)
            s3.put_object(Bucket=output[0], Key=f"{output[1].rstrip('/')}/test.csv.out", Body="\n".join(answers))

    session.events.register("provide-client-params.sagemaker.*", capture)
    settings = load({**shipped(), "TARGET": "aws", "TRANSFORM_INSTANCE_TYPE": "ml.m5.large"})

    transform = predict.run(settings, runs, TEST_CSV, CHECKSUMS, boto_session=session)

    model, job = sent["CreateModel"], sent["CreateTransformJob"]
    name = transform["name"]
    assert name.startswith("titanic-lgbm-predict-") and model["ModelName"] == name and job["ModelName"] == name
    assert model["ExecutionRoleArn"] == ROLE and model["EnableNetworkIsolation"] is True
    assert model["PrimaryContainer"] == {"Image": record_image(runs), "Environment": {}, "ModelDataUrl": ARTIFACT}
    assert job["BatchStrategy"] == "MultiRecord" and job["MaxPayloadInMB"] == 6
    assert job["TransformInput"] == {
        "DataSource": {
            "S3DataSource": {
                "S3DataType": "S3Prefix",
                "S3Uri": "s3://titanic-sagemaker-toolkit-demo/titanic/data/test/test.csv",
            }
        },
        "ContentType": "text/csv",
        "SplitType": "Line",
    }
    assert job["TransformOutput"] == {
        "S3OutputPath": f"s3://titanic-sagemaker-toolkit-demo/titanic/predictions/{name}/raw",
        "Accept": "text/csv",
        "AssembleWith": "Line",
    }
    assert job["TransformResources"] == {"InstanceType": "ml.m5.large", "InstanceCount": 1}
    for request in (model, job):
        tags = {t["Key"]: t["Value"] for t in request["Tags"]}
        assert tags["created-by"] == "titanic-sagemaker-toolkit" and tags["launched-by"].startswith("arn:aws:")

    submission = list(csv.reader(io.StringIO((runs / JOB / "submission.csv").read_text())))
    assert submission[0] == ["PassengerId", "Survived"] and len(submission) == 419
    assert [row[0] for row in submission[1:]] == ids()  # the input's order, whatever order answers came in
    expected = {line.split(",")[0]: line.split(",")[2] for line in answers}
    assert all(row[1] == expected[row[0]] for row in submission[1:])
    key = f"titanic/predictions/{name}/submission.csv"
    uploaded = s3.get_object(Bucket="titanic-sagemaker-toolkit-demo", Key=key)["Body"].read()
    assert uploaded == (runs / JOB / "submission.csv").read_bytes()
    kept = json.loads((runs / f"{JOB}.json").read_text())["transforms"][-1]
    assert kept["name"] == name and kept["input"]["rows"] == 418 and kept["instance_type"] == "ml.m5.large"
    assert kept["cost"]["usd_per_hour"] is not None


def record_image(runs: Path) -> str:
    return json.loads((runs / f"{JOB}.json").read_text())["image"]["uri"]


def test_the_transform_output_is_found_by_listing_not_by_guessing_keys() -> None:
    """S3 answers GetObject of a missing key with 403 AccessDenied, not 404, to a caller that
    may not list that prefix: guessing SageMaker's key first would end in 'denied' when local
    mode's key is the one there. The prefix is listed and only what exists is read."""
    s3 = offline_client("s3")
    name = "titanic-lgbm-predict-20261204120000"
    prefix = f"titanic/predictions/{name}/raw"
    there = f"{prefix}/{name}/test.csv.out"  # local mode's layout
    with Stubber(s3) as stub:
        stub.add_response(
            "list_objects_v2",
            {"Contents": [{"Key": there}], "IsTruncated": False},
            {"Bucket": "b", "Prefix": f"{prefix}/"},
        )
        stub.add_response(
            "get_object", {"Body": StreamingBody(io.BytesIO(b"892,0.1,0\n"), 10)}, {"Bucket": "b", "Key": there}
        )
        assert submission.output_text(s3, f"s3://b/{prefix}", name) == "892,0.1,0\n"
        stub.assert_no_pending_responses()
    with Stubber(s3) as stub:
        stub.add_response("list_objects_v2", {"Contents": [], "IsTruncated": False})
        with pytest.raises(submission.SubmissionError, match=r"left no test\.csv\.out under"):
            submission.output_text(s3, f"s3://b/{prefix}", name)
