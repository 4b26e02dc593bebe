"""Is a process playing this run? Answered without touching the run's lock.

A run holds an exclusive `flock` on `RUN_DIR/.lock` while a process plays it.
Taking that lock, even briefly and shared, could make a `societas run` or
`resume` starting at that instant refuse ("another process is playing this
run"), so the viewer never does: on Linux it reads the kernel's table of held
locks, /proc/locks, and looks for the lock file's inode there. Elsewhere the
checkpoint's word is taken.
"""

from __future__ import annotations

import os
from pathlib import Path

PROC_LOCKS = Path("/proc/locks")


def held_inodes() -> set[int] | None:
    """Inodes of files with a FLOCK held now; None where the kernel does not say (not Linux)."""
    try:
        text = PROC_LOCKS.read_text()
    except OSError:
        return None
    inodes: set[int] = set()
    for line in text.splitlines():
        fields = line.split()
        # "1: FLOCK  ADVISORY  WRITE 14672 fe:00:2164064 0 EOF"; blocked waiters are marked "->"
        if len(fields) >= 6 and "FLOCK" in fields[1:3]:
            where = next((f for f in fields if f.count(":") == 2), None)
            if where is not None:
                try:
                    inodes.add(int(where.rsplit(":", 1)[1]))
                except ValueError:
                    continue
    return inodes


def is_playing(run_dir: Path, held: set[int] | None) -> bool | None:
    """True when a process holds the run's lock, False when none does, None when that cannot be known."""
    if held is None:
        return None
    try:
        inode = os.stat(run_dir / ".lock").st_ino
    except OSError:
        return False  # never played by this version, or the lock file is gone
    return inode in held
