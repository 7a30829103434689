"""The `validate` stage: every broken rule in the settings prints one line that names the
variable and the fix, before any AWS call is made. `--print` shows the effective settings.

The rules themselves live in launcher/lib/config.py, which every command loads.
"""

from __future__ import annotations

import argparse
import logging
import os
import re
import sys
from pathlib import Path

from launcher.lib import errors
from launcher.lib.config import SettingsError, check_config_file, load

log = logging.getLogger("settings")


def config_keys(path: Path) -> list[str]:
    return [m.group(1) for line in path.read_text(encoding="utf-8").splitlines() if (m := _KEY_RE.match(line))]


_KEY_RE = re.compile(r"^([A-Za-z_][A-Za-z0-9_]*)=")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--config", type=Path, default=Path("config.env"), help="the settings file make read")
    parser.add_argument("--print", action="store_true", help="print the effective settings instead of checking them")
    args = parser.parse_args(argv)
    return errors.run("validate", lambda: _validate(args))


def _validate(args: argparse.Namespace) -> int:
    if args.print:
        # Values come from the environment make exported; they are printed, never evaluated.
        for key in config_keys(args.config):
            sys.stdout.write(f"{key}={os.environ.get(key, '')}\n")
        return 0
    problems = check_config_file(args.config)
    try:
        settings = load()
    except SettingsError as exc:
        problems.extend(str(exc).splitlines())
    if problems:
        raise SettingsError("\n".join(problems))
    log.info(
        "config OK: TARGET=%s region=%s bucket=%s instance=%s",
        settings.target,
        settings.region,
        settings.bucket,
        settings.instance_type,
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
