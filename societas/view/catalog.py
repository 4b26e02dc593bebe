"""The runs and sweeps in a folder, with their status and totals, from the files alone.

Everything here reads; nothing opens a file of a run for writing or takes its
lock. A Parquet part is whole once its name exists (the runner writes it
under a temporary name and renames it), and never changes afterwards, so the
totals of each part are read once (its footer for the row count, one or two
columns for invalid decisions and tokens) and kept: a poll of a folder of
runs reads only the parts that landed since the last one.
"""

from __future__ import annotations

import hashlib
import json
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq
import yaml

from societas.view.cost import Billed, Prices, billed, cost_usd
from societas.view.liveness import held_inodes, is_playing
from societas.yaml_read import safe_load

MAX_DEPTH = 3
"""How deep below the folder runs and sweeps are looked for (sweeps hold their runs one level down)."""

ENDED = ("stopped", "interrupted", "failed")
"""Statuses of a run that ended early (checkpoint.json, or a sweep's index, says why)."""


@dataclass(frozen=True, slots=True)
class PartTotals:
    """What one Parquet part adds to its run's totals."""

    rows: int
    invalid: int = 0
    prompt_tokens: int = 0
    completion_tokens: int = 0
    cache_hits: int = 0
    billed: Billed = ()


@dataclass(slots=True)
class RunInfo:
    """One run directory as the runs list shows it."""

    rel: str
    """The run's path below the viewed folder (posix): its id in the app's URLs."""
    path: Path
    name: str
    seed: Any
    models: list[str]
    status: str
    """running, complete, stopped, interrupted, failed or pending."""
    error: str | None
    episodes_done: int
    progress: float | None
    progress_text: str
    decisions: int
    invalid: int
    llm_calls: int
    prompt_tokens: int
    completion_tokens: int
    cache_hits: int
    updated: float | None
    version: str
    """Changes whenever a part lands or the status changes; the run page re-renders on a new one."""
    sweep: str | None = None
    cost_usd: float | None = None
    """USD so far, with a price table for every model it called (`societas view --prices`)."""

    @property
    def invalid_share(self) -> float | None:
        return self.invalid / self.decisions if self.decisions else None

    @property
    def tokens(self) -> int:
        return self.prompt_tokens + self.completion_tokens

    def as_dict(self) -> dict[str, Any]:
        return {"rel": self.rel, "name": self.name, "seed": self.seed, "models": self.models,
                "status": self.status, "error": self.error, "episodes_done": self.episodes_done,
                "progress": self.progress, "decisions": self.decisions, "invalid": self.invalid,
                "invalid_share": self.invalid_share, "llm_calls": self.llm_calls,
                "prompt_tokens": self.prompt_tokens, "completion_tokens": self.completion_tokens,
                "cache_hits": self.cache_hits, "updated": self.updated, "version": self.version,
                "sweep": self.sweep, "cost_usd": self.cost_usd}


@dataclass(slots=True)
class SweepInfo:
    """A sweep directory: its runs in the index's order, and what they add up to."""

    rel: str
    path: Path
    name: str
    grid: list[str]
    runs: list[RunInfo] = field(default_factory=list)

    @property
    def updated(self) -> float | None:
        return max((r.updated for r in self.runs if r.updated is not None), default=None)

    def count(self, status: str) -> int:
        return sum(r.status == status for r in self.runs)

    @property
    def status(self) -> str:
        if any(r.status == "running" for r in self.runs):
            return "running"
        if self.runs and all(r.status == "complete" for r in self.runs):
            return "complete"
        if any(r.status in ENDED for r in self.runs):
            return "stopped"
        return "pending"

    @property
    def progress(self) -> float | None:
        known = [r.progress for r in self.runs if r.progress is not None]
        return sum(known) / len(self.runs) if known else None

    def total(self, name: str) -> int:
        return sum(getattr(r, name) for r in self.runs)

    @property
    def cost_usd(self) -> float | None:
        costs = [r.cost_usd for r in self.runs]
        return None if any(c is None for c in costs) else sum(costs)

    @property
    def invalid_share(self) -> float | None:
        n = self.total("decisions")
        return self.total("invalid") / n if n else None


def _read_json(path: Path) -> dict[str, Any] | None:
    try:
        data = json.loads(path.read_text())
    except (OSError, ValueError):
        return None  # absent, or being replaced: the next poll reads it
    return data if isinstance(data, dict) else None


def _parts(folder: Path) -> list[Path]:
    return sorted(folder.glob("part-*.parquet"))


