"""Sweeps: one config, many runs (models x seeds x grid points), played side by side.

`environment.vary` varies a game's parameters within one run; a sweep varies
anything in the config across runs. Each run keeps its own run directory,
seed and summary, so it is exactly the run its config would give alone, and
it is resumed on its own. Layout of `runs/<name>-<timestamp>/`:

    sweep.yaml       the resolved config, `sweep` section included (a config `societas run` accepts)
    index.parquet    one row per run: name, run_dir, model, seed, grid values, status, totals, error
    index.csv        the same table as CSV
    <run name>/      one run directory per run (config.yaml, events/, ...), all created before any run starts

The runs share one event loop, at most `sweep.max_concurrent_runs` in flight,
and one model per (spec, model options): an endpoint sees one in-flight limit
and local weights load once. Models are stateless per request, so sharing
them leaves every run's events as they would be alone.
"""

from __future__ import annotations

import asyncio
import copy
import itertools
import json
import os
import re
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.csv as pa_csv
import pyarrow.parquet as pq
import yaml
from pydantic import BaseModel

from societas import __version__
from societas.config import ConfigError, ExperimentConfig, dump_config, parse_config
from societas.llm.base import ChatModel
from societas.llm.specs import make_model
from societas.runners.run import model_options, run_experiment_async, stored_config
from societas.runners.rundir import RunDirectory
from societas.societies.society import make_society

STATUSES = ("pending", "running", "complete", "failed", "interrupted")
# Totals copied from each run's summary.json into the index.
FIGURES = ("episodes", "decisions", "llm_calls", "invalid_actions", "wall_s")
_FIGURE_TYPES = {"episodes": pa.int64(), "decisions": pa.int64(), "llm_calls": pa.int64(),
                 "invalid_actions": pa.int64(), "wall_s": pa.float64()}
# Top-level fields the sweep sets itself, or that its own axes own.
_RESERVED = {
    "name": "the sweep names its runs",
    "seed": "list seeds in sweep.seeds",
    "model": "list models in sweep.models",
    "sweep": "a sweep cannot vary itself",
    "output_dir": "every run goes into the sweep's directory",
    "societas_version": "it is set when a run starts",
}
_UNSAFE = re.compile(r"[^A-Za-z0-9_.-]+")
_MAX_LABEL = 24
_MAX_NAME = 200

# Told the sweep directory and an index row whenever the row's status changes.
OnUpdate = Callable[[Path, dict[str, Any]], None]


# -- the command line ---------------------------------------------------------------------------


def parse_seeds(text: str) -> list[int]:
    """`--seeds`: a list (`0,1,2`), an inclusive range (`0-9`) or a mix (`0-4,10`)."""
    seeds: list[int] = []
    for part in text.split(","):
        m = re.fullmatch(r"\s*(\d+)\s*(?:-\s*(\d+)\s*)?", part)
        if m is None or (m[2] is not None and int(m[2]) < int(m[1])):
            raise ConfigError(f"--seeds: {text!r} is not a list such as 0,1,2 or a range such as 0-9")
        seeds.extend(range(int(m[1]), int(m[2] or m[1]) + 1))
    if len(set(seeds)) != len(seeds):
        raise ConfigError(f"--seeds: {text!r} lists a seed twice")
    return seeds


def pin_axes(config: ExperimentConfig, *, model: str | None = None, seed: int | None = None,
             seeds: list[int] | None = None, source: str = "<config>") -> ExperimentConfig:
    """Fold command-line flags into the sweep.

    `--seeds` sets the seed axis (and turns any config into a sweep); `--seed`
    and `--model` pin the seed or model axis of a sweep that has one to that
    single value (without such an axis they set every run's seed or model, as
    for a single run, which `load_config` has already done).
    """
    if seeds is not None and seed is not None:
        raise ConfigError(f"{source}: --seed and --seeds: give one of them")
    if config.sweep is None and seeds is None:
        return config
    sweep = {} if config.sweep is None else config.sweep.model_dump(mode="json")
    if seeds is not None:
        sweep["seeds"] = seeds
    elif seed is not None and sweep.get("seeds"):
        sweep["seeds"] = [seed]
    if model is not None and sweep.get("models"):
        sweep["models"] = [model]
    return parse_config(dict(config.model_dump(mode="json"), sweep=sweep), source=source)


# -- expansion ----------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class SweepRun:
    """One point of a sweep: its run's name, its whole validated config, and its grid values."""

    name: str
    config: ExperimentConfig
    grid: dict[str, Any]


