"""make pipeline's one definition (sagemaker.workflow), built from the very Estimator,
processors, Model and Transformer the make verbs build:

  Prepare (processing: make data's split) -> Train -> Evaluate (processing: evaluation.json,
  a property file) -> Gate (evaluated val_auc >= ApprovalMinAuc?)
      yes: Model -> Transform (test.csv)  [-> Register, PendingManualApproval, on SageMaker]
      no:  BelowBar (a Fail step naming both numbers)

On SageMaker the definition is upserted and run by SageMaker Pipelines; on the embedded stack
the SDK's local pipeline session runs the same steps in order. Local mode cannot register (the
SDK refuses the step), so there the definition has no Register step and the toolkit registers
the execution's model afterwards, through make register's code.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import boto3
from botocore.exceptions import ClientError
from sagemaker.model import Model
from sagemaker.model_metrics import MetricsSource, ModelMetrics
from sagemaker.workflow.condition_step import ConditionStep
from sagemaker.workflow.conditions import ConditionGreaterThanOrEqualTo
from sagemaker.workflow.execution_variables import ExecutionVariables
from sagemaker.workflow.fail_step import FailStep
from sagemaker.workflow.functions import Join, JsonGet
from sagemaker.workflow.model_step import ModelStep
from sagemaker.workflow.parameters import ParameterFloat, ParameterString
from sagemaker.workflow.pipeline import Pipeline
from sagemaker.workflow.pipeline_context import LocalPipelineSession, PipelineSession
from sagemaker.workflow.pipeline_definition_config import PipelineDefinitionConfig
from sagemaker.workflow.properties import PropertyFile
from sagemaker.workflow.steps import ProcessingStep, TrainingStep, TransformStep
from titanic_model.contract import ACCEPT_TYPES, CONTENT_TYPES, EVALUATION_FILE

from launcher.lib import batch_transform, executions, processing, sdk, training
from launcher.lib.caller import sagemaker_tags
from launcher.lib.config import TOOLKIT_TAG, Settings, is_toolkits, job_tags
from launcher.lib.errors import NOT_FOUND, ToolkitError, error_code
from launcher.lib.model_registry import PENDING

# Step names: SageMaker shows them, ListPipelineExecutionSteps reports them, the run record
# keeps them. ModelStep names its steps "<name>-CreateModel" and "<name>-RegisterModel".
PREPARE, TRAIN, EVALUATE, GATE, FAIL, MODEL, TRANSFORM, REGISTER = (
    "Prepare",
    "Train",
    "Evaluate",
    "Gate",
    "BelowBar",
    "Model",
    "Transform",
    "Register",
)
REGISTER_STEP = f"{REGISTER}-RegisterModel"  # as ModelStep names it
EVALUATION_PROPERTY_FILE = "Evaluation"
GATED_METRIC = "metrics.val_auc"  # in evaluation.json; make approve reads the same number


@dataclass(frozen=True)
class Inputs:
    """What the definition is built over: the image, where the raw data and test.csv are in S3,
    the instance types (parameters: a run may change them), and who launches it (for tags)."""

    image_uri: str
    raw_uri: str
    test_uri: str
    training_type: str
    processing_type: str
    transform_type: str
    launched_by: str
    supported_types: tuple[list[str], list[str]]  # (real-time, transform) for the Register step


def session(settings: Settings, boto_session: boto3.Session) -> Any:
    """A pipeline session: the SDK's local one on the embedded stack, with the toolkit's local
    mode (networks, readiness, config) as make train's; SageMaker's otherwise."""
    if settings.local:
        local = sdk.session(settings, boto_session)  # sets up the toolkit's local mode
        pipeline_session = LocalPipelineSession(boto_session=boto_session, disable_local_code=True)
        pipeline_session.config = local.config
        _name_models_once(pipeline_session.sagemaker_client)
        return pipeline_session
    return PipelineSession(boto_session=boto_session, sagemaker_config=sdk.sagemaker_config())


def _name_models_once(client: Any) -> None:
    """The SDK's local Model step passes the model's name twice (its own, and the definition's,
    which custom job prefixes keep) and fails; it then describes the model by its own name, so
    that one is kept (tests/test_pipeline.py runs the step)."""
    create = client.create_model

    def create_model(name: str, **arguments: Any) -> Any:
        arguments.pop("ModelName", None)
        return create(name, **arguments)

    client.create_model = create_model


def definition(settings: Settings, inputs: Inputs, pipeline_session: Any, prefixes: dict[str, str]) -> Pipeline:
    """The pipeline; `prefixes` are the steps' job names (names.pipeline_prefixes)."""
    params = {
        "InputData": ParameterString("InputData", default_value=inputs.raw_uri),
        "TestData": ParameterString("TestData", default_value=inputs.test_uri),
        "TrainingInstanceType": ParameterString("TrainingInstanceType", default_value=inputs.training_type),
        "ProcessingInstanceType": ParameterString("ProcessingInstanceType", default_value=inputs.processing_type),
        "TransformInstanceType": ParameterString("TransformInstanceType", default_value=inputs.transform_type),
        "ApprovalMinAuc": ParameterFloat("ApprovalMinAuc", default_value=settings.approval_min_auc),
    }
    tags = job_tags(settings, inputs.launched_by)
    execution = ExecutionVariables.PIPELINE_EXECUTION_ID

    prepare_job = processing.processor(
        settings,
        inputs.image_uri,
        pipeline_session,
        tags,
        processing.prepare_command(settings),
        instance_type=_local_or(inputs.processing_type, params["ProcessingInstanceType"]),
    )
    raw, split = processing.prepare_io(
        params["InputData"], Join(on="/", values=[settings.data_uri, "pipelines", execution])
    )
    prepare = ProcessingStep(
        PREPARE, step_args=prepare_job.run(inputs=raw, outputs=split, job_name=prefixes["prepare"], logs=False)
    )
    split_uri = prepare.properties.ProcessingOutputConfig.Outputs[processing.SPLIT_OUTPUT].S3Output.S3Uri
    channels = {c: Join(on="/", values=[split_uri, c]) for c in processing.CHANNELS}

    estimator = training.build_estimator(
        settings,
        inputs.image_uri,
        pipeline_session,
        inputs.launched_by,
        checkpoint=None if settings.local else Join(on="/", values=[settings.checkpoint_uri, "pipelines", execution]),
        instance_type=_local_or(inputs.training_type, params["TrainingInstanceType"]),
    )
    train = TrainingStep(
        TRAIN, step_args=estimator.fit(training.training_inputs(settings, channels), job_name=prefixes["train"])
    )
    model_uri = train.properties.ModelArtifacts.S3ModelArtifacts

    evaluation_uri = Join(on="/", values=[settings.output_uri, train.properties.TrainingJobName, "evaluation"])
    evaluate_job = processing.processor(
        settings,
        inputs.image_uri,
        pipeline_session,
        tags,
        [*processing.ENTRYPOINT, processing.EVALUATE],
        instance_type=_local_or(inputs.processing_type, params["ProcessingInstanceType"]),
    )
    report = PropertyFile(EVALUATION_PROPERTY_FILE, output_name=processing.EVALUATION_OUTPUT, path=EVALUATION_FILE)
    evaluate = ProcessingStep(
        EVALUATE,
        step_args=evaluate_job.run(
            inputs=processing.evaluation_inputs(model_uri, channels),
            outputs=[processing.evaluation_output(evaluation_uri)],
            job_name=prefixes["evaluate"],
            logs=False,
        ),
        property_files=[report],
    )
    evaluated_auc = JsonGet(step_name=EVALUATE, property_file=report, json_path=GATED_METRIC)

    model = Model(
        image_uri=inputs.image_uri,
        model_data=model_uri,
        role=settings.role_arn,
        name=prefixes["model"],
        sagemaker_session=pipeline_session,
        enable_network_isolation=True,
    )
    transform_type = _local_or(inputs.transform_type, params["TransformInstanceType"])
    model_step = ModelStep(MODEL, step_args=model.create(instance_type=transform_type, tags=tags))
    transformer = batch_transform.transformer(
        model_step.properties.ModelName,
        pipeline_session,
        instance_type=transform_type,
        output_uri=Join(on="/", values=[settings.predictions_uri, "pipelines", execution, "raw"]),
        tags=tags,
        base_name=prefixes["transform"],
    )
    transform = TransformStep(
        TRANSFORM, step_args=batch_transform.run_over(transformer, params["TestData"], job_name=prefixes["transform"])
    )
    passed = [model_step, transform]
    if not settings.local:
        passed.append(_register(settings, inputs, model, evaluation_uri, train))
    below = FailStep(
        FAIL,
        error_message=Join(
            on=" ",
            values=["evaluated val_auc", evaluated_auc, "is below the approval bar", params["ApprovalMinAuc"]],
        ),
    )
    gate = ConditionStep(
        GATE,
        conditions=[ConditionGreaterThanOrEqualTo(left=evaluated_auc, right=params["ApprovalMinAuc"])],
        if_steps=passed,
        else_steps=[below],
    )
    return Pipeline(
        name=settings.pipeline_name,
        parameters=list(params.values()),
        steps=[prepare, train, evaluate, gate],
        sagemaker_session=pipeline_session,
        # Keep the jobs' names in the definition: SageMaker uses them as prefixes, so the jobs
        # stay inside the toolkit's grants, trust and clean-up (names.PATTERNS).
        pipeline_definition_config=PipelineDefinitionConfig(use_custom_job_prefix=True),
    )


