"""Operating training jobs and pipeline executions while they run: status, logs, describe, stop.

  status              jobs in progress and the latest ones, then the pipeline's executions
                      (AWS: from the API; embedded stack: from the run records, since local
                      mode runs jobs and executions in-process)
  logs --job NAME     the job's log, followed while the job runs; with NAME = ENDPOINT_NAME,
                      the endpoint's log (CloudWatch on AWS, docker logs on the embedded stack)
  describe --job NAME the job as SageMaker describes it (embedded stack: its run record)
  stop --job NAME     StopTrainingJob, then wait for the final status and update the record;
                      NAME a pipeline execution (its ARN): StopPipelineExecution, then wait

NAME defaults to the latest run record. Every verb needs credentials and region only.
"""

from __future__ import annotations

import argparse
import json
import logging
import subprocess
import sys
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import boto3

from launcher.lib import errors, executions, names, records, watch
from launcher.lib.caller import whoami
from launcher.lib.config import Settings, load
from launcher.lib.errors import ToolkitError
from launcher.lib.hosting import live_summary
from launcher.lib.local_mode import local_containers
from launcher.lib.pricing import PriceBook, pricing_client, usd

log = logging.getLogger("operate")
RECENT = 10


class OperateError(ToolkitError):
    """The verb cannot be done; the message says why and what to do instead."""


def job_name_or_latest(runs_dir: Path, job: str) -> str:
    if job:
        return job
    latest = records.latest_record(runs_dir)
    if latest is None:
        raise OperateError(f"no run records in {runs_dir}; name the job: JOB=<name> (make status lists them)")
    return latest.stem


def _elapsed(description: dict[str, Any], now: datetime) -> float | None:
    """From the start to the end, or to now while it runs."""
    started = description.get("TrainingStartTime") or description.get("CreationTime")
    ended = description.get("TrainingEndTime")
    return watch.seconds_between(started, ended if isinstance(ended, datetime) else now)


def cost_so_far(description: dict[str, Any], book: PriceBook, now: datetime) -> float | None:
    """Billed cost when the job has ended; while it runs, elapsed seconds at the on-demand
    price (an upper bound for spot, whose discount is known only at the end)."""
    instance = description.get("ResourceConfig", {})
    price, _ = book.lookup(instance.get("InstanceType", ""))
    if price is None:
        return None
    count = instance.get("InstanceCount", 1)
    seconds = description.get("BillableTimeInSeconds")
    if seconds is None:
        seconds = _elapsed(description, now)
    return None if seconds is None else round(seconds * count * price.usd_per_hour / 3600, 6)


def status_rows_aws(settings: Settings, sm: Any, book: PriceBook, now: datetime) -> list[dict[str, Any]]:
    names: list[str] = []
    for status in ("InProgress", None):
        args: dict[str, Any] = {
            "NameContains": settings.base_job_name,
            "SortBy": "CreationTime",
            "SortOrder": "Descending",
            "MaxResults": RECENT,
        }
        if status:
            args["StatusEquals"] = status
        for summary in sm.list_training_jobs(**args)["TrainingJobSummaries"]:
            name = summary["TrainingJobName"]
            if name.startswith(f"{settings.base_job_name}-") and name not in names:
                names.append(name)
    rows = []
    for name in names:
        description = watch.describe(sm, name)
        rows.append(
            {
                "job": name,
                "status": description.get("TrainingJobStatus"),
                "secondary": description.get("SecondaryStatus"),
                "elapsed_s": _elapsed(description, now),
                "instance": description.get("ResourceConfig", {}).get("InstanceType"),
                "spot": bool(description.get("EnableManagedSpotTraining")),
                "cost_usd": cost_so_far(description, book, now),
            }
        )
    return rows


def status_rows_local(runs_dir: Path) -> list[dict[str, Any]]:
    paths = sorted(runs_dir.glob("*.json"), key=lambda p: p.stat().st_mtime, reverse=True)[:RECENT]
    rows = []
    for path in paths:
        record = records.read_record(path)
        rows.append(
            {
                "job": record["job_name"],
                "status": record.get("status"),
                "secondary": record.get("secondary_status"),
                "elapsed_s": (record.get("seconds") or {}).get("training"),
                "instance": (record.get("instance") or {}).get("type"),
                "spot": (record.get("instance") or {}).get("spot"),
                "cost_usd": (record.get("cost") or {}).get("cost_usd"),
            }
        )
    return rows


