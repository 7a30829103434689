"""The toolkit's pipeline executions on SageMaker, as make pipeline, status, stop and clean-up
see them: an execution's ARN from JOB=, its steps, who started it, how to stop it."""

from __future__ import annotations

import uuid
from typing import Any

from botocore.exceptions import ClientError

from launcher.lib import names
from launcher.lib.caller import Caller
from launcher.lib.config import Settings
from launcher.lib.errors import NOT_FOUND, ToolkitError, error_code

FINAL = ("Succeeded", "Failed", "Stopped")  # PipelineExecutionStatus values that no longer change
STARTED_BY = "started by "  # an execution's description: who started it (as a job's launched-by tag says)
RECENT = 10


class ExecutionError(ToolkitError):
    """JOB= does not name an execution of the toolkit's pipeline; the message says what does."""


def is_execution(job: str) -> bool:
    """Whether JOB= names a pipeline execution (an ARN with /execution/) rather than a job."""
    return ":pipeline/" in job and "/execution/" in job


def execution_arn(settings: Settings, caller: Caller, execution: str) -> str:
    """JOB=: an execution's ARN, or its id (the ARN's last part) in the toolkit's pipeline."""
    if execution.startswith("arn:"):
        if f":pipeline/{settings.pipeline_name}/execution/" not in execution:
            raise ExecutionError(
                f"{execution} is not an execution of {settings.pipeline_name}; 'make status' lists them"
            )
        return execution
    resource = f"pipeline/{settings.pipeline_name}/execution/{execution}"
    return names.arn(caller.partition, settings.region, caller.account, resource)


def steps(sm: Any, arn: str) -> list[dict[str, Any]]:
    """ListPipelineExecutionSteps, every page."""
    pages = sm.get_paginator("list_pipeline_execution_steps").paginate(PipelineExecutionArn=arn)
    return [step for page in pages for step in page["PipelineExecutionSteps"]]


def recent(sm: Any, settings: Settings) -> list[dict[str, Any]] | None:
    """The pipeline's newest executions (None: there is no such pipeline yet)."""
    try:
        found = sm.list_pipeline_executions(
            PipelineName=settings.pipeline_name, SortBy="CreationTime", SortOrder="Descending", MaxResults=RECENT
        )
    except ClientError as exc:
        if error_code(exc) in NOT_FOUND:
            return None
        raise
    return found["PipelineExecutionSummaries"]


def running(sm: Any, settings: Settings) -> list[dict[str, Any]]:
    """Every execution of the pipeline still Executing (or Stopping)."""
    pages = sm.get_paginator("list_pipeline_executions").paginate(PipelineName=settings.pipeline_name)
    return [
        summary
        for page in pages
        for summary in page["PipelineExecutionSummaries"]
        if summary.get("PipelineExecutionStatus") not in FINAL
    ]


def started_by(sm: Any, arn: str) -> str:
    """Who started the execution, from the description make pipeline gave it ('' when another tool did)."""
    description = sm.describe_pipeline_execution(PipelineExecutionArn=arn).get("PipelineExecutionDescription") or ""
    return description.removeprefix(STARTED_BY) if description.startswith(STARTED_BY) else ""


def stop(sm: Any, arn: str) -> None:
    """StopPipelineExecution; SageMaker stops the running step's job and ends the execution Stopped."""
    sm.stop_pipeline_execution(PipelineExecutionArn=arn, ClientRequestToken=str(uuid.uuid4()))
