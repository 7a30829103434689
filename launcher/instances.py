"""`make instance-report`: the cheapest training and transform instance types this account
can use, written to reports/instance-report.{md,json} (launcher/lib/instance_choice.py).
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
from pathlib import Path

import boto3

from launcher.lib import errors
from launcher.lib.config import load
from launcher.lib.instance_choice import aws_clients, make_report, no_choice_message, render_markdown

log = logging.getLogger("instance-report")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, required=True, help="folder for instance-report.md and .json")
    parser.add_argument("--min-memory-gib", type=float, default=4.0)
    args = parser.parse_args(argv)
    return errors.run("instance-report", lambda: _report(args))


def _report(args: argparse.Namespace) -> int:
    settings = load()
    clients = (None, None) if settings.local else aws_clients(settings, boto3.Session(region_name=settings.region))
    report = make_report(settings, *clients, args.min_memory_gib)
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "instance-report.json").write_text(json.dumps(report, indent=2) + "\n", encoding="utf-8")
    markdown = render_markdown(report)
    (args.out / "instance-report.md").write_text(markdown, encoding="utf-8")
    print(markdown, flush=True)
    if report["choice"] is None:
        log.error("ERROR: %s", no_choice_message(report))
        return 1
    if report["choice"] != settings.instance_type:
        log.info("INSTANCE_TYPE is %s; the report's choice is %s", settings.instance_type, report["choice"])
    return 0


if __name__ == "__main__":
    sys.exit(main())
