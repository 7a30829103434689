"""make tune-jobs: search hyperparameters with real training jobs, report them, keep the best.

TARGET=aws: one SageMaker hyperparameter tuning job (the SDK's HyperparameterTuner over the
same Estimator `make train` builds), objective val_auc, ranges from TUNE_SEARCH_SPACE,
TUNE_MAX_JOBS trials, TUNE_MAX_PARALLEL_JOBS at once. The launcher follows it to its end.
TARGET=local: local mode has no tuning jobs, so Optuna proposes each trial from the same
search space (TPE for Bayesian, random sampling for Random) and each trial is a real
local-mode training job through launcher.train, with its own run record, one at a time.

Either way the trials land in reports/tuning/<name>.md (a table, the best marked), a plot of
the objective over trials, and runs/tuning/best-hyperparameters.json, which
`make train HYPERPARAMETERS_FROM=tuned` uses over config.env's HP_* values.
"""

from __future__ import annotations

import argparse
import dataclasses
import hashlib
import json
import logging
import math
import sys
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import boto3
from botocore.exceptions import ClientError
from titanic_model.hyperparameters import SPECS, HyperparameterError, parse_hyperparameters
from titanic_model.metrics import METRIC_DEFINITIONS

from launcher.lib import errors, names, records, sdk, training, watch
from launcher.lib.caller import whoami
from launcher.lib.config import Settings, TuneSettings, load
from launcher.lib.errors import StillRunning, ToolkitError
from launcher.lib.pricing import usd

log = logging.getLogger("tune")
REPO = Path(__file__).resolve().parent.parent
KINDS = ("continuous", "integer")
SCALINGS = ("Auto", "Linear", "Logarithmic")


class TuneError(ToolkitError):
    """The search could not run or produced nothing usable; the message says why and what to do."""


class TuningInterrupted(StillRunning):
    """Ctrl-C or SIGTERM while a SageMaker tuning job ran: it runs on; the message says what next."""


def follow_up_commands(name: str) -> str:
    return (
        f"tuning job {name} goes on running its trials on SageMaker, billed while it does:\n"
        f"  re-attach:  make tune-jobs JOB={name}   (waits, then writes the report and the best settings)\n"
        f"  stop it:    aws sagemaker stop-hyper-parameter-tuning-job --hyper-parameter-tuning-job-name {name}\n"
        f"              (or make clean-resources CONFIRM=yes, which stops every job of yours in progress)"
    )


@dataclass(frozen=True)
class Parameter:
    name: str
    kind: str  # continuous or integer
    low: float
    high: float
    scaling: str = "Auto"

    def as_text(self, value: float) -> str:
        """The value as the container reads it (SageMaker passes strings)."""
        return str(round(value)) if self.kind == "integer" else f"{value:.6g}"


@dataclass(frozen=True)
class SearchSpace:
    objective: str
    parameters: tuple[Parameter, ...]
    sha256: str


@dataclass(frozen=True)
class Trial:
    number: int
    job_name: str
    status: str
    hyperparameters: dict[str, str]  # the tuned ones
    objective: float | None
    seconds: float | None
    cost_usd: float | None
    on_demand_cost_usd: float | None


# ---- the search space -------------------------------------------------------------------


def _parameter(where: str, name: str, spec: Any) -> Parameter:
    if name not in SPECS:
        raise TuneError(f"{where}: '{name}' is not a hyperparameter of the image; known: {', '.join(sorted(SPECS))}")
    if not isinstance(spec, dict) or spec.get("type") not in KINDS:
        raise TuneError(f'{where}: {name} needs "type": one of {", ".join(KINDS)}')
    low, high, scaling = spec.get("min"), spec.get("max"), spec.get("scaling", "Auto")
    if not all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in (low, high)) or not low < high:
        raise TuneError(f'{where}: {name} needs numbers "min" < "max", got {low!r} and {high!r}')
    allowed = SPECS[name]
    if (spec["type"] == "integer") != (allowed.kind is int):
        raise TuneError(
            f'{where}: {name} is {allowed.kind.__name__} in the image; write "type": '
            f'"{"integer" if allowed.kind is int else "continuous"}"'
        )
    if low < allowed.low or high > allowed.high:
        raise TuneError(
            f"{where}: {name} range [{low:g}, {high:g}] leaves what the image accepts, "
            f"[{allowed.low:g}, {allowed.high:g}]"
        )
    if scaling not in SCALINGS or (scaling == "Logarithmic" and low <= 0):
        raise TuneError(f"{where}: {name} scaling must be one of {', '.join(SCALINGS)} (Logarithmic needs min > 0)")
    return Parameter(name=name, kind=spec["type"], low=float(low), high=float(high), scaling=scaling)


