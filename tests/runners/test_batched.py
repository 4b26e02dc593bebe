"""Scripted members deciding together give the events they give one decision at a time."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from societas.agents.scripted import STRATEGIES
from societas.agents.scripted_batch import _FORMS, Histories, batch_form, register_batch_form, win_threshold
from societas.config import parse_config
from societas.environments.catalog import lookup
from societas.runners import batched
from societas.runners.run import resume_run, run_experiment
from societas.societies.society import make_society

_ORDER = [("phase", "ascending"), ("episode", "ascending"), ("round", "ascending"), ("seat", "ascending")]


def _config(tmp: Path, batch: bool, params: dict[str, Any], population: list[dict[str, Any]], **extra: Any):
    return parse_config({
        "name": "batched", "seed": 3, "output_dir": str(tmp), "model": "fake:random",
        "environment": {"id": "repeated-matrix-game", "params": params},
        "population": population,
        "matchmaking": {"self_play": True, "both_orders": True},
        "runner": {"batch_scripted": batch, "flush_every_rows": 700}, **extra,
    }, source="test")


def _tables(run: Path) -> tuple[pa.Table, pa.Table]:
    ev = pq.read_table(run / "events").drop(["run_id", "latency_s"]).sort_by(_ORDER)
    ep = pq.read_table(run / "episodes").drop(["run_id"]).sort_by([*_ORDER[:2], ("seat", "ascending")])
    return ev, ep


def _summary(s: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in s.items() if k not in ("run_id", "wall_s", "runner")}


@pytest.mark.parametrize("params", [
    {"game": "prisoners_dilemma", "rounds": 6},
    {"game": "battle_of_the_sexes", "rounds": 5, "random_letters": True},
    {"payoffs": [[[3, 3], [0, 5]], [[5, 0], [1, 1]]], "rounds": 3, "letters": ["A", "B"],
     "cooperative_option": None, "shuffle_options": False},
])
def test_every_strategy_gives_the_same_events_together_and_alone(tmp_path: Path, params: dict[str, Any]) -> None:
    population = [{"name": s, "policy": f"scripted:{s}"} for s in sorted(STRATEGIES)]  # aliases too
    runs = [run_experiment(_config(tmp_path / str(b), b, params, population), progress=False) for b in (False, True)]
    (alone, s_alone), (together, s_together) = runs
    assert _tables(alone.path) == _tables(together.path)
    assert _summary(s_alone) == _summary(s_together)
    assert _tables(together.path)[0].num_rows == len(STRATEGIES) ** 2 * 2 * params["rounds"]


def test_scripted_pairs_together_beside_language_model_episodes(tmp_path: Path) -> None:
    population = [{"name": "tft", "policy": "scripted:tit_for_tat"}, {"name": "rnd", "policy": "scripted:random"},
                  {"name": "model", "policy": "llm"}]
    params = {"game": "prisoners_dilemma", "rounds": 4}
    (alone, _), (together, _) = (run_experiment(_config(tmp_path / str(b), b, params, population), progress=False)
                                 for b in (False, True))
    ev_alone, ep_alone = _tables(alone.path)
    ev_together, ep_together = _tables(together.path)
    assert ev_alone == ev_together and ep_alone == ep_together
    assert set(ev_together.column("policy_kind").to_pylist()) == {"scripted", "llm"}


def test_a_resumed_batched_run_gives_the_same_events(tmp_path: Path) -> None:
    population = [{"name": s, "policy": f"scripted:{s}"} for s in ("random", "tft_noise20", "grim_trigger")]
    params = {"game": "prisoners_dilemma", "rounds": 50}
    rd, _ = run_experiment(_config(tmp_path, True, params, population), progress=False)
    whole = _tables(rd.path)
    parts = sorted((rd.path / "events").glob("part-*.parquet"))
    assert len(parts) > 1
    for folder in ("events", "episodes"):
        (rd.path / folder / parts[-1].name).unlink()
    (rd.path / "summary.json").unlink()
    resume_run(rd.path, progress=False)
    assert _tables(rd.path) == whole


def _data(h: Histories, p: int, t: int, payoffs: Any, seat: int) -> dict[str, Any]:
    own = ((payoffs[0][0][0], payoffs[0][1][0]), (payoffs[1][0][0], payoffs[1][1][0])) if seat == 0 else \
        ((payoffs[0][0][1], payoffs[1][0][1]), (payoffs[0][1][1], payoffs[1][1][1]))
    return {"own_history": tuple(int(x) for x in h.moves[p, :t]),
            "partner_history": tuple(int(x) for x in h.moves[p ^ 1, :t]),
            "own_rewards": tuple(float(x) for x in h.rewards[p, :t]), "payoffs": own}


@pytest.mark.parametrize("name", sorted(STRATEGIES))
def test_each_batch_form_decides_as_its_strategy(name: str) -> None:
    form = batch_form(name)
    assert form is not None
    payoffs = lookup("prisoners_dilemma").payoffs
    gen = np.random.default_rng(0)
    players, rounds = 40, 6
    moves = gen.integers(0, 2, size=(players, rounds)).astype(np.int8)
    rewards = np.zeros((players, rounds))
    for q in range(0, players, 2):
        for t in range(rounds):
            rewards[q, t], rewards[q + 1, t] = payoffs[moves[q, t]][moves[q + 1, t]]
    own0 = ((payoffs[0][0][0], payoffs[0][1][0]), (payoffs[1][0][0], payoffs[1][1][0]))
    own1 = ((payoffs[0][0][1], payoffs[1][0][1]), (payoffs[0][1][1], payoffs[1][1][1]))
    idx = np.arange(players)
    for t in range(rounds):
        h = Histories(moves=moves, rewards=rewards, win=np.tile([win_threshold(own0), win_threshold(own1)],
                                                                players // 2),
                      defected=(moves[idx ^ 1, :t] == 1).any(axis=1))
        u = gen.random(players) if form.draws(t) else None
        got = form.decide(h, idx, t, u)
        for p in range(players):
            replay = _Replay(None if u is None else u[p])
            assert got[p] == STRATEGIES[name](_data(h, p, t, payoffs, p % 2), replay), (name, t, p)
            assert replay.used == form.draws(t)


class _Replay:
    """A generator that hands out one given uniform and says whether it was asked."""

    def __init__(self, u: float | None) -> None:
        self.u, self.used = u, False

    def random(self) -> float:
        assert self.u is not None and not self.used
        self.used = True
        return self.u


def test_a_replaced_strategy_decides_alone(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(STRATEGIES, "tit_for_tat", lambda data, rng: 1)
    assert batch_form("tit_for_tat") is None
    assert batch_form("grim_trigger") is not None


def test_a_registered_strategy_with_a_batch_form_decides_together(tmp_path: Path,
                                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    def steady(data: Any, rng: np.random.Generator) -> int:  # answers a defection one time in three
        partner = data["partner_history"]
        if not partner:
            return 0
        u = rng.random()
        return int(partner[-1] == 1 and u < 1 / 3)

    def together(h: Histories, p: np.ndarray, t: int, u: np.ndarray | None) -> np.ndarray:
        if t == 0:
            return np.zeros(len(p), dtype=np.int8)
        return ((h.moves[p ^ 1, t - 1] == 1) & (u < 1 / 3)).astype(np.int8)

    monkeypatch.setitem(STRATEGIES, "steady", steady)  # undone after the test, as the form below
    monkeypatch.setitem(_FORMS, "steady", None)
    with pytest.raises(ValueError, match="register_strategy it first"):
        register_batch_form("unheard_of", together)
    register_batch_form("steady", together, draws=lambda t: t > 0)
    assert batch_form("steady") is not None
    population = [{"name": "s", "policy": "scripted:steady"}, {"name": "r", "policy": "scripted:random"}]
    params = {"game": "prisoners_dilemma", "rounds": 8}
    config = _config(tmp_path / "c", True, params, population)
    groups, rest = batched.split(make_society(config).phase(0))
    assert not rest and sum(map(len, groups)) == 4  # s-s, s-r, r-s, r-r: all played together
    runs = [run_experiment(_config(tmp_path / str(b), b, params, population), progress=False) for b in (False, True)]
    assert _tables(runs[0][0].path) == _tables(runs[1][0].path)
    monkeypatch.setitem(STRATEGIES, "steady", lambda data, rng: 1)  # replaced: its form no longer applies
    assert batch_form("steady") is None