class Catalog:
    """The runs and sweeps below `root`, rescanned on every call; part totals and configs are cached."""

    def __init__(self, root: Path, prices: Prices | None = None) -> None:
        self.root = Path(root).resolve()
        self.prices = prices
        self._parts: dict[tuple[str, int, int], PartTotals] = {}
        self._configs: dict[tuple[str, int], dict[str, Any]] = {}
        self._lock = threading.Lock()

    # ------------------------------------------------------------------ finding runs

    def scan(self) -> tuple[list[RunInfo], list[SweepInfo]]:
        """Runs outside sweeps (newest first) and sweeps (newest first), each sweep with its runs."""
        held = held_inodes()
        runs: list[RunInfo] = []
        sweeps: list[SweepInfo] = []
        for kind, path in self._find(self.root, 0):
            if kind == "run":
                info = self._run(path, held)
                if info is not None:
                    runs.append(info)
            else:
                sweeps.append(self._sweep(path, held))
        runs.sort(key=lambda r: (r.updated or 0, r.rel), reverse=True)
        sweeps.sort(key=lambda s: (s.updated or 0, s.rel), reverse=True)
        return runs, sweeps

    def newest_first(self) -> list[RunInfo | SweepInfo]:
        """Runs and sweeps together, the one updated last first (a run playing now comes to the top)."""
        runs, sweeps = self.scan()
        return sorted([*runs, *sweeps], key=lambda x: (x.updated or 0, x.rel), reverse=True)

    def _find(self, folder: Path, depth: int) -> list[tuple[str, Path]]:
        if (folder / "sweep.yaml").is_file():
            return [("sweep", folder)]
        if (folder / "config.yaml").is_file():
            return [("run", folder)]
        if depth >= MAX_DEPTH:
            return []
        found: list[tuple[str, Path]] = []
        try:
            children = sorted(p for p in folder.iterdir() if p.is_dir() and not p.name.startswith("."))
        except OSError:
            return []
        for child in children:
            found += self._find(child, depth + 1)
        return found

    def run_path(self, rel: str) -> Path | None:
        """The run directory named by `rel`, if it is one below the root (nothing outside it is served)."""
        path = (self.root / rel).resolve()
        if path != self.root and self.root not in path.parents:
            return None
        return path if (path / "config.yaml").is_file() else None

    def run(self, rel: str) -> RunInfo | None:
        """One run's info (with its sweep's index row when it belongs to one)."""
        path = self.run_path(rel)
        if path is None:
            return None
        row = None
        if (path.parent / "sweep.yaml").is_file():
            row = self._index_rows(path.parent).get(path.name)
        return self._run(path, held_inodes(), index_row=row,
                         sweep=self._rel(path.parent) if row is not None else None)

    def _rel(self, path: Path) -> str:
        return path.relative_to(self.root).as_posix() if path != self.root else "."

    # ------------------------------------------------------------------ one run

    def _config(self, path: Path) -> dict[str, Any]:
        src = path / "config.yaml"
        try:
            key = (str(src), src.stat().st_mtime_ns)
        except OSError:
            return {}
        with self._lock:
            cached = self._configs.get(key)
        if cached is None:
            try:
                cached = safe_load(src.read_text()) or {}
            except (OSError, yaml.YAMLError, UnicodeDecodeError):
                cached = {}
            if not isinstance(cached, dict):
                cached = {}
            with self._lock:
                self._configs[key] = cached
        return cached

    def _totals(self, part: Path, kind: str) -> PartTotals | None:
        try:
            st = part.stat()
        except OSError:
            return None  # dropped by a resume between the listing and now
        key = (str(part), st.st_size, st.st_mtime_ns)
        with self._lock:
            cached = self._parts.get(key)
        if cached is not None:
            return cached
        try:
            pf = pq.ParquetFile(part)  # one footer read; read_table would set up a dataset per part
            if kind == "events":
                t = pf.read(columns=["valid"])
                valid = t.column("valid")
                totals = PartTotals(rows=t.num_rows, invalid=int(pc.sum(pc.invert(valid).cast(pa.int64())).as_py()
                                                                 or 0))
            else:
                names = pf.schema_arrow.names
                t = pf.read(columns=["model", "prompt_tokens", "completion_tokens", "cache_hit",
                                                 *(["cached_tokens"] if "cached_tokens" in names else [])])
                totals = PartTotals(
                    rows=t.num_rows,
                    prompt_tokens=int(pc.sum(t.column("prompt_tokens")).as_py() or 0),
                    completion_tokens=int(pc.sum(t.column("completion_tokens")).as_py() or 0),
                    cache_hits=int(pc.sum(pc.fill_null(t.column("cache_hit"), False).cast(pa.int64())).as_py()
                                   or 0),
                    billed=billed(t))
        except (OSError, pa.ArrowInvalid, KeyError):
            return None  # unreadable now; a damaged part is named by the report
        with self._lock:
            self._parts[key] = totals
        return totals

    def _run(self, path: Path, held: set[int] | None, *, index_row: dict[str, Any] | None = None,
             sweep: str | None = None) -> RunInfo | None:
        config = self._config(path)
        event_parts = _parts(path / "events")
        call_parts = _parts(path / "llm_calls")
        ev = [t for t in (self._totals(p, "events") for p in event_parts) if t is not None]
        calls = [t for t in (self._totals(p, "calls") for p in call_parts) if t is not None]
        summary = _read_json(path / "summary.json")
        cp = _read_json(path / "checkpoint.json") or {}
        playing = is_playing(path, held)
        status, error = _status(summary, cp, playing, index_row, started=bool(event_parts) or bool(cp))
        progress, text = _progress(summary, cp, status)
        try:
            updated = max(p.stat().st_mtime for p in (path / "checkpoint.json", path / "config.yaml") if p.exists())
        except (OSError, ValueError):
            updated = None
        version_src = "|".join([status, str(error), *(p.name for p in event_parts), str(len(call_parts))])
        return RunInfo(
            rel=self._rel(path), path=path, name=str(config.get("name") or path.name), seed=config.get("seed"),
            models=_models(config), status=status, error=error,
            episodes_done=int(summary.get("episodes", 0) if summary else cp.get("episodes_done", 0) or 0),
            progress=progress, progress_text=text,
            decisions=sum(t.rows for t in ev), invalid=sum(t.invalid for t in ev),
            llm_calls=sum(t.rows for t in calls), prompt_tokens=sum(t.prompt_tokens for t in calls),
            completion_tokens=sum(t.completion_tokens for t in calls), cache_hits=sum(t.cache_hits for t in calls),
            updated=updated, version=hashlib.sha1(version_src.encode()).hexdigest()[:12], sweep=sweep,
            cost_usd=cost_usd((t.billed for t in calls), self.prices) if calls else (0.0 if self.prices else None),
        )

    # ------------------------------------------------------------------ sweeps

    def _index_rows(self, path: Path) -> dict[str, dict[str, Any]]:
        try:
            table = pq.read_table(path / "index.parquet", columns=["name", "run_dir", "status", "error"])
        except (OSError, pa.ArrowInvalid, KeyError):
            return {}
        return {str(r["run_dir"]): r for r in table.to_pylist()}

    def _sweep(self, path: Path, held: set[int] | None) -> SweepInfo:
        try:
            spec = safe_load((path / "sweep.yaml").read_text()) or {}
        except (OSError, yaml.YAMLError, UnicodeDecodeError):
            spec = {}
        spec = spec if isinstance(spec, dict) else {}
        grid = list((spec.get("sweep") or {}).get("grid") or {})
        info = SweepInfo(rel=self._rel(path), path=path, name=str(spec.get("name") or path.name), grid=grid)
        rows = self._index_rows(path)
        names = list(rows) or sorted(p.name for p in path.iterdir() if (p / "config.yaml").is_file())
        for name in names:
            if (path / name / "config.yaml").is_file():
                run = self._run(path / name, held, index_row=rows.get(name), sweep=info.rel)
                if run is not None:
                    info.runs.append(run)
        return info


