"""Naming-game analyzers on hand-built frames with known answers."""

from __future__ import annotations

import math

import pandas as pd

from societas.analysis.norms import (
    adoption,
    convention_share,
    critical_minority,
    interactions,
    success_rate,
    time_to_consensus,
    winner_distribution,
    winning_convention,
)


def _frame(episodes: dict[int, list[tuple[str, str, str, str]]], policy: dict[str, str] | None = None) -> pd.DataFrame:
    """Events of (agent_a, action_a, agent_b, action_b) interactions, one round each."""
    rows = []
    for episode, steps in episodes.items():
        for r, (a, x, b, y) in enumerate(steps):
            for seat, (agent, action) in enumerate(((a, x), (b, y))):
                rows.append({"phase": "play", "episode": episode, "round": r, "seat": seat, "agent": agent,
                             "action": action, "policy": (policy or {}).get(agent, "minimal")})
    return pd.DataFrame(rows)


# four agents: a population round is 4 interactions, consensus needs 12 successes in a row
FAIL = ("a0", "Q", "a1", "M")
HIT_M = ("a2", "M", "a3", "M")


def test_interactions_and_rounds() -> None:
    ev = _frame({0: [FAIL, HIT_M, FAIL, FAIL, HIT_M]})
    pairs = interactions(ev)
    assert pairs["success"].tolist() == [False, True, False, False, True]
    assert pairs["population_round"].tolist() == [0, 0, 0, 0, 1]
    assert success_rate(ev)["success_rate"].tolist() == [0.25, 1.0]


def test_convention_share_counts_answers() -> None:
    ev = _frame({0: [FAIL, HIT_M, FAIL, FAIL]})
    share = convention_share(ev)
    # answers: Q M M M Q M Q M -> M 5/8
    assert share["convention"].tolist() == ["M"]
    assert share["share"].tolist() == [5 / 8]


def test_time_to_consensus_needs_3n_successes() -> None:
    steps = [FAIL, FAIL] + [HIT_M] * 11 + [FAIL] + [HIT_M] * 12
    ev = _frame({0: steps, 1: [FAIL] * 20})
    t = time_to_consensus(ev)
    assert t["consensus"].tolist() == [True, False]
    assert t["consensus_interactions"].iloc[0] == len(steps)
    assert t["consensus_rounds"].iloc[0] == len(steps) / 4
    assert math.isnan(t["consensus_rounds"].iloc[1])


def test_winning_convention_and_distribution() -> None:
    hit_q = ("a0", "Q", "a1", "Q")
    ev = _frame({0: [HIT_M] * 12, 1: [HIT_M] * 12, 2: [hit_q] * 12, 3: [FAIL] * 12})
    won = winning_convention(ev)
    assert won["convention"].tolist()[:3] == ["M", "M", "Q"]
    assert won["consensus"].tolist() == [True, True, True, False]
    dist = winner_distribution(ev)
    assert dist["convention"].tolist() == ["M", "Q"]
    assert dist["runs"].tolist() == [2, 1]
    assert dist["ci_low"].iloc[0] < 2 / 3 < dist["ci_high"].iloc[0]


def test_adoption_excludes_committed() -> None:
    ev = _frame({0: [("c0", "M", "a1", "Q"), ("a1", "M", "a2", "M"), ("a3", "Q", "c0", "M"), ("a2", "M", "a3", "M")]},
                policy={"c0": "committed"})
    out = adoption(ev, "M")
    # non-committed answers: Q M M Q M M -> 4/6
    assert out["committed"].tolist() == [1]
    assert out["adoption"].iloc[0] == 4 / 6
    assert adoption(ev, "M", committed=[])["adoption"].iloc[0] == 6 / 8


def test_critical_minority_curve() -> None:
    table = pd.DataFrame({"committed": [1] * 4 + [2] * 4 + [3] * 10,
                          "adoption": [0.1, 0.2, 0.0, 0.96] + [0.99, 0.97, 0.1, 0.96] + [1.0] * 10})
    curve, critical = critical_minority(table)
    assert curve["flip_rate"].tolist() == [0.25, 0.75, 1.0]
    assert critical["critical"] == 2.0
    assert critical["low"] == 1.0
    # ten flips in ten runs: the interval's lower end (0.69) passes one half; four in four (0.40) would not
    assert critical["high"] == 3.0
    assert curve["ci_low"].iloc[2] > 0.5
