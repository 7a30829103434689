"""config.env rules: every broken one is a line naming the variable and the fix."""

from __future__ import annotations

import pytest
from conftest import REPO, shipped

from launcher import lock
from launcher.lib.config import Settings, SettingsError, check_config_file, load


def test_the_shipped_config_is_valid() -> None:
    settings = load(shipped())
    assert isinstance(settings, Settings)
    assert settings.local and settings.instance_type == "ml.m5.large"
    assert settings.channel_uri("train") == "s3://titanic-sagemaker-toolkit-demo/titanic/data/train/"
    assert settings.hyperparameters["n_estimators"] == "200"
    assert settings.tags == {"project": "titanic-toolkit", "cost-center": "ml-research"}


def test_config_env_is_plain_key_value() -> None:
    """make, bash and Python read it alike only without quotes, $, spaces or trailing comments."""
    for line in (REPO / "config.env").read_text().splitlines():
        if not line or line.startswith("#"):
            continue
        key, sep, value = line.partition("=")
        assert sep and key.isupper(), line
        for bad in ('"', "'", "$", " ", "#"):
            assert bad not in value, line


@pytest.mark.parametrize(
    ("changes", "line"),
    [
        ({"BUCKET": "ab"}, "BUCKET: 'ab' is not a valid bucket name"),
        ({"BUCKET": "my..bucket"}, "BUCKET: 'my..bucket' is not a valid bucket name"),
        ({"BUCKET": "192.168.1.10"}, "BUCKET: '192.168.1.10' looks like an IP address"),
        ({"BUCKET": "xn--bucket"}, "BUCKET: 'xn--bucket' starts with the reserved 'xn--'"),
        ({"BUCKET": "data-s3alias"}, "ends with the reserved '-s3alias'"),
        ({"DATA_PREFIX": "/titanic/data"}, "DATA_PREFIX: '/titanic/data' must be path segments"),
        ({"OUTPUT_PREFIX": "titanic/data/out"}, "overlaps OUTPUT_PREFIX='titanic/data/out'"),
        ({"ROLE_ARN": "arn:aws:iam::123456789012:user/me"}, "ROLE_ARN: 'arn:aws:iam::123456789012:user/me' is not"),
        ({"AWS_REGION": "us-north-7"}, "AWS_REGION: 'us-north-7' is not a region where SageMaker runs"),
        ({"INSTANCE_TYPE": "m5.large"}, "INSTANCE_TYPE: 'm5.large' is not a SageMaker training instance type"),
        ({"INSTANCE_COUNT": "21"}, "INSTANCE_COUNT: is 21; use a number from 1 to 20"),
        ({"TRAIN_DISTRIBUTION": "Sharded"}, "TRAIN_DISTRIBUTION: is 'Sharded'; use one of FullyReplicated, Sharded"),
        ({"USE_SPOT": "true"}, "USE_SPOT: is 'true'; use one of yes, no"),
        ({"TUNE_STRATEGY": "Grid"}, "TUNE_STRATEGY: is 'Grid'; use one of Bayesian, Random"),
        ({"TUNE_MAX_JOBS": "3", "TUNE_MAX_PARALLEL_JOBS": "5"}, "TUNE_MAX_PARALLEL_JOBS: is 5 but TUNE_MAX_JOBS is 3"),
        ({"TUNE_EARLY_STOPPING": "On"}, "TUNE_EARLY_STOPPING: is 'On'; use one of Off, Auto"),
        ({"HYPERPARAMETERS_FROM": "best"}, "HYPERPARAMETERS_FROM: is 'best'; use one of config, tuned"),
        ({"MAX_RUN": "ten"}, "MAX_RUN: is 'ten', not a whole number"),
        ({"MAX_WAIT": "600"}, "MAX_WAIT: is 600 but MAX_RUN is 900"),
        ({"BASE_JOB_NAME": "titanic_lgbm"}, "BASE_JOB_NAME: 'titanic_lgbm' must be lower-case letters, digits"),
        ({"BASE_JOB_NAME": "Titanic-LGBM"}, "BASE_JOB_NAME: 'Titanic-LGBM' must be lower-case letters"),
        ({"BASE_JOB_NAME": "x" * 20}, "has 20 characters; at most 19 fit"),
        ({"ENDPOINT_NAME": "Titanic"}, "ENDPOINT_NAME: 'Titanic' must be lower-case letters"),
        ({"ENDPOINT_NAME": "e" * 41}, "ENDPOINT_NAME: '" + "e" * 41 + "' has 41 characters; at most 40 fit"),
        ({"MODEL_PACKAGE_GROUP": "Titanic-Survival"}, "MODEL_PACKAGE_GROUP: 'Titanic-Survival' must be lower-case"),
        ({"TAGS": "project"}, "TAGS: 'project' is not key=value"),
        ({"TAGS": "aws:owner=me"}, "'aws:owner' starts with the reserved 'aws:'"),
        ({"HP_LEARNING_RATE": "fast"}, "HP_LEARNING_RATE: learning_rate='fast' is not a valid float"),
        ({"HP_TREES": "5"}, "HP_TREES: is not a hyperparameter of the image"),
        ({"ECR_REPOSITORY": "Titanic"}, "ECR_REPOSITORY: 'Titanic' is not a valid ECR name"),
        ({"LOCAL_REGISTRY_PORT": "4566"}, "LOCAL_SERVING_PORT: equals another LOCAL_*_PORT"),
        ({"LOCAL_SERVING_PORT": "80"}, "LOCAL_SERVING_PORT: is 80; use a number from 1024 to 65535"),
        ({"LOCAL_SERVING_NETWORK": "sagemaker-local"}, "not sagemaker-local (local mode's own network"),
        ({"PREDICTIONS_PREFIX": "titanic/output/p"}, "overlaps PREDICTIONS_PREFIX='titanic/output/p'"),
        ({"TRANSFORM_INSTANCE_TYPE": "ml.p9.huge"}, "TRANSFORM_INSTANCE_TYPE: 'ml.p9.huge' is not a SageMaker batch"),
        ({"BUCKET": ""}, "BUCKET: is empty; set it in config.env or as 'make BUCKET=...'"),
        ({"DATA_PREFIX": "titanic/*"}, "DATA_PREFIX: 'titanic/*' must be path segments of letters, digits and _.-"),
        ({"CHECKPOINT_PREFIX": "ti?anic/ckpt"}, "(no wildcards"),
        ({"OUTPUT_PREFIX": "${aws:username}/out"}, "OUTPUT_PREFIX: '${aws:username}/out' must be path segments"),
        ({"VALIDATION_FRACTION": "0.9"}, "VALIDATION_FRACTION: is 0.9; use a decimal from 0.05 to 0.5"),
        ({"VALIDATION_FRACTION": "a fifth"}, "VALIDATION_FRACTION: is 'a fifth', not a number"),
        ({"SPLIT_SEED": "-1"}, "SPLIT_SEED: is -1; use a number from 0 to 4294967295"),
        ({"BASE_IMAGE": "python:3.12;rm -rf /"}, "BASE_IMAGE: 'python:3.12;rm -rf /' is not a Docker image reference"),
        ({"OFFLINE_BASE_IMAGE": "$(evil)"}, "OFFLINE_BASE_IMAGE: '$(evil)' is not a Docker image reference"),
        ({"BASE_IMAGE_FALLBACK": "pull"}, "BASE_IMAGE_FALLBACK: is 'pull'; use one of offline, none"),
        ({"LOCK_WAIT": "soon"}, "LOCK_WAIT: is 'soon', not a whole number"),
        ({"ENDPOINT_TYPE": "lambda"}, "ENDPOINT_TYPE: is 'lambda'; use one of serverless, instance"),
        ({"SERVERLESS_MEMORY_MB": "1500"}, "serverless endpoints take 1024, 2048, 3072, 4096, 5120 or 6144"),
        ({"SERVERLESS_MAX_CONCURRENCY": "500"}, "SERVERLESS_MAX_CONCURRENCY: is 500; use a number from 1 to 200"),
        ({"APPROVAL_MIN_AUC": "1.5"}, "APPROVAL_MIN_AUC: is 1.5; use a decimal from 0.5 to 1.0"),
        ({"MODEL_PACKAGE_GROUP": "titanic_models"}, "'titanic_models' must be lower-case letters, digits"),
        ({"ENDPOINT_INSTANCE_TYPE": "ml.m5.lorge"}, "ENDPOINT_INSTANCE_TYPE: 'ml.m5.lorge' is not a SageMaker"),
    ],
)
def test_each_broken_rule_names_the_variable_and_the_fix(changes: dict[str, str], line: str) -> None:
    with pytest.raises(SettingsError) as caught:
        load({**shipped(), **changes})
    assert any(line in problem for problem in str(caught.value).splitlines()), str(caught.value)


