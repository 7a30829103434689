"""The toolkit's settings: read from the environment (make exports config.env), checked once.

Every command loads them through load(); a broken rule is one line that names the variable
and the fix, and all of them are reported at once (`make validate`: launcher/settings.py).
"""

from __future__ import annotations

import ipaddress
import logging
import os
import re
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import botocore.session
from titanic_model.hyperparameters import SPECS, HyperparameterError, parse_hyperparameters

from launcher.lib import names
from launcher.lib.errors import ToolkitError
from launcher.lib.local_compose import SDK_NETWORK

log = logging.getLogger("settings")

HP_PREFIX = "HP_"
MAX_RUN_LIMIT = 28 * 24 * 3600  # SageMaker's longest allowed training run
# A bound for this toolkit, not SageMaker's: past a few instances LightGBM's data-parallel
# learner spends more on the network than it saves on rows.
MAX_INSTANCE_COUNT = 20
# How the train channel reaches the instances (validation is always FullyReplicated).
DISTRIBUTIONS = ("FullyReplicated", "ShardedByS3Key")
TOOLKIT_TAG = ("created-by", "titanic-sagemaker-toolkit")
# Every job also names the principal that launched it: clean-up stops only the caller's own.
LAUNCHED_BY_TAG = "launched-by"

_BUCKET_RE = re.compile(r"^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$")
_BUCKET_BAD_PREFIXES = ("xn--", "sthree-", "amzn-s3-demo-")
_BUCKET_BAD_SUFFIXES = ("-s3alias", "--ol-s3", ".mrap", "--x-s3", "--table-s3")
# Letters, digits and _.- only: a prefix lands in IAM ARNs and conditions, where * and ? are
# wildcards and ${...} a policy variable, so none of those may slip in.
_PREFIX_RE = re.compile(r"^[A-Za-z0-9_.-]+(/[A-Za-z0-9_.-]+)*$")
# A Docker image reference: [registry[:port]/]name[/name...][:tag][@sha256:digest].
_IMAGE_RE = re.compile(
    r"^(?:[a-zA-Z0-9.-]+(?::[0-9]+)?/)?[a-z0-9]+(?:[._-][a-z0-9]+)*(?:/[a-z0-9]+(?:[._-][a-z0-9]+)*)*"
    r"(?::[A-Za-z0-9_][A-Za-z0-9_.-]{0,127})?(?:@sha256:[a-f0-9]{64})?$"
)
# config.env's own syntax: KEY=value, the value from a small safe alphabet (no quotes, $,
# spaces, ; or backticks), so that neither make nor a shell can ever read it as code.
CONFIG_LINE_RE = re.compile(r"^([A-Z][A-Z0-9_]*)=([A-Za-z0-9_.,:/=@+-]*)$")
_ECR_RE = re.compile(r"^(?:[a-z0-9]+(?:[._-][a-z0-9]+)*/)*[a-z0-9]+(?:[._-][a-z0-9]+)*$")
_ROLE_RE = re.compile(r"^arn:(aws(?:-cn|-us-gov)?):iam::(\d{12}):role(/(?:[\w+=,.@-]+/)*)([\w+=,.@-]{1,64})$")
_JOB_RE = re.compile(r"^[a-zA-Z0-9](-*[a-zA-Z0-9])*$")
_TAG_CHARS = r"\w.:/=+\-@ "  # what SageMaker accepts in tag keys and values
_TAG_KEY_RE = re.compile(rf"^[{_TAG_CHARS}]{{1,128}}$")
_TAG_VALUE_RE = re.compile(rf"^[{_TAG_CHARS}]{{0,256}}$")
_NOT_TAG_CHARS = re.compile(rf"[^{_TAG_CHARS}]")


@dataclass(frozen=True)
class RoleArn:
    """arn:aws:iam::123456789012:role/service-role/NAME, in parts (path '/service-role/')."""

    partition: str
    account: str
    path: str
    name: str


class SettingsError(ToolkitError, ValueError):
    """One or more settings break a rule; the message has one line per problem."""


