"""The model registry against moto: version numbering, metadata and metrics round-trip, the
approval gate both ways, duplicate registration refused, the listing."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import boto3
import pytest
from conftest import run_record, settings_for

from launcher import registry
from launcher.lib import metadata, model_registry, records

BUCKET = "titanic-sagemaker-toolkit-demo"
IMAGE = {"uri": "127.0.0.1:5055/titanic-lightgbm:sha256-abc", "digest": "sha256:" + "d" * 64, "image_id": "x"}


settings = settings_for


def verified_run(runs: Path, job: str, val_auc: float, *, evaluated: bool = True) -> None:
    """A verified run record, its artifact in the (emulated) S3, and (unless not `evaluated`)
    its make evaluate: evaluation.json beside the model and the record's section."""
    s3 = boto3.client("s3", region_name="us-east-1")
    key = f"titanic/output/{job}/output/model.tar.gz"
    s3.put_object(Bucket=BUCKET, Key=key, Body=b"model")
    record = run_record(
        job_name=job,
        status="Completed",
        model_artifact=f"s3://{BUCKET}/{key}",
        image=IMAGE,
        data={"train": {"sha256": "t" * 64}, "validation": {"sha256": "v" * 64}},
        toolkit_commit="abc123",
        verification={"verified": True, "local_dir": str(runs / job), "model_tar_sha256": "m" * 64},
    )
    if evaluated:
        evaluation_key = f"titanic/output/{job}/evaluation/evaluation.json"
        body = {"metrics": {"val_auc": val_auc, "val_accuracy": 0.85}, "reported": {"equal": True, "differing": []}}
        s3.put_object(Bucket=BUCKET, Key=evaluation_key, Body=json.dumps(body).encode())
        record["evaluation"] = {"uri": f"s3://{BUCKET}/{evaluation_key}", "val_auc": val_auc, "reported_equal": True}
    records.write_record(runs, record)


@pytest.fixture
def account(moto_endpoint: str) -> boto3.Session:
    boto3.client("s3", region_name="us-east-1").create_bucket(Bucket=BUCKET)
    return boto3.Session(region_name="us-east-1")


def test_register_pins_the_image_by_digest_and_keeps_the_runs_facts(account: boto3.Session, tmp_path: Path) -> None:
    runs = tmp_path / "runs"
    verified_run(runs, "titanic-lgbm-2026-11-26-10-00-00-001", 0.89)
    verified_run(runs, "titanic-lgbm-2026-11-26-10-00-00-002", 0.91)
    first = model_registry.register_run(settings(), runs, "titanic-lgbm-2026-11-26-10-00-00-001", account)
    second = model_registry.register_run(settings(), runs, "", account)  # the latest verified run
    assert (first["version"], second["version"]) == (1, 2)
    sm = account.client("sagemaker")
    version = sm.describe_model_package(ModelPackageName=first["arn"])
    assert version["ModelApprovalStatus"] == "PendingManualApproval"
    container = version["InferenceSpecification"]["Containers"][0]
    assert container["Image"] == f"127.0.0.1:5055/titanic-lightgbm@{IMAGE['digest']}"
    assert container["ModelDataUrl"].endswith("titanic-lgbm-2026-11-26-10-00-00-001/output/model.tar.gz")
    assert "text/csv" in version["InferenceSpecification"]["SupportedContentTypes"]
    assert "ml.m5.large" in version["InferenceSpecification"]["SupportedRealtimeInferenceInstanceTypes"]
    meta = version["CustomerMetadataProperties"]
    assert meta["TrainingJob"] == "titanic-lgbm-2026-11-26-10-00-00-001" and meta["TrainSha256"] == "t" * 64
    assert meta["ImageDigest"] == IMAGE["digest"] and meta["ToolkitCommit"] == "abc123"
    assert registry.val_auc(account.client("s3"), version) == 0.89  # the report round-trips through S3
    kept = records.read_record(records.record_path(runs, "titanic-lgbm-2026-11-26-10-00-00-001"))
    assert kept["registry"]["version"] == 1
    tags = sm.list_tags(
        ResourceArn=sm.describe_model_package_group(ModelPackageGroupName="titanic-survival")["ModelPackageGroupArn"]
    )["Tags"]
    assert {"Key": "created-by", "Value": "titanic-sagemaker-toolkit"} in tags


def test_a_run_is_registered_once_and_an_unverified_one_never(account: boto3.Session, tmp_path: Path) -> None:
    runs = tmp_path / "runs"
    verified_run(runs, "titanic-lgbm-2026-11-26-10-00-00-001", 0.89)
    model_registry.register_run(settings(), runs, "", account)
    with pytest.raises(registry.RegistryError, match="is already version 1 of titanic-survival"):
        model_registry.register_run(settings(), runs, "titanic-lgbm-2026-11-26-10-00-00-001", account)
    records.write_record(runs, run_record(job_name="titanic-lgbm-failed", status="Failed"))
    with pytest.raises(records.RecordError, match="job titanic-lgbm-failed is Failed; register only a verified"):
        model_registry.register_run(settings(), runs, "titanic-lgbm-failed", account)


