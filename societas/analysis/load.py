"""Load run directories into pandas.

Events come back sorted by (phase, episode, round, seat), whatever order the
episodes finished in, so two runs of the same config compare row by row.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pandas as pd
import pyarrow.parquet as pq
import yaml

EVENT_ORDER = ["phase", "episode", "round", "seat"]
# Columns that name the run or depend on timing and on what the response cache
# held; two runs of the same config and seed agree on every other column.
RUN_SPECIFIC_COLUMNS = ("run_id", "latency_s", "cache_hit")
CALL_ORDER = ["phase", "episode", "round", "seat", "purpose", "attempt"]


@dataclass(slots=True)
class Run:
    """One run directory's tables and metadata."""

    path: Path
    events: pd.DataFrame
    llm_calls: pd.DataFrame
    episodes: pd.DataFrame
    lineage: pd.DataFrame
    config: dict[str, Any] = field(default_factory=dict)
    summary: dict[str, Any] | None = None

    @property
    def run_id(self) -> str:
        return self.path.name


def _read_parts(folder: Path, order: list[str]) -> pd.DataFrame:
    parts = sorted(folder.glob("*.parquet"))
    if not parts:
        return pd.DataFrame()
    df = pq.read_table(parts).to_pandas() if len(parts) > 1 else pq.read_table(parts[0]).to_pandas()
    return df.sort_values(order, kind="stable").reset_index(drop=True)


def load_run(path: str | Path) -> Run:
    """Read a run directory: events, llm_calls, episodes, lineage, resolved config and summary.

    `episodes` has one row per seat per episode (total reward, the environment's
    summary as JSON); `lineage` one row per member per generation of an
    evolving society (empty otherwise); `summary` is None until the run completes.
    """
    p = Path(path)
    if not (p / "config.yaml").is_file():
        raise FileNotFoundError(f"{p}: not a run directory (no config.yaml)")
    summary_file = p / "summary.json"
    return Run(
        path=p,
        events=_read_parts(p / "events", EVENT_ORDER),
        llm_calls=_read_parts(p / "llm_calls", CALL_ORDER),
        episodes=_read_parts(p / "episodes", ["phase", "episode", "seat"]),
        lineage=_read_parts(p / "lineage", ["phase", "society", "seat"]),
        config=yaml.safe_load((p / "config.yaml").read_text()) or {},
        summary=json.loads(summary_file.read_text()) if summary_file.is_file() else None,
    )


def load_runs(paths: list[str | Path]) -> pd.DataFrame:
    """Events of several runs in one frame (the `run_id` column tells them apart)."""
    frames = [load_run(p).events for p in paths]
    return pd.concat(frames, ignore_index=True) if frames else pd.DataFrame()


def comparable(events: pd.DataFrame) -> pd.DataFrame:
    """Events without the run-specific columns, to compare two runs of one config row by row."""
    return events.drop(columns=[c for c in RUN_SPECIFIC_COLUMNS if c in events]).reset_index(drop=True)