def load_search_space(path: Path) -> SearchSpace:
    """The ranges to search, checked against what the image accepts."""
    if not path.is_file():
        raise TuneError(f"{path} is missing; TUNE_SEARCH_SPACE must name the search space file (see docs/scaling.md)")
    raw = path.read_bytes()
    try:
        data = json.loads(raw)
    except ValueError as exc:
        raise TuneError(f"{path} is not valid JSON ({exc}); fix the file") from None
    objective = data.get("objective") if isinstance(data, dict) else None
    names = [d["Name"] for d in METRIC_DEFINITIONS]
    if objective not in names:
        raise TuneError(f'{path}: "objective" must be a metric the image prints, one of {", ".join(names)}')
    parameters = data.get("parameters")
    if not isinstance(parameters, dict) or not parameters:
        raise TuneError(f'{path}: "parameters" must map at least one hyperparameter to its range')
    space = tuple(_parameter(str(path), name, spec) for name, spec in parameters.items())
    return SearchSpace(objective=objective, parameters=space, sha256=hashlib.sha256(raw).hexdigest())


def tuning_name(settings: Settings, now: datetime) -> str:
    """<BASE_JOB_NAME>-<yymmddHHMMSS>: the tuning job and its training jobs (named after it)
    stay inside the ARNs the runner policy grants (BASE_JOB_NAME*); settings keep it short enough."""
    return names.tuning_job(settings.base_job_name, now)


# ---- TARGET=local: Optuna proposes, local mode trains ----------------------------------


def _suggest(trial: Any, space: SearchSpace) -> dict[str, str]:
    chosen = {}
    for p in space.parameters:
        log_scale = p.scaling == "Logarithmic"
        if p.kind == "integer":
            value: float = trial.suggest_int(p.name, int(p.low), int(p.high), log=log_scale)
        else:
            value = trial.suggest_float(p.name, p.low, p.high, log=log_scale)
        chosen[p.name] = p.as_text(value)
    return chosen


def _sampler(tune: TuneSettings) -> Any:
    import optuna

    if tune.strategy == "Random":
        return optuna.samplers.RandomSampler(seed=tune.seed)
    return optuna.samplers.TPESampler(seed=tune.seed, n_startup_trials=min(5, tune.max_jobs))


def run_local(settings: Settings, space: SearchSpace, name: str, paths: dict[str, Path], trials: list[Trial]) -> None:
    """TUNE_MAX_JOBS local-mode training jobs, one after another, each proposed by Optuna from
    the results before it; each finished trial is appended to `trials` as it ends."""
    import optuna

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    if settings.tune.max_parallel_jobs > 1:
        log.info("the embedded stack runs one trial at a time (TUNE_MAX_PARALLEL_JOBS applies on SageMaker)")
    if settings.tune.early_stopping != "Off":
        log.info(
            "TUNE_EARLY_STOPPING=%s applies on SageMaker only; local trials run to the end",
            settings.tune.early_stopping,
        )
    study = optuna.create_study(direction="maximize", sampler=_sampler(settings.tune), study_name=name)
    for number in range(1, settings.tune.max_jobs + 1):
        proposal = study.ask()
        tuned = _suggest(proposal, space)
        trial_settings = dataclasses.replace(
            settings, hyperparameters={**settings.hyperparameters, **tuned}, hyperparameters_from="config"
        )
        log.info("trial %d of %d: %s", number, settings.tune.max_jobs, _short(tuned))
        record = training.run(trial_settings, paths["image_record"], paths["split_dir"], paths["runs_dir"])
        record["tuning"] = {"name": name, "trial": number, "search_space_sha256": space.sha256}
        records.write_record(paths["runs_dir"], record)
        trial = _trial_from_record(number, record, tuned, space.objective)
        if trial.objective is None:
            study.tell(proposal, state=optuna.trial.TrialState.FAIL)
            log.warning("trial %d (%s) %s: %s", number, trial.job_name, trial.status, record.get("failure_reason"))
        else:
            study.tell(proposal, trial.objective)
        trials.append(trial)


