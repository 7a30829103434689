"""make tune-jobs (launcher/tuning.py): the search space, the TARGET=aws request and trials,
the report, and the best settings feeding make train.

The SageMaker side is checked against botocore's API model: the CreateHyperParameterTuningJob
request is captured as it leaves botocore (moto accepts and records it), and the trials of a
finished tuning job, which moto does not list, come from a Stubber holding answers in the
API's own shapes. Only AWS can show the trials actually running.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import boto3
import pytest
from botocore.stub import Stubber
from conftest import REPO, WithSageMaker, run_record, settings_for

from launcher import tuning
from launcher.lib import records, sdk, training

SHIPPED_SPACE = REPO / "launcher/search-space.json"


settings = settings_for


def space_file(tmp_path: Path, parameters: dict[str, Any], objective: str = "val_auc") -> Path:
    path = tmp_path / "space.json"
    path.write_text(json.dumps({"objective": objective, "parameters": parameters}))
    return path


def trial(number: int, objective: float | None, status: str = "Completed") -> tuning.Trial:
    return tuning.Trial(
        number=number,
        job_name=f"job-{number}",
        status=status,
        hyperparameters={"num_leaves": "8"},
        objective=objective,
        seconds=3.0,
        cost_usd=None,
        on_demand_cost_usd=0.0001,
    )


def test_the_shipped_search_space_is_within_what_the_image_accepts() -> None:
    space = tuning.load_search_space(SHIPPED_SPACE)
    assert space.objective == "val_auc"
    assert {p.name for p in space.parameters} >= {"learning_rate", "num_leaves", "n_estimators"}


@pytest.mark.parametrize(
    ("parameters", "objective", "phrase"),
    [
        ({"trees": {"type": "integer", "min": 1, "max": 5}}, "val_auc", "'trees' is not a hyperparameter of the image"),
        ({"num_leaves": {"type": "continuous", "min": 4, "max": 8}}, "val_auc", "num_leaves is int in the image"),
        ({"num_leaves": {"type": "integer", "min": 1, "max": 8}}, "val_auc", "leaves what the image accepts, [2,"),
        ({"subsample": {"type": "continuous", "min": 0.9, "max": 0.5}}, "val_auc", 'needs numbers "min" < "max"'),
        (
            {"reg_lambda": {"type": "continuous", "min": 0, "max": 5, "scaling": "Logarithmic"}},
            "val_auc",
            "Logarithmic needs min > 0",
        ),
        ({"subsample": {"min": 0.5, "max": 0.9}}, "val_auc", 'needs "type": one of continuous, integer'),
        ({}, "val_auc", '"parameters" must map at least one hyperparameter'),
        ({"subsample": {"type": "continuous", "min": 0.5, "max": 0.9}}, "auc", '"objective" must be a metric'),
    ],
)
def test_a_bad_search_space_is_named_with_the_fix(
    tmp_path: Path, parameters: dict, objective: str, phrase: str
) -> None:
    with pytest.raises(tuning.TuneError, match=phrase.replace("[", r"\[").replace("]", r"\]")):
        tuning.load_search_space(space_file(tmp_path, parameters, objective))


def test_a_missing_or_broken_search_space_file(tmp_path: Path) -> None:
    with pytest.raises(tuning.TuneError, match="is missing; TUNE_SEARCH_SPACE must name"):
        tuning.load_search_space(tmp_path / "nope.json")
    (tmp_path / "bad.json").write_text("{")
    with pytest.raises(tuning.TuneError, match="is not valid JSON"):
        tuning.load_search_space(tmp_path / "bad.json")


def test_tuning_names_fit_sagemakers_limit_and_the_policys_pattern() -> None:
    name = tuning.tuning_name(settings(), datetime(2026, 11, 26, 8, 30, 1, tzinfo=UTC))
    assert name == "titanic-lgbm-261126083001" and len(name) <= 32
    longest = tuning.tuning_name(settings(BASE_JOB_NAME="b" * 19), datetime(2026, 11, 26, 8, 30, 1, tzinfo=UTC))
    assert len(longest) == 32  # the longest base settings accept still fits


def test_the_best_trial_is_the_highest_objective_and_failures_never_win() -> None:
    trials = [trial(1, 0.81), trial(2, None, "Failed"), trial(3, 0.86), trial(4, 0.86)]
    assert tuning.best_of(trials).number == 3  # a tie goes to the earlier trial
    with pytest.raises(tuning.TuneError, match="no trial produced the objective"):
        tuning.best_of([trial(1, None, "Failed")])


def test_the_report_marks_the_best_and_says_how_to_use_it(tmp_path: Path) -> None:
    space = tuning.load_search_space(SHIPPED_SPACE)
    trials = [trial(1, 0.81), trial(2, 0.88)]
    text = tuning.report_markdown("titanic-lgbm-261126083001", settings(), space, trials, trials[1])
    rows = [line for line in text.splitlines() if line.startswith("| ")]
    assert rows[0].startswith("| trial | job | learning_rate")
    assert rows[2].startswith("| 2 **best** | job-2 (Completed)") and "0.8800" in rows[2]
    assert "No evaluated run of the current settings to compare with" in text  # nothing to judge against
    current = tuning.Baseline(job_name="titanic-lgbm-2026-12-04-10-00-00-000", objective=0.86, spread=0.024)
    text = tuning.report_markdown("t", settings(), space, trials, trials[1], current=current)
    assert "| current settings | titanic-lgbm-2026-12-04-10-00-00-000 |" in text and "0.8600" in text
    assert "Keep the current settings: trial 2's val_auc 0.8800 against the current settings' 0.8600" in text


@pytest.mark.parametrize(
    ("best", "spread", "recommended"),
    [(0.8937, 0.0241, False), (0.8964, 0.0241, False), (0.93, 0.0241, True), (0.93, None, False)],
)
def test_tuned_settings_are_recommended_only_beyond_the_evaluations_spread(
    best: float, spread: float | None, recommended: bool
) -> None:
    """The report once told a user to train with a best trial of 0.8937 while the defaults had
    scored 0.8964: now it weighs the gain against the spread make evaluate measured."""
    current = tuning.Baseline(job_name="j", objective=0.8964, spread=spread)
    chosen, words = tuning.recommendation(trial(3, best), current, "val_auc")
    assert chosen is recommended
    assert ("HYPERPARAMETERS_FROM=tuned" in words) is recommended


def test_the_baseline_is_the_newest_evaluated_run_of_the_current_settings(tmp_path: Path) -> None:
    runs = tmp_path / "runs"
    current = settings()
    estimate = tmp_path / "evaluation.json"
    estimate.write_text(json.dumps({"estimate": {"model": {"auc_sd": 0.02, "accuracy_sd": 0.03}}}))
    evaluation = {"local_file": str(estimate), "val_auc": 0.5, "reported_equal": True, "uri": "s3://b/k"}
    same = {"hyperparameters": current.hyperparameters, "status": "Completed", "evaluation": evaluation}
    records.write_record(runs, run_record(job_name="a-old", metrics={"val_auc": 0.80}, **same))
    records.write_record(runs, run_record(job_name="b-trial", metrics={"val_auc": 0.99}, tuning={"name": "t"}, **same))
    other = {**same, "hyperparameters": {**current.hyperparameters, "num_leaves": "31"}}
    records.write_record(runs, run_record(job_name="c-other", metrics={"val_auc": 0.98}, **other))
    unevaluated = {key: value for key, value in same.items() if key != "evaluation"}
    records.write_record(runs, run_record(job_name="d-new", metrics={"val_auc": 0.97}, **unevaluated))
    (runs / "notes.json").write_text("{}")  # not a run record: skipped
    found = tuning.baseline(runs, current, "val_auc")
    assert found == tuning.Baseline(job_name="a-old", objective=0.80, spread=0.02)
    assert tuning.baseline(runs, current, "val_f1") is None  # no run reports that objective


def test_the_outcome_is_written_and_refuses_hyperparameters_the_image_does_not_know(tmp_path: Path) -> None:
    paths = {"runs_dir": tmp_path / "runs", "reports_dir": tmp_path / "reports"}
    space = tuning.load_search_space(SHIPPED_SPACE)
    outcome = tuning.write_outcome(paths, "t-1", settings(), space, [trial(1, 0.8), trial(2, 0.9)])
    assert outcome["hyperparameters"] == {"num_leaves": "8"}
    assert (tmp_path / "reports/tuning/t-1.png").read_bytes()[:4] == b"\x89PNG"
    assert records.read_tuned(paths["runs_dir"])["best"]["number"] == 2
    # moto's tuning job reports a made-up best job: nothing of it may reach make train.
    fake = tuning.Trial(
        number=1,
        job_name="FakeTrainingJobName",
        status="Completed",
        hyperparameters={"string": "x"},
        objective=1.0,
        seconds=None,
        cost_usd=None,
        on_demand_cost_usd=None,
    )
    with pytest.raises(tuning.TuneError, match="reports hyperparameters the image refuses"):
        tuning.write_outcome({**paths, "runs_dir": tmp_path / "other"}, "t-2", settings(), space, [fake])
    assert not (tmp_path / "other").exists()


def test_train_takes_the_tuned_values_over_config_and_records_where_from(tmp_path: Path) -> None:
    with pytest.raises(training.TrainError, match="run 'make tune-jobs' first, or set HYPERPARAMETERS_FROM=config"):
        training.with_tuned(settings(HYPERPARAMETERS_FROM="tuned"), tmp_path)
    records.write_tuned(
        tmp_path,
        {
            "name": "t-1",
            "objective": "val_auc",
            "hyperparameters": {"num_leaves": "20"},
            "best": {"job_name": "job-2", "objective": 0.9},
        },
    )
    tuned, source = training.with_tuned(settings(HYPERPARAMETERS_FROM="tuned"), tmp_path)
    assert tuned.hyperparameters["num_leaves"] == "20"
    assert tuned.hyperparameters["n_estimators"] == "200"  # config.env's value, not tuned
    assert source == {"tuning": "t-1", "best_trial": "job-2", "objective": {"val_auc": 0.9}}
    unchanged, none = training.with_tuned(settings(), tmp_path)
    assert unchanged.hyperparameters["num_leaves"] == "8" and none is None


def test_ctrl_c_keeps_the_report_of_the_trials_that_finished(
    tmp_path: Path, split_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The local search's loop around training.run (the local-mode job itself is the stack
    tier's): the second trial is interrupted; the first one's report and best are kept."""
    done: list[dict[str, str]] = []

    def one_job(trial_settings: Any, *args: Any) -> dict[str, Any]:
        if done:
            raise training.Interrupted({"job_name": "titanic-lgbm-trial-2", "status": "Stopped"})
        done.append(trial_settings.hyperparameters)
        return {
            "job_name": "titanic-lgbm-trial-1",
            "status": "Completed",
            "metrics": {"val_auc": 0.87},
            "seconds": {"training": 3.0},
            "cost": {"cost_usd": None, "on_demand_cost_usd": 0.0001},
        }

    monkeypatch.setattr(training, "run", one_job)
    paths = {
        "runs_dir": tmp_path / "runs",
        "reports_dir": tmp_path / "reports",
        "image_record": tmp_path / "i.json",
        "split_dir": split_dir,
    }
    with pytest.raises(training.Interrupted):
        tuning.run(settings(TUNE_MAX_JOBS="3"), paths)
    outcome = records.read_tuned(paths["runs_dir"])
    assert outcome["best"]["job_name"] == "titanic-lgbm-trial-1" and len(outcome["trials"]) == 1
    # The values Optuna proposed are the ones that trial ran with, and the ones kept.
    space = tuning.load_search_space(REPO / "launcher/search-space.json")
    assert set(outcome["hyperparameters"]) == {p.name for p in space.parameters}  # every tuned value, none missing
    assert all(done[0][name] == value for name, value in outcome["hyperparameters"].items())
    assert (paths["reports_dir"] / "tuning" / f"{outcome['name']}.md").is_file()


