"""Round-by-round metrics on two hand-built episodes, every number computed by hand.

Episode 0 (4 rounds), PD payoffs 8/0/10/5:   A: C C D C   B: D C D D
Episode 1 (3 rounds), C in seat 0:           C: D D C     A: C D C
"""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest

from societas.analysis import cooperation as c

try:
    from tests.analysis.analysis_tables import episode, pd_events
except ImportError:  # run from inside tests/
    from analysis_tables import episode, pd_events  # type: ignore[no-redef]


def by_agent(df: pd.DataFrame) -> pd.DataFrame:
    return df.set_index("agent")


def test_paired_rounds_sees_the_partner_and_the_previous_round() -> None:
    p = c.paired_rounds(pd_events())
    a0 = p[(p["agent"] == "A") & (p["episode"] == 0)]
    assert a0["partner_cooperated"].tolist() == [0, 1, 0, 0]
    assert a0["prev_partner_cooperated"].tolist()[1:] == [0, 1, 0]
    assert math.isnan(a0["prev_partner_cooperated"].iloc[0])
    assert len(p) == 14


def test_conditional_cooperation() -> None:
    t = by_agent(c.conditional_cooperation(pd_events()))
    # A: after partner C -> [D]; after partner D -> [C, C (ep 0), D, C (ep 1)]
    assert t.loc["A"].tolist() == [0.0, 1, 0.75, 4]
    # B: after A's C -> [C, D]; after A's D -> [D]
    assert t.loc["B"].tolist() == [0.5, 2, 0.0, 1]
    # C: after A's C -> [D]; after A's D -> [C]
    assert t.loc["C"].tolist() == [0.0, 1, 1.0, 1]


def test_reciprocity_and_forgiveness() -> None:
    one = by_agent(c.reciprocity_forgiveness(pd_events(), k=1))
    # A answers partner defections with C, C, D, C; the partner's defections at rounds
    # before the last: ep 0 rounds 1, 3 (next: C, C), ep 1 rounds 1, 2 (next: D, C)
    assert one.loc["A"].tolist() == [0.25, 4, 0.75, 4]
    assert one.loc["B"].tolist() == [1.0, 1, 0.0, 1]
    assert one.loc["C"].tolist() == [0.0, 1, 1.0, 1]
    two = by_agent(c.reciprocity_forgiveness(pd_events(), k=2))
    assert two.loc["A", "forgiveness"] == 1.0  # ep 1, round 1: D then C within two rounds
    assert two.loc["B", "forgiveness"] == 0.0  # the window stops at the episode's end
    with pytest.raises(ValueError):
        c.reciprocity_forgiveness(pd_events(), k=0)


def test_tit_for_tat_and_grim_trigger_signatures() -> None:
    # partner: D at round 2, then cooperates; TFT retaliates once and comes back, grim never does
    tft = episode("tft", "p", "CCDCC", "CDCCC", ep=0)
    grim = episode("grim", "q", "CCDDD", "CDCCC", ep=1)
    ev = pd.concat([tft, grim], ignore_index=True)
    cc = by_agent(c.conditional_cooperation(ev))
    assert cc.loc["tft", ["p_c_after_c", "p_c_after_d"]].tolist() == [1.0, 0.0]
    rf = by_agent(c.reciprocity_forgiveness(ev, k=2))
    assert rf.loc["tft", ["reciprocity", "forgiveness"]].tolist() == [1.0, 1.0]
    assert rf.loc["grim", ["reciprocity", "forgiveness"]].tolist() == [1.0, 0.0]


def test_end_game_effect() -> None:
    t = by_agent(c.end_game_effect(pd_events()))
    # A: last rounds C (ep 0), C (ep 1); others C C D + C D
    assert t.loc["A"].tolist() == pytest.approx([1.0, 2, 0.6, 5, 0.4])
    assert t.loc["B"].tolist() == pytest.approx([0.0, 1, 1 / 3, 3, -1 / 3])
    two = by_agent(c.end_game_effect(pd_events(), last=2))
    # A: rounds 3-4 of ep 0 (D C) and 2-3 of ep 1 (D C); before: C C and C
    assert two.loc["A", ["coop_last", "n_last", "coop_rest", "n_rest"]].tolist() == [0.5, 4, 1.0, 3]


