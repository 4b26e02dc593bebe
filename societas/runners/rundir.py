"""The run directory: resolved config, Parquet parts, checkpoint and summary.

Layout of `runs/<name>-<timestamp>/`:

    config.yaml            the resolved config (with the societas version)
    events/part-NNNNN.parquet      one row per decision
    llm_calls/part-NNNNN.parquet   one row per model request
    episodes/part-NNNNN.parquet    one row per seat per episode (totals, the env's summary)
    lineage/phase-NNNNN.parquet    evolving societies: who lived in each phase, and their parents
    checkpoint.json        progress; rewritten atomically after every part
    summary.json           written when the run completes

Parts are written to a temporary name and renamed, so a part on disk is
always whole. An episode counts as done once its events are in a part; a
resume re-runs every other episode from its seed.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq

from societas import __version__
from societas.config import ExperimentConfig, dump_config, parse_config
from societas.errors import BadInput, CorruptRun

EVENT_SCHEMA = pa.schema([
    ("run_id", pa.string()),
    ("phase", pa.int32()),
    ("episode", pa.int32()),
    ("env", pa.string()),
    ("game", pa.string()),
    ("round", pa.int32()),
    ("seat", pa.int32()),
    ("agent", pa.string()),
    ("partner", pa.string()),
    ("policy", pa.string()),
    ("policy_kind", pa.string()),
    ("model", pa.string()),
    ("action", pa.string()),
    ("value", pa.float64()),
    ("option", pa.int8()),
    ("cooperated", pa.bool_()),
    ("prediction", pa.string()),
    ("prediction_valid", pa.bool_()),
    ("valid", pa.bool_()),
    ("retries", pa.int16()),
    ("reward", pa.float64()),
    ("cumulative_reward", pa.float64()),
    ("latency_s", pa.float64()),
    ("prompt_tokens", pa.int32()),
    ("completion_tokens", pa.int32()),
    ("cache_hit", pa.bool_()),
    ("info", pa.string()),
    ("sampled_p", pa.float64()),
])

LLM_CALL_SCHEMA = pa.schema([
    ("run_id", pa.string()),
    ("phase", pa.int32()),
    ("episode", pa.int32()),
    ("round", pa.int32()),
    ("seat", pa.int32()),
    ("agent", pa.string()),
    ("purpose", pa.string()),
    ("attempt", pa.int16()),
    ("model", pa.string()),
    ("messages", pa.string()),
    ("params", pa.string()),
    ("reply", pa.string()),
    ("error", pa.string()),
    ("latency_s", pa.float64()),
    ("prompt_tokens", pa.int32()),
    ("completion_tokens", pa.int32()),
    ("cache_hit", pa.bool_()),
    ("cached_tokens", pa.int32()),
    ("reasoning", pa.string()),
])

EPISODE_SCHEMA = pa.schema([
    ("run_id", pa.string()),
    ("phase", pa.int32()),
    ("episode", pa.int32()),
    ("seat", pa.int32()),
    ("agent", pa.string()),
    ("policy", pa.string()),
    ("model", pa.string()),
    ("total_reward", pa.float64()),
    ("decisions", pa.int32()),
    ("summary", pa.string()),
])



def _atomic_write(path: Path, data: bytes) -> None:
    tmp = path.with_name(f".{path.name}.tmp")
    with open(tmp, "wb") as f:
        f.write(data)
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, path)


@dataclass(slots=True)
class Columns:
    """Column lists (or Arrow tables, a large episode's) that episodes append to, in order; turned
    into one Parquet part per flush."""

    schema: pa.Schema
    data: dict[str, list[Any]] = field(default_factory=dict)
    tables: list[pa.Table] = field(default_factory=list)

    def __post_init__(self) -> None:
        self.data = {name: [] for name in self.schema.names}
        self.tables = []

    def __len__(self) -> int:
        return len(self.data[self.schema.names[0]]) + sum(t.num_rows for t in self.tables)

    def extend(self, rows: dict[str, list[Any]] | pa.Table) -> None:
        if isinstance(rows, pa.Table):
            if self.data[self.schema.names[0]]:  # the lists so far come first
                self.tables.append(pa.Table.from_pydict(self.data, schema=self.schema))
                self.data = {name: [] for name in self.schema.names}
            self.tables.append(rows.select(self.schema.names).cast(self.schema))
            return
        for name, values in rows.items():
            self.data[name].extend(values)

    def take(self) -> pa.Table:
        table = pa.Table.from_pydict(self.data, schema=self.schema)
        if self.tables:
            table = pa.concat_tables([*self.tables, table])
        self.__post_init__()
        return table


class RunDirectory:
    """Reads and writes one run's directory."""

    def __init__(self, path: Path) -> None:
        self.path = Path(path)
        self.events_dir = self.path / "events"
        self.calls_dir = self.path / "llm_calls"
        self.episodes_dir = self.path / "episodes"
        self.lineage_dir = self.path / "lineage"

    @property
    def run_id(self) -> str:
        return self.path.name

    @classmethod
    def create(cls, config: ExperimentConfig, out: str | Path | None = None, *,
               name: str | None = None) -> RunDirectory:
        """A new `<name>-<timestamp>` folder under `out`; `name` fixes the folder's name (runs of a sweep)."""
        base = Path(out or config.output_dir)
        if name is not None:
            path = base / name
            path.mkdir(parents=True)  # never reuse a folder: FileExistsError
        else:
            stamp = time.strftime("%Y%m%d-%H%M%S")
            path = base / f"{config.name}-{stamp}"
            n = 1
            while path.exists():
                n += 1
                path = base / f"{config.name}-{stamp}-{n}"
            path.mkdir(parents=True)
        rd = cls(path)
        for d in (rd.events_dir, rd.calls_dir, rd.episodes_dir):
            d.mkdir()
        resolved = config.model_copy(update={"societas_version": __version__})
        _atomic_write(path / "config.yaml", dump_config(resolved).encode())
        return rd

    def exists(self) -> bool:
        return (self.path / "config.yaml").is_file()

    @contextlib.contextmanager
    def lock(self) -> Iterator[None]:
        """Hold the run directory for one process: a second `run`/`resume` of it refuses at once."""
        with open(self.path / ".lock", "a") as f:
            try:
                fcntl.flock(f.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                raise BadInput(f"{self.path}: another societas process is playing this run") from None
            try:
                yield
            finally:
                fcntl.flock(f.fileno(), fcntl.LOCK_UN)

    def config(self) -> ExperimentConfig:
        import yaml

        src = self.path / "config.yaml"
        try:
            raw = yaml.safe_load(src.read_text())
        except (yaml.YAMLError, UnicodeDecodeError) as exc:
            raise CorruptRun(src, exc) from None
        if not isinstance(raw, dict):
            raise CorruptRun(src, "not a mapping")
        return parse_config(raw, source=str(src))

    def _parts(self, folder: Path) -> list[Path]:
        return sorted(folder.glob("part-*.parquet"))

    def next_part_index(self) -> int:
        parts = self._parts(self.events_dir) + self._parts(self.calls_dir)
        return 1 + max((int(p.stem.split("-")[1]) for p in parts), default=-1)

    def recover(self) -> set[tuple[int, int]]:
        """Episodes already on disk; drop model-call and episode parts whose events never landed."""
        event_parts = {p.name for p in self._parts(self.events_dir)}
        self.episodes_dir.mkdir(exist_ok=True)
        for folder in (self.calls_dir, self.episodes_dir):
            for p in self._parts(folder):
                if p.name not in event_parts:
                    p.unlink()
        for folder in (self.events_dir, self.calls_dir, self.episodes_dir):
            for tmp in folder.glob(".*.tmp"):
                tmp.unlink()
        for folder in (self.calls_dir, self.episodes_dir):  # a damaged part stops the resume, named
            for p in self._parts(folder):
                try:
                    pq.ParquetFile(p).schema_arrow  # noqa: B018 - reads the footer
                except (pa.ArrowInvalid, OSError) as exc:
                    raise CorruptRun(p, exc) from None
        done: set[tuple[int, int]] = set()
        for p in self._parts(self.events_dir):
            t = read_part(p, columns=["phase", "episode"])
            done.update(zip(t.column("phase").to_pylist(), t.column("episode").to_pylist(), strict=True))
        return done

    def write_part(self, index: int, events: pa.Table, calls: pa.Table | None,
                   episodes: pa.Table | None = None) -> None:
        """Model calls and episode rows first, events last: an events part marks its episodes done."""
        name = f"part-{index:05d}.parquet"
        if calls is not None and calls.num_rows:
            _write_table(calls, self.calls_dir / name)
        if episodes is not None and episodes.num_rows:
            _write_table(episodes, self.episodes_dir / name)
        _write_table(events, self.events_dir / name)

    def read_episodes(self, phase: int) -> pa.Table:
        """The episodes table of one phase (every seat of every finished episode)."""
        parts = self._parts(self.episodes_dir)
        if not parts:
            return EPISODE_SCHEMA.empty_table()
        table = pq.read_table(parts, filters=[("phase", "=", phase)], schema=EPISODE_SCHEMA)
        return table.sort_by([("episode", "ascending"), ("seat", "ascending")])

    def write_lineage(self, phase: int, table: pa.Table) -> None:
        self.lineage_dir.mkdir(exist_ok=True)
        _write_table(table, self.lineage_dir / f"phase-{phase:05d}.parquet")

    def write_json(self, name: str, payload: dict[str, Any]) -> None:
        _atomic_write(self.path / name, (json.dumps(payload, indent=2, sort_keys=False) + "\n").encode())

    def read_json(self, name: str) -> dict[str, Any] | None:
        p = self.path / name
        if not p.is_file():
            return None
        try:
            payload = json.loads(p.read_text())
        except (json.JSONDecodeError, UnicodeDecodeError) as exc:
            raise CorruptRun(p, exc) from None
        if not isinstance(payload, dict):
            raise CorruptRun(p, "not a JSON object")
        return payload


def read_part(path: Path, columns: list[str] | None = None) -> pa.Table:
    """One Parquet part; a damaged one is a CorruptRun naming it."""
    try:
        return pq.read_table(path, columns=columns)
    except (pa.ArrowInvalid, OSError) as exc:
        raise CorruptRun(path, exc) from None


# Min/max statistics only for the columns parts are filtered on: statistics of every column
# (long prompt and reply strings included) cost about a fifth of writing an events part.
_STATISTICS = ("phase", "episode", "round", "seat")


def _write_table(table: pa.Table, path: Path) -> None:
    """One part, atomically. Dictionary columns (the batched path's strings, each written once) go
    without the Arrow schema in the file, so they read back as the plain strings of their schema."""
    tmp = path.with_name(f".{path.name}.tmp")
    encoded = any(pa.types.is_dictionary(t) for t in table.schema.types)
    pq.write_table(table, tmp, compression="zstd", store_schema=not encoded,
                   write_statistics=[c for c in _STATISTICS if c in table.column_names])
    with open(tmp, "rb") as f:
        os.fsync(f.fileno())
    os.replace(tmp, path)
