"""The one-time set-up (scripts/bootstrap.sh) converges: rerun after any interruption, it ends
with the bucket and repository created, tagged and hardened; and it never takes over a
bucket or repository it did not create. Real awscli against a moto server on 127.0.0.1."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import boto3
import pytest
from conftest import REPO

TAG = {"Key": "created-by", "Value": "titanic-sagemaker-toolkit"}
BUCKET = "titanic-bootstrap-test"
REPOSITORY = "titanic-bootstrap-test"
THEIR_LIFECYCLE = (
    '{"rules":[{"rulePriority":1,"description":"keep 30","selection":{"tagStatus":"any","countType":'
    '"imageCountMoreThan","countNumber":30},"action":{"type":"expire"}}]}'
)


def bootstrap(deployed: Path, path_prefix: Path | None = None) -> subprocess.CompletedProcess[str]:
    path = os.pathsep.join(filter(None, [str(path_prefix or ""), str(REPO / ".venv/bin"), os.environ["PATH"]]))
    env = {
        **os.environ,
        "PATH": path,
        "BUCKET": BUCKET,
        "AWS_REGION": "us-east-1",
        "AWS_DEFAULT_REGION": "us-east-1",
        "CREATE_BUCKET": "yes",
        "ECR_REPOSITORY": REPOSITORY,
        "DEPLOYED": str(deployed),
        "LOCAL_EMULATOR": "moto",
    }
    return subprocess.run([str(REPO / "scripts/bootstrap.sh")], env=env, capture_output=True, text=True, timeout=300)


def interrupted_before(call: str, folder: Path) -> Path:
    """An `aws` that dies at `call`, as a Ctrl-C or a lost session would stop the script there."""
    folder.mkdir()
    shim = folder / "aws"
    real = REPO / ".venv/bin/aws"
    shim.write_text(f'#!/usr/bin/env bash\n[[ " $* " == *" {call} "* ]] && exit 130\nexec "{real}" "$@"\n')
    shim.chmod(0o755)
    return folder


def bucket_tags() -> list[dict[str, str]]:
    return boto3.client("s3", region_name="us-east-1").get_bucket_tagging(Bucket=BUCKET)["TagSet"]


def test_a_bucket_created_but_not_yet_tagged_is_finished_on_rerun(moto_endpoint: str, tmp_path: Path) -> None:
    cut = bootstrap(tmp_path / "deployed", interrupted_before("put-bucket-tagging", tmp_path / "shim"))
    assert cut.returncode != 0
    s3 = boto3.client("s3", region_name="us-east-1")
    s3.head_bucket(Bucket=BUCKET)  # created, untagged: the state that used to be "foreign forever"
    rerun = bootstrap(tmp_path / "deployed")
    assert rerun.returncode == 0, rerun.stderr
    assert "finishing the creation of s3://" in rerun.stderr
    assert TAG in bucket_tags()
    assert s3.get_public_access_block(Bucket=BUCKET)["PublicAccessBlockConfiguration"]["BlockPublicPolicy"]
    assert not list((tmp_path / "deployed").glob("creating-*"))  # the journal is gone once done


def test_a_repository_created_but_not_yet_configured_is_finished_on_rerun(moto_endpoint: str, tmp_path: Path) -> None:
    cut = bootstrap(tmp_path / "deployed", interrupted_before("put-lifecycle-policy", tmp_path / "shim"))
    assert cut.returncode != 0
    ecr = boto3.client("ecr", region_name="us-east-1")
    # Where the cut happened: the repository exists (created, immutable tags, scan on push),
    # but it has no lifecycle policy yet.
    repository = ecr.describe_repositories(repositoryNames=[REPOSITORY])["repositories"][0]
    assert repository["imageTagMutability"] == "IMMUTABLE"
    with pytest.raises(ecr.exceptions.LifecyclePolicyNotFoundException):
        ecr.get_lifecycle_policy(repositoryName=REPOSITORY)
    rerun = bootstrap(tmp_path / "deployed")
    assert rerun.returncode == 0, rerun.stderr
    assert "untagged" in ecr.get_lifecycle_policy(repositoryName=REPOSITORY)["lifecyclePolicyText"]
    assert TAG in ecr.list_tags_for_resource(resourceArn=repository["repositoryArn"])["tags"]


def test_someone_elses_bucket_and_repository_are_used_as_they_are(moto_endpoint: str, tmp_path: Path) -> None:
    s3, ecr = boto3.client("s3", region_name="us-east-1"), boto3.client("ecr", region_name="us-east-1")
    s3.create_bucket(Bucket=BUCKET)
    s3.put_bucket_tagging(Bucket=BUCKET, Tagging={"TagSet": [{"Key": "team", "Value": "data"}]})
    ecr.create_repository(repositoryName=REPOSITORY)
    ecr.put_lifecycle_policy(repositoryName=REPOSITORY, lifecyclePolicyText=THEIR_LIFECYCLE)
    result = bootstrap(tmp_path / "deployed")
    assert result.returncode == 0, result.stderr
    assert "without the toolkit's tag: not ours" in result.stderr
    assert bucket_tags() == [{"Key": "team", "Value": "data"}]
    with pytest.raises(s3.exceptions.ClientError):
        s3.get_public_access_block(Bucket=BUCKET)
    assert ecr.get_lifecycle_policy(repositoryName=REPOSITORY)["lifecyclePolicyText"] == THEIR_LIFECYCLE


def state() -> dict[str, object]:
    """What bootstrap configures, read back from the emulator."""
    s3, ecr = boto3.client("s3", region_name="us-east-1"), boto3.client("ecr", region_name="us-east-1")
    repository = ecr.describe_repositories(repositoryNames=[REPOSITORY])["repositories"][0]
    return {
        "bucket tags": bucket_tags(),
        "public access": s3.get_public_access_block(Bucket=BUCKET)["PublicAccessBlockConfiguration"],
        "encryption": s3.get_bucket_encryption(Bucket=BUCKET)["ServerSideEncryptionConfiguration"],
        "repository": {
            k: repository[k] for k in ("repositoryArn", "createdAt", "imageTagMutability", "imageScanningConfiguration")
        },
        "lifecycle": ecr.get_lifecycle_policy(repositoryName=REPOSITORY)["lifecyclePolicyText"],
        "repository tags": ecr.list_tags_for_resource(resourceArn=repository["repositoryArn"])["tags"],
    }


def test_a_second_run_changes_nothing_and_says_ready(moto_endpoint: str, tmp_path: Path) -> None:
    assert bootstrap(tmp_path / "deployed").returncode == 0
    first = state()
    again = bootstrap(tmp_path / "deployed")
    assert again.returncode == 0 and "creating" not in again.stderr and "set-up done" in again.stderr
    assert state() == first  # the same bucket and repository, configured exactly alike
