"""Errors a user acts on, shared by every layer; this module imports nothing of societas.

The command line maps them onto exit codes (README, "Exit codes"): 2 for bad
input (these), 3 for the world failing while a run is under way, 1 only for a
bug in societas.
"""

from __future__ import annotations


class BadInput(Exception):
    """Something the user gave cannot be used: a path, an argument, an installation. Exit code 2."""


class MissingExtra(BadInput, ImportError):
    """An optional dependency is not installed; the message names the extra and the install command."""

    def __init__(self, what: str, extra: str) -> None:
        super().__init__(f"{what} needs the [{extra}] extra: pip install 'societas[{extra}]'")
        self.extra = extra


class CorruptRun(BadInput):
    """A run directory holds a file that cannot be read; the message names the file."""

    def __init__(self, path: object, reason: str) -> None:
        text = " ".join(str(reason).split())
        super().__init__(f"{path}: cannot be read ({text[:200]})")
        self.path = path


class MissingColumns(CorruptRun):
    """A run's table lacks columns a reader asked for (a run recorded before they existed, or a reader's bug)."""

    def __init__(self, path: object, columns: list[str], who: str) -> None:
        names = ", ".join(repr(c) for c in columns)
        word = "column" if len(columns) == 1 else "columns"
        BadInput.__init__(self, f"{path}: no {word} {names}, which {who} reads")
        self.path = path
        self.columns = columns
