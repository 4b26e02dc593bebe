"""The transcript browser: which decisions a filter keeps, a page of them, as the report's transcript HTML.

A filter (agent, phase, episode, round, invalid only) first picks decision
keys from a few columns of the events (and, for invalid only, the model calls
that carry a parse error), read with Parquet filters; only the page's
episodes are then read whole through `societas.analysis.transcript`. So a
page of a run of a million decisions reads a few columns of it, not its
prompts and replies.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pandas as pd
import pyarrow.compute as pc
import pyarrow.parquet as pq

from societas.analysis.transcript import KEY, transcript
from societas.analysis.transcript_html import transcript_html

PAGE_DECISIONS = 25
"""Decisions per page (a decision's retries and its prediction question come with it)."""


@dataclass(frozen=True, slots=True)
class Filter:
    """What the transcript browser shows: None for any."""

    agent: str | None = None
    phase: int | None = None
    episode: int | None = None
    round: int | None = None
    invalid: bool = False

    def filters(self) -> list[tuple[str, str, Any]]:
        return [(name, "=", value) for name, value in (("agent", self.agent), ("phase", self.phase),
                                                      ("episode", self.episode), ("round", self.round))
                if value is not None]

    def query(self, **changes: Any) -> dict[str, Any]:
        """The filter as URL query parameters (with `changes`), for links that keep it."""
        values = {"agent": self.agent, "phase": self.phase, "episode": self.episode, "round": self.round,
                  "invalid": 1 if self.invalid else None, **changes}
        return {k: v for k, v in values.items() if v is not None and v != ""}


@dataclass(slots=True)
class Page:
    """One page of decisions that a filter keeps."""

    total: int
    """Decisions the filter keeps."""
    number: int
    pages: int
    first: int
    last: int
    html: str
    episodes: list[tuple[int, int]] = field(default_factory=list)


def _parts(folder: Path) -> list[Path]:
    return sorted(folder.glob("part-*.parquet"))


def choices(run_dir: Path) -> dict[str, list[Any]]:
    """The agents and phases a filter can pick from (a run's agents read from one column)."""
    parts = _parts(run_dir / "events")
    if not parts:
        return {"agents": [], "phases": []}
    t = pq.read_table(parts, columns=["agent", "phase"])
    agents = sorted(str(a) for a in pc.unique(t.column("agent")).to_pylist() if a is not None)
    phases = sorted(int(p) for p in pc.unique(t.column("phase")).to_pylist() if p is not None)
    return {"agents": agents, "phases": phases}


def matching(run_dir: Path, flt: Filter) -> pd.DataFrame:
    """The (phase, episode, round, seat) of every decision the filter keeps, in play order."""
    parts = _parts(run_dir / "events")
    if not parts:
        return pd.DataFrame({c: pd.Series(dtype="int64") for c in KEY})
    filters = flt.filters() or None
    columns = [*KEY, "valid", "prediction_valid"]
    keys = pq.read_table(parts, columns=columns, filters=filters).to_pandas()
    if flt.invalid:
        fell = ~keys["valid"].astype(bool) | keys["prediction_valid"].eq(False).fillna(False).astype(bool)
        bad = keys.loc[fell, KEY]
        call_parts = _parts(run_dir / "llm_calls")
        if call_parts:
            expr = pc.field("error").is_valid()
            for name, _, value in flt.filters():
                expr = expr & (pc.field(name) == value)
            errors = pq.read_table(call_parts, columns=KEY, filters=expr).to_pandas()
            bad = pd.concat([bad, errors], ignore_index=True)
        keys = bad.drop_duplicates()
    return keys[KEY].sort_values(KEY, kind="stable").reset_index(drop=True)


def page(run_dir: Path, flt: Filter, number: int = 1, per_page: int = PAGE_DECISIONS) -> Page:
    """The `number`-th page (from 1) of the decisions the filter keeps, as transcript HTML."""
    keys = matching(run_dir, flt)
    total = len(keys)
    pages = max(1, -(-total // per_page))
    number = min(max(1, number), pages)
    chosen = keys.iloc[(number - 1) * per_page: number * per_page]
    if chosen.empty:
        return Page(total=total, number=number, pages=pages, first=0, last=0,
                    html='<p class="note">No decisions match this filter.</p>')
    episodes = sorted({(int(p), int(e)) for p, e in zip(chosen["phase"], chosen["episode"])})
    phases = sorted({p for p, _ in episodes})
    frame = transcript(run_dir, episode=sorted({e for _, e in episodes}),
                       phase=phases[0] if len(phases) == 1 else None, agent=flt.agent, round=flt.round)
    frame = frame.merge(chosen.astype({c: frame[c].dtype for c in KEY}) if not frame.empty else chosen,
                        on=KEY, how="inner")
    first = (number - 1) * per_page + 1
    return Page(total=total, number=number, pages=pages, first=first, last=first + len(chosen) - 1,
                html=transcript_html(frame), episodes=episodes)