@dataclass(frozen=True)
class Settings:
    target: str
    region: str
    bucket: str
    data_prefix: str
    output_prefix: str
    checkpoint_prefix: str
    ecr_repository: str
    role_arn: str
    instance_type: str
    instance_count: int
    use_spot: bool
    max_run: int
    max_wait: int
    volume_size_gb: int
    base_job_name: str
    tags: dict[str, str]
    hyperparameters: dict[str, str]
    tune: TuneSettings  # make tune-jobs
    # The defaults of every field are config.env's, and only there: load() fills each one.
    predictions_prefix: str
    transform_instance_type: str  # empty: the instance report's cheapest with transform quota
    local_serving_port: int
    local_serving_network: str
    model_package_group: str
    approval_min_auc: float
    endpoint_name: str
    endpoint_type: str
    serverless_memory_mb: int
    serverless_max_concurrency: int
    endpoint_instance_type: str
    train_distribution: str
    hyperparameters_from: str  # or "tuned": make tune-jobs' best, over HP_*
    pipeline_name: str
    pipeline_role_arn: str
    create_bucket: bool
    ci_repository: str  # owner/name, or empty: no CI identity
    ci_environment: str
    validation_fraction: float
    split_seed: int

    @property
    def local(self) -> bool:
        return self.target == "local"

    @property
    def spot_training(self) -> bool:
        """Spot as actually used: SDK local mode refuses it, so only on AWS."""
        return self.use_spot and not self.local

    @property
    def data_uri(self) -> str:
        return f"s3://{self.bucket}/{self.data_prefix}"

    def channel_uri(self, channel: str) -> str:
        return f"{self.data_uri}/{channel}/"

    @property
    def output_uri(self) -> str:
        return f"s3://{self.bucket}/{self.output_prefix}"

    @property
    def checkpoint_uri(self) -> str:
        return f"s3://{self.bucket}/{self.checkpoint_prefix}"

    @property
    def predictions_uri(self) -> str:
        return f"s3://{self.bucket}/{self.predictions_prefix}"

    @property
    def role(self) -> RoleArn:
        return _role_parts(self.role_arn)

    @property
    def pipeline_role(self) -> RoleArn:
        return _role_parts(self.pipeline_role_arn)


def _role_parts(arn: str) -> RoleArn:
    partition, account, path, name = _ROLE_RE.match(arn).groups()  # checked by load()
    return RoleArn(partition=partition, account=account, path=path, name=name)


def instance_types(shape: str) -> list[str]:
    """The instance types botocore's SageMaker model accepts for a shape: TrainingInstanceType,
    TransformInstanceType, ProductionVariantInstanceType."""
    model = botocore.session.get_session().get_service_model("sagemaker")
    return list(model.shape_for(shape).enum)


def _sagemaker_regions() -> list[str]:
    """Every partition's (aws, aws-cn, aws-us-gov, ...) regions where SageMaker runs."""
    session = botocore.session.get_session()
    return [
        region
        for partition in session.get_available_partitions()
        for region in session.get_available_regions("sagemaker", partition_name=partition)
    ]


class _Checker:
    """Collects every problem, so one run shows them all."""

    def __init__(self, env: Mapping[str, str]) -> None:
        self.env = env
        self.problems: list[str] = []

    def bad(self, var: str, problem: str) -> None:
        self.problems.append(f"{var}: {problem}")

    def text(self, var: str) -> str:
        value = self.env.get(var, "")
        if not value.strip():
            self.bad(var, f"is empty; set it in config.env or as 'make {var}=...'")
        return value.strip()

    def choice(self, var: str, allowed: tuple[str, ...]) -> str:
        value = self.text(var)
        if value and value not in allowed:
            self.bad(var, f"is '{value}'; use one of {', '.join(allowed)}")
        return value

    def yes_no(self, var: str) -> bool:
        return self.choice(var, ("yes", "no")) == "yes"

    def _number(self, var: str, low: float, high: float, convert: type, kind: tuple[str, str]) -> Any:
        """kind: (what a bad value is not, what to use), e.g. ("a whole number", "a number")."""
        value = self.text(var)
        if not value:
            return low
        try:
            number = convert(value)
        except ValueError:
            self.bad(var, f"is '{value}', not {kind[0]}; use {kind[1]} from {low} to {high}")
            return low
        if not low <= number <= high:
            self.bad(var, f"is {number}; use {kind[1]} from {low} to {high}")
        return number

    def integer(self, var: str, low: int, high: int) -> int:
        return self._number(var, low, high, int, ("a whole number", "a number"))

    def fraction(self, var: str, low: float, high: float) -> float:
        return self._number(var, low, high, float, ("a number", "a decimal"))

    def image(self, var: str) -> str:
        value = self.text(var)
        if value and not _IMAGE_RE.match(value):
            self.bad(var, f"'{value}' is not a Docker image reference; write it like python:3.12-slim or host/name:tag")
        return value


