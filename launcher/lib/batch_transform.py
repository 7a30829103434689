"""Batch transform through the SDK (make predict, the pipeline's Transform step): a SageMaker
Model from a verified run's image and model.tar.gz, and a Transformer over test.csv, many
lines per request."""

from __future__ import annotations

from typing import Any

from sagemaker.model import Model
from sagemaker.transformer import Transformer

from launcher.lib import records
from launcher.lib.config import Settings


def transformer(
    model_name: Any, session: Any, *, instance_type: Any, output_uri: Any, tags: Any, base_name: str
) -> Any:
    """make predict's (and the pipeline's Transform step's) Transformer: many lines per request."""
    return Transformer(
        model_name=model_name,
        instance_count=1,
        instance_type=instance_type,
        strategy="MultiRecord",
        assemble_with="Line",
        output_path=output_uri,
        accept="text/csv",
        max_payload=6,
        tags=tags,
        base_transform_job_name=base_name,
        sagemaker_session=session,
    )


def run_over(job: Any, input_uri: Any, *, job_name: str) -> Any:
    """Transform the CSV under input_uri, split into lines. Local mode runs it to the end."""
    return job.transform(
        input_uri,
        data_type="S3Prefix",
        content_type="text/csv",
        split_type="Line",
        job_name=job_name,
        # Local mode runs the job inside this call; the SDK's wait would only sleep 5 s more.
        wait=False,
        logs=False,
    )


def start(
    settings: Settings,
    record: records.RunRecord,
    session: Any,
    *,
    name: str,
    instance_type: str,
    input_uri: str,
    output_uri: str,
    tags: list[dict[str, str]],
) -> None:
    """Model (named like the job) -> Transformer -> transform. Local mode runs it to the end."""
    model = Model(
        image_uri=record["image"]["uri"],
        model_data=record["model_artifact"],
        role=settings.role_arn,
        name=name,
        sagemaker_session=session,
        enable_network_isolation=True,  # the container needs nothing but its model and the rows
    )
    model.create(instance_type=instance_type, tags=tags)
    job = transformer(name, session, instance_type=instance_type, output_uri=output_uri, tags=tags, base_name=name)
    run_over(job, input_uri, job_name=name)
