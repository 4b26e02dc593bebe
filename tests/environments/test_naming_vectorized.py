"""The vectorised minimal naming game: the rules hold at every interaction, the
statistics agree with the one-interaction-at-a-time model, a seed pins the
events, and the writer's batch size changes nothing."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow.parquet as pq
import pytest

from societas.analysis.norms import time_to_consensus, winning_convention
from societas.environments.naming import vectorized
from societas.environments.naming.minimal import LETTERS, MinimalNamingGame, simulate


def _replay(events: pd.DataFrame, game: MinimalNamingGame) -> None:
    """Check every interaction against the rule with plain Python sets, in event order."""
    names = list(game.names)
    start = {game.established} if game.swap else set()
    inv = [{game.committed_name} if i < game.committed else set(start) for i in range(game.n_agents)]
    streak, window = 0, game.stop_after_rounds * game.n_agents
    last_matching, met = -1, set()
    for (_, matching), pair in events.groupby(["round", "matching"], sort=True):
        s, l_ = (int(a.removeprefix("agent_")) for a in pair["agent"])
        word, answer = pair["action"]
        if matching != last_matching:
            last_matching, met = matching, set()
        assert s != l_ and not {s, l_} & met  # disjoint pairs within a matching
        met |= {s, l_}
        assert word in inv[s] or (not inv[s] and word in names)
        if not inv[s]:
            inv[s].add(word)
        success = word in inv[l_]
        assert (answer == word) == success
        assert set(pair["reward"]) == {100.0 if success else -50.0}
        if success:
            for who in (s, l_):
                if who >= game.committed:
                    inv[who] = {word}
            streak += 1
        else:
            assert answer in inv[l_] or (not inv[l_] and answer in names)
            if l_ >= game.committed:
                inv[l_].add(word)
            streak = 0
    if not game.swap and len(events) // 2 < game.budget:
        assert streak == window  # stopped exactly when the window filled


@pytest.mark.parametrize("game", [
    MinimalNamingGame(n_agents=24),
    MinimalNamingGame(n_agents=9, names=("F", "J")),
    MinimalNamingGame(n_agents=12, committed=3, committed_name="M", swap=True, established="Q", budget=300),
    MinimalNamingGame(n_agents=16, names=tuple(f"n{i}" for i in range(20)), budget=2000),  # W > 16: bit scan
])
def test_every_interaction_follows_the_rule(game: MinimalNamingGame) -> None:
    for seed in range(3):
        _replay(vectorized.simulate(game, seed), game)


def test_consensus_statistics_agree_with_the_minimal_model() -> None:
    # Random matchings instead of independent random pairs: the same law of
    # consensus times within sampling error (300 runs each: means 14.7 and 15.6
    # population rounds at seeds 0-299, N=24, W=10).
    game = MinimalNamingGame(n_agents=24, names=LETTERS)
    seeds = range(120)
    minimal = time_to_consensus(pd.concat([simulate(game, seed=s, episode=s) for s in seeds]))
    vec = [vectorized.run(game, s) for s in seeds]
    assert minimal["consensus"].all() and all(o.consensus for o in vec)
    a = minimal["consensus_rounds"].to_numpy()
    b = np.array([o.consensus_interactions for o in vec]) / game.n_agents
    assert abs(np.median(b) / np.median(a) - 1) < 0.15
    assert abs(b.mean() / a.mean() - 1) < 0.15
    assert len({o.convention for o in vec}) >= 6  # no name is favoured: most of the ten win somewhere


def test_a_seed_pins_the_events() -> None:
    game = MinimalNamingGame(n_agents=24)
    ev = vectorized.simulate(game, seed=7)
    out = vectorized.run(game, 7)
    assert (out.interactions, out.consensus_interactions, out.convention) == PINNED_7
    assert "".join(ev["action"].head(12)) == PINNED_7_ACTIONS
    pd.testing.assert_frame_equal(ev, vectorized.simulate(game, seed=7))
    assert not ev.equals(vectorized.simulate(game, seed=8))
    t = time_to_consensus(ev)
    assert t["consensus_interactions"].iloc[0] == out.consensus_interactions
    assert winning_convention(ev)["convention"].iloc[0] == out.convention


PINNED_7 = (345, 345, "Q")
PINNED_7_ACTIONS = "PDXMPQQJFDPF"


def test_batch_size_does_not_change_the_events(tmp_path: Path) -> None:
    game = MinimalNamingGame(n_agents=101, budget=2000)  # ends inside a matching
    tables = []
    for rows in (1, 64, 1000, 1 << 20):
        path = tmp_path / f"events-{rows}.parquet"
        out = vectorized.write_events(game, 5, path, batch_rows=rows)
        tables.append(pq.read_table(path))
        assert out.interactions == 2000 and not out.consensus and tables[-1].num_rows == 4000
    assert pq.ParquetFile(tmp_path / "events-64.parquet").num_row_groups > 1
    assert all(t.equals(tables[0]) for t in tables[1:])
    frame = tables[0].to_pandas()
    assert frame["agent"].between(0, 100).all() and (frame["round"].diff().fillna(0) >= 0).all()


def test_rejects_more_names_than_a_bitset_holds() -> None:
    game = MinimalNamingGame(names=tuple(f"n{i}" for i in range(65)))
    with pytest.raises(ValueError, match="at most 64"):
        vectorized.run(game, 0)
