"""Kaggle's test.csv through batch transform and back, shared by make predict and make
pipeline: test.csv uploaded with its checksum, the transform's answers found under its output,
joined back to PassengerId by the id each answer carries (never by line order), and written as
Kaggle's submission.csv and probabilities.csv.
"""

from __future__ import annotations

import base64
import csv
import io
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

import boto3

from launcher.lib import instance_choice, records
from launcher.lib.config import Settings
from launcher.lib.errors import ToolkitError
from launcher.lib.pricing import job_cost

TEST_FILE = "test.csv"
OUTPUT_FILE = f"{TEST_FILE}.out"  # batch transform names each output after its input file
SUBMISSION = "submission.csv"
PROBABILITIES = "probabilities.csv"


class SubmissionError(ToolkitError):
    """The predictions cannot be made or trusted; the message says why and what to do."""


def passenger_ids(data: bytes) -> list[str]:
    rows = list(csv.DictReader(io.StringIO(data.decode("utf-8-sig"))))
    ids = [(row.get("PassengerId") or "").strip() for row in rows]
    if not ids or "" in ids or len(set(ids)) != len(ids):
        raise SubmissionError(f"{TEST_FILE} must give every row its own PassengerId; predictions are joined by it")
    return ids


def uploaded_test_key(settings: Settings) -> str:
    """Where test.csv goes in the bucket: DATA_PREFIX/test/test.csv."""
    return f"{settings.data_prefix}/test/{TEST_FILE}"


def upload_test(s3: Any, settings: Settings, data: bytes, digest: str) -> str:
    """Put test.csv under DATA_PREFIX/test/, with its SHA-256 for S3 to check on arrival."""
    checksum = base64.b64encode(bytes.fromhex(digest)).decode()
    key = uploaded_test_key(settings)
    s3.put_object(Bucket=settings.bucket, Key=key, Body=data, ChecksumSHA256=checksum, ContentType="text/csv")
    return f"s3://{settings.bucket}/{key}"


def priced_type(settings: Settings, instance_type: str) -> str:
    """The type a transform is priced at: its own on AWS; on the embedded stack, the type make
    predict would pick on AWS."""
    return instance_type if not settings.local else settings.transform_instance_type or settings.instance_type


def transform_instance_type(settings: Settings, boto_session: boto3.Session) -> str:
    """TRANSFORM_INSTANCE_TYPE, else the instance report's cheapest type with transform quota."""
    if settings.local:
        return "local"
    if settings.transform_instance_type:
        return settings.transform_instance_type
    report = instance_choice.make_report(settings, *instance_choice.aws_clients(settings, boto_session), 4.0)
    if not report["transform_choice"]:
        raise SubmissionError(
            "no instance type has quota for transform job usage in this account; request one in "
            "Service Quotas (SageMaker, '<type> for transform job usage') or set "
            "TRANSFORM_INSTANCE_TYPE"
        )
    return str(report["transform_choice"])


def output_text(s3: Any, output_uri: str, name: str) -> str:
    """The transform's answers: SageMaker writes <output>/test.csv.out, local mode
    <output>/<job name>/test.csv.out. The prefix is listed and what is there is read: S3
    answers a GetObject of a missing key with 403, not 404, to a caller that may not list its
    prefix, so guessing keys would turn "not there" into "denied"."""
    parsed = urlparse(output_uri)
    prefix = parsed.path.strip("/")
    wanted = (f"{prefix}/{OUTPUT_FILE}", f"{prefix}/{name}/{OUTPUT_FILE}")
    pages = s3.get_paginator("list_objects_v2").paginate(Bucket=parsed.netloc, Prefix=f"{prefix}/")
    found = [item["Key"] for page in pages for item in page.get("Contents", []) if item["Key"] in wanted]
    if not found:
        raise SubmissionError(f"the transform job left no {OUTPUT_FILE} under {output_uri}; see its log (make logs)")
    return s3.get_object(Bucket=parsed.netloc, Key=found[0])["Body"].read().decode("utf-8")


def join(ids: list[str], answers: str) -> list[tuple[str, float, int]]:
    """(PassengerId, probability, survived) in the input's order, joined by the PassengerId each
    answer line carries: a transform may return lines in any order, and none may be missing,
    repeated or foreign."""
    by_id: dict[str, tuple[float, int]] = {}
    for number, row in enumerate(csv.reader(io.StringIO(answers)), start=1):
        if not row:
            continue
        if len(row) != 3:
            raise SubmissionError(f"answer line {number} is {','.join(row)!r}, not PassengerId,probability,survived")
        pid, probability, survived = row[0].strip(), float(row[1]), int(row[2])
        if pid in by_id:
            raise SubmissionError(f"PassengerId {pid} was answered twice; the transform's output cannot be trusted")
        by_id[pid] = (probability, survived)
    missing, foreign = [i for i in ids if i not in by_id], sorted(set(by_id) - set(ids))
    if missing or foreign:
        raise SubmissionError(
            f"the answers do not match the input: {len(missing)} PassengerIds unanswered "
            f"({', '.join(missing[:5])}), {len(foreign)} unknown "
            f"({', '.join(foreign[:5])})"
        )
    return [(pid, *by_id[pid]) for pid in ids]


def table(rows: list[tuple[str, float, int]], probabilities: bool) -> bytes:
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(["PassengerId", "probability", "Survived"] if probabilities else ["PassengerId", "Survived"])
    for pid, probability, survived in rows:
        writer.writerow([int(pid), repr(probability), survived] if probabilities else [int(pid), survived])
    return buffer.getvalue().encode()


def written(
    settings: Settings,
    boto_session: boto3.Session,
    runs_dir: Path,
    job_name: str,
    *,
    name: str,
    output_uri: str,
    test: records.TransformInput,
    ids: list[str],
    instance_type: str,
    seconds: float | None,
) -> records.Transform:
    """A finished transform's answers joined into submission.csv and probabilities.csv (in
    runs/<job>/ and under PREDICTIONS_PREFIX/<transform job>/), and the record's section for it:
    make predict's and the pipeline's Transform step's alike."""
    s3 = boto_session.client("s3")
    rows = join(ids, output_text(s3, output_uri, name))
    files = {SUBMISSION: table(rows, probabilities=False), PROBABILITIES: table(rows, probabilities=True)}
    folder = f"{settings.predictions_prefix}/{name}"
    for file_name, body in files.items():
        s3.put_object(Bucket=settings.bucket, Key=f"{folder}/{file_name}", Body=body, ContentType="text/csv")
    records.write_files(runs_dir / job_name, files)
    return {
        "name": name,
        "model_name": name,
        "finished_at": datetime.now(UTC).isoformat(timespec="seconds"),
        "instance_type": instance_type,
        "input": test,
        "output_uri": output_uri,
        "submission_uri": f"s3://{settings.bucket}/{folder}/{SUBMISSION}",
        "local_dir": str(runs_dir / job_name),
        "seconds": seconds,
        "survivors": sum(s for _, _, s in rows),
        "cost": job_cost(settings, boto_session, priced_type(settings, instance_type), seconds),
    }
