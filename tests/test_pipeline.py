"""make pipeline's SageMaker side against the API model: the definition launcher/lib/pipeline.py
builds (its steps, names, gate and registration), CreatePipeline/UpdatePipeline as they leave
botocore and as moto stores them, and StartPipelineExecution, ListPipelineExecutionSteps and
StopPipelineExecution with the Stubber (moto lacks the last two). tests/test_pipeline_run.py
runs the same definition on the embedded stack."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any

import boto3
import pytest
from botocore.stub import Stubber
from conftest import shipped

from launcher import operate
from launcher import pipeline as command
from launcher.lib import executions, names
from launcher.lib import pipeline as flow
from launcher.lib.caller import Caller
from launcher.lib.config import Settings, load
from launcher.lib.errors import StillRunning

ME = "arn:aws:iam::123456789012:user/me"
IMAGE = "123456789012.dkr.ecr.us-east-1.amazonaws.com/titanic-lightgbm:sha256-0a1b"
PIPELINE = "arn:aws:sagemaker:us-east-1:123456789012:pipeline/titanic-survival"
EXECUTION = f"{PIPELINE}/execution/a1b2c3d4e5f6"
CALLER = Caller(account="123456789012", partition="aws", arn=ME)


def aws(**changes: str) -> Settings:
    return load({**shipped(), "TARGET": "aws", **changes})


def inputs(settings: Settings) -> flow.Inputs:
    return flow.Inputs(
        image_uri=IMAGE,
        raw_uri=f"{settings.data_uri}/raw",
        test_uri=f"{settings.data_uri}/test/test.csv",
        training_type=settings.instance_type,
        processing_type=settings.instance_type,
        transform_type="ml.m5.large",
        launched_by=ME,
        supported_types=(["ml.m5.large"], ["ml.m5.large"]),
    )


def built(settings: Settings, session: boto3.Session | None = None) -> Any:
    session = session or boto3.Session(region_name="us-east-1", aws_access_key_id="x", aws_secret_access_key="x")
    prefixes = names.pipeline_prefixes(settings.base_job_name)
    return flow.definition(settings, inputs(settings), flow.session(settings, session), prefixes)


def steps(definition: dict[str, Any]) -> dict[str, dict[str, Any]]:
    found = {}
    for step in definition["Steps"]:
        found[step["Name"]] = step
        for branch in ("IfSteps", "ElseSteps"):
            for inner in step.get("Arguments", {}).get(branch, []):
                found[inner["Name"]] = inner
    return found


def test_the_definition_is_the_make_verbs_flow_under_the_toolkits_names() -> None:
    settings = aws()
    definition = json.loads(built(settings).definition())
    by_name = steps(definition)
    assert [s["Name"] for s in definition["Steps"]] == ["Prepare", "Train", "Evaluate", "Gate"]
    assert {s["Name"]: s["Type"] for s in by_name.values()} == {
        "Prepare": "Processing",
        "Train": "Training",
        "Evaluate": "Processing",
        "Gate": "Condition",
        "Model-CreateModel": "Model",
        "Transform": "Transform",
        "Register-RegisterModel": "RegisterModel",
        "BelowBar": "Fail",
    }
    assert {p["Name"] for p in definition["Parameters"]} == {
        "InputData",
        "TestData",
        "TrainingInstanceType",
        "ProcessingInstanceType",
        "TransformInstanceType",
        "ApprovalMinAuc",
    }
    # Job names are the toolkit's prefixes: SageMaker appends -<execution>-<token>-<n>.
    assert by_name["Prepare"]["Arguments"]["ProcessingJobName"] == "titanic-lgbm-prep"
    assert by_name["Train"]["Arguments"]["TrainingJobName"] == "titanic-lgbm"
    assert by_name["Evaluate"]["Arguments"]["ProcessingJobName"] == "titanic-lgbm-eval"
    assert by_name["Transform"]["Arguments"]["TransformJobName"] == "titanic-lgbm-predict"
    for made in (f"{p}-a1b2c3d4e5f6-AbCdEfGhIj-0" for p in names.pipeline_prefixes("titanic-lgbm").values()):
        assert any(names.owned(settings, kind, made) for kind in ("training-job", "processing-job", "model"))
    train = by_name["Train"]["Arguments"]
    assert train["HyperParameters"] == settings.hyperparameters
    assert train["EnableNetworkIsolation"] is True and train["AlgorithmSpecification"]["TrainingImage"] == IMAGE
    assert train["ResourceConfig"]["InstanceType"] == {"Get": "Parameters.TrainingInstanceType"}
    tags = {t["Key"]: t["Value"] for t in train["Tags"]}
    assert tags["created-by"] == "titanic-sagemaker-toolkit" and tags["launched-by"] == ME
    prepare = by_name["Prepare"]["Arguments"]["AppSpecification"]["ContainerEntrypoint"]
    assert prepare == ["python", "entrypoint.py", "prepare", "--validation-fraction", "0.2", "--seed", "42"]
    evaluate = by_name["Evaluate"]
    assert evaluate["Arguments"]["AppSpecification"]["ContainerEntrypoint"] == ["python", "entrypoint.py", "evaluate"]
    assert evaluate["PropertyFiles"] == [
        {"PropertyFileName": "Evaluation", "OutputName": "evaluation", "FilePath": "evaluation.json"}
    ]
    for job in (by_name["Prepare"], evaluate):
        assert job["Arguments"]["NetworkConfig"]["EnableNetworkIsolation"] is True


def test_the_gate_reads_the_evaluation_and_the_fail_step_names_both_numbers() -> None:
    by_name = steps(json.loads(built(aws()).definition()))
    condition = by_name["Gate"]["Arguments"]["Conditions"]
    assert condition == [
        {
            "Type": "GreaterThanOrEqualTo",
            "LeftValue": {
                "Std:JsonGet": {
                    "PropertyFile": {"Get": "Steps.Evaluate.PropertyFiles.Evaluation"},
                    "Path": "metrics.val_auc",
                }
            },
            "RightValue": {"Get": "Parameters.ApprovalMinAuc"},
        }
    ]
    message = by_name["BelowBar"]["Arguments"]["ErrorMessage"]["Std:Join"]["Values"]
    assert {"Get": "Parameters.ApprovalMinAuc"} in message
    assert any("Std:JsonGet" in value for value in message if isinstance(value, dict))


def test_the_register_step_is_make_registers_version() -> None:
    register = steps(json.loads(built(aws()).definition()))["Register-RegisterModel"]["Arguments"]
    assert register["ModelPackageGroupName"] == "titanic-survival"
    assert register["ModelApprovalStatus"] == "PendingManualApproval"
    statistics = register["ModelMetrics"]["ModelQuality"]["Statistics"]
    assert statistics["ContentType"] == "application/json"
    assert statistics["S3Uri"]["Std:Join"]["Values"][-1] == "evaluation.json"  # what make approve reads
    specification = register["InferenceSpecification"]
    assert specification["SupportedContentTypes"] == ["text/csv", "application/json", "application/jsonlines"]
    assert "Tags" not in register  # a version in a group takes the group's tags, and AWS refuses its own


def test_on_the_embedded_stack_there_is_no_register_step_and_types_are_local() -> None:
    settings = load({**shipped(), "TARGET": "local"})
    local = flow.Inputs(**{**inputs(settings).__dict__, "training_type": "local", "processing_type": "local"})
    local = flow.Inputs(**{**local.__dict__, "transform_type": "local"})
    session = boto3.Session(region_name="us-east-1", aws_access_key_id="x", aws_secret_access_key="x")
    prefixes = names.pipeline_prefixes(settings.base_job_name, names.local_execution(datetime(2026, 12, 5, tzinfo=UTC)))
    definition = json.loads(flow.definition(settings, local, flow.session(settings, session), prefixes).definition())
    by_name = steps(definition)
    assert "Register-RegisterModel" not in by_name
    assert by_name["Train"]["Arguments"]["TrainingJobName"] == "titanic-lgbm-p261205000000"
    assert by_name["Train"]["Arguments"]["ResourceConfig"]["InstanceType"] == "local"


def test_create_then_update_as_they_leave_botocore_and_moto_keeps_them(moto_endpoint: str) -> None:
    settings = aws()
    session = boto3.Session(region_name="us-east-1")
    sent: list[tuple[str, dict[str, Any]]] = []
    session.events.register(
        "before-parameter-build.sagemaker.*", lambda params, model, **_: sent.append((model.name, params))
    )
    sm = session.client("sagemaker")
    pipe = built(settings, session)
    assert flow.upsert(pipe, settings, sm, [{"Key": "created-by", "Value": "titanic-sagemaker-toolkit"}]) == "created"
    create = next(params for name, params in sent if name == "CreatePipeline")
    assert create["RoleArn"] == settings.pipeline_role_arn and create["PipelineName"] == "titanic-survival"
    assert json.loads(create["PipelineDefinition"]) == json.loads(pipe.definition())
    stored = sm.describe_pipeline(PipelineName="titanic-survival")
    assert json.loads(stored["PipelineDefinition"]) == json.loads(pipe.definition())
    assert flow.upsert(pipe, settings, sm, [{"Key": "created-by", "Value": "titanic-sagemaker-toolkit"}]) == "updated"
    assert any(name == "UpdatePipeline" for name, _ in sent)
    arn = flow.start(pipe, "arn:aws:iam::123456789012:user/me")
    start = next(params for name, params in sent if name == "StartPipelineExecution")
    assert start["PipelineExecutionDescription"] == "started by arn:aws:iam::123456789012:user/me"
    assert executions.started_by(sm, arn) == "arn:aws:iam::123456789012:user/me"


def test_someone_elses_pipeline_of_that_name_is_refused_and_left_as_it_is(moto_endpoint: str) -> None:
    sm = boto3.client("sagemaker", region_name="us-east-1")
    theirs = json.dumps({"Version": "2020-12-01", "Steps": []})
    sm.create_pipeline(PipelineName="titanic-survival", PipelineDefinition=theirs, RoleArn=f"{PIPELINE}-role")
    settings = aws()
    with pytest.raises(flow.PipelineOwnerError, match="without the toolkit's created-by tag: it is someone else's"):
        flow.upsert(built(settings), settings, sm, [])
    assert sm.describe_pipeline(PipelineName="titanic-survival")["PipelineDefinition"] == theirs


def step(name: str, status: str, **extra: Any) -> dict[str, Any]:
    return {"StepName": name, "StepStatus": status, "StartTime": datetime(2026, 12, 5, tzinfo=UTC), **extra}


def test_following_says_each_step_once_and_returns_the_final_steps() -> None:
    sm = boto3.client("sagemaker", region_name="us-east-1", aws_access_key_id="x", aws_secret_access_key="x")
    train = {"TrainingJob": {"Arn": "arn:aws:sagemaker:us-east-1:123456789012:training-job/titanic-lgbm-a-b-0"}}
    with Stubber(sm) as stub:
        for status, listed in (
            ("Executing", [step("Prepare", "Executing")]),
            ("Succeeded", [step("Prepare", "Succeeded"), step("Train", "Succeeded", Metadata=train)]),
        ):
            stub.add_response(
                "describe_pipeline_execution",
                {"PipelineExecutionStatus": status},
                {"PipelineExecutionArn": EXECUTION},
            )
            stub.add_response(
                "list_pipeline_execution_steps", {"PipelineExecutionSteps": listed}, {"PipelineExecutionArn": EXECUTION}
            )
        stub.add_response(
            "list_pipeline_execution_steps",
            {"PipelineExecutionSteps": [step("Prepare", "Succeeded"), step("Train", "Succeeded", Metadata=train)]},
            {"PipelineExecutionArn": EXECUTION},
        )
        outcome = command.follow(sm, EXECUTION, sleep=lambda _: None)
        stub.assert_no_pending_responses()
    assert outcome["status"] == "Succeeded"
    rows = command.step_rows(outcome["steps"])
    assert rows[1]["kind"] == "TrainingJob" and rows[1]["resource"] == "titanic-lgbm-a-b-0"


def test_ctrl_c_leaves_the_execution_running_and_says_how_to_follow_stop_and_reattach() -> None:
    sm = boto3.client("sagemaker", region_name="us-east-1", aws_access_key_id="x", aws_secret_access_key="x")

    def interrupted(_: float) -> None:
        raise KeyboardInterrupt

    with Stubber(sm) as stub:
        stub.add_response("describe_pipeline_execution", {"PipelineExecutionStatus": "Executing"})
        stub.add_response("list_pipeline_execution_steps", {"PipelineExecutionSteps": [step("Train", "Executing")]})
        with pytest.raises(StillRunning) as caught:
            command.follow(sm, EXECUTION, sleep=interrupted)
    message = str(caught.value)
    assert f"make pipeline JOB={EXECUTION}" in message and f"make stop JOB={EXECUTION}" in message
    assert "keeps running on SageMaker" in message and "\n" not in message


def test_make_stop_stops_an_execution_and_waits_for_its_end(monkeypatch: pytest.MonkeyPatch) -> None:
    session = boto3.Session(region_name="us-east-1", aws_access_key_id="x", aws_secret_access_key="x")
    sm = session.client("sagemaker")
    monkeypatch.setattr(session, "client", lambda service, **_: sm)
    monkeypatch.setattr(operate, "whoami", lambda _: CALLER)
    monkeypatch.setattr(operate.watch.time, "sleep", lambda _: None)
    with Stubber(sm) as stub:
        stub.add_response("describe_pipeline_execution", {"PipelineExecutionStatus": "Executing"})
        stub.add_response(
            "stop_pipeline_execution",
            {"PipelineExecutionArn": EXECUTION},
            {"PipelineExecutionArn": EXECUTION, "ClientRequestToken": stub_any()},
        )
        stub.add_response("describe_pipeline_execution", {"PipelineExecutionStatus": "Stopping"})
        stub.add_response("describe_pipeline_execution", {"PipelineExecutionStatus": "Stopped"})
        assert operate.stop_execution(aws(), session, "a1b2c3d4e5f6") == 0
        stub.assert_no_pending_responses()


def stub_any() -> Any:
    from botocore.stub import ANY

    return ANY


@pytest.mark.parametrize(
    ("job", "expected"),
    [
        ("a1b2c3d4e5f6", EXECUTION),
        (EXECUTION, EXECUTION),
    ],
)
def test_job_names_an_execution_by_id_or_arn(job: str, expected: str) -> None:
    assert executions.execution_arn(aws(), CALLER, job) == expected


def test_another_pipelines_execution_is_refused() -> None:
    other = EXECUTION.replace("titanic-survival", "someone-else")
    with pytest.raises(executions.ExecutionError, match="is not an execution of titanic-survival"):
        executions.execution_arn(aws(), CALLER, other)