def render_status(rows: list[dict[str, Any]]) -> str:
    if not rows:
        return "no training jobs found"
    header = f"{'job':<40} {'status':<11} {'secondary':<22} {'elapsed':>8} {'instance':<14} {'spot':<5} {'cost':>10}"
    lines = [header]
    for r in rows:
        elapsed = "-" if r["elapsed_s"] is None else f"{r['elapsed_s']:.0f}s"
        cost = usd(r["cost_usd"], 4, unknown="-")
        lines.append(
            f"{r['job']:<40} {r['status'] or '-':<11} {r['secondary'] or '-':<22} {elapsed:>8} "
            f"{r['instance'] or '-':<14} {r['spot']!s:<5} {cost:>10}"
        )
    return "\n".join(lines)


def local_log(runs_dir: Path, job: str) -> str:
    path = runs_dir / job / "job.log"
    if not path.is_file():
        raise OperateError(f"no log kept for {job} ({path}); local-mode jobs print theirs during 'make train'")
    return path.read_text(encoding="utf-8", errors="replace")


def endpoint_log(settings: Settings, session: boto3.Session) -> str:
    """What ENDPOINT_NAME's containers have logged: on AWS its CloudWatch group
    /aws/sagemaker/Endpoints/NAME (where AWS's errors point), on the embedded stack `docker logs`
    of its serving containers."""
    if settings.local:
        containers = local_containers(settings.endpoint_name)
        if not containers:
            raise OperateError(f"no container serves {settings.endpoint_name} on the embedded stack; 'make deploy'")
        found = [subprocess.run(["docker", "logs", c["id"]], capture_output=True, text=True) for c in containers]
        return "".join(f"{r.stdout}{r.stderr}" for r in found)
    lines: list[str] = []
    group = names.endpoint_log_group(settings.endpoint_name)
    watch.LogTail(session.client("logs"), settings.endpoint_name, lines.append, group=group, prefix="").poll()
    return "".join(f"{line}\n" for line in lines) or f"no log events in {group} yet\n"


def stop(
    settings: Settings, sm: Any, runs_dir: Path, job: str, follow: Callable[..., Any] = watch.follow
) -> dict[str, Any]:
    description = watch.describe(sm, job)
    if watch.is_final(description):
        log.info("%s is already %s; nothing to stop", job, description["TrainingJobStatus"])
    else:
        sm.stop_training_job(TrainingJobName=job)
        log.info("asked SageMaker to stop %s; waiting for its final status", job)
        description = follow(sm, None, job, poll_seconds=10)
    path = records.record_path(runs_dir, job)
    if path.is_file():
        record = records.read_record(path)
        record.update(
            {
                "status": description.get("TrainingJobStatus"),
                "secondary_status": description.get("SecondaryStatus"),
                "failure_reason": description.get("FailureReason"),
                "stopped_at": datetime.now(UTC).isoformat(timespec="seconds"),
            }
        )
        records.write_record(runs_dir, record)
        log.info("updated %s", path)
    return description


def execution_rows(settings: Settings, session: boto3.Session, runs_dir: Path) -> list[dict[str, Any]] | None:
    """The pipeline's newest executions: SageMaker's list on AWS, the execution records locally
    (None: no pipeline yet)."""
    if settings.local:
        paths = sorted((runs_dir / "pipelines").glob("*.json"), key=lambda p: p.stat().st_mtime, reverse=True)
        found = [json.loads(p.read_text(encoding="utf-8")) for p in paths[: executions.RECENT]]
        return [{"execution": r["execution"], "status": r["status"], "started": r.get("finished_at")} for r in found]
    summaries = executions.recent(session.client("sagemaker"), settings)
    if summaries is None:
        return None
    return [
        {
            "execution": s["PipelineExecutionArn"],
            "status": s.get("PipelineExecutionStatus"),
            "started": s.get("StartTime"),
        }
        for s in summaries
    ]