def _check_bucket(c: _Checker, bucket: str) -> None:
    if not bucket:
        return
    fix = (
        "bucket names are 3-63 lowercase letters, digits, dots and hyphens, starting and ending with a letter or digit"
    )
    if not _BUCKET_RE.match(bucket) or ".." in bucket or ".-" in bucket or "-." in bucket:
        c.bad("BUCKET", f"'{bucket}' is not a valid bucket name; {fix}")
        return
    try:
        ipaddress.ip_address(bucket)
        c.bad("BUCKET", f"'{bucket}' looks like an IP address, which S3 refuses; choose a name")
    except ValueError:
        pass
    for prefix in _BUCKET_BAD_PREFIXES:
        if bucket.startswith(prefix):
            c.bad("BUCKET", f"'{bucket}' starts with the reserved '{prefix}'; choose another name")
    for suffix in _BUCKET_BAD_SUFFIXES:
        if bucket.endswith(suffix):
            c.bad("BUCKET", f"'{bucket}' ends with the reserved '{suffix}'; choose another name")


def _check_prefixes(c: _Checker, prefixes: dict[str, str]) -> None:
    for var, prefix in prefixes.items():
        if prefix and not _PREFIX_RE.match(prefix):
            c.bad(
                var,
                f"'{prefix}' must be path segments of letters, digits and _.- like 'titanic/data' "
                "(no wildcards, no leading or trailing '/')",
            )
    # Clean-up deletes everything under each prefix: they must not overlap, or one stage's
    # objects (or someone else's under a shared parent) would go with another's.
    items = [(v, p) for v, p in prefixes.items() if p]
    for i, (var_a, a) in enumerate(items):
        for var_b, b in items[i + 1 :]:
            if a == b or a.startswith(b + "/") or b.startswith(a + "/"):
                c.bad(
                    var_a, f"'{a}' overlaps {var_b}='{b}'; give each its own folder (e.g. titanic/data, titanic/output)"
                )


def _check_role(c: _Checker, var: str, role: str) -> None:
    if not role:
        return
    match = _ROLE_RE.match(role)
    if not match:
        c.bad(
            var,
            f"'{role}' is not an IAM role ARN; it must look like arn:aws:iam::123456789012:role/service-role/NAME "
            "(copy the role's full ARN, path included, from 'make bootstrap' or the IAM console)",
        )


def _check_name(c: _Checker, var: str, name: str, longest: int, why: str) -> None:
    problem = names.name_problem(name, longest, why) if name else None
    if problem:
        c.bad(var, problem)


TUNE_STRATEGIES = ("Bayesian", "Random")  # the two both SageMaker and the local search (Optuna) run


@dataclass(frozen=True)
class TuneSettings:
    """make tune-jobs: how many trials, how many at once (SageMaker only), how to search."""

    max_jobs: int
    max_parallel_jobs: int
    strategy: str
    early_stopping: str
    search_space: str
    seed: int


def _check_tune(c: _Checker) -> TuneSettings:
    max_jobs = c.integer("TUNE_MAX_JOBS", 1, 500)
    parallel = c.integer("TUNE_MAX_PARALLEL_JOBS", 1, 100)
    if parallel > max_jobs:
        c.bad("TUNE_MAX_PARALLEL_JOBS", f"is {parallel} but TUNE_MAX_JOBS is {max_jobs}; at most that many run at once")
    return TuneSettings(
        max_jobs=max_jobs,
        max_parallel_jobs=parallel,
        strategy=c.choice("TUNE_STRATEGY", TUNE_STRATEGIES),
        early_stopping=c.choice("TUNE_EARLY_STOPPING", ("Off", "Auto")),
        search_space=c.text("TUNE_SEARCH_SPACE"),
        seed=c.integer("TUNE_SEED", 0, 2**31 - 1),
    )