def _trial_from_record(number: int, record: records.RunRecord, tuned: dict[str, str], objective: str) -> Trial:
    value = record.get("metrics", {}).get(objective) if record.get("status") == "Completed" else None
    cost = record.get("cost") or {}
    return Trial(
        number=number,
        job_name=record["job_name"],
        status=record.get("status", "Unknown"),
        hyperparameters=tuned,
        objective=value,
        seconds=(record.get("seconds") or {}).get("training"),
        cost_usd=cost.get("cost_usd"),
        on_demand_cost_usd=cost.get("on_demand_cost_usd"),
    )


def _short(hyperparameters: dict[str, str]) -> str:
    return " ".join(f"{k}={v}" for k, v in sorted(hyperparameters.items()))


# ---- TARGET=aws: one SageMaker tuning job -------------------------------------------------


def start_aws(settings: Settings, space: SearchSpace, name: str, image_uri: str, boto_session: boto3.Session) -> None:
    """Create the tuning job; SageMaker runs the trials."""
    session = sdk.session(settings, boto_session)
    launched_by = whoami(boto_session).arn
    tuner = training.build_tuner(settings, space, image_uri, session, launched_by)
    log.info(
        "starting tuning job %s: %d trials, %d at once, %s",
        name,
        settings.tune.max_jobs,
        settings.tune.max_parallel_jobs,
        settings.tune.strategy,
    )
    try:
        tuner.fit(training.training_inputs(settings), job_name=name, wait=False, include_cls_metadata=False)
    except Exception as exc:
        raise TuneError(f"the tuning job could not be created: {exc}") from exc


def follow_aws(
    settings: Settings,
    space: SearchSpace,
    name: str,
    boto_session: boto3.Session,
    *,
    sleep: Any = time.sleep,
    poll_seconds: float = 30.0,
) -> list[Trial]:
    """Wait for the tuning job to end (Ctrl-C or SIGTERM: TuningInterrupted, the job runs on),
    then read its trials."""
    sm = boto_session.client("sagemaker")
    try:
        with watch.sigterm_as_ctrl_c():
            description = watch.until_settled(
                lambda: sm.describe_hyper_parameter_tuning_job(HyperParameterTuningJobName=name),
                "HyperParameterTuningJobStatus",
                lambda status: status in watch.FINAL_STATUSES,
                f"tuning job {name}",
                sleep=sleep,
                poll_seconds=poll_seconds,
            )
    except KeyboardInterrupt:
        raise TuningInterrupted(follow_up_commands(name)) from None
    except ClientError as exc:
        raise TuneError(
            f"cannot read tuning job {name} ({exc}); 'make tune-jobs JOB=<name>' takes a tuning job's "
            "name as make tune-jobs printed it"
        ) from None
    if description["HyperParameterTuningJobStatus"] != "Completed":
        log.warning(
            "tuning job %s %s: %s",
            name,
            description["HyperParameterTuningJobStatus"],
            description.get("FailureReason", "no reason given"),
        )
    return aws_trials(settings, sm, name, space, boto_session)


