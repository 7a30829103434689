"""Run one stateful stage under the checkout's lock: `python -m launcher.lock -- CMD ARGS...`.

Two runs in one checkout (a cron job overlapping a manual run) take turns instead of
interleaving uploads, pushes, records and clean-ups. The lock is an flock on a file, held by
the stage's own process (this one execs it), so it goes away with that process whatever
kills it: there is never a stale lock to clear by hand.
"""

from __future__ import annotations

import fcntl
import logging
import os
import sys
import time
from datetime import UTC, datetime
from pathlib import Path

from launcher.lib import errors
from launcher.lib.config import LOCK_WAIT_RANGE
from launcher.lib.errors import ToolkitError

log = logging.getLogger("lock")
DEFAULT_LOCK_FILE = "build/toolkit.lock"


class LockBusyError(ToolkitError):
    """Another run holds the lock for longer than LOCK_WAIT allows."""


def acquire(path: Path, wait_seconds: int, poll: float = 0.5) -> int:
    """An open descriptor holding the exclusive lock; LockBusyError after wait_seconds."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
    deadline = time.monotonic() + wait_seconds
    announced = False
    while True:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            break
        except BlockingIOError:
            holder = os.pread(fd, 4096, 0).decode("utf-8", "replace").strip() or "unknown"
            if time.monotonic() >= deadline:
                os.close(fd)
                raise LockBusyError(
                    f"another toolkit run holds {path} ({holder}); waited {wait_seconds}s (LOCK_WAIT). "
                    "Let it finish, or set LOCK_WAIT=900 to queue behind it"
                ) from None
            if not announced:
                log.info("waiting up to %ss for another run to release %s (%s)", wait_seconds, path, holder)
                announced = True
            time.sleep(poll)
    stamp = datetime.now(UTC).isoformat(timespec="seconds")
    what = os.environ.get("MAKE_INVOCATION") or "make"
    os.ftruncate(fd, 0)
    os.pwrite(fd, f"pid {os.getpid()}: make {what}, since {stamp}\n".encode(), 0)
    return fd


def main(argv: list[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else argv
    if args[:1] == ["--"]:
        args = args[1:]
    return errors.run("lock", lambda: _run_locked(args))


def _run_locked(args: list[str]) -> int:
    if not args:
        log.error("ERROR: usage: python -m launcher.lock -- COMMAND [ARGS...]")
        return 2
    raw_wait = os.environ.get("LOCK_WAIT", "0")
    if raw_wait.isdigit() and int(raw_wait) <= LOCK_WAIT_RANGE[1]:  # validated by make; else the settings' check
        wait = int(raw_wait)
    else:
        from launcher.lib.config import lock_wait

        wait = lock_wait({"LOCK_WAIT": raw_wait})
    fd = acquire(Path(os.environ.get("LOCK_FILE", DEFAULT_LOCK_FILE)), wait)
    os.set_inheritable(fd, True)
    # exec: the stage becomes this process and keeps the descriptor, so the lock lives
    # exactly as long as the stage does, and signals reach the stage directly.
    os.execvp(args[0], args)
    return 1  # not reached


if __name__ == "__main__":
    sys.exit(main())