def expand(config: ExperimentConfig, *, source: str = "<config>") -> list[SweepRun]:
    """Every run of the sweep, models outermost, then seeds, then the grid in the order written.

    Each run's config is the base config with its model, seed and grid values
    set, validated as a whole; a path that names nothing, or a value the
    config does not accept, is a one-line ConfigError naming the file and field.
    """
    sweep = config.sweep
    if sweep is None:
        raise ValueError(f"{config.name}: the config has no sweep section")
    paths = {p: _resolve(config, p, source) for p in sweep.grid}
    _check_overlap(list(paths), source)
    models = sweep.models or [config.model]
    seeds = sweep.seeds or [config.seed]
    # (key, value labels) of each axis that appears in run names
    axes: list[tuple[str, list[str]]] = []
    if sweep.models:
        axes.append(("model", _labels([_model_label(m) for m in sweep.models])))
    if sweep.seeds:
        axes.append(("seed", [str(s) for s in sweep.seeds]))
    keys = _grid_keys(list(sweep.grid))
    axes.extend((keys[p], _labels([_value_label(v) for v in values])) for p, values in sweep.grid.items())
    axis_index = [i for i, on in enumerate([bool(sweep.models), bool(sweep.seeds)] + [True] * len(paths)) if on]

    points = list(itertools.product(range(len(models)), range(len(seeds)),
                                    *(range(len(v)) for v in sweep.grid.values())))
    names = [_sanitise("-".join([config.name, *(f"{key}_{labels[point[i]]}"
                                                 for (key, labels), i in zip(axes, axis_index, strict=True))]))
             for point in points]
    if len(set(names)) < len(names) or max(len(n) for n in names) > _MAX_NAME:
        width = len(str(len(points) - 1))
        names = [f"{config.name}-{i:0{width}d}" for i in range(len(points))]

    base = config.model_dump(mode="json", exclude={"sweep", "societas_version"})
    runs = []
    for name, point in zip(names, points, strict=True):
        grid = {p: sweep.grid[p][j] for p, j in zip(sweep.grid, point[2:], strict=True)}
        data = copy.deepcopy(base)
        data.update(name=name, model=models[point[0]], seed=seeds[point[1]])
        for p, value in grid.items():
            _assign(data, paths[p], copy.deepcopy(value))
        try:
            runs.append(SweepRun(name=name, config=parse_config(data, source=source), grid=grid))
        except ConfigError as exc:
            values = ([("model", models[point[0]])] if sweep.models else []) + (
                [("seed", seeds[point[1]])] if sweep.seeds else []) + list(grid.items())
            where = ", ".join(f"{p}={v!r}" for p, v in values)
            detail = str(exc).removeprefix(f"{source}: ")
            raise ConfigError(f"{source}: sweep run with {where}: {detail}") from None
    return runs


def _resolve(config: ExperimentConfig, path: str, source: str) -> list[str | int]:
    """The path's keys and list indices, checked against the config: fields must exist, and so
    must dictionary keys, except the last one (a new game parameter, say)."""

    def fail(problem: str) -> ConfigError:
        return ConfigError(f"{source}: sweep.grid.{path}: {problem}")

    parts = path.split(".")
    if parts[0] in _RESERVED:
        raise fail(f"cannot be part of the grid ({_RESERVED[parts[0]]})")
    node: Any = config
    out: list[str | int] = []
    for i, part in enumerate(parts):
        here = ".".join(parts[:i]) or "the config"
        if isinstance(node, BaseModel):
            fields = type(node).model_fields
            if part not in fields:
                raise fail(f"{here} has no field {part!r} (fields: {', '.join(fields)})")
            node = getattr(node, part)
            out.append(part)
        elif isinstance(node, dict):
            if part not in node and i < len(parts) - 1:
                raise fail(f"{here} has no key {part!r}")
            node = node.get(part)
            out.append(part)
        elif isinstance(node, (list, tuple)):
            if not part.isdigit() or int(part) >= len(node):
                raise fail(f"{here} is a list of {len(node)}; index it with a number below {len(node)}")
            node = node[int(part)]
            out.append(int(part))
        elif node is None:
            raise fail(f"{here} is not set in the config; give it a value to vary what is inside it")
        else:
            raise fail(f"{here} is a single value ({node!r}), not a section")
    if len(parts) == 3 and parts[:2] == ["environment", "params"] and parts[2] in config.environment.vary:
        raise fail(f"environment.vary already varies {parts[2]!r} within each run; vary it in one place")
    return out


def _check_overlap(paths: list[str], source: str) -> None:
    for a, b in itertools.permutations(paths, 2):
        if b.startswith(a + "."):
            raise ConfigError(f"{source}: sweep.grid.{b}: inside sweep.grid.{a}, which is varied as a whole; "
                              "vary one of them")


