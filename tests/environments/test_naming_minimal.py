"""The minimal naming game: stopping rule, committed agents, swap setup, determinism."""

from __future__ import annotations

import pandas as pd
import pytest

from societas.analysis.norms import adoption, interactions, time_to_consensus, winning_convention
from societas.environments.naming import MinimalNamingGame, simulate


def test_runs_to_consensus_and_stops_after_3n_successes() -> None:
    ev = simulate(MinimalNamingGame(n_agents=10), seed=1)
    pairs = interactions(ev)
    assert pairs["success"].tail(30).all()
    assert not pairs["success"].iloc[-31]  # it stops as soon as the window is full
    t = time_to_consensus(ev)
    assert t["consensus"].iloc[0]
    assert t["consensus_interactions"].iloc[0] == len(pairs)
    assert set(ev["reward"]) <= {100.0, -50.0}
    assert (ev.groupby("round")["reward"].first() == 100.0).tolist() == pairs["success"].tolist()


def test_same_seed_same_events() -> None:
    game = MinimalNamingGame(n_agents=8, names=("F", "J"))
    pd.testing.assert_frame_equal(simulate(game, 3), simulate(game, 3))
    assert not simulate(game, 3).equals(simulate(game, 4))


def test_committed_agents_never_change_and_swap_starts_established() -> None:
    game = MinimalNamingGame(n_agents=12, committed=3, committed_name="M", swap=True, established="Q", budget=400)
    ev = simulate(game, seed=0)
    committed = ev[ev["policy"] == "committed"]
    assert set(committed["agent"]) <= {"agent_0", "agent_1", "agent_2"}
    assert (committed["action"] == "M").all()
    first = ev[(ev["round"] == 0) & (ev["policy"] == "minimal")]
    assert set(first["action"]) <= {"Q"}
    assert set(ev["action"]) <= {"Q", "M"}


def test_large_minority_flips_the_swap_convention() -> None:
    game = MinimalNamingGame(n_agents=12, committed=6, committed_name="M", swap=True, established="Q", budget=2000)
    ev = simulate(game, seed=2)
    assert winning_convention(ev)["convention"].iloc[0] == "M"
    assert adoption(ev, "M")["adoption"].iloc[0] >= 0.95


def test_rejects_bad_parameters() -> None:
    with pytest.raises(ValueError):
        MinimalNamingGame(names=("Q",))
    with pytest.raises(ValueError):
        MinimalNamingGame(committed=2, committed_name="Z")
    with pytest.raises(ValueError):
        MinimalNamingGame(swap=True)


def test_swap_runs_to_its_budget() -> None:
    game = MinimalNamingGame(n_agents=12, committed=1, committed_name="M", swap=True, established="Q", budget=300)
    assert simulate(game, seed=5)["round"].nunique() == 300
