"""Why a run ended early, said as one line and in checkpoint.json, so a resume can follow.

RunStopped is the world failing (exit 3), RunInterrupted is Ctrl-C; `record_stop`
writes either, or a bug's message, where a reader of the run directory finds it.
"""

from __future__ import annotations

import asyncio
import errno
import time
from pathlib import Path

from societas.errors import BadInput
from societas.runners.rundir import RunDirectory


class RunStopped(RuntimeError):
    """The world failed while a run was under way (an endpoint down, a disk full, a lost cluster).

    What finished is on disk, nothing of the failed episodes is; `societas resume
    run_dir` finishes the run once the cause is gone. The message is one line.
    """

    def __init__(self, run_dir: Path, reason: str) -> None:
        super().__init__(f"{reason}; the finished episodes are kept: once that is fixed, "
                         f"`societas resume {run_dir}`")
        self.run_dir = run_dir
        self.reason = reason


class RunInterrupted(RuntimeError):
    """Ctrl-C: the finished episodes are kept and the run can be resumed."""

    def __init__(self, run_dir: Path) -> None:
        super().__init__(f"interrupted; finish the run with `societas resume {run_dir}`")
        self.run_dir = run_dir


# Write failures that are the machine's state, not a mistake in the command: the run can resume.
_WORLD_ERRNOS = {errno.ENOSPC, errno.EDQUOT, errno.EIO, errno.EROFS}


def world_write_error(exc: OSError) -> bool:
    return exc.errno in _WORLD_ERRNOS


def record_stop(rd: RunDirectory, exc: BaseException) -> None:
    """Say in checkpoint.json why the run ended early, so a reader of the directory alone sees the error.

    `status` becomes stopped (the world failed: RunStopped, exit 3), interrupted
    (Ctrl-C) or failed (anything else: bad input found mid-run, or a bug), and
    `error` the one-line reason; a resume sets it back to running. Best
    effort: on a full or read-only disk the write fails and the one-line
    error on stderr is all there is.
    """
    if isinstance(exc, RunStopped):
        status, error = "stopped", exc.reason
    elif isinstance(exc, (KeyboardInterrupt, asyncio.CancelledError, RunInterrupted)):
        status, error = "interrupted", "interrupted"
    else:
        status, error = "failed", f"{type(exc).__name__}: {exc}"
    try:
        previous = rd.read_json("checkpoint.json") or {}
    except BadInput:  # a damaged checkpoint is replaced
        previous = {}
    previous.pop("error", None)
    payload = {"run_id": rd.run_id, "episodes_done": 0, "parts": 0, **previous, "status": status,
               "error": " ".join(error.split()), "updated": time.time()}
    try:
        rd.write_json("checkpoint.json", payload)
    except OSError:
        pass
