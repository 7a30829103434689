"""Every name the toolkit gives a SageMaker resource, made here and only here, with the limits
that follow for the settings they start from.

Names are lower-case (SageMaker hands some ARNs back lower-cased, and IAM matching is
case-sensitive) and must fit their API's limit *with* the timestamp, so that each stays
inside the runner policy's grants, the trust policy's SourceArn patterns and clean-up's
prefixes. The patterns those three use are PATTERNS below; tests/test_names.py renders the
policies and proves they are the same, for the longest values settings accept.
"""

from __future__ import annotations

import re
import string
from datetime import datetime
from typing import Any

NAME_MAX = 63  # training, transform, model, endpoint config, endpoint, model package group
TUNING_NAME_MAX = 32  # a hyperparameter tuning job's name
NAME_RE = re.compile(r"^[a-z0-9](-*[a-z0-9])*$")  # SageMaker's alphabet, lower case only
VERSION_DIGITS = 6  # registry versions up to 999,999

# The SDK's name_from_base suffix: "-" + "%Y-%m-%d-%H-%M-%S-%f"[:-3] (24 characters).
TRAINING_SUFFIX_LEN = 24
PREDICT_INFIX = "-predict-"
EVALUATE_INFIX = "-eval-"
# A pipeline's job names: SageMaker Pipelines puts "-<execution id>-<entity token>-<failure
# count>" after the prefix the definition gives (sagemaker-python-sdk PR 3946, which added
# the SDK's side; AWS's page on the prefix could not be read here, docs/aws-rules.md). 12 + 10
# characters, and a count given 3 digits here.
PIPELINE_SUFFIX_LEN = len("-") + 12 + len("-") + 10 + len("-") + 3
PREPARE_INFIX = "-prep"
# What follows each setting in the names made from it (the longest case).
_AFTER_BASE = {
    "training job": (TRAINING_SUFFIX_LEN, NAME_MAX),
    "tuning job": (len("-yymmddHHMMSS"), TUNING_NAME_MAX),
    "transform job and its model": (len(PREDICT_INFIX) + len("YYYYmmddHHMMSS"), NAME_MAX),
    "evaluation (processing) job": (len(EVALUATE_INFIX) + len("YYYYmmddHHMMSS"), NAME_MAX),
    "pipeline's jobs": (len(PREDICT_INFIX) - 1 + PIPELINE_SUFFIX_LEN, NAME_MAX),
}
_AFTER_ENDPOINT = len("-v") + VERSION_DIGITS + len("-YYYYmmddHHMMSS")

BASE_JOB_NAME_MAX = min(limit - after for after, limit in _AFTER_BASE.values())
ENDPOINT_NAME_MAX = NAME_MAX - _AFTER_ENDPOINT
MODEL_PACKAGE_GROUP_MAX = NAME_MAX
PIPELINE_NAME_MAX = NAME_MAX

# The toolkit's names per SageMaker resource type, as IAM patterns over the settings (the
# runner policy grants these, clean-up matches them, the trust policy admits the jobs').
PATTERNS = {
    "training-job": ("${BASE_JOB_NAME}-*",),
    "hyper-parameter-tuning-job": ("${BASE_JOB_NAME}-*",),
    "transform-job": ("${BASE_JOB_NAME}-predict-*",),
    "processing-job": ("${BASE_JOB_NAME}-eval-*", "${BASE_JOB_NAME}-prep-*"),
    "model": ("${BASE_JOB_NAME}-predict-*", "${ENDPOINT_NAME}-v*"),
    "endpoint-config": ("${ENDPOINT_NAME}-v*",),
    "endpoint": ("${ENDPOINT_NAME}",),
    "model-package-group": ("${MODEL_PACKAGE_GROUP}",),
    "model-package": ("${MODEL_PACKAGE_GROUP}/*",),
    "pipeline": ("${PIPELINE_NAME}", "${PIPELINE_NAME}/execution/*"),  # the pipeline, its executions
}


