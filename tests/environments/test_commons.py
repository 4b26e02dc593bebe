"""The GovSim commons: allocation, regrowth, collapse, the town hall, and scripted members end to end."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from societas.analysis import load_run
from societas.config import parse_config
from societas.environments import make
from societas.environments.commons import allocate, regrow, sustainable_share, sustainable_total
from societas.runners.run import run_experiment
from societas.testing import check_environment


def test_allocation_hands_out_single_units_at_random_when_demand_exceeds_stock() -> None:
    assert allocate([10, 20, 0], 100, np.random.default_rng(0)) == [10, 20, 0]
    got = allocate([100] * 5, 100, np.random.default_rng(0))
    assert sum(got) == 100 and all(g <= 100 for g in got) and len(set(got)) > 1
    assert got == allocate([100] * 5, 100, np.random.default_rng(0))  # seeded
    small = allocate([3, 100], 50, np.random.default_rng(1))
    assert small[0] == 3 and small[1] == 47  # nobody gets more than it asked


def test_regrowth_and_threshold() -> None:
    assert regrow(50, 100) == 100 and regrow(30, 100) == 60 and regrow(0, 100) == 0
    assert sustainable_total(100) == 50 and sustainable_share(100, 5) == 10.0 and sustainable_total(61) == 30


def test_greedy_harvest_collapses_in_month_one() -> None:
    env = make("commons")
    env.reset(seed=3)
    _, rewards, term, _, infos = env.step({a: 100 for a in env.agents})
    assert sum(rewards.values()) == 100 and all(term.values()) and env.agents == []
    rec = infos["player_0"]["record"]
    assert rec["collapsed"] and rec["stock"] == 100 and rec["remaining"] == 0 and rec["threshold"] == 10.0


def test_town_hall_agreement_is_remembered() -> None:
    env = make("commons", num_agents=3, discussion=True)
    env.reset(seed=0)
    env.step({a: 10 for a in env.agents})
    speakers = []
    for words in ("8 | Eight each.", "8 | Agreed.", "none | No."):
        (who,) = env.acting_agents()
        speakers.append(who)
        assert env.decision(who).spec.parse(words) == words
        env.step({who: words})
    assert sorted(speakers) == ["player_0", "player_1", "player_2"]
    assert env.agreed_limit == 8 and env.phase == "harvest" and env.month == 2
    obs = env.decision("player_0")
    assert "agreed that each person takes at most 8" in obs.prompt and obs.data["agreed_limit"] == 8


def test_universalization_and_newcomer_texts() -> None:
    env = make("commons", universalization=True, newcomer=True, scenario="pasture")
    env.reset(seed=0)
    assert "If every one of you took more than 10" in env.decision("player_0").prompt
    assert "just arrived" in env.decision("player_4").system
    assert "just arrived" not in env.decision("player_0").system and "sheep" in env.decision("player_0").system


def test_bad_parameters_name_themselves() -> None:
    with pytest.raises(ValueError, match="scenario must be one of fishery, pasture, pollution"):
        make("commons", scenario="forest")
    with pytest.raises(ValueError, match="stock must not exceed capacity"):
        make("commons", stock=200, capacity=100)


@pytest.mark.parametrize("params", [{}, {"discussion": True, "num_agents": 3, "max_utterances": 4}])
def test_conformance(params: dict) -> None:
    check_environment("commons", **params)


def _run(tmp_path: Path, policy: str, params: dict | None = None, **env: object):
    cfg = parse_config({
        "name": "commons-test", "seed": 0, "output_dir": str(tmp_path),
        "environment": {"id": "commons", "params": {"num_agents": 5, **env}},
        "population": [{"name": "m", "policy": policy, "count": 5, "params": params or {}}],
        "matchmaking": {"kind": "population"},
    })
    rd, _ = run_experiment(cfg, progress=False)
    return load_run(rd.path)


@pytest.mark.parametrize(("policy", "gain", "months"), [
    ("scripted:sustainable", 120.0, 12), ("scripted:fixed_share", 120.0, 12)])
def test_sustaining_members_last_twelve_months(tmp_path: Path, policy: str, gain: float, months: int) -> None:
    run = _run(tmp_path, policy)
    summaries = [json.loads(s) for s in run.episodes["summary"]]
    assert [s["gain"] for s in summaries] == [gain] * 5
    assert summaries[0]["survival_months"] == months and summaries[0]["stocks"] == [100] * 12


def test_rule_followers_keep_the_agreed_limit(tmp_path: Path) -> None:
    run = _run(tmp_path, "scripted:rule_follower", {"units": 15}, discussion=True)
    harvest = [json.loads(x) for x in run.events["info"] if json.loads(x)["phase"] == "harvest"]
    # 15 each before any agreement leaves 25, which regrows to 50; they agree on f(t)/N = 5 and keep it.
    assert [h["requested"] for h in harvest[:10]] == [15] * 5 + [5] * 5
    assert harvest[5]["stock"] == 50 and harvest[5]["agreed_limit"] == 5
    assert all(h["requested"] == h["agreed_limit"] for h in harvest[5:])


def test_each_harvest_and_utterance_is_a_decision_of_its_own(tmp_path: Path) -> None:
    # A month's harvest and its town hall used to share the month as their round, so a member's
    # two model calls of a month had the same key and its transcript could not tell them apart.
    from societas.analysis.transcript import transcript

    cfg = parse_config({
        "name": "commons-lm", "seed": 0, "output_dir": str(tmp_path), "model": "fake:first",
        "environment": {"id": "commons", "params": {"num_agents": 2, "months": 2, "collapse": 0,
                                                    "discussion": True}},
        "population": [{"name": "m", "policy": "llm", "count": 2}], "matchmaking": {"kind": "population"},
    })
    rd, _ = run_experiment(cfg, progress=False)
    run = load_run(rd.path)
    phases = [json.loads(x)["phase"] for x in run.events.sort_values(["round", "seat"])["info"]]
    assert phases == ["harvest"] * 2 + ["discussion"] * 2 + ["harvest"] * 2
    assert not run.events.duplicated(["episode", "round", "seat"]).any()
    rows = transcript(rd.path)
    assert len(rows) == len(run.llm_calls) == 6 and (rows["attempts"] == 1).all()
    assert rows["reply"].str.contains(r" \| ").sum() == 2  # the two utterances, each under its own decision


def test_an_utterance_is_asked_for_no_longer_than_its_form_holds(tmp_path: Path) -> None:
    # The harvest may reason before "Answer: N" within llm.max_tokens; an utterance holds 300
    # characters of words, so a model that ran on to 200 tokens wrote a reply that could never be used.
    from societas.environments.commons.env import UTTERANCE_TOKENS
    from societas.llm.testing import FakeOpenAIServer

    with FakeOpenAIServer("first", record_bodies=50) as server:
        cfg = parse_config({
            "name": "commons-lm", "seed": 0, "output_dir": str(tmp_path), "model": f"openai:fake@{server.base_url}",
            "environment": {"id": "commons", "params": {"num_agents": 2, "months": 2, "collapse": 0,
                                                        "discussion": True}},
            "population": [{"name": "m", "policy": "llm", "count": 2}], "matchmaking": {"kind": "population"},
            "llm": {"max_tokens": 200, "cache": False},
        })
        run_experiment(cfg, progress=False)
        bodies = server.bodies
    asked = {("town" if any("Town hall" in m["content"] for m in b["messages"]) else "harvest", b["max_tokens"])
             for b in bodies}
    assert asked == {("harvest", 200), ("town", UTTERANCE_TOKENS)} and UTTERANCE_TOKENS < 200