def _assign(data: Any, path: list[str | int], value: Any) -> None:
    for part in path[:-1]:
        data = data[part]
    data[path[-1]] = value


def _grid_keys(paths: list[str]) -> dict[str, str]:
    """Short names for run names: the last key, or the whole path where the last key is ambiguous."""
    last = [p.rsplit(".", 1)[-1] for p in paths]
    return {p: k if last.count(k) == 1 and k not in ("model", "seed") else p for p, k in zip(paths, last)}


def _sanitise(text: str) -> str:
    return _UNSAFE.sub("-", text).strip("-")


def _model_label(spec: str) -> str:
    provider, _, rest = spec.partition(":")
    name = rest.split("@", 1)[0].rstrip("/").rsplit("/", 1)[-1]  # no URL, last path component
    return _sanitise(f"{provider}-{name}")


def _value_label(value: Any) -> str:
    if isinstance(value, bool) or value is None:
        return json.dumps(value)
    if isinstance(value, (int, float, str)):
        return _sanitise(str(value))
    return _sanitise(json.dumps(value, sort_keys=True, separators=(",", ":")))


def _labels(labels: list[str]) -> list[str]:
    """The labels, or positions 0, 1, ... where they are empty, long or not distinct."""
    if len(set(labels)) < len(labels) or any(not lab or len(lab) > _MAX_LABEL for lab in labels):
        return [str(i) for i in range(len(labels))]
    return labels


# -- the sweep directory ------------------------------------------------------------------------


def is_sweep_dir(path: str | Path) -> bool:
    return (Path(path) / "sweep.yaml").is_file()


@dataclass(slots=True)
class SweepResult:
    """The sweep's directory and its index rows (one dict per run, as in index.parquet)."""

    path: Path
    runs: list[dict[str, Any]]

    @property
    def failed(self) -> list[dict[str, Any]]:
        return [r for r in self.runs if r["status"] != "complete"]


class _Index:
    """index.parquet and index.csv, rewritten whole (and atomically) at every change of status."""

    def __init__(self, path: Path, grid: list[str], rows: list[dict[str, Any]]) -> None:
        self.path = path
        self.grid = grid
        self.rows = rows

    def write(self) -> None:
        columns: dict[str, pa.Array] = {}
        for name in ("name", "run_dir", "model"):
            columns[name] = pa.array([r[name] for r in self.rows], pa.string())
        columns["seed"] = pa.array([r["seed"] for r in self.rows], pa.int64())
        for p in self.grid:
            columns[p] = _grid_column([r[p] for r in self.rows])
        columns["status"] = pa.array([r["status"] for r in self.rows], pa.string())
        for name in FIGURES:
            columns[name] = pa.array([r[name] for r in self.rows], _FIGURE_TYPES[name])
        columns["error"] = pa.array([r["error"] for r in self.rows], pa.string())
        table = pa.table(columns)
        tmp = self.path / ".index.parquet.tmp"
        pq.write_table(table, tmp)
        os.replace(tmp, self.path / "index.parquet")
        tmp = self.path / ".index.csv.tmp"
        pa_csv.write_csv(table, tmp)
        os.replace(tmp, self.path / "index.csv")


def _grid_column(values: list[Any]) -> pa.Array:
    """Values of one grid path: typed when they share a scalar type, JSON text otherwise."""
    present = [v for v in values if v is not None]
    kinds = {bool if isinstance(v, bool) else float if isinstance(v, (int, float)) else type(v) for v in present}
    if kinds <= {bool}:
        return pa.array(values, pa.bool_())
    if kinds == {float}:
        whole = all(isinstance(v, int) for v in present)
        return pa.array(values, pa.int64() if whole else pa.float64())
    if kinds == {str}:
        return pa.array(values, pa.string())
    return pa.array([None if v is None else json.dumps(v, sort_keys=True) for v in values], pa.string())


def _new_sweep_dir(base: Path, name: str) -> Path:
    stamp = time.strftime("%Y%m%d-%H%M%S")
    path, n = base / f"{name}-{stamp}", 1
    while True:
        try:
            path.mkdir(parents=True)
            return path
        except FileExistsError:
            n += 1
            path = base / f"{name}-{stamp}-{n}"