def test_spot_off_allows_a_short_max_wait() -> None:
    assert load({**shipped(), "USE_SPOT": "no", "MAX_WAIT": "60"}).use_spot is False


def test_every_problem_is_reported_at_once() -> None:
    with pytest.raises(SettingsError) as caught:
        load({**shipped(), "BUCKET": "A", "USE_SPOT": "maybe", "TARGET": "cloud"})
    lines = str(caught.value).splitlines()
    assert [line.split(":", 1)[0] for line in lines] == ["TARGET", "BUCKET", "USE_SPOT"]
    assert "is 'cloud'; use one of local, aws" in lines[0] and "'A' is not a valid bucket name" in lines[1]
    assert "is 'maybe'; use one of yes, no" in lines[2]


@pytest.mark.parametrize(
    "line",
    [
        "TAGS=x';echo INJECTED;'",
        "BUCKET=$(shell touch /tmp/x)",
        'BUCKET="quoted"',
        "BUCKET=two words",
        "BUCKET=demo # a comment",
        "BUCKET=`id`",
        "not a setting",
    ],
)
def test_config_file_lines_that_could_be_code_are_refused(tmp_path, line: str) -> None:
    config = tmp_path / "config.env"
    config.write_text(f"# comment\nTARGET=local\n{line}\n")
    problems = check_config_file(config)
    assert len(problems) == 1 and "config.env line 3:" in problems[0] and "fix the line" in problems[0]


def test_the_shipped_config_file_passes_its_own_syntax_check() -> None:
    assert check_config_file(REPO / "config.env") == []


@pytest.mark.parametrize("value", ["soon", "99999999", "-1"])
def test_the_lock_refuses_a_bad_lock_wait_with_the_settings_own_words(
    value: str, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    """LOCK_WAIT has one rule and one wording: the settings', also when the lock runs alone."""
    monkeypatch.setenv("LOCK_WAIT", value)
    assert lock.main(["--", "true"]) == 1  # refused before the command could run
    with pytest.raises(SettingsError) as caught:
        load({**shipped(), "LOCK_WAIT": value})
    lines = [r.getMessage() for r in caplog.records if r.levelname == "ERROR"]
    assert lines == [f"ERROR: {caught.value}"]