# ---- TARGET=aws --------------------------------------------------------------------------


def test_the_create_tuning_job_request(moto_endpoint: str) -> None:
    boto3.client("s3", region_name="us-east-1").create_bucket(Bucket="titanic-sagemaker-toolkit-demo")
    aws = settings(
        TARGET="aws", TUNE_MAX_JOBS="20", TUNE_MAX_PARALLEL_JOBS="4", TUNE_EARLY_STOPPING="Auto", INSTANCE_COUNT="2"
    )
    sent: list[dict[str, Any]] = []
    session = boto3.Session(region_name="us-east-1")
    session.events.register(
        "provide-client-params.sagemaker.CreateHyperParameterTuningJob",
        lambda params, **_: sent.append(json.loads(json.dumps(params, default=str))),
    )
    space = tuning.load_search_space(SHIPPED_SPACE)
    uri = "123456789012.dkr.ecr.us-east-1.amazonaws.com/titanic-lightgbm:t"
    caller = boto3.client("sts", region_name="us-east-1").get_caller_identity()["Arn"]
    tuner = training.build_tuner(aws, space, uri, sdk.session(aws, session), caller)
    tuner.fit(
        training.training_inputs(aws), job_name="titanic-lgbm-261126083001", wait=False, include_cls_metadata=False
    )

    assert len(sent) == 1
    request = sent[0]
    config = request["HyperParameterTuningJobConfig"]
    assert config["Strategy"] == "Bayesian" and config["RandomSeed"] == 42
    assert config["HyperParameterTuningJobObjective"] == {"Type": "Maximize", "MetricName": "val_auc"}
    assert config["ResourceLimits"] == {"MaxNumberOfTrainingJobs": 20, "MaxParallelTrainingJobs": 4}
    assert config["TrainingJobEarlyStoppingType"] == "Auto"
    ranges = config["ParameterRanges"]
    learning_rate = next(r for r in ranges["ContinuousParameterRanges"] if r["Name"] == "learning_rate")
    assert learning_rate == {
        "Name": "learning_rate",
        "MinValue": "0.01",
        "MaxValue": "0.2",
        "ScalingType": "Logarithmic",
    }
    assert {r["Name"] for r in ranges["IntegerParameterRanges"]} == {
        "n_estimators",
        "num_leaves",
        "max_depth",
        "min_child_samples",
    }
    definition = request["TrainingJobDefinition"]
    assert definition["AlgorithmSpecification"]["TrainingImage"] == uri
    assert definition["AlgorithmSpecification"]["MetricDefinitions"] == [
        {"Name": "val_auc", "Regex": next(d["Regex"] for d in tuning.METRIC_DEFINITIONS if d["Name"] == "val_auc")}
    ]
    # Tuned names are not also sent as static values; the rest of config.env's HP_* are.
    static = definition["StaticHyperParameters"]
    assert "learning_rate" not in static and static["random_state"] == "42"
    assert definition["HyperParameterTuningResourceConfig"] == {
        "InstanceCount": 2,
        "InstanceType": "ml.m5.large",
        "VolumeSizeInGB": 5,
    }
    assert definition["EnableNetworkIsolation"] is True and definition["EnableInterContainerTrafficEncryption"] is True
    assert definition["EnableManagedSpotTraining"] is True
    assert definition["StoppingCondition"] == {"MaxRuntimeInSeconds": 900, "MaxWaitTimeInSeconds": 1800}
    assert "CheckpointConfig" not in definition  # trials never resume each other's trees
    assert definition["RoleArn"] == aws.role_arn
    tags = {t["Key"]: t["Value"] for t in request["Tags"]}
    assert tags["created-by"] == "titanic-sagemaker-toolkit" and tags["launched-by"] == caller
    described = boto3.client("sagemaker", region_name="us-east-1").describe_hyper_parameter_tuning_job(
        HyperParameterTuningJobName="titanic-lgbm-261126083001"
    )
    assert described["HyperParameterTuningJobStatus"] == "Completed"  # moto: at once, nothing ran


