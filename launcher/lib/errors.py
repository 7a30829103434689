"""The one path from a failure to what the user reads and the exit code, for every command.

Every command's main is `errors.run(stage, body)`. Whatever the body raises ends as one
line per problem on stderr and an exit code, never as a traceback:

- ToolkitError (each command's own errors derive from it): its message, which already
  says what to do; exit 1.
- StillRunning: work was left running on purpose (Ctrl-C or SIGTERM while a job ran on
  SageMaker); its message holds the follow-up commands; exit 130.
- An AWS error (ClientError): the call, AWS's code and message, and what to do for that
  code (denied, throttled, expired credentials, a quota); exit 1.
- botocore's own failures (no credentials, no connection, a timeout): what to check; exit 1.
- KeyboardInterrupt anywhere else: nothing was left running by the toolkit; exit 130.
- Anything else: a one-line "unexpected" report naming the exception, and
  TOOLKIT_DEBUG=1 to see the traceback; exit 1.

A new command cannot forget a case: there is no per-command list of exceptions to keep.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Callable

from botocore.exceptions import (
    BotoCoreError,
    ClientError,
    ConnectTimeoutError,
    EndpointConnectionError,
    NoCredentialsError,
    NoRegionError,
    ReadTimeoutError,
)

from launcher.lib import logs

INTERRUPTED = 130  # the shell's code for a command ended by SIGINT

# What to do, by AWS error code (the codes differ between the query and JSON protocols).
DENIED = ("AccessDenied", "AccessDeniedException", "UnauthorizedOperation", "AuthorizationError")
THROTTLED = (
    "Throttling",
    "ThrottlingException",
    "TooManyRequestsException",
    "RequestLimitExceeded",
    "SlowDown",
    "ProvisionedThroughputExceededException",
    "RequestThrottled",
    "RequestThrottledException",
)
BAD_CREDENTIALS = (
    "ExpiredToken",
    "ExpiredTokenException",
    "RequestExpired",
    "InvalidClientTokenId",
    "UnrecognizedClientException",
    "SignatureDoesNotMatch",
    "InvalidAccessKeyId",
    "InvalidToken",
    "TokenRefreshRequired",
)
# How SageMaker answers a Describe of something that does not exist (ValidationException,
# "Could not find ...") or, for a few resources, ResourceNotFound.
NOT_FOUND = ("ValidationException", "ResourceNotFound")
QUOTA = ("ResourceLimitExceeded", "ServiceQuotaExceededException", "LimitExceededException")


class ToolkitError(RuntimeError):
    """A failure whose message names the problem and the fix (one line per problem)."""


class StillRunning(ToolkitError):
    """Interrupted while work runs on SageMaker; the message says how to follow, stop or re-attach."""


def error_code(exc: ClientError) -> str:
    """The AWS error code of a failed call ('AccessDenied', 'NoSuchBucket', ...)."""
    return exc.response.get("Error", {}).get("Code", "")


def endpoint_hint() -> str:
    """What to check when an AWS endpoint does not answer (scripts/lib.sh says the same)."""
    where = os.environ.get("AWS_ENDPOINT_URL")
    if where:
        return f"is the embedded AWS at {where} up? run 'make local-status' / 'make local-up'"
    return "check the network, any proxy, and AWS_REGION"


def aws_hint(code: str) -> str:
    """What the user can do about an AWS error code."""
    if code in DENIED:
        return (
            "the credentials may not make this call: attach the runner policy ('make iam-render' writes it, "
            "docs/iam.md) or ask an administrator"
        )
    if code in THROTTLED:
        return "AWS is throttling this account's calls: wait a minute and rerun (work already started keeps running)"
    if code in BAD_CREDENTIALS:
        return "the credentials are expired or invalid: refresh them (aws sso login, or assume the role) and rerun"
    if code in QUOTA:
        return "an account quota is reached: 'make instance-report' shows the quotas; request more in Service Quotas"
    return "see AWS's message; docs/troubleshooting.md lists the usual causes"


def describe(exc: BaseException) -> tuple[str, int]:
    """The one line (possibly several, one per problem) and the exit code for a failure."""
    if isinstance(exc, StillRunning):
        return f"interrupted: {exc}", INTERRUPTED
    if isinstance(exc, ToolkitError):
        return str(exc), 1
    if isinstance(exc, ClientError):
        code = error_code(exc)
        message = exc.response.get("Error", {}).get("Message", "") or str(exc)
        return f"{exc.operation_name} failed ({code}): {message}; {aws_hint(code)}", 1
    if isinstance(exc, NoCredentialsError):
        return "no AWS credentials found; run 'aws configure', set AWS_PROFILE, or export assumed-role keys", 1
    if isinstance(exc, NoRegionError):
        return "no AWS region is set; set AWS_REGION in config.env", 1
    if isinstance(exc, (EndpointConnectionError, ConnectTimeoutError, ReadTimeoutError)):
        return f"{exc}; {endpoint_hint()}", 1
    if isinstance(exc, BotoCoreError):
        return f"an AWS call failed before AWS answered ({type(exc).__name__}: {exc}); {endpoint_hint()}", 1
    if isinstance(exc, KeyboardInterrupt):
        return "interrupted; nothing the toolkit started is left running", INTERRUPTED
    first = str(exc).splitlines()[0] if str(exc) else ""
    return (
        f"unexpected {type(exc).__name__}: {first}; rerun with TOOLKIT_DEBUG=1 for the traceback and report it",
        1,
    )


def run(stage: str, body: Callable[[], int | None]) -> int:
    """Set up logging for `stage`, run the command's body, and turn any failure into lines and
    an exit code. The body returns its own exit code (None is 0)."""
    logs.setup(stage)
    log = logging.getLogger(stage)
    try:
        return body() or 0
    except (Exception, KeyboardInterrupt) as exc:
        if os.environ.get("TOOLKIT_DEBUG") == "1":
            log.exception("traceback (TOOLKIT_DEBUG=1):")
        message, code = describe(exc)
        logs.errors(log, message)
        return code
