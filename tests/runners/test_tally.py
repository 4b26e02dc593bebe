"""summary.json from the run's running tallies: the same as the events on disk say, after a kill and resume too."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import time
from fractions import Fraction
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pytest
import yaml

from societas.config import parse_config
from societas.runners.run import run_experiment
from societas.runners.rundir import EVENT_SCHEMA
from societas.runners.tally import TALLY_COLUMNS, RunTally


def _events(agents: list[str], rewards: list[float | None], cooperated: list[bool | None] | None = None,
            episode: int = 0) -> pa.Table:
    n = len(agents)
    columns: dict[str, Any] = {
        "phase": [0] * n, "episode": [episode] * n, "agent": agents, "reward": rewards,
        "cooperated": cooperated or [None] * n, "valid": [True] * n, "prediction_valid": [None] * n,
        "retries": [0] * n, "prompt_tokens": [1] * n, "completion_tokens": [2] * n,
    }
    return pa.table({c: pa.array(columns[c], EVENT_SCHEMA.field(c).type) for c in TALLY_COLUMNS})


def _exact_means(agents: list[str], rewards: list[float]) -> dict[str, float]:
    sums: dict[str, Fraction] = {}
    counts: dict[str, int] = {}
    for a, r in zip(agents, rewards, strict=True):
        sums[a] = sums.get(a, Fraction(0)) + Fraction(r)
        counts[a] = counts.get(a, 0) + 1
    return {a: round(float(sums[a] / counts[a]), 6) for a in sums}


def test_rewards_are_summed_exactly_whatever_the_parts() -> None:
    # Float addition in order would give 0 for "big" (1e16 + 1 rounds to 1e16); the exact mean is 1/3.
    whole = RunTally()
    whole.add_events(_events(["big", "big", "big"], [1e16, 1.0, -1e16]))
    split = RunTally()
    split.add_events(_events(["big"], [-1e16], episode=1))
    split.add_events(_events(["big", "big"], [1e16, 1.0], episode=2))
    assert whole.per_agent()["big"]["mean_reward"] == split.per_agent()["big"]["mean_reward"] == 0.333333


@pytest.mark.parametrize("kind", ["integers", "halves", "decimals", "wide"])
def test_mean_rewards_are_the_exact_means_in_any_order(kind: str) -> None:
    gen = np.random.default_rng(7)
    n = 1500
    agents = [f"a-{i}" for i in gen.integers(0, 40, n)]
    values = {"integers": gen.integers(-10, 11, n).astype(float), "halves": gen.integers(-40, 41, n) / 2,
              "decimals": np.round(gen.normal(0, 3, n), 2),
              "wide": gen.normal(0, 1, n) * 10.0 ** gen.integers(-8, 12, n)}[kind].tolist()
    want = _exact_means(agents, values)
    tallies = []
    for cut in (n, 500, 17):
        order = gen.permutation(n)
        tally = RunTally()
        for e, start in enumerate(range(0, n, cut)):
            rows = order[start: start + cut]
            tally.add_events(_events([agents[i] for i in rows], [values[i] for i in rows], episode=e))
        tallies.append(tally.per_agent())
        assert {a: v["mean_reward"] for a, v in tallies[-1].items()} == want
        assert tally.decisions == n and tally.prompt_tokens == n and tally.completion_tokens == 2 * n
    assert tallies[0] == tallies[1] == tallies[2]


def test_missing_rewards_and_cooperation_are_left_out_of_the_means() -> None:
    tally = RunTally()
    tally.add_events(_events(["a", "a", "a", "b"], [1.0, None, 2.0, None], [True, None, False, None]))
    agents = tally.per_agent()
    assert agents["a"] == {"decisions": 2, "mean_reward": 1.5, "cooperation_rate": 0.5, "invalid": 0}
    assert agents["b"] == {"decisions": 0, "mean_reward": None, "cooperation_rate": None, "invalid": 0}
    assert tally.decisions == 4 and tally.episodes == 1
    tally.add_events(_events(["c", "d"], [0.1, None], episode=1))  # not dyadic: the exact path
    assert tally.per_agent()["c"]["mean_reward"] == 0.1 and tally.per_agent()["d"]["mean_reward"] is None
    assert tally.episodes == 2


def _data(out: Path) -> dict[str, Any]:
    strategies = ("tit_for_tat", "random", "always_defect", "win_stay_lose_shift", "grim_trigger")
    population: list[dict[str, Any]] = [{"name": f"s{i:02d}", "policy": f"scripted:{strategies[i % 5]}"}
                                        for i in range(24)]
    population.append({"name": "model", "policy": "llm"})
    return {
        "name": "killed", "seed": 11, "model": "fake:random", "output_dir": str(out),
        "environment": {"id": "repeated-matrix-game", "params": {"game": "prisoners_dilemma", "rounds": 10}},
        "population": population,
        "matchmaking": {"self_play": False, "both_orders": True},
        "runner": {"batch_scripted": False, "flush_every_rows": 400, "flush_every_s": 60},
    }


def _summary(run: Path) -> dict[str, Any]:
    summary = json.loads((run / "summary.json").read_text())
    return {k: v for k, v in summary.items() if k not in ("run_id", "wall_s")}


@pytest.mark.slow
def test_a_run_killed_and_resumed_gives_the_summary_of_an_uninterrupted_one(tmp_path: Path) -> None:
    reference, _ = run_experiment(parse_config(_data(tmp_path / "whole"), source="test"), progress=False)
    config = tmp_path / "killed.yaml"
    config.write_text(yaml.safe_dump(_data(tmp_path / "runs")))
    cli = [sys.executable, "-m", "societas.cli"]
    proc = subprocess.Popen([*cli, "run", str(config), "--quiet"], stdout=subprocess.DEVNULL,
                            stderr=subprocess.PIPE, text=True)
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline and proc.poll() is None:
        if len(list((tmp_path / "runs").glob("*/events/part-*.parquet"))) >= 3:
            break
        time.sleep(0.005)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    (run,) = (p for p in (tmp_path / "runs").iterdir() if p.is_dir())
    assert not (run / "summary.json").exists(), "the run finished before it was killed"
    parts = len(list((run / "events").glob("part-*.parquet")))
    resumed = subprocess.run([*cli, "resume", str(run), "--quiet"], capture_output=True, text=True, timeout=300)
    assert resumed.returncode == 0, resumed.stderr
    assert len(list((run / "events").glob("part-*.parquet"))) > parts >= 3  # both processes wrote parts
    got, want = _summary(run), _summary(reference.path)
    assert got == want
    assert got["decisions"] == 25 * 24 * 10 * 2 and got["llm_calls"] > 0
