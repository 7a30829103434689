"""make evaluate's processing job through the SDK: the image's `evaluate` command over a
training job's model.tar.gz and the data channels, evaluation.json back to S3. The folders
inside the container are the image's own contract (titanic_model.contract.ProcessingPaths),
so the request and the command cannot disagree."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from sagemaker.network import NetworkConfig
from sagemaker.processing import ProcessingInput, ProcessingOutput, Processor
from titanic_model.contract import DEFAULT_BASE_DIR, EVALUATION_FILE, ProcessingPaths

from launcher.lib import records
from launcher.lib.config import Settings

# The image's own entry point and its evaluate command (titanic_model.cli.EVALUATE), given as
# the job's ContainerEntrypoint: local mode fails on ContainerArguments without one.
ENTRYPOINT = ["python", "entrypoint.py", "evaluate"]
INSIDE = ProcessingPaths(Path(DEFAULT_BASE_DIR))  # where SageMaker puts the inputs and finds the output
CHANNELS = ("train", "validation")


def evaluation_uri(settings: Settings, training_job: str) -> str:
    """Where a training job's evaluation lands: beside its model, one per job (the latest wins)."""
    return f"{settings.output_uri}/{training_job}/evaluation"


def evaluation_file_uri(settings: Settings, training_job: str) -> str:
    """The evaluation.json the job's evaluate command writes there."""
    return f"{evaluation_uri(settings, training_job)}/{EVALUATION_FILE}"


def start(settings: Settings, session: Any, record: records.RunRecord, name: str, tags: list[dict[str, str]]) -> None:
    """Create the processing job. Local mode runs it inside this call; on SageMaker it starts."""
    processor = Processor(
        role=settings.role_arn,
        image_uri=record["image"]["uri"],
        instance_count=1,
        instance_type="local" if settings.local else settings.instance_type,
        entrypoint=ENTRYPOINT,
        volume_size_in_gb=settings.volume_size_gb,
        max_runtime_in_seconds=settings.max_run,
        sagemaker_session=session,
        tags=tags,
        # The container needs nothing but its inputs (local mode ignores this: its processing
        # containers sit on the internal network, like training's).
        network_config=NetworkConfig(enable_network_isolation=True),
    )
    inputs = [ProcessingInput(source=record["model_artifact"], destination=str(INSIDE.model_dir), input_name="model")]
    inputs += [
        ProcessingInput(source=settings.channel_uri(c), destination=str(INSIDE.channel(c)), input_name=c)
        for c in CHANNELS
    ]
    output = ProcessingOutput(
        source=str(INSIDE.evaluation_dir),
        destination=evaluation_uri(settings, record["job_name"]),
        output_name="evaluation",
    )
    # wait=False in local mode too: the job has already run, and the SDK's wait sleeps 5 s first.
    processor.run(inputs=inputs, outputs=[output], wait=False, logs=False, job_name=name)