def _models(config: dict[str, Any]) -> list[str]:
    """The model specs behind the language-model members (none for scripted and replayed ones)."""
    default = config.get("model")
    models = []
    for member in config.get("population") or []:
        if isinstance(member, dict) and member.get("policy") == "llm":
            spec = member.get("model") or default
            if spec:
                models.append(str(spec))
    return sorted(set(models))


def _status(summary: dict[str, Any] | None, cp: dict[str, Any], playing: bool | None,
            index_row: dict[str, Any] | None, *, started: bool) -> tuple[str, str | None]:
    """What the files say about a run: complete, running, ended early (with why) or pending."""
    if summary is not None:
        return "complete", None
    if playing:
        return "running", None
    said = cp.get("status")
    if said in ENDED:
        return str(said), cp.get("error")
    if index_row is not None and index_row.get("status") in ("failed", "interrupted"):
        return ("interrupted" if index_row["status"] == "interrupted" else "failed"), index_row.get("error")
    if said == "running" or started:
        if playing is None:
            return "running", None  # no way to tell here; the checkpoint's word
        return "stopped", ("the process playing it ended without recording an error (killed?); "
                           "finish it with `societas resume`")
    return "pending", None


def _progress(summary: dict[str, Any] | None, cp: dict[str, Any], status: str) -> tuple[float | None, str]:
    """A fraction of the run done, and the words for it (phase by phase for evolving societies)."""
    if summary is not None:
        return 1.0, f"{summary.get('episodes', 0):,} episodes"
    phases, phase = cp.get("phases"), cp.get("phase")
    of, done = cp.get("phase_episodes"), cp.get("phase_done")
    if not (isinstance(phases, int) and isinstance(phase, int) and isinstance(of, int) and isinstance(done, int)):
        n = cp.get("episodes_done", 0) or 0
        return None, f"{n:,} episodes" if cp else ("not started" if status == "pending" else "")
    fraction = (phase + (done / of if of else 0)) / phases if phases else None
    text = f"{done:,} of {of:,} episodes"
    if phases > 1:
        text = f"phase {phase + 1} of {phases}: " + text
    return fraction, text


def age(updated: float | None, now: float | None = None) -> str:
    """'12 s ago', '5 min ago', '3 h ago', or the date."""
    if updated is None:
        return "–"
    dt = max(0.0, (now or time.time()) - updated)
    if dt < 90:
        return f"{dt:.0f} s ago"
    if dt < 90 * 60:
        return f"{dt / 60:.0f} min ago"
    if dt < 36 * 3600:
        return f"{dt / 3600:.0f} h ago"
    return time.strftime("%Y-%m-%d %H:%M", time.localtime(updated))