def _check_serving(c: _Checker, env: Mapping[str, str]) -> dict[str, Any]:
    """make predict's transform, the registry and the endpoint."""
    transform_type = env.get("TRANSFORM_INSTANCE_TYPE", "").strip()
    if transform_type and transform_type not in instance_types("TransformInstanceType"):
        c.bad(
            "TRANSFORM_INSTANCE_TYPE",
            f"'{transform_type}' is not a SageMaker batch transform instance type; use e.g. ml.m5.large, or leave it "
            "empty for the instance report's cheapest type with transform quota",
        )
    group, endpoint = c.text("MODEL_PACKAGE_GROUP"), c.text("ENDPOINT_NAME")
    _check_name(c, "MODEL_PACKAGE_GROUP", group, names.MODEL_PACKAGE_GROUP_MAX, "a model package group's name")
    _check_name(
        c,
        "ENDPOINT_NAME",
        endpoint,
        names.ENDPOINT_NAME_MAX,
        "before '-v<version>-<timestamp>' in its models' and configs' names",
    )
    memory = c.integer("SERVERLESS_MEMORY_MB", 1024, 6144)
    if memory % 1024:
        c.bad("SERVERLESS_MEMORY_MB", f"is {memory}; serverless endpoints take 1024, 2048, 3072, 4096, 5120 or 6144")
    instance_type = c.text("ENDPOINT_INSTANCE_TYPE")
    if instance_type and instance_type not in instance_types("ProductionVariantInstanceType"):
        c.bad(
            "ENDPOINT_INSTANCE_TYPE",
            f"'{instance_type}' is not a SageMaker endpoint instance type; use e.g. ml.m5.large",
        )
    return {
        "transform_instance_type": transform_type,
        "model_package_group": group,
        "approval_min_auc": c.fraction("APPROVAL_MIN_AUC", 0.5, 1.0),
        "endpoint_name": endpoint,
        "endpoint_type": c.choice("ENDPOINT_TYPE", ("serverless", "instance")),
        "serverless_memory_mb": memory,
        "serverless_max_concurrency": c.integer("SERVERLESS_MAX_CONCURRENCY", 1, 200),
        "endpoint_instance_type": instance_type,
    }


def _check_local_stack(c: _Checker, target: str) -> dict[str, Any]:
    """The embedded stack's ports (each its own) and the serving network's name; on AWS they
    are not read, and local mode's own defaults stand in."""
    if target != "local":
        return {"local_serving_port": 8080, "local_serving_network": "sagemaker-local-serving"}
    ports = {
        var: c.integer(var, 1024, 65535) for var in ("LOCAL_MOTO_PORT", "LOCAL_REGISTRY_PORT", "LOCAL_SERVING_PORT")
    }
    if len(set(ports.values())) < len(ports):
        c.bad("LOCAL_SERVING_PORT", "equals another LOCAL_*_PORT; give each embedded service its own port")
    network = c.text("LOCAL_SERVING_NETWORK")
    if network and (not _JOB_RE.match(network) or network == SDK_NETWORK):
        c.bad(
            "LOCAL_SERVING_NETWORK",
            f"'{network}' must be letters, digits and inner hyphens, and not "
            f"{SDK_NETWORK} (local mode's own network, kept internal for training)",
        )
    return {"local_serving_port": ports["LOCAL_SERVING_PORT"], "local_serving_network": network}


def lock_wait(env: Mapping[str, str]) -> int:
    """LOCK_WAIT by the settings' own rule and words (the lock asks, when run on its own)."""
    c = _Checker(env)
    seconds = c.integer("LOCK_WAIT", *LOCK_WAIT_RANGE)
    if c.problems:
        raise SettingsError("\n".join(c.problems))
    return int(seconds)


def launched_by_value(principal_arn: str) -> str:
    """A principal's ARN as a tag value: characters tags refuse (a session name's ',') become
    '_', and it is cut to the 256 a value may hold."""
    return _NOT_TAG_CHARS.sub("_", principal_arn)[:256]


def is_toolkits(tags: Mapping[str, str]) -> bool:
    """Whether a resource carries the toolkit's own tag (clean-up, registry and endpoint touch
    nothing without it)."""
    return tags.get(TOOLKIT_TAG[0]) == TOOLKIT_TAG[1]


def job_tags(settings: Settings, launched_by: str) -> list[dict[str, str]]:
    """The user's tags, the toolkit's own, and who launched it: on every job, model, endpoint
    and registry entry. Clean-up acts only on what carries both of the latter, so a
    teammate's resources under the same names are left alone."""
    tags = {**settings.tags, TOOLKIT_TAG[0]: TOOLKIT_TAG[1], LAUNCHED_BY_TAG: launched_by_value(launched_by)}
    return [{"Key": k, "Value": v} for k, v in tags.items()]


