"""Sweeps: expansion and its errors, a sweep through the CLI, bounded concurrency, failures and resume."""

from __future__ import annotations

import asyncio
import re
import subprocess
import sys
from pathlib import Path
from typing import Any

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
import yaml
from typer.testing import CliRunner

from societas.analysis.load import comparable, load_run, load_sweep, load_sweep_events
from societas.cli import app
from societas.config import ConfigError, load_config, parse_config
from societas.llm.base import ChatRequest, ChatResult
from societas.llm.fake import first_choice
from societas.llm.specs import ModelOptions, ModelSpec, register_backend
from societas.runners.run import run_experiment
from societas.sweeps import expand, parse_seeds, pin_axes, resume_sweep, run_sweep

BASE = """
name: sw
environment: {id: repeated-matrix-game, params: {game: prisoners_dilemma, rounds: 3}}
population:
  - {name: tft, policy: "scripted:tit_for_tat"}
  - {name: rnd, policy: "scripted:random"}
  - {name: llm, policy: llm}
llm: {cache: false}
runner: {flush_every_rows: 20}
"""


def write(tmp_path: Path, sweep: dict[str, Any], base: str = BASE) -> Path:
    p = tmp_path / "cfg.yaml"
    p.write_text(base + yaml.safe_dump({"sweep": sweep}))
    return p


# -- expansion ----------------------------------------------------------------------------------


def test_expansion_product_names_and_values(tmp_path: Path) -> None:
    path = write(tmp_path, {"models": ["fake:first", "fake:random"], "seeds": [0, 1, 2],
                            "grid": {"environment.params.rounds": [2, 5], "population[1].temperature": [0.0, 0.5]}})
    cfg = load_config(path)
    assert list(cfg.sweep.grid) == ["environment.params.rounds", "population.1.temperature"]
    runs = expand(cfg, source=str(path))
    assert len(runs) == 2 * 3 * 2 * 2
    assert runs[0].name == "sw-model_fake-first-seed_0-rounds_2-temperature_0.0"
    assert runs[-1].name == "sw-model_fake-random-seed_2-rounds_5-temperature_0.5"
    assert len({r.name for r in runs}) == len(runs)
    assert all(re.fullmatch(r"[A-Za-z0-9_.-]+", r.name) for r in runs)
    # models outermost, then seeds, then the grid in the order written
    assert [(r.config.model, r.config.seed) for r in runs[:5]] == [("fake:first", 0)] * 4 + [("fake:first", 1)]
    last = runs[-1]
    assert last.config.environment.params == {"game": "prisoners_dilemma", "rounds": 5}
    assert last.config.population[1].temperature == 0.5 and last.config.population[0].temperature is None
    assert last.grid == {"environment.params.rounds": 5, "population.1.temperature": 0.5}
    assert last.config.sweep is None and last.config.name == last.name
    # the base config is untouched
    assert cfg.environment.params["rounds"] == 3


def test_labels_fall_back_to_positions_and_models_drop_urls(tmp_path: Path) -> None:
    path = write(tmp_path, {"models": ["openai:org/m@http://127.0.0.1:8000/v1", "openai:org/m@http://h2:8000/v1"],
                            "grid": {"environment.params.rounds": [2, 3], "llm.temperature": [0.5, "0.5"]}})
    names = [r.name for r in expand(load_config(path), source=str(path))]
    assert names[:2] == ["sw-model_0-rounds_2-temperature_0", "sw-model_0-rounds_2-temperature_1"]
    assert names[-1] == "sw-model_1-rounds_3-temperature_1"
    path = write(tmp_path, {"models": ["openai:org/m@http://127.0.0.1:8000/v1", "openai:other@http://h2:8000/v1"],
                            "grid": {"environment.params.game": ["prisoners_dilemma", "battle_of_the_sexes"]}})
    names = [r.name for r in expand(load_config(path), source=str(path))]
    assert names[0] == "sw-model_openai-m-game_prisoners_dilemma"
    assert names[-1] == "sw-model_openai-other-game_battle_of_the_sexes"