def aws_trials(settings: Settings, sm: Any, name: str, space: SearchSpace, boto_session: boto3.Session) -> list[Trial]:
    summaries = [
        summary
        for page in sm.get_paginator("list_training_jobs_for_hyper_parameter_tuning_job").paginate(
            HyperParameterTuningJobName=name
        )
        for summary in page["TrainingJobSummaries"]
    ]
    price = training.training_price(settings, boto_session)  # once for every trial: one type, one price
    trials = []
    for number, summary in enumerate(sorted(summaries, key=lambda s: s["CreationTime"]), start=1):
        job = sm.describe_training_job(TrainingJobName=summary["TrainingJobName"])
        seconds = {"training": job.get("TrainingTimeInSeconds"), "billable": job.get("BillableTimeInSeconds")}
        cost = training.run_cost_facts(settings, price, seconds)
        metric = summary.get("FinalHyperParameterTuningJobObjectiveMetric") or {}
        tuned = {k: str(v) for k, v in summary.get("TunedHyperParameters", {}).items()}
        trials.append(
            Trial(
                number=number,
                job_name=summary["TrainingJobName"],
                status=summary["TrainingJobStatus"],
                hyperparameters=tuned,
                objective=metric.get("Value"),
                seconds=job.get("TrainingTimeInSeconds"),
                cost_usd=cost["cost_usd"],
                on_demand_cost_usd=cost["on_demand_cost_usd"],
            )
        )
    return trials


# ---- the outcome: best, report, plot ------------------------------------------------------


# The spread of each objective in make evaluate's estimate (sd over the folds of the model's recipe).
_SPREAD_OF = {"val_auc": "auc_sd", "val_accuracy": "accuracy_sd"}


@dataclass(frozen=True)
class Baseline:
    """The current settings' score: the newest evaluated run of config.env's hyperparameters
    (not a tuning trial), on the same split the trials are scored on, and the spread of that
    score in its make evaluate."""

    job_name: str
    objective: float
    spread: float | None


def baseline(runs_dir: Path, settings: Settings, objective: str) -> Baseline | None:
    paths = sorted(runs_dir.glob("*.json"), key=lambda p: p.stat().st_mtime, reverse=True)
    for path in paths:
        try:
            record = records.read_record(path)
        except records.RecordError:
            continue  # not a run record: no baseline in it
        evaluation = record.get("evaluation")
        if (
            evaluation is None
            or "tuning" in record
            or record["hyperparameters"] != settings.hyperparameters
            or objective not in (record.get("metrics") or {})
        ):
            continue
        try:
            estimate = json.loads(Path(evaluation["local_file"]).read_text(encoding="utf-8"))["estimate"]
            spread = estimate["model"][_SPREAD_OF[objective]]
        except (OSError, ValueError, KeyError):
            spread = None
        return Baseline(job_name=record["job_name"], objective=float(record["metrics"][objective]), spread=spread)
    return None


def recommendation(best: Trial, current: Baseline | None, objective: str) -> tuple[bool, str]:
    """Whether to train with the tuned settings, and the sentence that says why: only when the
    best trial beats the current settings by more than the evaluation's spread."""
    if current is None:
        return False, (
            "No evaluated run of the current settings to compare with: run 'make all' and 'make evaluate', then "
            "judge the best trial against it. Until then, keep the current settings."
        )
    gain = (best.objective or 0.0) - current.objective
    if current.spread is None:
        return False, f"The current settings' evaluation gives no spread for {objective}: keep the current settings."
    versus = (
        f"trial {best.number}'s {objective} {best.objective:.4f} against the current settings' {current.objective:.4f} "
        f"({current.job_name}): {gain:+.4f}, spread {current.spread:.4f}"
    )
    if gain > current.spread:
        return True, f"Train with the tuned settings (`make train HYPERPARAMETERS_FROM=tuned`): {versus}."
    return False, f"Keep the current settings: {versus}, no more than the spread."


def best_of(trials: list[Trial]) -> Trial:
    scored = [t for t in trials if t.objective is not None and math.isfinite(t.objective)]
    if not scored:
        reasons = ", ".join(f"{t.job_name} {t.status}" for t in trials[:3]) or "no trial ran"
        raise TuneError(f"no trial produced the objective ({reasons}); 'make logs JOB=<trial>' shows why")
    return max(scored, key=lambda t: (t.objective, -t.number))


def _usd(value: float | None) -> str:
    return usd(value, unknown="—")


