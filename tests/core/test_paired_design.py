"""Paired designs: an episode's world depends on what it is, not on where it sits in the schedule.

Adding a member to a tournament leaves every other pairing's events as they
were, and the observers of the ToM battery answer about the same worlds
(common random numbers), so differences between them are differences between
observers, not between the worlds they happened to draw.
"""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd

from societas.analysis import load_run
from societas.config import load_config, parse_config
from societas.runners.run import run_experiment

# What a decision is, without where its episode sat in the schedule.
DECISION = ["agent", "partner", "seat", "round", "game", "action", "value", "valid", "reward", "cumulative_reward"]


def _tournament(tmp_path: Path, population: list[dict[str, str]], name: str) -> pd.DataFrame:
    cfg = parse_config({
        "name": name, "seed": 5, "output_dir": str(tmp_path),
        "environment": {"id": "repeated-matrix-game", "params": {"game": "prisoners_dilemma", "rounds": 8}},
        "population": population,
        "matchmaking": {"kind": "round_robin", "self_play": True, "both_orders": True, "repetitions": 2},
    })
    rd, _ = run_experiment(cfg, progress=False)
    return load_run(rd.path).events


def _by_pairing(events: pd.DataFrame) -> pd.DataFrame:
    """Each pairing's decisions in order, numbered by the pairing's own repetition."""
    ev = events.sort_values(["episode", "round", "seat"]).copy()
    first = ev.groupby(["agent", "partner", "seat"])["episode"].transform(lambda e: e.rank(method="dense"))
    ev["repetition"] = first.astype(int)
    return ev[["repetition", *DECISION]].sort_values(["agent", "partner", "seat", "repetition", "round"]).reset_index(
        drop=True)


def test_adding_a_member_leaves_every_other_pairing_unchanged(tmp_path: Path) -> None:
    base = [{"name": "noisy", "policy": "scripted:tft_noise20"}, {"name": "rand", "policy": "scripted:random"},
            {"name": "tft", "policy": "scripted:tit_for_tat"}]
    before = _by_pairing(_tournament(tmp_path, base, "three"))
    # The newcomer goes first, so every old episode moves to a new position in the schedule.
    after = _by_pairing(_tournament(tmp_path, [{"name": "new", "policy": "scripted:random"}, *base], "four"))
    old = after[(after["agent"] != "new") & (after["partner"] != "new")].reset_index(drop=True)
    assert len(old) == len(before) == 3 * 3 * 2 * 8 * 2  # pairs x repetitions x rounds x seats
    pd.testing.assert_frame_equal(old, before)
    # The random members really draw: the comparison is not of deterministic moves only.
    assert before[before["agent"] == "rand"]["action"].nunique() == 2
    # And the two repetitions of a pairing are different worlds.
    rand = before[(before["agent"] == "rand") & (before["partner"] == "tft")]
    assert not (rand[rand["repetition"] == 1]["action"].to_numpy() == rand[rand["repetition"] == 2]["action"]
                .to_numpy()).all()


def _worlds(events: pd.DataFrame) -> dict[str, list[tuple[str, ...]]]:
    """Per observer, the questions of each of its episodes in order, with the facts that answer them."""
    ev = events.sort_values(["episode", "round"])
    out: dict[str, list[tuple[str, ...]]] = {}
    for (agent, _episode), g in ev.groupby(["agent", "episode"], sort=True):
        facts = [json.loads(x) for x in g["info"]]
        out.setdefault(agent, []).append(tuple(
            f"{f['swap']}|{f['at_step']}|{f['question']}|{f['gold']}|{f['reality']}" for f in facts))
    return out


def test_observers_answer_about_the_same_worlds_with_or_without_a_model(tmp_path: Path) -> None:
    scripted = load_run(run_experiment(load_config("tom_battery", output_dir=str(tmp_path)), progress=False)[0]
                        .path).events
    worlds = _worlds(scripted)
    assert set(worlds) == {"belief", "reality", "random"}
    assert worlds["belief"] == worlds["reality"] == worlds["random"]  # common random numbers
    assert len(set(worlds["belief"])) > 1  # the repetitions are not one world copied
    with_model = load_run(run_experiment(load_config("tom_battery", output_dir=str(tmp_path), model="fake:first"),
                                         progress=False)[0].path).events
    assert _worlds(with_model)["llm"] == worlds["belief"]
    # The scripted observers' answers do not move when a language-model observer joins.
    cols = ["agent", "round", "action", "valid", "reward", "info"]
    for name in ("belief", "reality", "random"):
        a = scripted[scripted["agent"] == name].sort_values(["episode", "round"])[cols].reset_index(drop=True)
        b = with_model[with_model["agent"] == name].sort_values(["episode", "round"])[cols].reset_index(drop=True)
        pd.testing.assert_frame_equal(a, b)