def parse_tags(c: _Checker, raw: str) -> dict[str, str]:
    tags: dict[str, str] = {}
    for item in filter(None, (part.strip() for part in raw.split(","))):
        key, sep, value = item.partition("=")
        if not sep or not _TAG_KEY_RE.match(key) or not _TAG_VALUE_RE.match(value):
            c.bad("TAGS", f"'{item}' is not key=value (letters, digits, spaces and _.:/=+-@); write TAGS=k1=v1,k2=v2")
        elif key.lower().startswith("aws:"):
            c.bad("TAGS", f"'{key}' starts with the reserved 'aws:'; rename the tag")
        else:
            tags[key] = value
    if len(tags) > 40:
        c.bad("TAGS", f"{len(tags)} tags; SageMaker accepts 50 and the toolkit adds its own, keep it under 40")
    return tags


def parse_hyperparameter_settings(c: _Checker, env: Mapping[str, str]) -> dict[str, str]:
    """HP_N_ESTIMATORS=300 -> {'n_estimators': '300'}; empty values are left to the container."""
    chosen = {}
    for var in sorted(k for k in env if k.startswith(HP_PREFIX)):
        name = var[len(HP_PREFIX) :].lower()
        value = env[var].strip()
        if name not in SPECS:
            c.bad(var, f"is not a hyperparameter of the image; known: {', '.join(f'HP_{n.upper()}' for n in SPECS)}")
            continue
        if not value:
            continue
        try:
            parse_hyperparameters({name: value})
        except HyperparameterError as exc:
            c.bad(var, str(exc).removeprefix("hyperparameter "))
        chosen[name] = value
    return chosen


def _check_where(c: _Checker) -> dict[str, Any]:
    """Where it runs and what it writes: target, region, bucket and prefixes, repository, role."""
    target = c.choice("TARGET", ("local", "aws"))
    region = c.text("AWS_REGION")
    if region and region not in _sagemaker_regions():
        c.bad("AWS_REGION", f"'{region}' is not a region where SageMaker runs; use e.g. us-east-1 or eu-west-1")
    bucket = c.text("BUCKET")
    _check_bucket(c, bucket)
    prefixes = {var: c.text(var) for var in ("DATA_PREFIX", "OUTPUT_PREFIX", "CHECKPOINT_PREFIX", "PREDICTIONS_PREFIX")}
    _check_prefixes(c, prefixes)
    repository = c.text("ECR_REPOSITORY")
    if repository and (not _ECR_RE.match(repository) or not 2 <= len(repository) <= 256):
        c.bad("ECR_REPOSITORY", f"'{repository}' is not a valid ECR name; use lowercase letters, digits, and ._-/")
    role = c.text("ROLE_ARN")
    _check_role(c, "ROLE_ARN", role)
    return {
        "target": target,
        "region": region,
        "bucket": bucket,
        **{var.lower(): prefix for var, prefix in prefixes.items()},
        "ecr_repository": repository,
        "role_arn": role,
        "create_bucket": c.yes_no("CREATE_BUCKET"),  # scripts/bootstrap.sh, the stack's parameter
    }


def _check_training(c: _Checker, env: Mapping[str, str]) -> dict[str, Any]:
    """The training job: instances, spot, limits, names, tags, hyperparameters."""
    instance_type = c.text("INSTANCE_TYPE")
    if instance_type and instance_type not in instance_types("TrainingInstanceType"):
        c.bad(
            "INSTANCE_TYPE",
            f"'{instance_type}' is not a SageMaker training instance type; use e.g. ml.m5.large "
            "(make instance-report lists the ones available to you)",
        )
    use_spot = c.yes_no("USE_SPOT")
    max_run = c.integer("MAX_RUN", 60, MAX_RUN_LIMIT)
    max_wait = c.integer("MAX_WAIT", 60, MAX_RUN_LIMIT)
    if use_spot and max_wait < max_run:
        c.bad("MAX_WAIT", f"is {max_wait} but MAX_RUN is {max_run}; with USE_SPOT=yes set MAX_WAIT >= MAX_RUN")
    job = c.text("BASE_JOB_NAME")
    _check_name(
        c,
        "BASE_JOB_NAME",
        job,
        names.BASE_JOB_NAME_MAX,
        "before the timestamps of the toolkit's job names (a tuning job's name has at most 32)",
    )
    return {
        "instance_type": instance_type,
        "instance_count": c.integer("INSTANCE_COUNT", 1, MAX_INSTANCE_COUNT),
        "train_distribution": c.choice("TRAIN_DISTRIBUTION", DISTRIBUTIONS),
        "use_spot": use_spot,
        "max_run": max_run,
        "max_wait": max_wait,
        "volume_size_gb": c.integer("VOLUME_SIZE_GB", 1, 16384),
        "base_job_name": job,
        "tags": parse_tags(c, env.get("TAGS", "")),
        "hyperparameters": parse_hyperparameter_settings(c, env),
        "hyperparameters_from": c.choice("HYPERPARAMETERS_FROM", ("config", "tuned")),
    }