def report_markdown(
    name: str,
    settings: Settings,
    space: SearchSpace,
    trials: list[Trial],
    best: Trial,
    *,
    current: Baseline | None = None,
) -> str:
    tuned = [p.name for p in space.parameters]
    where = "SageMaker tuning job" if not settings.local else "local-mode training jobs proposed by Optuna"
    lines = [
        f"# Tuning {name}",
        "",
        f"{len(trials)} trials ({where}, strategy {settings.tune.strategy}, seed {settings.tune.seed}), objective "
        f"`{space.objective}` (higher is better), search space `{settings.tune.search_space}` "
        f"(sha256 {space.sha256[:12]}).",
        "",
        "| trial | job | " + " | ".join(tuned) + f" | {space.objective} | seconds | cost | on demand |",
        "|---" * (len(tuned) + 6) + "|",
    ]
    if current is not None:
        blank = " | ".join("" for _ in tuned)
        lines.append(f"| current settings | {current.job_name} | {blank} | {current.objective:.4f} | | | |")
    for t in trials:
        mark = " **best**" if t is best else ""
        value = "—" if t.objective is None else f"{t.objective:.4f}"
        seconds = "—" if t.seconds is None else f"{t.seconds:g}"
        cells = [t.hyperparameters.get(p, "") for p in tuned]
        lines.append(
            f"| {t.number}{mark} | {t.job_name} ({t.status}) | "
            + " | ".join(cells)
            + f" | {value} | {seconds} | {_usd(t.cost_usd)} | {_usd(t.on_demand_cost_usd)} |"
        )
    total = [t.cost_usd for t in trials if t.cost_usd is not None]
    lines += [
        "",
        f"Best: trial {best.number}, {best.job_name}, {space.objective} {best.objective:.4f}.",
        f"Total cost: {_usd(sum(total)) if total else 'not billed (local) or unknown'}.",
        "",
        f"![{space.objective} over trials]({name}.png)",
        "",
        recommendation(best, current, space.objective)[1],
        "",
    ]
    return "\n".join(lines)


def plot(path: Path, trials: list[Trial], objective: str, current: Baseline | None = None) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from matplotlib.ticker import MaxNLocator

    scored = [(t.number, t.objective) for t in trials if t.objective is not None]
    figure, axes = plt.subplots(figsize=(6, 3.5))
    if scored:
        numbers, values = zip(*scored, strict=True)
        axes.scatter(numbers, values, label="trial")
        best_so_far = [max(values[: i + 1]) for i in range(len(values))]
        axes.step(numbers, best_so_far, where="post", color="tab:orange", label="best so far")
    if current is not None:
        axes.axhline(current.objective, color="tab:green", linestyle="--", label="current settings")
        if current.spread is not None:
            low, high = current.objective - current.spread, current.objective + current.spread
            axes.axhspan(low, high, color="tab:green", alpha=0.12, label="± evaluation spread")
    axes.xaxis.set_major_locator(MaxNLocator(integer=True))  # trials are whole numbers
    axes.set_xlabel("trial")
    axes.set_ylabel(objective)
    axes.legend(loc="lower right")
    figure.tight_layout()
    figure.savefig(path, dpi=100)
    plt.close(figure)


def write_outcome(
    paths: dict[str, Path], name: str, settings: Settings, space: SearchSpace, trials: list[Trial]
) -> dict[str, Any]:
    """The report (Markdown, plot, JSON) and the best settings for make train."""
    best = best_of(trials)
    try:
        parse_hyperparameters(best.hyperparameters)
    except HyperparameterError as exc:
        raise TuneError(
            f"the best trial {best.job_name} reports hyperparameters the image refuses ({exc}); "
            "nothing was kept for make train"
        ) from None
    folder = paths["reports_dir"] / "tuning"
    folder.mkdir(parents=True, exist_ok=True)
    current = baseline(paths["runs_dir"], settings, space.objective)
    recommended, words = recommendation(best, current, space.objective)
    outcome = {
        "name": name,
        "target": settings.target,
        "finished_at": datetime.now(UTC).isoformat(timespec="seconds"),
        "objective": space.objective,
        "search_space": settings.tune.search_space,
        "search_space_sha256": space.sha256,
        "strategy": settings.tune.strategy,
        "trials": [dataclasses.asdict(t) for t in trials],
        "best": dataclasses.asdict(best),
        # What make train HYPERPARAMETERS_FROM=tuned sends: config.env's HP_* with the tuned on top.
        "hyperparameters": best.hyperparameters,
        "baseline": dataclasses.asdict(current) if current else None,
        "recommended": recommended,
        "recommendation": words,
    }
    plot(folder / f"{name}.png", trials, space.objective, current)
    text = report_markdown(name, settings, space, trials, best, current=current)
    (folder / f"{name}.md").write_text(text, encoding="utf-8")
    (folder / f"{name}.json").write_text(json.dumps(outcome, indent=2, default=str) + "\n", encoding="utf-8")
    records.write_tuned(paths["runs_dir"], outcome)
    return outcome