class _ModelPool:
    """One model per (spec, model options) for the whole sweep, built before anything is written."""

    def __init__(self) -> None:
        self._models: dict[tuple[str, Any], ChatModel] = {}

    def models_for(self, config: ExperimentConfig) -> dict[str, ChatModel]:
        out = {}
        for spec in make_society(config).models():
            key = (spec, model_options(config, spec))
            if key not in self._models:
                self._models[key] = make_model(spec, key[1])
            out[spec] = self._models[key]
        return out

    async def aclose(self) -> None:
        for m in self._models.values():
            await m.aclose()


# -- running ------------------------------------------------------------------------------------


def run_sweep(config: ExperimentConfig, *, source: str = "<config>",
              on_update: OnUpdate | None = None) -> SweepResult:
    """Expand the sweep, create its directory and every run directory, and play the runs.

    A run that raises is marked failed (with the error) and the others go on;
    `on_update` sees each index row whenever its status changes.
    """
    if config.sweep is None:
        raise ValueError(f"{config.name}: the config has no sweep section")
    runs = expand(config, source=source)
    pool = _ModelPool()
    models = [pool.models_for(r.config) for r in runs]  # a missing API key stops here, before any write
    path = _new_sweep_dir(Path(config.output_dir), config.name)
    (path / "sweep.yaml").write_text(dump_config(config.model_copy(update={"societas_version": __version__})))
    rows, todo = [], []
    for run, run_models in zip(runs, models, strict=True):
        run_config = run.config.model_copy(update={"output_dir": str(path)})
        rd = RunDirectory.create(run_config, path, name=run.name)
        row = {"name": run.name, "run_dir": run.name, "model": run_config.model, "seed": run_config.seed,
               **run.grid, "status": "pending", **dict.fromkeys(FIGURES), "error": None}
        rows.append(row)
        todo.append((row, run_config, rd, run_models))
    index = _Index(path, list(config.sweep.grid), rows)
    index.write()
    asyncio.run(_play(todo, config.sweep.max_concurrent_runs, index, pool, on_update))
    return SweepResult(path, rows)


def resume_sweep(path: str | Path, *, on_update: OnUpdate | None = None,
                 runner: Mapping[str, Any] | None = None) -> SweepResult:
    """Finish every run of a sweep that has no summary.json (pending, interrupted or failed ones).

    `runner` overrides each run's runner settings, as for `resume_run`: where
    episodes run changes, what they give does not.
    """
    path = Path(path)
    if not is_sweep_dir(path) or not (path / "index.parquet").is_file():
        raise FileNotFoundError(f"{path}: not a sweep directory (no sweep.yaml and index.parquet)")
    src = path / "sweep.yaml"
    config = parse_config(yaml.safe_load(src.read_text()), source=str(src))
    if config.sweep is None:
        raise ConfigError(f"{src}: sweep: missing (not the config of a sweep)")
    rows = pq.read_table(path / "index.parquet").to_pylist()
    pool = _ModelPool()
    todo = []
    for row in rows:
        rd = RunDirectory(path / row["run_dir"])
        summary = rd.read_json("summary.json")
        if summary is not None:
            row.update(status="complete", error=None, **{k: summary[k] for k in FIGURES})
            continue
        if not rd.exists():
            raise FileNotFoundError(f"{rd.path}: the directory of run {row['name']} is missing (no config.yaml)")
        run_config = stored_config(rd, runner)
        todo.append((row, run_config, rd, pool.models_for(run_config)))
    index = _Index(path, list(config.sweep.grid), rows)
    index.write()
    asyncio.run(_play(todo, config.sweep.max_concurrent_runs, index, pool, on_update))
    return SweepResult(path, rows)


async def _play(todo: list[tuple[dict[str, Any], ExperimentConfig, RunDirectory, dict[str, ChatModel]]],
                limit: int, index: _Index, pool: _ModelPool, on_update: OnUpdate | None) -> None:
    gate = asyncio.Semaphore(limit)

    def mark(row: dict[str, Any], **changes: Any) -> None:
        row.update(changes)
        index.write()
        if on_update is not None:
            on_update(index.path, row)

    async def one(row: dict[str, Any], config: ExperimentConfig, rd: RunDirectory,
                  models: dict[str, ChatModel]) -> None:
        async with gate:
            mark(row, status="running", error=None)
            try:
                summary = await run_experiment_async(config, rd, models=models)
            except asyncio.CancelledError:
                mark(row, status="interrupted")
                raise
            except Exception as exc:  # one broken run must not stop the others
                text = str(exc).strip().splitlines()
                mark(row, status="failed", error=f"{type(exc).__name__}: {text[0] if text else ''}".rstrip(": "))
            else:
                mark(row, status="complete", **{k: summary[k] for k in FIGURES})

    try:
        await asyncio.gather(*(one(*item) for item in todo))
    finally:
        await pool.aclose()
