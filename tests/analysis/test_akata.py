"""The study's released logs as events, and its analyses reproduced (skipped without the data)."""

from __future__ import annotations

import csv
import math
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest

from societas.analysis import akata
from societas.analysis.cooperation import agent_table, conditional_cooperation, normalised_scores

DATA = Path(__file__).resolve().parents[2].parent / "shared" / "data" / "akata2023"

pytestmark = pytest.mark.skipif(not DATA.is_dir(), reason=f"the study's logs are absent ({DATA})")


def raw(path: Path) -> list[dict[str, str]]:
    with path.open(newline="", encoding="utf-8") as f:
        return list(csv.DictReader(f))


def check_totals(ev: pd.DataFrame) -> None:
    """Running sums of the per-round points give the logged totals in every episode and seat."""
    summed = ev.groupby(["episode", "seat"])["reward"].cumsum()
    assert np.array_equal(summed.to_numpy(), ev["cumulative_reward"].to_numpy())


@pytest.fixture(scope="module")
def g144() -> pd.DataFrame:
    return akata.load_144_games(DATA / "all_games")


@pytest.fixture(scope="module")
def validation() -> dict[str, Any]:
    return akata.akata_validation(DATA.parent.parent)


@pytest.mark.parametrize(("loader", "path", "pairings"), [
    (akata.load_pd_log, "pd/experiment_pd.csv", 64),
    (akata.load_bos_log, "bos/experiment_bos.csv", 81),
])
def test_two_game_logs(loader: Any, path: str, pairings: int) -> None:
    ev = loader(DATA / path)
    rows = raw(DATA / path)
    assert len(ev) == 2 * len(rows) and ev["episode"].nunique() == pairings
    check_totals(ev)
    seat0 = ev[ev["seat"] == 0].reset_index(drop=True)
    assert seat0["action"].tolist() == [r["answer1"] for r in rows]
    assert seat0["agent"].tolist() == [r["player1"] for r in rows]
    last = ev[ev["round"] == 10].sort_values(["episode", "seat"])
    logged = [float(r[f"total{k}"]) for r in rows if r["round"] == "10" for k in (1, 2)]
    assert last["cumulative_reward"].tolist() == logged
    assert set(zip(ev["action"], ev["option"])) == {("J", 0), ("F", 1)}
    assert list(ev.columns[:len(akata.EVENT_COLUMNS)]) == akata.EVENT_COLUMNS


def test_pd_log_runs_through_the_metrics() -> None:
    ev = akata.load_pd_log(DATA / "pd" / "experiment_pd.csv")
    table = agent_table(ev).set_index("agent")
    assert table.loc["act_j", "cooperation_rate"] == 1.0 and table.loc["act_f", "cooperation_rate"] == 0.0
    cc = conditional_cooperation(ev).set_index("agent")
    assert cc.loc["act_gpt4", "p_c_after_c"] > cc.loc["act_gpt4", "p_c_after_d"]  # GPT-4 retaliates


def test_144_games(g144: pd.DataFrame) -> None:
    games = akata.load_games_info(DATA / "all_games" / "144_games_info.csv")
    assert len(games) == 144 and set(games["max_payoff"]) == {4.0}
    assert len(g144) == 2 * 144 * 250 and g144["episode"].nunique() == 144 * 25
    check_totals(g144)
    # the options reproduce the logged points through the game's table (player 1 picks the row)
    s0, s1 = g144[g144["seat"] == 0], g144[g144["seat"] == 1]
    assert np.array_equal(s0[["episode", "round"]].to_numpy(), s1[["episode", "round"]].to_numpy())
    number = s0["game_number"].to_numpy() - 1
    row, col = s0["option"].to_numpy(), s1["option"].to_numpy()
    for seat, rewards in ((0, s0), (1, s1)):
        table = np.stack([games[[f"r{i}_c{j}_p{seat + 1}" for j in (1, 2)]].to_numpy() for i in (1, 2)], axis=1)
        assert np.array_equal(table[number, row, col], rewards["reward"].to_numpy())
    scores = normalised_scores(g144, games)
    assert scores["score"].between(0.25, 1.0).all()  # ordinal payoffs 1..4 over 4


def test_human_experiment() -> None:
    h = akata.load_human_experiment(DATA / "human_experiment" / "analysis" / "repgames.csv")
    assert len(h) == 3900 and h["participant"].nunique() == 195
    assert h.groupby("opponent")["participant"].nunique().to_dict() == {"Base": 97, "Prompted": 98}
    assert (h.groupby(["participant", "game"]).size() == 10).all()
    check_totals(h)
    pd_rows = h[h["game"] == akata.PD_GAME]
    fits = np.where(pd_rows["option"] == 0, pd_rows["reward"].isin([8, 0]), pd_rows["reward"].isin([10, 5]))
    assert fits.mean() > 0.999  # J earns 8 or 0, F 10 or 5: one row of the file departs
    bos = h[(h["game"] == akata.BOS_GAME) & (h["reward"] > 0)]
    assert (np.where(bos["option"] == 1, bos["reward"] == 10, bos["reward"] == 7)).mean() > 0.99


def test_validation_numbers(validation: dict[str, Any]) -> None:
    coop = validation["pd_cooperation"]
    assert coop["act_j"] == 1.0 and coop["act_f"] == 0.0
    assert coop["act_f"] < coop["act_gpt4"] < coop["act_j"]
    coord = validation["bos_coordination"]
    assert coord["act_gpt4_predictfirst"] > coord["act_gpt4"]  # the social chain of thought coordinates better
    scores = validation["games144_scores"]
    assert set(scores) == {"act_claude1", "act_claude2", "act_gpt35", "act_gpt4", "act_llama2"}
    for fam in scores.values():
        assert len(fam) == 8 and all(0.25 <= v <= 1.0 for v in fam.values())
    assert scores["act_gpt4"]["all"] > scores["act_llama2"]["all"]
    flat = [v for block in ("pd_cooperation", "bos_coordination") for v in validation[block].values()]
    flat += [v for m in validation["human"].values() for v in m.values()]
    assert all(math.isfinite(v) for v in flat)


def test_human_bayes_factors_match_the_study(validation: dict[str, Any]) -> None:
    """The one-sided BFs (Prompted > Base) against those the study reports for the same comparisons."""
    human = validation["human"]
    reported = {"bos_score": 80.6, "pd_score": 0.2, "guessed_human": 17.6, "bos_coordination": 13.4}
    for measure, bf in reported.items():
        assert human[measure]["bf10_greater"] == pytest.approx(bf, abs=0.1 if bf > 1 else 0.05), measure
        if bf > 1:
            assert human[measure]["mean_prompted"] > human[measure]["mean_base"]
    assert validation["counts"]["participants"] == 195


def test_validation_finds_the_data_from_several_folders(tmp_path: Path) -> None:
    assert akata._data_dir(DATA) == DATA
    assert akata._data_dir(DATA.parent) == DATA
    with pytest.raises(FileNotFoundError):
        akata.akata_validation(tmp_path)