def test_cooperation_by_round() -> None:
    overall = c.cooperation_by_round(pd_events(), by=None)
    assert overall["round"].tolist() == [1, 2, 3, 4]
    assert overall["n"].tolist() == [4, 4, 4, 2]
    assert overall["cooperation_rate"].tolist() == [0.5, 0.5, 0.5, 0.5]
    a = c.cooperation_by_round(pd_events()).query("agent == 'A'")
    assert a["cooperation_rate"].tolist() == [1.0, 0.5, 0.5, 1.0]
    assert a["n"].tolist() == [2, 2, 2, 1]


def test_payoff_matrix() -> None:
    m = c.payoff_matrix(pd_events())
    assert m.loc["A", "B"] == 13 / 4 and m.loc["B", "A"] == 33 / 4
    assert m.loc["A", "C"] == pytest.approx(13 / 3) and m.loc["C", "A"] == pytest.approx(23 / 3)
    assert math.isnan(m.loc["B", "C"])
    assert list(m.index) == ["A", "B", "C"]


def test_coordination_rate_in_battle_of_the_sexes() -> None:
    bos = {("C", "C"): (10.0, 7.0), ("D", "D"): (7.0, 10.0), ("C", "D"): (0.0, 0.0), ("D", "C"): (0.0, 0.0)}
    ev = pd.concat([episode("A", "B", "CCDC", "DCDD", ep=0, payoffs=bos, cooperative=False),
                    episode("C", "A", "DDC", "CDC", ep=1, payoffs=bos, cooperative=False)], ignore_index=True)
    t = by_agent(c.coordination_rate(ev))
    assert t.loc["A"].tolist() == [7, 4, 4 / 7]
    assert t.loc["B"].tolist() == [4, 2, 0.5]
    assert t.loc["C"].tolist() == [3, 2, 2 / 3]
    pairs = c.coordination_rate(ev, by=["agent", "partner"])
    assert pairs.set_index(["agent", "partner"]).loc[("A", "C"), "coordination_rate"] == 2 / 3
    # cooperation metrics ignore a game without a cooperative option
    assert c.conditional_cooperation(ev).empty
    assert c.cooperation_by_round(ev).empty


def test_normalised_scores_and_family_means() -> None:
    games = pd.DataFrame({"game": ["pd"], "max_payoff": [10.0], "family": ["PD Family"]})
    s = c.normalised_scores(pd_events(), games)
    got = {(r.episode, r.agent): r.score for r in s.itertuples()}
    assert got == pytest.approx({(0, "A"): 13 / 40, (0, "B"): 33 / 40, (1, "C"): 23 / 30, (1, "A"): 13 / 30})
    assert s["rounds"].tolist() == [4, 4, 3, 3]
    fam = c.family_scores(s).set_index(["agent", "family"])
    assert fam.loc[("A", "PD Family"), "score"] == pytest.approx((13 / 40 + 13 / 30) / 2)
    assert fam.loc[("A", "all"), "n"] == 2
    with pytest.raises(ValueError, match="no row"):
        c.normalised_scores(pd_events(), games.assign(game="other"))


def test_runs_and_other_games_are_kept_apart() -> None:
    ev = pd_events()
    two_runs = pd.concat([ev.assign(run_id="r1"), ev.assign(run_id="r2")], ignore_index=True)
    t = by_agent(c.conditional_cooperation(two_runs))
    assert t.loc["A", ["n_after_c", "n_after_d"]].tolist() == [2, 8]
    assert t.loc["A", "p_c_after_d"] == 0.75
    # a donor-game-like round with three decisions and no option is ignored
    crowd = pd.DataFrame({"phase": 0, "episode": 5, "round": 1, "seat": [0, 1, 2], "agent": ["x", "y", "z"],
                          "partner": None, "option": np.nan, "cooperated": [True, None, False],
                          "reward": 0.0, "game": "donor-game", "valid": True, "retries": 0})
    mixed = pd.concat([ev, crowd], ignore_index=True)
    assert len(c.paired_rounds(mixed)) == 14
    assert c.conditional_cooperation(mixed).equals(c.conditional_cooperation(ev))


def test_agent_table_is_unchanged() -> None:
    t = by_agent(c.agent_table(pd_events()))
    assert t.loc["A", "cooperation_rate"] == 5 / 7
    assert t.loc["A", "payoff_per_episode"] == 13.0