def test_the_trials_of_a_finished_tuning_job_with_their_cost(moto_endpoint: str) -> None:
    """ListTrainingJobsForHyperParameterTuningJob and DescribeTrainingJob as SageMaker answers
    them (botocore's Stubber checks both shapes); two instances per trial, spot."""
    aws = settings(TARGET="aws", INSTANCE_COUNT="2")
    sm = boto3.client("sagemaker", region_name="us-east-1")
    started = datetime(2026, 11, 26, 8, 0, tzinfo=UTC)
    summaries = [
        {
            "TrainingJobName": f"titanic-lgbm-261126083001-00{n}-0a1b2c3{n}",
            "TrainingJobArn": f"arn:x:{n}",
            "CreationTime": started.replace(minute=n),
            "TrainingJobStatus": status,
            "TunedHyperParameters": {"num_leaves": str(4 * n)},
            **({"FinalHyperParameterTuningJobObjectiveMetric": {"MetricName": "val_auc", "Value": v}} if v else {}),
        }
        for n, status, v in ((2, "Completed", 0.88), (1, "Completed", 0.86), (3, "Failed", None))
    ]
    with Stubber(sm) as stub:
        stub.add_response(
            "list_training_jobs_for_hyper_parameter_tuning_job",
            {"TrainingJobSummaries": summaries},
            {"HyperParameterTuningJobName": "titanic-lgbm-261126083001"},
        )
        for n in (1, 2, 3):
            name = f"titanic-lgbm-261126083001-00{n}-0a1b2c3{n}"
            stub.add_response("describe_training_job", described_job(name, n), {"TrainingJobName": name})
        trials = tuning.aws_trials(
            aws,
            sm,
            "titanic-lgbm-261126083001",
            tuning.load_search_space(SHIPPED_SPACE),
            boto3.Session(region_name="us-east-1"),
        )
    assert [t.number for t in trials] == [1, 2, 3]  # in the order SageMaker started them
    assert [t.objective for t in trials] == [0.86, 0.88, None]
    assert trials[0].hyperparameters == {"num_leaves": "4"}
    # Cost: 2 instances x 20 billable seconds x $0.115/h.
    assert trials[0].cost_usd == pytest.approx(2 * 20 * 0.115 / 3600, abs=1e-8)
    assert tuning.best_of(trials).job_name.endswith("-002-0a1b2c32")


