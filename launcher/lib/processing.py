"""Processing jobs through the SDK, in the training image: `evaluate` (make evaluate and the
pipeline's Evaluate step: a training job's model.tar.gz and the data channels in,
evaluation.json out) and `prepare` (the pipeline's Prepare step: Kaggle's file and its
SHA256SUMS in, make data's split out). The folders inside the container are the image's own
contract (titanic_model.contract.ProcessingPaths), so the requests and the commands cannot
disagree."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from sagemaker.network import NetworkConfig
from sagemaker.processing import ProcessingInput, ProcessingOutput, Processor
from titanic_model.cli import EVALUATE, PREPARE
from titanic_model.contract import DEFAULT_BASE_DIR, ProcessingPaths

from launcher.lib import records
from launcher.lib.config import Settings

# The image's own entry point and its commands (titanic_model.cli), given as the job's
# ContainerEntrypoint: local mode fails on ContainerArguments without one.
ENTRYPOINT = ["python", "entrypoint.py"]
INSIDE = ProcessingPaths(Path(DEFAULT_BASE_DIR))  # where SageMaker puts the inputs and finds the output
CHANNELS = ("train", "validation")
EVALUATION_OUTPUT = "evaluation"
SPLIT_OUTPUT = "split"
RAW_INPUT = "raw"


def evaluation_uri(settings: Settings, training_job: str) -> str:
    """Where a training job's evaluation lands: beside its model (evaluations.file_uri's folder)."""
    return f"{settings.output_uri}/{training_job}/evaluation"


def prepare_command(settings: Settings) -> list[str]:
    """The Prepare job's entry point: make data's split with make data's settings."""
    fraction, seed = str(settings.validation_fraction), str(settings.split_seed)
    return [*ENTRYPOINT, PREPARE, "--validation-fraction", fraction, "--seed", seed]


def processor(
    settings: Settings,
    image_uri: str,
    session: Any,
    tags: list[dict[str, str]],
    command: list[str],
    *,
    instance_type: Any,
) -> Processor:
    """One processing job of the image's `command` on one instance, without network."""
    return Processor(
        role=settings.role_arn,
        image_uri=image_uri,
        instance_count=1,
        instance_type=instance_type,
        entrypoint=command,
        volume_size_in_gb=settings.volume_size_gb,
        max_runtime_in_seconds=settings.max_run,
        sagemaker_session=session,
        tags=tags,
        # The container needs nothing but its inputs (local mode ignores this: its processing
        # containers sit on the internal network, like training's).
        network_config=NetworkConfig(enable_network_isolation=True),
    )


def evaluation_inputs(model_uri: Any, channel_uris: dict[str, Any]) -> list[ProcessingInput]:
    """The model archive and the channels, where `evaluate` reads them."""
    inputs = [ProcessingInput(source=model_uri, destination=str(INSIDE.model_dir), input_name="model")]
    inputs += [
        ProcessingInput(source=channel_uris[c], destination=str(INSIDE.channel(c)), input_name=c) for c in CHANNELS
    ]
    return inputs


def evaluation_output(destination: Any) -> ProcessingOutput:
    return ProcessingOutput(source=str(INSIDE.evaluation_dir), destination=destination, output_name=EVALUATION_OUTPUT)


def prepare_io(raw_uri: Any, destination: Any) -> tuple[list[ProcessingInput], list[ProcessingOutput]]:
    """The Prepare job's input (the raw prefix: train.csv and SHA256SUMS) and its split's output."""
    raw = ProcessingInput(source=raw_uri, destination=str(INSIDE.raw_dir), input_name=RAW_INPUT)
    return [raw], [ProcessingOutput(source=str(INSIDE.split_dir), destination=destination, output_name=SPLIT_OUTPUT)]


def start(settings: Settings, session: Any, record: records.RunRecord, name: str, tags: list[dict[str, str]]) -> None:
    """Create make evaluate's job. Local mode runs it inside this call; on SageMaker it starts."""
    instance_type = "local" if settings.local else settings.instance_type
    command = [*ENTRYPOINT, EVALUATE]
    job = processor(settings, record["image"]["uri"], session, tags, command, instance_type=instance_type)
    inputs = evaluation_inputs(record["model_artifact"], {c: settings.channel_uri(c) for c in CHANNELS})
    output = evaluation_output(evaluation_uri(settings, record["job_name"]))
    # wait=False in local mode too: the job has already run, and the SDK's wait sleeps 5 s first.
    job.run(inputs=inputs, outputs=[output], wait=False, logs=False, job_name=name)
