"""Load run directories into pandas.

Events come back sorted by (phase, episode, round, seat), whatever order the
episodes finished in, so two runs of the same config compare row by row.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq
import yaml

from societas.errors import CorruptRun, MissingColumns
from societas.yaml_read import safe_load

EVENT_ORDER = ["phase", "episode", "round", "seat"]
# Columns that name the run or depend on timing and on what the response cache
# held; two runs of the same config and seed agree on every other column.
RUN_SPECIFIC_COLUMNS = ("run_id", "latency_s", "cache_hit", "cached_tokens")
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


def read_table(parts: list[Path], columns: list[str] | None = None) -> pa.Table:
    """Parquet parts as one table; a damaged part is a CorruptRun that names it."""
    try:
        return pq.read_table(parts if len(parts) > 1 else parts[0], columns=columns)
    except (pa.ArrowInvalid, OSError) as exc:
        for part in parts:  # which one
            try:
                pq.ParquetFile(part).schema_arrow  # noqa: B018 - reads the footer
            except (pa.ArrowInvalid, OSError) as bad:
                raise CorruptRun(part, bad) from None
        raise CorruptRun(parts[0].parent, exc) from None


def _sorted(table: pa.Table, order: list[str]) -> pd.DataFrame:
    """The table as a frame sorted by `order` (stable), the rows put in order before pandas sees them.

    Integer keys without nulls (the events' phase, episode, round and seat)
    are sorted by numpy and the rows taken in Arrow: on a million events that
    is a third of the time of pandas' sort, which takes every column again.
    Other keys go through pandas' own stable sort; both give the same frame.
    """
    keys = [table.column(c) for c in order]
    if all(pa.types.is_integer(k.type) and k.null_count == 0 for k in keys):
        rows = np.lexsort([k.to_numpy() for k in reversed(keys)])
        return table.take(rows).to_pandas().reset_index(drop=True)
    return table.to_pandas().sort_values(order, kind="stable").reset_index(drop=True)


def _schema(part: Path) -> pa.Schema:
    try:
        return pq.read_schema(part)
    except (pa.ArrowInvalid, OSError) as exc:
        raise CorruptRun(part, exc) from None


def table_columns(folder: Path) -> list[str] | None:
    """The columns of a run's table (its first part's schema), None when no part is on disk yet."""
    parts = sorted(Path(folder).glob("*.parquet"))
    return _schema(parts[0]).names if parts else None


def projection(folder: Path, columns: Sequence[str], who: str = "the reader",
               optional: Sequence[str] = ()) -> list[str] | None:
    """`columns` and those of `optional` the table has, in its own order; None when no part is on disk.

    A column of `columns` the table lacks is a MissingColumns naming it and
    `who` asked for it, rather than an Arrow error about a field reference deep
    in a read. `optional` ones are what readers check for (columns added after
    some runs were recorded).
    """
    names = table_columns(folder)
    if names is None:
        return None
    missing = [c for c in dict.fromkeys(columns) if c not in names and c not in optional]
    if missing:
        raise MissingColumns(folder, missing, who)
    wanted = {*columns, *optional}
    return [n for n in names if n in wanted]


def distinct_values(folder: Path, column: str) -> list[Any]:
    """The distinct values of one column of a run's table (reads that column alone), in first-seen order."""
    parts = sorted(Path(folder).glob("*.parquet"))
    if not parts:
        return []
    projection(folder, [column])
    return pc.unique(read_table(parts, columns=[column]).column(column)).to_pylist()


def _read_parts(folder: Path, order: list[str], columns: Sequence[str] | None = None,
                who: str = "the reader", optional: Sequence[str] = ()) -> pd.DataFrame:
    parts = sorted(folder.glob("*.parquet"))
    if not parts:
        return pd.DataFrame()
    if columns is not None:
        columns = projection(folder, [*order, *columns], who, optional)
    return _sorted(read_table(parts, columns=columns), order)


def _read_yaml(path: Path) -> dict[str, Any]:
    try:
        data = safe_load(path.read_text()) or {}
    except (yaml.YAMLError, UnicodeDecodeError) as exc:
        raise CorruptRun(path, exc) from None
    if not isinstance(data, dict):
        raise CorruptRun(path, "not a mapping")
    return data


def _read_json(path: Path) -> dict[str, Any] | None:
    if not path.is_file():
        return None
    try:
        data = json.loads(path.read_text())
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise CorruptRun(path, exc) from None
    if not isinstance(data, dict):
        raise CorruptRun(path, "not a JSON object")
    return data