def render_executions(rows: list[dict[str, Any]] | None) -> str:
    if not rows:
        return "no pipeline executions (make pipeline starts one)"
    lines = [f"{'pipeline execution':<90} {'status':<10} when"]
    lines += [f"{r['execution']:<90} {r['status'] or '-':<10} {r['started'] or '-'}" for r in rows]
    return "\n".join(lines)


def stop_execution(settings: Settings, session: boto3.Session, job: str) -> int:
    """make stop JOB=<execution>: stop it and wait for its final status."""
    if settings.local:
        raise OperateError(
            f"local pipeline executions run inside 'make pipeline' and end with it; {job} is not running anywhere "
            "to stop (Ctrl-C stops a running 'make pipeline')"
        )
    sm = session.client("sagemaker")
    arn = executions.execution_arn(settings, whoami(session), job)
    status = sm.describe_pipeline_execution(PipelineExecutionArn=arn)["PipelineExecutionStatus"]
    if status in executions.FINAL:
        log.info("%s is already %s; nothing to stop", arn, status)
    else:
        executions.stop(sm, arn)
        log.info("asked SageMaker to stop %s; waiting for its final status", arn)
        status = watch.until_settled(
            lambda: sm.describe_pipeline_execution(PipelineExecutionArn=arn),
            "PipelineExecutionStatus",
            lambda state: state in executions.FINAL,
            f"pipeline execution {arn.rsplit('/', 1)[-1]}",
            poll_seconds=10,
        )["PipelineExecutionStatus"]
    print(f"{arn}: {status}", flush=True)
    return 0


def status(settings: Settings, runs_dir: Path, session: boto3.Session) -> int:
    """Jobs, pipeline executions, and what is live."""
    if settings.local:
        rows = status_rows_local(runs_dir)
    else:
        book = PriceBook(settings.region, pricing_client(session, settings.region))
        rows = status_rows_aws(settings, session.client("sagemaker"), book, datetime.now(UTC))
    print(render_status(rows), flush=True)
    print(render_executions(execution_rows(settings, session, runs_dir)), flush=True)
    print(live_summary(settings, session), flush=True)
    return 0


def run(settings: Settings, verb: str, runs_dir: Path, job: str, session: boto3.Session) -> int:
    if verb == "status":
        return status(settings, runs_dir, session)
    if verb == "stop" and (executions.is_execution(job) or (runs_dir / "pipelines" / f"{job}.json").is_file()):
        return stop_execution(settings, session, job)
    name = job_name_or_latest(runs_dir, job)
    if verb == "logs" and name == settings.endpoint_name:
        print(endpoint_log(settings, session), end="", flush=True)
        return 0
    if settings.local:
        path = records.record_path(runs_dir, name)
        if verb == "logs":
            print(local_log(runs_dir, name), end="", flush=True)
        elif verb == "describe":
            if not path.is_file():
                raise OperateError(f"no run record for {name} in {runs_dir}")
            print(path.read_text(encoding="utf-8"), end="", flush=True)
        else:
            raise OperateError(
                f"local-mode jobs run inside 'make train' and end with it; {name} is not running "
                "anywhere to stop (Ctrl-C stops a running 'make train')"
            )
        return 0
    sm = session.client("sagemaker")
    if verb == "logs":
        watch.follow(sm, session.client("logs"), name, poll_seconds=10)
    elif verb == "describe":
        print(json.dumps(watch.describe(sm, name), indent=2, default=str), flush=True)
    elif verb == "stop":
        final = stop(settings, sm, runs_dir, name)
        print(f"{name}: {final.get('TrainingJobStatus')} ({final.get('SecondaryStatus')})", flush=True)
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("verb", choices=("status", "logs", "describe", "stop"))
    parser.add_argument("--runs-dir", type=Path, required=True)
    parser.add_argument("--job", default="", help="job name (default: the latest run record)")
    args = parser.parse_args(argv)
    return errors.run(args.verb, lambda: _operate(args))


def _operate(args: argparse.Namespace) -> int:
    settings = load()
    try:
        return run(settings, args.verb, args.runs_dir, args.job, boto3.Session(region_name=settings.region))
    except KeyboardInterrupt:
        log.info("stopped watching; the job itself is unaffected")
        return 130


if __name__ == "__main__":
    sys.exit(main())
