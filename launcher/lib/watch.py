"""Following a SageMaker training job until it ends: its status from DescribeTrainingJob, its
log from CloudWatch Logs. Also the two pieces every wait shares: a status polled until it
settles, and SIGTERM taken as Ctrl-C while waiting.

The job's status comes only from DescribeTrainingJob. A log that cannot be read (no
permission, throttling, not written yet) is reported once and the watch goes on polling:
a client-side error never turns a running job into a failed one.
"""

from __future__ import annotations

import contextlib
import logging
import signal
import time
from collections.abc import Callable, Iterator
from datetime import datetime
from typing import Any

from botocore.exceptions import BotoCoreError, ClientError

from launcher.lib.errors import NOT_FOUND, THROTTLED, StillRunning, ToolkitError, error_code

log = logging.getLogger("watch")
FINAL_STATUSES = ("Completed", "Failed", "Stopped")
LOG_GROUP = "/aws/sagemaker/TrainingJobs"
DESCRIBE_TRIES = 6
# Failures worth asking again: throttling and AWS's own 5xx answers.
TRANSIENT = (*THROTTLED, "InternalFailure", "InternalServerError", "InternalError", "ServiceUnavailable")


class WatchError(ToolkitError):
    """The job's status could not be read for a while; it may still be running."""


def _raise_keyboard_interrupt(signum: int, frame: object) -> None:
    raise KeyboardInterrupt(f"signal {signum}")


@contextlib.contextmanager
def sigterm_as_ctrl_c() -> Iterator[None]:
    """While waiting, SIGTERM (cron's kill, a CI cancel) takes the same path as Ctrl-C."""
    previous = signal.signal(signal.SIGTERM, _raise_keyboard_interrupt)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)


def until_settled(
    read: Callable[[], dict[str, Any]],
    status_key: str,
    settled: Callable[[str], bool],
    what: str,
    *,
    sleep: Callable[[float], None] = time.sleep,
    poll_seconds: float = 15.0,
) -> dict[str, Any]:
    """Read a resource until its status settles, saying each change of status once; return
    the last description."""
    status = ""
    while True:
        description = retrying(read, what, sleep)
        if description[status_key] != status:
            status = description[status_key]
            log.info("%s: %s", what, status)
        if settled(status):
            return description
        sleep(poll_seconds)


def until_final(read: Callable[[], dict[str, Any]], status_key: str, what: str, still_running: str) -> dict[str, Any]:
    """A job's final description, read until its status is final. Ctrl-C or SIGTERM leaves the
    job running and raises StillRunning with `still_running` (what to do next)."""
    try:
        with sigterm_as_ctrl_c():
            return until_settled(read, status_key, lambda status: status in FINAL_STATUSES, what)
    except KeyboardInterrupt:
        raise StillRunning(f"{what} keeps running on SageMaker and is billed until it ends: {still_running}") from None


def seconds_between(started: object, ended: object) -> float | None:
    """Seconds from `started` to `ended` (two datetimes from a Describe call), to a tenth; None
    when either is missing."""
    if isinstance(started, datetime) and isinstance(ended, datetime):
        return round((ended - started).total_seconds(), 1)
    return None


def is_final(description: dict[str, Any]) -> bool:
    return description.get("TrainingJobStatus") in FINAL_STATUSES


def retrying(
    read: Callable[[], dict[str, Any]], what: str, sleep: Callable[[float], None] = time.sleep
) -> dict[str, Any]:
    """One status read, retried with backoff while the failure is transient (throttling, a
    5xx, no connection); any other failure (denied, expired credentials, not found) is raised
    at once, and the last transient one after DESCRIBE_TRIES: the shared error path names it."""
    delay = 2.0
    for attempt in range(1, DESCRIBE_TRIES + 1):
        try:
            return read()
        except ClientError as exc:
            if error_code(exc) not in TRANSIENT or attempt == DESCRIBE_TRIES:
                raise
            log.warning("reading %s failed (%s); retrying in %.0fs", what, error_code(exc), delay)
        except BotoCoreError as exc:
            if attempt == DESCRIBE_TRIES:
                raise
            log.warning("reading %s failed (%s); retrying in %.0fs", what, exc, delay)
        sleep(delay)
        delay = min(delay * 2, 60.0)
    raise AssertionError("not reached")