def load_run(path: str | Path, *, columns: Sequence[str] | None = None, call_columns: Sequence[str] | None = None,
             optional: Sequence[str] = (), who: str = "the reader") -> Run:
    """Read a run directory: events, llm_calls, episodes, lineage, resolved config and summary.

    `episodes` has one row per seat per episode (total reward, the environment's
    summary as JSON); `lineage` one row per member per generation of an
    evolving society (empty otherwise); `summary` is None until the run completes.
    `columns` reads only those events columns and `call_columns` only those
    llm_calls columns (the sort keys always come, the rest in the table's
    order; Parquet reads just those column chunks): a report reads a few of a
    million decisions' columns, and without transcripts it needs no prompts,
    the bulk of a big run. A column the run lacks is a MissingColumns naming
    it and `who` (e.g. "section 'agents'"), unless `optional` names it: those
    are read where the table has them.
    """
    p = Path(path)
    if not (p / "config.yaml").is_file():
        raise FileNotFoundError(f"{p}: not a run directory (no config.yaml)")
    return Run(
        path=p,
        events=_read_parts(p / "events", EVENT_ORDER, columns, who, optional),
        llm_calls=_read_parts(p / "llm_calls", CALL_ORDER, call_columns, who, optional),
        episodes=_read_parts(p / "episodes", ["phase", "episode", "seat"]),
        lineage=_read_parts(p / "lineage", ["phase", "society", "seat"]),
        config=_read_yaml(p / "config.yaml"),
        summary=_read_json(p / "summary.json"),
    )


def load_runs(paths: list[str | Path]) -> pd.DataFrame:
    """Events of several runs in one frame (the `run_id` column tells them apart)."""
    frames = [load_run(p).events for p in paths]
    return pd.concat(frames, ignore_index=True) if frames else pd.DataFrame()


# Totals a sweep's index copies from each run's summary.json.
SWEEP_FIGURES = ("episodes", "decisions", "llm_calls", "invalid_actions", "wall_s")


def load_sweep(path: str | Path) -> pd.DataFrame:
    """A sweep's index: one row per run, in the order the sweep lists them.

    Columns: `name` (the run's `run_id` in its events), `run_dir` (absolute),
    `model`, `seed`, one column per grid path (e.g. `environment.params.rounds`),
    `status` (pending, running, complete, failed, interrupted), the run's totals
    (`episodes`, `decisions`, `llm_calls`, `invalid_actions`, `wall_s`) and
    `error`. A run whose summary.json exists is complete with its totals, even
    if the process that kept the index stopped before writing so.
    """
    p = Path(path)
    if not (p / "index.parquet").is_file():
        raise FileNotFoundError(f"{p}: not a sweep directory (no index.parquet)")
    index = read_table([p / "index.parquet"]).to_pandas()
    index["run_dir"] = [str(p / d) for d in index["run_dir"]]
    for i, run_dir in enumerate(index["run_dir"]):
        summary = _read_json(Path(run_dir) / "summary.json")
        if summary is not None:
            index.loc[i, "status"] = "complete"
            index.loc[i, "error"] = None
            for key in SWEEP_FIGURES:
                index.loc[i, key] = summary[key]
    return index


def sweep_grid(path: str | Path) -> list[str]:
    """The dotted paths a sweep varies (its grid columns), from its sweep.yaml."""
    config = _read_yaml(Path(path) / "sweep.yaml")
    return list((config.get("sweep") or {}).get("grid") or {})


def load_sweep_events(path: str | Path, columns: list[str] | None = None) -> pd.DataFrame:
    """Events of every run of a sweep in one frame, each row with what its run's sweep point was.

    Added columns: `seed`, `run_model` (the run's model; `model` already names
    the model behind each decision, None for scripted agents) and one per grid
    path, so `groupby(["environment.params.rounds", "seed"])` works directly.
    `columns` picks the event columns to read (`run_id` and the sort keys
    always come), which keeps a large sweep small in memory. Rows are in the
    index's run order, then sorted by (phase, episode, round, seat).
    """
    index = load_sweep(path)
    grid = sweep_grid(path)
    wanted = None if columns is None else list(dict.fromkeys(["run_id", *EVENT_ORDER, *columns]))
    frames = []
    for run_dir in index["run_dir"]:
        parts = sorted((Path(run_dir) / "events").glob("*.parquet"))
        if parts:
            frame = read_table(parts, columns=wanted).to_pandas()
            frames.append(frame.sort_values(EVENT_ORDER, kind="stable"))
    points = index[["name", "seed", "model", *grid]].rename(columns={"name": "run_id", "model": "run_model"})
    if not frames:
        return pd.DataFrame(columns=[*(wanted or ["run_id"]), *points.columns[1:]])
    events = pd.concat(frames, ignore_index=True)
    return events.merge(points, on="run_id", how="left", validate="many_to_one")


def comparable(events: pd.DataFrame) -> pd.DataFrame:
    """Events without the run-specific columns, to compare two runs of one config row by row."""
    return events.drop(columns=[c for c in RUN_SPECIFIC_COLUMNS if c in events]).reset_index(drop=True)