def patterns(settings: Any, resource_type: str) -> tuple[str, ...]:
    """PATTERNS[resource_type] with the settings filled in (IAM globs: '*' is any run)."""
    values = {
        "BASE_JOB_NAME": settings.base_job_name,
        "ENDPOINT_NAME": settings.endpoint_name,
        "MODEL_PACKAGE_GROUP": settings.model_package_group,
        "PIPELINE_NAME": settings.pipeline_name,
    }
    return tuple(string.Template(p).substitute(values) for p in PATTERNS[resource_type])


def owned(settings: Any, resource_type: str, name: str) -> bool:
    """Whether `name` is one the toolkit makes for this type: a pattern's exact name, or its
    prefix with anything after where the pattern has '*' (an endpoint matches exactly, so a
    teammate's 'titanic-survival-2' is never taken for 'titanic-survival')."""
    return any(re.fullmatch(re.escape(p).replace(r"\*", ".*"), name) for p in patterns(settings, resource_type))


def name_problem(name: str, longest: int, why: str) -> str | None:
    """Why `name` cannot start the toolkit's names (None when it can)."""
    if not NAME_RE.match(name):
        return (
            f"'{name}' must be lower-case letters, digits and inner hyphens (SageMaker lower-cases some ARNs and IAM "
            "matching is case-sensitive)"
        )
    if len(name) > longest:
        return f"'{name}' has {len(name)} characters; at most {longest} fit {why}"
    return None


def tuning_job(base: str, now: datetime) -> str:
    return f"{base}-{now:%y%m%d%H%M%S}"


def transform_job(base: str, now: datetime) -> str:
    """make predict's transform job, and the model it makes for it (the same name)."""
    return f"{base}{PREDICT_INFIX}{now:%Y%m%d%H%M%S}"


def evaluation_job(base: str, now: datetime) -> str:
    """make evaluate's processing job."""
    return f"{base}{EVALUATE_INFIX}{now:%Y%m%d%H%M%S}"


def pipeline_prefixes(base: str, execution: str = "") -> dict[str, str]:
    """The job names a pipeline's definition gives each step. On SageMaker they are prefixes
    (it appends the execution and a token); local mode takes them as the names, so there each
    execution passes its own `execution` token to keep them apart."""
    tail = f"-{execution}" if execution else ""
    return {
        "prepare": f"{base}{PREPARE_INFIX}{tail}",
        "train": f"{base}{tail}" if execution else base,
        "evaluate": f"{base}{EVALUATE_INFIX.rstrip('-')}{tail}",
        "model": f"{base}{PREDICT_INFIX.rstrip('-')}{tail}",
        "transform": f"{base}{PREDICT_INFIX.rstrip('-')}{tail}",
    }


def local_execution(now: datetime) -> str:
    """A local pipeline execution's token for its jobs' names: 'p' and the time (12 + 1 characters)."""
    return f"p{now:%y%m%d%H%M%S}"


def endpoint_object(endpoint: str, version: int, now: datetime) -> str:
    """One name for a version's Model and EndpointConfig: endpoint, version, when."""
    return f"{endpoint}-v{version}-{now:%Y%m%d%H%M%S}"


def endpoint_log_group(endpoint: str) -> str:
    """Where an endpoint's containers log, written with the model's execution role (sagemaker-roles.md)."""
    return f"/aws/sagemaker/Endpoints/{endpoint}"


def arn(partition: str, region: str, account: str, resource: str) -> str:
    return f"arn:{partition}:sagemaker:{region}:{account}:{resource}"


def hosting_source_arn(partition: str, region: str, account: str) -> str:
    """What SageMaker presents as aws:SourceArn when it assumes the role for real-time,
    serverless or asynchronous inference: this literal, the '*' included
    (security-confused-deputy-prevention.md)."""
    return arn(partition, region, account, "*")
