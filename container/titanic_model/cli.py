"""Training's entry point: `python entrypoint.py train [--name value ...]`, as SageMaker runs the
image; `python entrypoint.py evaluate`, as a processing job runs it (titanic_model.evaluate);
`python entrypoint.py prepare --validation-fraction F --seed N`, as the pipeline's Prepare
processing job runs it (titanic_model.prepare); and `python entrypoint.py rescore` (make
verify's offline rescoring, metrics as JSON on stdout). `serve` never gets here:
entrypoint.py hands it to titanic_model.server.

One try/except/finally, like AWS's training toolkit: the work in try, the failure file and the
clean-up in except, the exit code at the end. Any failure leaves a one-line reason in
/opt/ml/output/failure and no model artifact.
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
import traceback

from titanic_model import contract
from titanic_model.checkpoints import TrainingInterrupted
from titanic_model.cluster import ClusterError
from titanic_model.data import DataError
from titanic_model.evaluate import evaluate, write
from titanic_model.hyperparameters import SPECS, HyperparameterError
from titanic_model.prepare import CHECKSUMS, SOURCE, write_split
from titanic_model.rescore import rescore
from titanic_model.training import run_training

log = logging.getLogger("titanic_model")
COMMAND = "train"
RESCORE = "rescore"
EVALUATE = "evaluate"
PREPARE = "prepare"


class UsageError(ValueError):
    """The container was started with arguments SageMaker never sends."""


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> None:  # type: ignore[override]
        raise UsageError(f"{message}; SageMaker runs this image as '<image> {COMMAND}'")


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(
        prog="entrypoint.py",
        description="Train the Titanic survival model under SageMaker's /opt/ml contract. "
        "Hyperparameters come from /opt/ml/input/config/hyperparameters.json; flags override them for local runs.",
    )
    parser.add_argument("command", nargs="?", help=f"must be '{COMMAND}' (what SageMaker passes)")
    for name, spec in SPECS.items():
        parser.add_argument(f"--{name}", dest=name, metavar=spec.kind.__name__.upper(), help=spec.help)
    return parser


def parse_args(argv: list[str]) -> dict[str, str]:
    args = build_parser().parse_args(argv)
    if args.command != COMMAND:
        got = "no command" if args.command is None else f"the command {args.command!r}"
        raise UsageError(
            f"got {got}; this image knows '{COMMAND}', 'serve', '{PREPARE}', '{EVALUATE}' and '{RESCORE}' "
            f"(SageMaker runs it as '<image> {COMMAND}' or '<image> serve')"
        )
    return {name: value for name, value in vars(args).items() if name != "command" and value is not None}


def run_rescore(paths: contract.Paths) -> int:
    try:
        metrics = rescore(paths)
    except (DataError, OSError) as exc:
        log.error("rescore failed: %s", exc)
        return 1
    sys.stdout.write(json.dumps(metrics, sort_keys=True) + "\n")
    return 0


def run_evaluate(paths: contract.ProcessingPaths) -> int:
    """The processing job's command: evaluation.json, or a reason in the job's ExitMessage."""
    try:
        log.info("wrote %s", write(paths, evaluate(paths)))
    except (DataError, OSError) as exc:
        contract.write_exit_message(paths, str(exc))
        log.error("evaluate failed: %s", exc)
        return 1
    return 0


def run_prepare(paths: contract.ProcessingPaths, argv: list[str]) -> int:
    """The pipeline's Prepare job: make data's split of the raw input, or a reason in ExitMessage."""
    parser = _Parser(prog=f"entrypoint.py {PREPARE}")
    parser.add_argument("--validation-fraction", type=float, required=True)
    parser.add_argument("--seed", type=int, required=True)
    try:
        args = parser.parse_args(argv)
        manifest = write_split(
            paths.raw_dir / SOURCE, paths.raw_dir / CHECKSUMS, paths.split_dir, args.validation_fraction, args.seed
        )
    except (UsageError, DataError, OSError) as exc:
        contract.write_exit_message(paths, str(exc))
        log.error("prepare failed: %s", exc)
        return 1
    for channel, facts in manifest["channels"].items():
        log.info("%s: %d rows, sha256 %s", channel, facts["rows"], facts["sha256"])
    return 0


def main(argv: list[str] | None = None) -> int:
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s", stream=sys.stderr)
    paths = contract.Paths.from_env()
    args = sys.argv[1:] if argv is None else argv
    if args == [RESCORE]:
        return run_rescore(paths)
    if args == [EVALUATE]:
        return run_evaluate(contract.ProcessingPaths.from_env())
    if args[:1] == [PREPARE]:
        return run_prepare(contract.ProcessingPaths.from_env(), args[1:])
    reason = None
    try:
        overrides = parse_args(args)
        run_training(paths, overrides)
    except TrainingInterrupted as exc:
        # SageMaker stops (or a spot reclaim interrupts) with SIGTERM: the checkpoint is the
        # result, and no model file may look finished. 143 is 128 + SIGTERM, as a shell says.
        contract.remove_model_artifacts(paths)
        log.warning("%s", exc)
        return 143
    except (UsageError, DataError, HyperparameterError, ClusterError) as exc:
        reason = str(exc)
    except MemoryError:
        reason = "out of memory while training; choose an instance type with more memory (INSTANCE_TYPE in config.env)"
    except Exception as exc:  # noqa: BLE001 - any failure must still reach the failure file
        log.error("unexpected error:\n%s", traceback.format_exc())
        reason = f"unexpected {type(exc).__name__}: {exc} (a bug: the traceback is in the job log)"
    if reason is None:
        log.info("training finished")
        return 0
    contract.remove_model_artifacts(paths)
    contract.write_failure(paths, reason)
    log.error("training failed: %s", reason)
    return 1