def test_the_approval_gate_refuses_a_weak_version_and_records_who_approved(
    account: boto3.Session, tmp_path: Path
) -> None:
    runs = tmp_path / "runs"
    verified_run(runs, "titanic-lgbm-2026-11-26-10-00-00-001", 0.84)
    model_registry.register_run(settings(), runs, "", account)
    with pytest.raises(registry.RegistryError, match=r"val_auc 0\.8400, below APPROVAL_MIN_AUC 0\.85; it stays Pend"):
        registry.decide(settings(), account, approve=True, version="", reason="")
    done = registry.decide(settings(APPROVAL_MIN_AUC="0.8"), account, approve=True, version="1", reason="ticket 7")
    assert "PendingManualApproval -> Approved" in done
    version = registry.pick_version(account.client("sagemaker"), "titanic-survival", "1", None)
    assert version["ModelApprovalStatus"] == "Approved"
    me = account.client("sts").get_caller_identity()["Arn"]
    assert version["ApprovalDescription"] == f"approved by {me}: val_auc 0.8400 >= APPROVAL_MIN_AUC 0.8; ticket 7"
    assert version["CustomerMetadataProperties"]["TrainingJob"] == "titanic-lgbm-2026-11-26-10-00-00-001"
    with pytest.raises(registry.RegistryError, match="version 1 of titanic-survival is already Approved"):
        registry.decide(settings(APPROVAL_MIN_AUC="0.8"), account, approve=True, version="1", reason="")


def test_reject_needs_a_reason_and_takes_the_newest_pending(account: boto3.Session, tmp_path: Path) -> None:
    runs = tmp_path / "runs"
    verified_run(runs, "titanic-lgbm-2026-11-26-10-00-00-001", 0.9)
    verified_run(runs, "titanic-lgbm-2026-11-26-10-00-00-002", 0.9)
    model_registry.register_run(settings(), runs, "titanic-lgbm-2026-11-26-10-00-00-001", account)
    model_registry.register_run(settings(), runs, "titanic-lgbm-2026-11-26-10-00-00-002", account)
    with pytest.raises(registry.RegistryError, match="REASON is empty"):
        registry.decide(settings(), account, approve=False, version="", reason=" ")
    assert "version 2 of titanic-survival: PendingManualApproval -> Rejected" in registry.decide(
        settings(), account, approve=False, version="", reason="leaks the validation split"
    )
    with pytest.raises(registry.RegistryError, match="has no version 9"):
        registry.decide(settings(), account, approve=True, version="9", reason="")
    listing = registry.table(settings(), account)
    assert "Rejected" in listing and "PendingManualApproval" in listing
    assert "titanic-lgbm-2026-11-26-10-00-00-002" in listing and "0.9000" in listing


def test_a_group_someone_else_made_is_not_used(account: boto3.Session, tmp_path: Path) -> None:
    account.client("sagemaker").create_model_package_group(ModelPackageGroupName="titanic-survival")
    runs = tmp_path / "runs"
    verified_run(runs, "titanic-lgbm-2026-11-26-10-00-00-001", 0.9)
    with pytest.raises(registry.RegistryError, match="exists without the toolkit's created-by tag"):
        model_registry.register_run(settings(), runs, "", account)


def test_image_by_digest_keeps_a_registry_port() -> None:
    digest = "sha256:" + "0" * 64
    assert (
        model_registry.image_by_digest({"uri": "127.0.0.1:5055/repo:tag", "digest": digest})
        == f"127.0.0.1:5055/repo@{digest}"
    )
    assert model_registry.image_by_digest(
        {"uri": "1.dkr.ecr.us-east-1.amazonaws.com/a/b:t", "digest": digest}
    ).endswith(f"/a/b@{digest}")