def run(
    settings: Settings, paths: dict[str, Path], boto_session: boto3.Session | None = None, attach: str = ""
) -> dict[str, Any]:
    """Run a search (or, on AWS, re-attach to the tuning job `attach`) and write its outcome."""
    space = load_search_space(REPO / settings.tune.search_space)
    if settings.local:
        if attach:
            raise TuneError(
                "local tuning runs inside make tune-jobs, so there is nothing to re-attach to; "
                "run 'make tune-jobs' without JOB="
            )
        name = tuning_name(settings, datetime.now(UTC))
        trials: list[Trial] = []
        try:
            run_local(settings, space, name, paths, trials)
        except training.Interrupted:
            # Ctrl-C between or during trials: the finished ones still make a report.
            if any(t.objective is not None for t in trials):
                write_outcome(paths, name, settings, space, trials)
                log.warning("interrupted: the report of %s holds the %d trials that finished", name, len(trials))
            raise
        return write_outcome(paths, name, settings, space, trials)
    boto_session = boto_session or boto3.Session(region_name=settings.region)
    name = attach or tuning_name(settings, datetime.now(UTC))
    if not attach:
        image = training.read_image_record(paths["image_record"])
        start_aws(settings, space, name, image["uri"], boto_session)
    return write_outcome(paths, name, settings, space, follow_aws(settings, space, name, boto_session))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--image-record", type=Path, required=True, help="JSON written by the push stage")
    parser.add_argument("--split-dir", type=Path, required=True, help="the data stage's output")
    parser.add_argument("--runs-dir", type=Path, required=True, help="where run records go")
    parser.add_argument("--reports-dir", type=Path, required=True, help="where the tuning report goes")
    parser.add_argument("--job", default="", help="TARGET=aws: re-attach to this tuning job instead of starting one")
    args = parser.parse_args(argv)
    return errors.run("tune", lambda: _tune(args))


def _tune(args: argparse.Namespace) -> int:
    paths = {
        "image_record": args.image_record,
        "split_dir": args.split_dir,
        "runs_dir": args.runs_dir,
        "reports_dir": args.reports_dir,
    }
    try:
        outcome = run(load(), paths, attach=args.job)
    except training.Interrupted as stop:
        raise StillRunning(
            f"during trial {stop.record['job_name']}: {training.follow_up_commands(stop.record['job_name'])}"
        ) from None
    best = outcome["best"]
    sys.stdout.write(trial_lines(outcome))
    log.info(
        "best: trial %d, %s, %s %.4f; report reports/tuning/%s.md",
        best["number"],
        best["job_name"],
        outcome["objective"],
        best["objective"],
        outcome["name"],
    )
    log.info("%s", outcome["recommendation"])
    return 0


def trial_lines(outcome: dict[str, Any]) -> str:
    """The trials as printed lines: number, job, objective, the tuned values; best marked."""
    lines = []
    for t in outcome["trials"]:
        mark = "*" if t["number"] == outcome["best"]["number"] else " "
        value = "—" if t["objective"] is None else f"{t['objective']:.4f}"
        lines.append(f"{mark} trial {t['number']:>3}  {value:>7}  {t['job_name']}  {_short(t['hyperparameters'])}")
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    sys.exit(main())