def describe(sm: Any, job_name: str, sleep: Callable[[float], None] = time.sleep) -> dict[str, Any]:
    """DescribeTrainingJob, retried while the failure is transient."""
    try:
        return retrying(lambda: sm.describe_training_job(TrainingJobName=job_name), f"training job {job_name}", sleep)
    except ClientError as exc:
        if error_code(exc) in NOT_FOUND:
            raise WatchError(
                f"SageMaker has no training job {job_name} ({exc}); 'make status' lists the jobs"
            ) from None
        raise


class LogTail:
    """New lines of every log stream under a prefix of a log group: a training job's (one
    stream per host: JOB/algo-1-...) or an endpoint's (one per instance: AllTraffic/i-...)."""

    def __init__(
        self, logs: Any, job_name: str, write: Callable[[str], None], group: str = LOG_GROUP, prefix: str | None = None
    ) -> None:
        self.logs, self.job_name, self.write = logs, job_name, write
        self.group, self.prefix = group, f"{job_name}/" if prefix is None else prefix
        self.tokens: dict[str, str | None] = {}
        self.disabled: str | None = None

    def poll(self) -> None:
        if self.disabled:
            return
        try:
            listing = {"logGroupName": self.group, "orderBy": "LogStreamName"}
            if self.prefix:
                listing["logStreamNamePrefix"] = self.prefix
            streams = self.logs.describe_log_streams(**listing).get("logStreams", [])
            for stream in streams:
                self._read(stream["logStreamName"])
        except ClientError as exc:
            code = error_code(exc)
            if code == "ResourceNotFoundException":
                return  # the group or stream is not written yet: ask again next time
            self.disabled = f"{code}: {exc.response.get('Error', {}).get('Message', exc)}"
            log.warning(
                "cannot read the job's log (%s); still following its status. Grant logs:DescribeLogStreams and "
                "logs:GetLogEvents on %s:* (make iam-render) to see it here",
                self.disabled,
                self.group,
            )

    def _read(self, stream: str) -> None:
        while True:
            args: dict[str, Any] = {"logGroupName": self.group, "logStreamName": stream, "startFromHead": True}
            if self.tokens.get(stream):
                args["nextToken"] = self.tokens[stream]
            page = self.logs.get_log_events(**args)
            for event in page.get("events", []):
                self.write(f"{stream.rsplit('/', maxsplit=1)[-1]} | {event['message']}")
            token = page.get("nextForwardToken")
            # GetLogEvents answers the same token again once the stream has nothing new.
            if not page.get("events") or token == self.tokens.get(stream):
                self.tokens[stream] = token
                return
            self.tokens[stream] = token


def follow(
    sm: Any,
    logs: Any | None,
    job_name: str,
    *,
    poll_seconds: float = 15.0,
    sleep: Callable[[float], None] = time.sleep,
    write: Callable[[str], None] = print,
) -> dict[str, Any]:
    """Wait for the job to end, printing status changes and (when logs is given) its log;
    return the final description."""
    tail = LogTail(logs, job_name, write) if logs is not None else None
    seen: tuple[str, str] | None = None
    while True:
        description = describe(sm, job_name, sleep)
        now = (description.get("TrainingJobStatus", "?"), description.get("SecondaryStatus", "?"))
        if now != seen:
            log.info("%s: %s (%s)", job_name, *now)
            seen = now
        if tail is not None:
            tail.poll()
        if is_final(description):
            return description
        sleep(poll_seconds)