def _local_or(value: str, parameter: Any) -> Any:
    """Local mode decides it is local from the literal "local" (a parameter would hide it)."""
    return value if value == "local" else parameter


def _register(settings: Settings, inputs: Inputs, model: Model, evaluation_uri: Any, train: TrainingStep) -> ModelStep:
    """The version make register would make: PendingManualApproval, evaluation.json as its
    quality report (make approve reads its val_auc), the same content and instance types."""
    realtime, transform = inputs.supported_types
    metrics = ModelMetrics(
        model_statistics=MetricsSource(
            content_type="application/json", s3_uri=Join(on="/", values=[evaluation_uri, EVALUATION_FILE])
        )
    )
    return ModelStep(
        REGISTER,
        step_args=model.register(
            content_types=list(CONTENT_TYPES),
            response_types=list(ACCEPT_TYPES),
            inference_instances=realtime,
            transform_instances=transform,
            model_package_group_name=settings.model_package_group,
            approval_status=PENDING,
            model_metrics=metrics,
            description=Join(
                on=" ", values=["pipeline", settings.pipeline_name, "training job", train.properties.TrainingJobName]
            ),
        ),
    )


class PipelineOwnerError(ToolkitError):
    """A pipeline of PIPELINE_NAME exists that is not the toolkit's."""