def _check_pipeline(c: _Checker, execution_role: str) -> dict[str, Any]:
    """make pipeline: its name, the role SageMaker Pipelines starts the steps with (its own, not
    the jobs'), and the data stage's split, which its Prepare step makes too."""
    name, role = c.text("PIPELINE_NAME"), c.text("PIPELINE_ROLE_ARN")
    _check_name(c, "PIPELINE_NAME", name, names.PIPELINE_NAME_MAX, "a pipeline's name in the toolkit's grants")
    _check_role(c, "PIPELINE_ROLE_ARN", role)
    if role and role == execution_role:
        c.bad(
            "PIPELINE_ROLE_ARN",
            "is ROLE_ARN; the pipeline's role starts jobs and passes ROLE_ARN to them, so it must be a role of its "
            "own (make bootstrap creates both)",
        )
    return {
        "pipeline_name": name,
        "pipeline_role_arn": role,
        "validation_fraction": c.fraction("VALIDATION_FRACTION", 0.05, 0.5),
        "split_seed": c.integer("SPLIT_SEED", 0, 2**32 - 1),
    }


_GITHUB_REPOSITORY_RE = re.compile(r"^[A-Za-z0-9-]{1,39}/[A-Za-z0-9._-]{1,100}$")
_GITHUB_ENVIRONMENT_RE = re.compile(r"^[A-Za-z0-9._-]{1,255}$")


def _check_ci(c: _Checker, env: Mapping[str, str]) -> dict[str, Any]:
    """The GitHub repository and environment the CI roles trust (docs/ci.md); empty: none."""
    repository = env.get("CI_REPOSITORY", "").strip()
    if repository and not _GITHUB_REPOSITORY_RE.match(repository):
        c.bad("CI_REPOSITORY", f"'{repository}' is not a GitHub repository; write it as owner/name, as GitHub does")
    environment = c.text("CI_ENVIRONMENT")
    if environment and not _GITHUB_ENVIRONMENT_RE.match(environment):
        c.bad("CI_ENVIRONMENT", f"'{environment}' is not an environment name the toolkit takes (letters, digits, ._-)")
    return {"ci_repository": repository, "ci_environment": environment}


def _check_read_by_scripts(c: _Checker) -> None:
    """Settings that make, bash or the lock read themselves: checked here, not kept."""
    c.image("BASE_IMAGE")  # scripts/build-image.sh
    c.image("OFFLINE_BASE_IMAGE")
    c.choice("BASE_IMAGE_FALLBACK", ("offline", "none"))
    c.integer("LOCK_WAIT", *LOCK_WAIT_RANGE)  # launcher/lock.py
    c.choice("MACHINE_SETUP", ("auto", "off"))  # scripts/setup-machine.sh
    c.choice("CI_REGISTER_WITH", ("pipeline", "register"))  # the Makefile's ci-train


def load(env: Mapping[str, str] | None = None) -> Settings:
    """Read and check every setting; raise SettingsError listing each broken rule. Each concern
    has its own check, returning its fields: a new setting needs config.env, one line in one
    check, its field, and its row in docs/reference.md."""
    env = os.environ if env is None else env
    c = _Checker(env)
    where = _check_where(c)
    fields = {
        **where,
        **_check_training(c, env),
        **_check_serving(c, env),
        **_check_local_stack(c, where["target"]),
        "tune": _check_tune(c),
        **_check_pipeline(c, where["role_arn"]),
        **_check_ci(c, env),
    }
    _check_read_by_scripts(c)
    if c.problems:
        raise SettingsError("\n".join(c.problems))
    return Settings(**fields)


def check_config_file(path: Path) -> list[str]:
    """Lines of config.env that are not plain KEY=value in the safe alphabet, one problem each."""
    problems = []
    for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1):
        if not line.strip() or line.startswith("#"):
            continue
        if not CONFIG_LINE_RE.match(line):
            problems.append(
                f"{path.name} line {number}: '{line}' is not KEY=value with a value of letters, digits and _.,:/=@+- "
                "(no quotes, $, spaces or comments after the value); fix the line"
            )
    return problems


LOCK_WAIT_RANGE = (0, 86400)  # seconds a stage may wait for another run's lock
