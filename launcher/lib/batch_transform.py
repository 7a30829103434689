"""make predict's batch transform through the SDK: a SageMaker Model from a verified run's image
and model.tar.gz, and a Transformer over test.csv, many lines per request."""

from __future__ import annotations

from typing import Any

from sagemaker.model import Model

from launcher.lib import records
from launcher.lib.config import Settings


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
    transformer = model.transformer(
        instance_count=1,
        instance_type=instance_type,
        strategy="MultiRecord",
        assemble_with="Line",
        output_path=output_uri,
        accept="text/csv",
        max_payload=6,
        tags=tags,
    )
    transformer.transform(
        input_uri,
        data_type="S3Prefix",
        content_type="text/csv",
        split_type="Line",
        job_name=name,
        # Local mode runs the job inside this call; the SDK's wait would only sleep 5 s more.
        wait=False,
        logs=False,
    )