BAD_PATHS = [
    ({"environment.parms.rounds": [2]}, "sweep.grid.environment.parms.rounds: environment has no field 'parms'"),
    ({"seed": [1, 2]}, "sweep.grid.seed: cannot be part of the grid (list seeds in sweep.seeds)"),
    ({"population.7.temperature": [0.1]}, "sweep.grid.population.7.temperature: population is a list of 3"),
    ({"environment.id.x": [1]}, "sweep.grid.environment.id.x: environment.id is a single value"),
    ({"matchmaking.graph.p": [0.1]}, "sweep.grid.matchmaking.graph.p: matchmaking.graph is not set"),
    ({"environment.params": [{"rounds": 2}], "environment.params.rounds": [2]}, "sweep.grid.environment.params.rounds: "
     "inside sweep.grid.environment.params"),
    ({"environment.params.rounds": [2, 0]}, "sweep run with environment.params.rounds=0: "
     "environment.params: rounds must be a positive integer"),
    ({"environment.params.speed": [1]}, "sweep run with environment.params.speed=1: "
     "environment.params:"),
]


@pytest.mark.parametrize(("grid", "expected"), BAD_PATHS)
def test_bad_path_or_value_is_one_line(tmp_path: Path, grid: dict[str, Any], expected: str) -> None:
    path = write(tmp_path, {"grid": grid})
    with pytest.raises(ConfigError) as info:
        expand(load_config(path), source=str(path))
    msg = str(info.value)
    assert msg.startswith(f"{path}: {expected}"), msg
    assert "\n" not in msg


def test_vary_and_grid_cannot_share_a_parameter(tmp_path: Path) -> None:
    path = write(tmp_path, {"grid": {"environment.params.rounds": [2, 4]}},
                 base=BASE.replace("rounds: 3}", "rounds: 3}, vary: {rounds: [1, 2]}"))
    with pytest.raises(ConfigError, match=r"environment\.vary already varies 'rounds'"):
        expand(load_config(path), source=str(path))


@pytest.mark.parametrize(("sweep", "expected"), [
    ({}, "sweep: lists no models, seeds or grid values"),
    ({"seeds": [1, 1]}, "sweep.seeds: 1 is listed twice"),
    ({"grid": {"environment.params.rounds": []}}, "give at least one value"),
    ({"grid": {"environment..rounds": [1]}}, "not a dotted path"),
    ({"models": ["nonsense"]}, "sweep.models[0]: model spec 'nonsense'"),
    ({"seeds": [0], "max_concurrent_runs": 0}, "sweep.max_concurrent_runs"),
])
def test_bad_sweep_section_fails_at_load(tmp_path: Path, sweep: dict[str, Any], expected: str) -> None:
    path = write(tmp_path, sweep)
    with pytest.raises(ConfigError) as info:
        load_config(path)
    assert expected in str(info.value) and "\n" not in str(info.value)


def test_models_axis_satisfies_members_that_need_a_model() -> None:
    data = {"name": "pop", "environment": {"id": "repeated-matrix-game"}, "matchmaking": {"kind": "population"},
            "population": [{"name": "a", "policy": "llm", "count": 2}]}
    with pytest.raises(ConfigError, match="need a model"):
        parse_config(data)
    cfg = parse_config(dict(data, sweep={"models": ["fake:first"]}))
    assert [r.config.model for r in expand(cfg)] == ["fake:first"]


def test_command_line_flags_compose(tmp_path: Path) -> None:
    assert parse_seeds("0-2,7") == [0, 1, 2, 7] and parse_seeds("5") == [5]
    for bad in ("2-1", "a", "1,1", "-3"):
        with pytest.raises(ConfigError, match="--seeds"):
            parse_seeds(bad)
    path = write(tmp_path, {"models": ["fake:first", "fake:random"], "seeds": [0, 1]})
    cfg = load_config(path)
    assert pin_axes(cfg).sweep == cfg.sweep
    pinned = pin_axes(cfg, model="fake:echo", seed=1)
    assert pinned.sweep.models == ["fake:echo"] and pinned.sweep.seeds == [1]
    assert pin_axes(cfg, seeds=[4, 5]).sweep.seeds == [4, 5]
    with pytest.raises(ConfigError, match="--seed and --seeds"):
        pin_axes(cfg, seed=1, seeds=[2])
    plain = load_config("pd_tournament")
    assert pin_axes(plain, seed=3) is plain
    assert [r.config.seed for r in expand(pin_axes(plain, seeds=[2, 3]))] == [2, 3]


