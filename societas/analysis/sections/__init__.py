"""The result sections of a run, one module per study, shared by `societas analyze` and the report.

A section turns a loaded run into `Table`s: a DataFrame, the columns shown
with their labels and formats, notes, and the `Standing` of the agents the
table covers (the share of their decisions that were invalid fallbacks, with
"not interpretable" in words above `validity.FALLBACK_LIMIT`). The command
line prints the tables; the report renders the same tables and adds the
section's plots. So both show the same numbers under the same names and
intervals.

A study adds its section with `register(Section(...))`: `applies` says
whether a run is one of its runs (checked in registration order, the first
match wins), `build` returns its tables, `figures` the report's figures of
them (drawn from the view's `data`), and `columns` names the events
columns that `build` and those figures read. The report and
`societas analyze` read only those (and the ones they read themselves) from
the Parquet parts: on a run of a million decisions most columns, the
strings above all, are never decoded. `applies` is asked before that read,
on a run whose events hold one row per distinct `env` value (`APPLIES_COLUMNS`).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import pandas as pd

from societas.analysis.load import Run
from societas.analysis.validity import Standing, standing

Format = str
"""How a column is written: int, pct, pct1, num0, num1, num2, num3, g2, text."""


def fmt(kind: Format, x: Any) -> str:
    """One cell as the command line and the report both write it ("–" for a missing value)."""
    if kind == "text":
        return "–" if x is None or (isinstance(x, float) and x != x) else str(x)
    if x is None or pd.isna(x):
        return "–"
    if kind == "int":
        return f"{int(x):,}"
    if kind == "pct":
        return f"{x:.0%}"
    if kind == "pct1":
        return f"{x:.1%}"
    if kind == "g2":
        return f"{x:.2g}"
    if kind.startswith("num"):
        digits = int(kind[3:])
        return f"{round(float(x), digits) + 0.0:,.{digits}f}"  # no "-0.00"
    raise ValueError(f"unknown cell format {kind!r}")


@dataclass(slots=True)
class Table:
    """One table of a section: the frame, the columns shown (label, format), and what it stands on."""

    key: str
    title: str
    frame: pd.DataFrame
    columns: dict[str, tuple[str, Format]]
    """Column -> (label, format), in the order shown."""
    notes: str = ""
    standing: Standing | None = None

    def cells(self) -> list[list[str]]:
        """The shown rows as strings, in column order."""
        cols = list(self.columns)
        return [[fmt(self.columns[c][1], v) for c, v in zip(cols, row, strict=True)]
                for row in self.frame[cols].itertuples(index=False)]

    def labels(self) -> list[str]:
        return [label for label, _ in self.columns.values()]

    def caveats(self) -> list[str]:
        return [] if self.standing is None else self.standing.warnings()


@dataclass(slots=True)
class SectionView:
    """A built section: its tables and the standing of every agent it covers."""

    key: str
    title: str
    tables: list[Table]
    standing: Standing
    intro: str = ""
    data: dict[str, Any] = field(default_factory=dict)
    """Frames the report's figures reuse (so they plot what the tables show)."""


APPLIES_COLUMNS = ("env",)
"""The events columns a section's `applies` may look at (one row per distinct value)."""


@dataclass(frozen=True, slots=True)
class Section:
    key: str
    title: str
    applies: Callable[[Run], bool]
    build: Callable[[Run], SectionView]
    columns: tuple[str, ...] | None = None
    """The events columns `build` and the report's figures of this section read; None: every column."""
    figures: Callable[[Run, SectionView], str] | None = None
    """The report's figures of a built view, as HTML after its tables (`report_html.figure`); None: tables only."""


_SECTIONS: list[Section] = []


def register(section: Section) -> Section:
    """Add a study's section (a later one with the same key replaces the earlier)."""
    _SECTIONS[:] = [s for s in _SECTIONS if s.key != section.key]
    _SECTIONS.append(section)
    return section


def sections() -> list[Section]:
    _load_builtin()
    return list(_SECTIONS)


def section_for(run: Run) -> Section | None:
    """The first registered section whose study the run belongs to."""
    if run.events.empty:
        return None
    return next((s for s in sections() if s.applies(run)), None)


def with_verdicts(frame: pd.DataFrame, st: Standing, column: str = "agent") -> pd.DataFrame:
    """The frame with a 'standing' column: "not interpretable (N% fallbacks)" on the rows above the limit."""
    return frame.assign(standing=[st.verdict(str(w)) for w in frame[column]])


def agent_standing(run: Run, agents: Any = None) -> Standing:
    return standing(run.events, agents)


def has_env(*env_ids: str) -> Callable[[Run], bool]:
    return lambda run: bool(run.events["env"].isin(env_ids).any())


_loaded: list[bool] = []


def _load_builtin() -> None:
    """Import the built-in sections once; they register themselves, in this order (matrix last: the fallback)."""
    if _loaded:
        return
    _loaded.append(True)
    from societas.analysis.sections import tom, donor, lockin, partner, commons, naming, matrix  # noqa: F401, I001