def upsert(pipe: Pipeline, settings: Settings, sm: Any, tags: list[dict[str, str]]) -> str:
    """Create the pipeline, or update the toolkit's own (its definition, role and tags). A
    pipeline of that name without the toolkit's tag is someone else's: refused, never changed."""
    description = "The Titanic toolkit's flow: prepare, train, evaluate, gate, model, transform, register"
    try:
        found = sm.describe_pipeline(PipelineName=settings.pipeline_name)
    except ClientError as exc:
        if error_code(exc) not in NOT_FOUND:
            raise
        pipe.create(role_arn=settings.pipeline_role_arn, description=description, tags=tags)
        return "created"
    if not is_toolkits(sagemaker_tags(sm, found["PipelineArn"])):
        raise PipelineOwnerError(
            f"pipeline {settings.pipeline_name} exists without the toolkit's {TOOLKIT_TAG[0]} tag: it is someone "
            "else's; set PIPELINE_NAME to another name"
        )
    pipe.update(role_arn=settings.pipeline_role_arn, description=description)
    sm.add_tags(ResourceArn=found["PipelineArn"], Tags=tags)
    return "updated"


def create_local(pipe: Pipeline, settings: Settings) -> None:
    """Local mode keeps the definition in this process (no role is assumed)."""
    pipe.create(role_arn=settings.pipeline_role_arn, description="the toolkit's pipeline (embedded stack)")


def start(pipe: Pipeline, started_by: str) -> str:
    """Start an execution; its description names who started it (clean-up stops only its own)."""
    return pipe.start(execution_description=f"{executions.STARTED_BY}{started_by}").arn