def test_the_requests_as_they_leave_botocore(account: boto3.Session, tmp_path: Path) -> None:
    """What AWS would receive: CreateModelPackage and UpdateModelPackage, validated by botocore
    against SageMaker's API model before they are sent (moto answers them)."""
    sent: dict[str, dict[str, Any]] = {}

    def capture(params: dict[str, Any], model: Any, **_: Any) -> None:
        sent.setdefault(model.name, json.loads(json.dumps(params)))

    account.events.register("provide-client-params.sagemaker.*", capture)
    runs = tmp_path / "runs"
    verified_run(runs, "titanic-lgbm-2026-11-26-10-00-00-001", 0.9)
    model_registry.register_run(settings(), runs, "", account)
    registry.decide(settings(), account, approve=True, version="", reason="")
    create, update = sent["CreateModelPackage"], sent["UpdateModelPackage"]
    assert create["ModelPackageGroupName"] == "titanic-survival"
    assert create["ModelApprovalStatus"] == "PendingManualApproval"
    spec = create["InferenceSpecification"]
    assert spec["SupportedContentTypes"] == ["text/csv", "application/json", "application/jsonlines"]
    assert spec["SupportedResponseMIMETypes"] == ["text/csv", "application/json", "application/jsonlines"]
    for kind in ("SupportedRealtimeInferenceInstanceTypes", "SupportedTransformInstanceTypes"):
        assert "ml.m5.large" in spec[kind] and len(spec[kind]) <= model_registry.MAX_TYPES
    assert create["ModelMetrics"]["ModelQuality"]["Statistics"] == {
        "ContentType": "application/json",
        "S3Uri": f"s3://{BUCKET}/titanic/output/titanic-lgbm-2026-11-26-10-00-00-001/evaluation/evaluation.json",
    }
    assert "Tags" not in create  # AWS refuses tags on a version in a group (it takes the group's)
    assert update["ModelApprovalStatus"] == "Approved" and update["ApprovalDescription"].startswith("approved by ")
    assert update["CustomerMetadataProperties"]["TrainingJob"] == "titanic-lgbm-2026-11-26-10-00-00-001"


def test_a_version_carries_no_tags_and_names_who_registered_it(account: boto3.Session, tmp_path: Path) -> None:
    """botocore's CreateModelPackageInput.Tags: with ModelPackageGroupName "you cannot supply a
    tag argument". Who registered it goes into its customer metadata, where clean-up reads it."""
    runs = tmp_path / "runs"
    verified_run(runs, "titanic-lgbm-2026-11-26-10-00-00-001", 0.9)
    done = model_registry.register_run(settings(), runs, "", account)
    sm = account.client("sagemaker")
    meta = sm.describe_model_package(ModelPackageName=done["arn"])["CustomerMetadataProperties"]
    caller = account.client("sts").get_caller_identity()["Arn"]
    assert meta[metadata.REGISTERED_BY_KEY] == metadata.value(caller)


ALPHABET = re.compile(r"^[\w\s.:/=+\-@]{1,256}$")  # Python's reading of [\p{L}\p{Z}\p{N}_.:/=+\-@]{1,256}


def test_metadata_values_fit_aws_alphabet_and_length_for_the_longest_inputs() -> None:
    """Outside a git checkout the commit was 'unknown (not a git checkout)' (parentheses are
    refused), and a 256-character repository name makes the image URI longer than 256."""
    repository = "r" * 256
    record = {
        "job_name": "j",
        "image": {
            "uri": f"123456789012.dkr.ecr.us-east-1.amazonaws.com/{repository}:sha256-" + "a" * 64,
            "digest": "sha256:" + "d" * 64,
        },
        "data": {"train": {"sha256": "t" * 64}, "validation": {"sha256": "v" * 64}},
        "toolkit_commit": records.toolkit_commit(Path("/")),
        "verification": {},
    }
    meta = model_registry.metadata(record, {"val_auc": 0.9}, "arn:aws:sts::1:assumed-role/r/a,b (c)")
    for key, value in meta.items():
        assert ALPHABET.match(value) and "(" not in value and "," not in value, (key, value)
    assert len(meta["ImageUri"]) == 256 and meta["ImageUri"].endswith("a" * 64)
    assert meta["ToolkitCommit"] == "unknown: not a git checkout"
    assert meta["ModelTarSha256"] == "unknown"  # empty becomes a value AWS accepts (1-256 characters)


def test_an_unevaluated_run_is_not_registered_and_the_fix_is_named(account: boto3.Session, tmp_path: Path) -> None:
    runs = tmp_path / "runs"
    job = "titanic-lgbm-2026-11-26-10-00-00-009"
    verified_run(runs, job, 0.9, evaluated=False)
    with pytest.raises(registry.RegistryError, match=rf"job {job} has no evaluation; run 'make evaluate JOB={job}'"):
        model_registry.register_run(settings(), runs, "", account)


def test_a_version_registered_with_a_bare_metrics_report_still_passes_the_gate(account: boto3.Session) -> None:
    """Versions registered before make evaluate carry metrics.json itself as their report."""
    s3 = account.client("s3")
    s3.put_object(Bucket=BUCKET, Key="old/metrics.json", Body=json.dumps({"val_auc": 0.87}).encode())
    old = {
        "ModelPackageVersion": 1,
        "ModelMetrics": model_registry.evaluation_report(f"s3://{BUCKET}/old/metrics.json"),
    }
    assert registry.val_auc(s3, old) == 0.87