def described_job(name: str, n: int) -> dict[str, Any]:
    return {
        "TrainingJobName": name,
        "TrainingJobArn": f"arn:aws:sagemaker:us-east-1:123456789012:training-job/{name}",
        "AlgorithmSpecification": {"TrainingInputMode": "File", "TrainingImage": "x"},
        "ResourceConfig": {"InstanceType": "ml.m5.large", "InstanceCount": 2, "VolumeSizeInGB": 5},
        "StoppingCondition": {"MaxRuntimeInSeconds": 900},
        "CreationTime": datetime(2026, 11, 26, tzinfo=UTC),
        "ModelArtifacts": {"S3ModelArtifacts": "s3://b/k"},
        "TrainingJobStatus": "Completed",
        "SecondaryStatus": "Completed",
        "TrainingTimeInSeconds": 54,
        "BillableTimeInSeconds": 20,
    }


def _tuning_description(status: str) -> dict[str, Any]:
    return {
        "HyperParameterTuningJobName": "titanic-lgbm-261126083001",
        "HyperParameterTuningJobArn": "arn:aws:sagemaker:us-east-1:123456789012:hyper-parameter-tuning-job/x",
        "HyperParameterTuningJobConfig": {
            "Strategy": "Bayesian",
            "ResourceLimits": {"MaxNumberOfTrainingJobs": 10, "MaxParallelTrainingJobs": 2},
        },
        "HyperParameterTuningJobStatus": status,
        "CreationTime": datetime(2026, 11, 26, tzinfo=UTC),
        "TrainingJobStatusCounters": {},
        "ObjectiveStatusCounters": {},
    }


