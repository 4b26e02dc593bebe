"""Literal and functional theory-of-mind metrics on small hand-computed tables."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest

from societas.analysis import tom_partner as tp


def _events() -> pd.DataFrame:
    # Episode 0: 4 rounds vs always_rock; predictions right, wrong, right, none.
    # Episode 1: 2 rounds vs always_rock; both predictions right.
    rows = []
    plays = [(0, "paper", "rock", 0.0), (0, "rock", "paper", 1.0), (0, "paper", "rock", 0.0),
             (0, "scissors", None, 2.0), (1, "paper", "rock", 0.0), (1, "paper", "rock", 0.0)]
    for i, (ep, move, pred, regret) in enumerate(plays):
        reward = 1.0 - regret
        rows.append({"phase": 0, "episode": ep, "round": i + 1 if ep == 0 else i - 3, "agent": "a", "policy": "x",
                     "env": "partner-adaptation", "prediction": pred,
                     "info": json.dumps({"partner_policy": "always_rock", "game": "rps", "move": move,
                                         "partner_move": "rock", "best_response": "paper", "br_reward": 1.0,
                                         "expected_reward": reward, "regret": regret, "reward": reward})})
    rows.append({"phase": 0, "episode": 9, "round": 1, "agent": "b", "policy": "y", "env": "other",
                 "prediction": None, "info": None})
    return pd.DataFrame(rows)


def test_rounds_table() -> None:
    r = tp.rounds_table(_events())
    assert len(r) == 6 and set(r["partner_policy"]) == {"always_rock"}
    assert r["correct"].iloc[:3].tolist() == [1.0, 0.0, 1.0] and np.isnan(r["correct"].iloc[3])
    assert tp.rounds_table(_events().iloc[-1:]).empty


def test_summary_by_episode() -> None:
    s = tp.summary(tp.rounds_table(_events()), late_window=2).iloc[0]
    assert s["episodes"] == 2
    assert s["accuracy"] == pytest.approx((2 / 3 + 1) / 2)  # per-episode accuracy, then the mean
    assert s["total_regret"] == pytest.approx((3 + 0) / 2)
    assert s["late_regret"] == pytest.approx((1.0 + 0.0) / 2)  # ep 0: rounds 3-4 -> (0+2)/2
    assert s["regret"] == pytest.approx((0.75 + 0) / 2)
    assert s["accuracy_low"] <= s["accuracy"] <= s["accuracy_high"]


def test_over_rounds() -> None:
    o = tp.over_rounds(tp.rounds_table(_events()), window=2)
    assert o["round"].tolist() == [1, 2, 3, 4]
    assert o["regret"].tolist() == [0.0, 0.5, 0.0, 2.0]
    assert o["cumulative_regret"].tolist() == [0.0, 0.5, 0.5, 2.5]
    assert o["regret_windowed"].tolist() == [0.0, 0.25, 0.25, 1.0]
    assert o["accuracy"].tolist()[:3] == [1.0, 0.5, 1.0]


def test_js_divergence() -> None:
    assert tp.js_divergence([1, 0], [1, 0]) == 0.0
    assert tp.js_divergence([1, 0], [0, 1]) == pytest.approx(1.0)
    # p = (1/2, 1/2), q = (1, 0): m = (3/4, 1/4); (KL(p||m) + KL(q||m)) / 2
    expected = (0.5 * np.log2(0.5 / 0.75) + 0.5 * np.log2(0.5 / 0.25) + np.log2(1 / 0.75)) / 2
    assert tp.js_divergence([1, 1], [2, 0]) == pytest.approx(expected)
    assert np.isnan(tp.js_divergence([0, 0], [1, 0]))
    r = tp.rounds_table(_events())
    # predicted rock x4, paper x1 vs the partner's rock in those 5 rounds
    assert tp.prediction_divergence(r) == pytest.approx(tp.js_divergence([4, 1], [5, 0]))