def test_cli_bad_path_exits_2_and_writes_nothing(tmp_path: Path) -> None:
    path = write(tmp_path, {"grid": {"society.generatoins": [3, 5]}})
    proc = subprocess.run([sys.executable, "-m", "societas.cli", "run", str(path), "--out", str(tmp_path / "runs")],
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode == 2 and "Traceback" not in proc.stderr
    lines = [ln for ln in proc.stderr.splitlines() if ln.strip()]
    assert len(lines) == 1 and f"{path}: sweep.grid.society.generatoins: society has no field" in lines[0], lines
    assert not (tmp_path / "runs").exists()


# -- a sweep through the command line -----------------------------------------------------------


def test_sweep_through_the_cli(tmp_path: Path) -> None:
    path = write(tmp_path, {"seeds": [0, 1], "grid": {"environment.params.rounds": [2, 3]},
                            "max_concurrent_runs": 3})
    cli = CliRunner()
    result = cli.invoke(app, ["run", str(path), "--out", str(tmp_path / "runs"), "--model", "fake:random"])
    assert result.exit_code == 0, result.output
    (sweep_dir,) = (tmp_path / "runs").iterdir()
    assert sweep_dir.name.startswith("sw-")
    names = ["sw-seed_0-rounds_2", "sw-seed_0-rounds_3", "sw-seed_1-rounds_2", "sw-seed_1-rounds_3"]
    assert sorted(p.name for p in sweep_dir.iterdir() if p.is_dir()) == names
    assert {"sweep.yaml", "index.parquet", "index.csv"} <= {p.name for p in sweep_dir.iterdir()}
    assert "4 runs: 4 complete" in result.output

    index = load_sweep(sweep_dir)
    assert index["name"].tolist() == names
    assert index.columns.tolist() == ["name", "run_dir", "model", "seed", "environment.params.rounds", "status",
                                      "episodes", "decisions", "llm_calls", "invalid_actions", "wall_s", "error"]
    assert (index["status"] == "complete").all() and (index["model"] == "fake:random").all()
    assert index["environment.params.rounds"].tolist() == [2, 3, 2, 3] and index["seed"].tolist() == [0, 0, 1, 1]
    assert index["decisions"].tolist() == [9 * 2 * r for r in (2, 3, 2, 3)]
    assert pd.read_csv(sweep_dir / "index.csv")["name"].tolist() == names
    assert load_config(sweep_dir / "sweep.yaml").sweep.seeds == [0, 1]

    events = load_sweep_events(sweep_dir)
    assert len(events) == index["decisions"].sum()
    assert events.groupby("run_id", sort=False)["round"].max().tolist() == [2, 3, 2, 3]  # rounds count from 1
    by_point = events.groupby(["environment.params.rounds", "seed"]).size()
    assert by_point.loc[(3, 1)] == 54
    assert set(events["run_model"]) == {"fake:random"} and set(events["model"].dropna()) == {"fake:random"}
    slim = load_sweep_events(sweep_dir, columns=["reward"])
    assert "action" not in slim and slim["reward"].tolist() == events["reward"].tolist()

    # a run inside the sweep gives the events of the same config run alone
    alone = load_config(tmp_path / "cfg.yaml", seed=1, model="fake:random", output_dir=str(tmp_path / "alone"))
    alone = alone.model_copy(update={"sweep": None, "environment": alone.environment.model_copy(
        update={"params": {"game": "prisoners_dilemma", "rounds": 3}})})
    rd, _ = run_experiment(alone, progress=False)
    pd.testing.assert_frame_equal(comparable(load_run(rd.path).events),
                                  comparable(load_run(sweep_dir / "sw-seed_1-rounds_3").events))

    shown = cli.invoke(app, ["analyze", str(sweep_dir)])
    assert shown.exit_code == 0, shown.output
    assert "environment.params.rounds" in shown.output and all(n in shown.output for n in names)
    assert "incomplete" not in shown.output


def test_resume_finishes_an_interrupted_and_a_pending_run(tmp_path: Path) -> None:
    path = write(tmp_path, {"seeds": [0, 1, 2], "grid": {"environment.params.rounds": [3]}})
    cli = CliRunner()
    done = cli.invoke(app, ["run", str(path), "--out", str(tmp_path), "--quiet", "--model", "fake:random"])
    assert done.exit_code == 0, done.output
    sweep_dir = next(p for p in tmp_path.iterdir() if p.name.startswith("sw-"))
    cut, pending, kept = (sweep_dir / f"sw-seed_{s}-rounds_3" for s in (0, 1, 2))
    before = {p: comparable(load_run(p).events) for p in (cut, pending, kept)}
    parts = sorted((cut / "events").glob("part-*.parquet"))
    assert len(parts) >= 3
    # As if the process died: one run lost its last part and never wrote a summary,
    # the next had not started (its directory holds only config.yaml), the index is stale.
    parts[-1].unlink()
    (cut / "summary.json").unlink()
    for f in [*pending.glob("*/part-*.parquet"), pending / "checkpoint.json", pending / "summary.json"]:
        f.unlink()
    table = pq.read_table(sweep_dir / "index.parquet")
    status = ["running", "pending", "complete"]
    pq.write_table(table.set_column(table.schema.get_field_index("status"), "status", pa.array(status)),
                   sweep_dir / "index.parquet")
    assert load_sweep(sweep_dir)["status"].tolist() == status
    assert 0 < len(load_run(cut).events) < len(before[cut]) and load_run(pending).events.empty

    result = cli.invoke(app, ["resume", str(sweep_dir)])
    assert result.exit_code == 0, result.output
    assert "running   sw-seed_0-rounds_3" in result.output and "running   sw-seed_1-rounds_3" in result.output
    assert "sw-seed_2-rounds_3" not in result.output
    index = load_sweep(sweep_dir)
    assert index["status"].tolist() == ["complete"] * 3 and index["decisions"].tolist() == [54] * 3
    for p, events in before.items():
        pd.testing.assert_frame_equal(comparable(load_run(p).events), events)


# -- concurrency, shared models, failures -------------------------------------------------------


class Outage(Exception):
    """A model failure that is not a ModelError, so it fails the run instead of playing the default."""


class YieldingModel:
    """Answers like fake:first but yields to the event loop on every call; `flaky` ones fail when told."""

    made: list[YieldingModel] = []  # noqa: RUF012 - a test's record of instances
    failing = True

    def __init__(self, spec: ModelSpec, options: ModelOptions) -> None:
        self.name = str(spec)
        self.calls = 0
        self.closed = False
        YieldingModel.made.append(self)

    async def complete(self, request: ChatRequest) -> ChatResult:
        await asyncio.sleep(0)
        self.calls += 1
        if self.name.endswith("flaky") and YieldingModel.failing and self.calls > 10:
            raise Outage("endpoint gone")
        return ChatResult(text=first_choice(request), model=self.name)

    async def aclose(self) -> None:
        self.closed = True


def test_runs_are_bounded_share_models_and_fail_alone(tmp_path: Path) -> None:
    register_backend("yieldtest", YieldingModel)
    YieldingModel.made.clear()
    YieldingModel.failing = True
    path = write(tmp_path, {"models": ["yieldtest:ok", "yieldtest:flaky"], "seeds": [0, 1, 2],
                            "max_concurrent_runs": 2})
    status: dict[str, str] = {}
    most = [0]

    def seen(sweep_dir: Path, row: dict[str, Any]) -> None:
        status[row["name"]] = row["status"]
        most[0] = max(most[0], sum(s == "running" for s in status.values()))

    result = run_sweep(load_config(path, output_dir=str(tmp_path / "runs")), source=str(path), on_update=seen)
    assert most[0] == 2
    assert len(YieldingModel.made) == 2 and all(m.closed for m in YieldingModel.made)  # one per spec, closed
    index = load_sweep(result.path)
    ok, flaky = index[index["model"] == "yieldtest:ok"], index[index["model"] == "yieldtest:flaky"]
    assert (ok["status"] == "complete").all() and ok["error"].isna().all()
    assert (flaky["status"] == "failed").all()
    assert flaky["error"].str.fullmatch("Outage: endpoint gone").all()
    assert {r["name"] for r in result.failed} == set(flaky["name"])

    YieldingModel.failing = False
    again = resume_sweep(result.path)
    assert not again.failed and (load_sweep(result.path)["status"] == "complete").all()
    for run_dir in flaky["run_dir"]:
        rd, _ = run_experiment(load_config(Path(run_dir) / "config.yaml", output_dir=str(tmp_path / "alone")),
                               progress=False)
        pd.testing.assert_frame_equal(comparable(load_run(rd.path).events), comparable(load_run(run_dir).events))


def test_bundled_sweep_expands_without_a_model() -> None:
    cfg = load_config("pd_sweep")
    runs = expand(cfg)
    assert len(runs) == len(cfg.sweep.seeds) * len(cfg.sweep.grid["environment.params.rounds"]) >= 6
    assert all(r.config.skipped_members() == ["llm"] for r in runs)