def test_ctrl_c_while_a_tuning_job_runs_leaves_it_running(moto_endpoint: str) -> None:
    sm = boto3.client("sagemaker", region_name="us-east-1")
    name = "titanic-lgbm-261126083001"

    def interrupt(seconds: float) -> None:
        raise KeyboardInterrupt

    with Stubber(sm) as stub:
        stub.add_response(
            "describe_hyper_parameter_tuning_job",
            _tuning_description("InProgress"),
            {"HyperParameterTuningJobName": name},
        )
        with pytest.raises(tuning.TuningInterrupted) as stopped:
            tuning.follow_aws(
                settings(TARGET="aws"),
                tuning.load_search_space(SHIPPED_SPACE),
                name,
                WithSageMaker(sm),
                sleep=interrupt,
            )
        stub.assert_no_pending_responses()  # nothing was stopped
    commands = str(stopped.value)
    assert f"make tune-jobs JOB={name}" in commands and f"--hyper-parameter-tuning-job-name {name}" in commands


def test_re_attaching_to_a_tuning_job_writes_its_report(moto_endpoint: str, tmp_path: Path) -> None:
    """make tune-jobs JOB=<name> on AWS: nothing is created; the job is followed to its end and
    its trials become the report and the best settings."""
    sm = boto3.client("sagemaker", region_name="us-east-1")
    name = "titanic-lgbm-261126083001"
    trial_name = f"{name}-001-0a1b2c3d"
    with Stubber(sm) as stub:
        for status in ("InProgress", "Completed"):
            stub.add_response(
                "describe_hyper_parameter_tuning_job",
                _tuning_description(status),
                {"HyperParameterTuningJobName": name},
            )
        stub.add_response(
            "list_training_jobs_for_hyper_parameter_tuning_job",
            {
                "TrainingJobSummaries": [
                    {
                        "TrainingJobName": trial_name,
                        "TrainingJobArn": "arn:x",
                        "CreationTime": datetime(2026, 11, 26, tzinfo=UTC),
                        "TrainingJobStatus": "Completed",
                        "TunedHyperParameters": {"num_leaves": "12"},
                        "FinalHyperParameterTuningJobObjectiveMetric": {"MetricName": "val_auc", "Value": 0.9},
                    }
                ]
            },
            {"HyperParameterTuningJobName": name},
        )
        stub.add_response("describe_training_job", described_job(trial_name, 1), {"TrainingJobName": trial_name})
        paths = {"runs_dir": tmp_path / "runs", "reports_dir": tmp_path / "reports"}
        outcome = tuning.write_outcome(
            paths,
            name,
            settings(TARGET="aws"),
            tuning.load_search_space(SHIPPED_SPACE),
            tuning.follow_aws(
                settings(TARGET="aws"),
                tuning.load_search_space(SHIPPED_SPACE),
                name,
                WithSageMaker(sm),
                sleep=lambda _: None,
            ),
        )
        stub.assert_no_pending_responses()
    assert outcome["hyperparameters"] == {"num_leaves": "12"} and outcome["target"] == "aws"
    with pytest.raises(tuning.TuneError, match="nothing to re-attach to"):
        tuning.run(settings(), {"runs_dir": tmp_path / "runs"}, attach=name)
