"""The one-time set-up as a CloudFormation stack (iam/stack.json, launcher/lib/stack.py).

  render --out DIR   write DIR/toolkit.json (the deployable template, with the documents of
                     iam/ in place) and DIR/parameters.json (its parameters, from config.env)

`make lint` renders it and runs cfn-lint over it.
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
from pathlib import Path

from launcher.lib import errors, stack
from launcher.lib.config import load
from launcher.lib.records import write_files

log = logging.getLogger("stack")


def render(out: Path) -> list[Path]:
    settings = load()
    files = {
        "toolkit.json": stack.template(settings),
        "parameters.json": stack.parameters(settings, create_bucket=settings.create_bucket, create_repository=True),
    }
    write_files(out, {name: (json.dumps(body, indent=2) + "\n").encode() for name, body in files.items()})
    return [out / name for name in files]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("command", choices=("render",))
    parser.add_argument("--out", type=Path, required=True, help="where the rendered template goes")
    args = parser.parse_args(argv)
    return errors.run("stack", lambda: _command(args))


def _command(args: argparse.Namespace) -> int:
    for path in render(args.out):
        log.info("wrote %s", path)
    return 0


if __name__ == "__main__":
    sys.exit(main())
