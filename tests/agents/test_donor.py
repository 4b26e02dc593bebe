"""Donor-game strategies, their mutation, the DonorAgent, and a 1,000-agent generation."""

from __future__ import annotations

import asyncio
import json
import time
from collections import Counter
from typing import Any

import numpy as np
import pytest

from societas.agents.donor import DONOR_STRATEGIES, DonorAgent, describe_donor_strategies, last_fraction, mutate
from societas.agents.factory import check_policy, make_agent, scripted_strategy_names
from societas.config import LLMConfig
from societas.environments.donor_game import REFUSE, DonorGame
from societas.runners.local import RunContext, play_episode
from societas.societies.society import EpisodeSpec, Seat
from societas.types import ActionSpec, Observation

REQUIRED = {"fixed_fraction", "reciprocator", "image_scorer", "free_rider", "generous", "punisher"}


def decide(name: str, data: dict[str, Any], **params: float) -> float | None:
    s = DONOR_STRATEGIES[name]
    return s.decide(data, np.random.default_rng(0), s.params(params))


def donation(resources: float = 10.0, reputation: float | None = None,
             trace: tuple = (), partner: str = "agent_1", variant: str = "none") -> dict[str, Any]:
    return {"game": "donor-game", "partner": partner, "resources": resources, "recipient_reputation": reputation,
            "recipient_trace": trace, "variant": variant, "refuse": REFUSE if variant == "partner_choice" else None}


def observation(data: dict[str, Any], spec: ActionSpec) -> Observation:
    return Observation(agent="agent_0", round=1, system="", prompt="", spec=spec, data=data)


def test_registry_describes_every_strategy() -> None:
    assert REQUIRED <= set(DONOR_STRATEGIES)
    assert set(describe_donor_strategies()) == set(DONOR_STRATEGIES)
    for name, s in DONOR_STRATEGIES.items():
        assert s.name == name and s.description
        assert set(s.defaults) == set(s.ranges)
        for key, value in s.defaults.items():
            lo, hi = s.ranges[key]
            assert lo <= value <= hi, f"{name}.{key}"
        assert s.text().startswith("My strategy will be ")
    # Names must not shadow the 2x2-game strategies: `scripted:NAME` looks in both families.
    from societas.agents.scripted import STRATEGIES

    assert not set(DONOR_STRATEGIES) & set(STRATEGIES)
    assert REQUIRED <= scripted_strategy_names()


def test_strategies_behave_as_documented() -> None:
    assert decide("fixed_fraction", donation(), p=0.3) == 0.3
    assert decide("generous", donation()) == 0.9
    assert decide("free_rider", donation(reputation=1.0)) == 0.0
    # reciprocator: base + gain x what the recipient last gave, capped; `first` without a record.
    gave = ((3, "agent_1", 0.4, "agent_5"), (2, "agent_5", 1.0, "agent_7"))
    assert decide("reciprocator", donation(trace=gave), base=0.1, gain=0.5) == pytest.approx(0.3)
    assert decide("reciprocator", donation(trace=((3, "agent_1", 0.9, "agent_5"),)), base=0.5, gain=1.0) == 1.0
    assert decide("reciprocator", donation(), first=0.25) == 0.25
    assert decide("reciprocator", donation(trace=((3, "agent_1", None, "agent_5"),)), base=0.2) == 0.2
    assert decide("reciprocator", donation(trace=((3, "agent_1", -0.5, "agent_5"),)), base=0.2) == 0.2
    # image scorer: p at or above the threshold, nothing below, `unknown` without a reputation.
    assert decide("image_scorer", donation(reputation=0.5), threshold=0.5, p=0.7) == 0.7
    assert decide("image_scorer", donation(reputation=0.49), threshold=0.5, p=0.7) == 0.0
    assert decide("image_scorer", donation(), unknown=0.2) == 0.2
    # sanctioning variants
    assert decide("punisher", donation(reputation=0.1), punish=0.3) == -0.3
    assert decide("punisher", donation(reputation=0.9), p=0.8) == 0.8
    assert decide("punishing_reciprocator", donation(trace=((1, "agent_1", 0.05, "x"),)), floor=0.1,
                  punish=0.4) == -0.4
    assert decide("punishing_reciprocator", donation(trace=((1, "agent_1", 0.5, "x"),)), base=0.0,
                  gain=1.0) == 0.5
    assert decide("shunner", donation(reputation=0.1)) is None
    assert decide("shunner", donation(reputation=0.9), p=0.4) == 0.4


def test_last_fraction_reads_only_the_recipients_own_act() -> None:
    assert last_fraction(donation(trace=((2, "agent_1", 0.3, "agent_4"),))) == 0.3
    assert last_fraction(donation(trace=((2, "agent_9", 0.3, "agent_4"),))) is None
    assert last_fraction(donation()) is None


def test_texts_render_the_parameters() -> None:
    assert DONOR_STRATEGIES["fixed_fraction"].text({"p": 0.3}) == (
        "My strategy will be to donate 30% of my resources to every recipient.")
    text = DONOR_STRATEGIES["reciprocator"].text({"base": 0.3, "gain": 0.5, "first": 0.6})
    assert text.startswith("My strategy will be to donate 30% of my resources plus 50% of the largest share")
    assert "60% to recipients I have not seen donate yet" in text
    text = DONOR_STRATEGIES["punisher"].text({"threshold": 0.4, "punish": 0.25})
    assert "reputation is at least 0.40" in text and "spend 25% of my resources punishing" in text


def test_params_are_checked() -> None:
    with pytest.raises(ValueError, match="has no parameter 'q'; accepted: p"):
        DonorAgent("a", "fixed_fraction", np.random.default_rng(0), {"q": 1})
    with pytest.raises(ValueError, match=r"p must be a number in \[0, 1\]"):
        DonorAgent("a", "fixed_fraction", np.random.default_rng(0), {"p": 1.5})
    with pytest.raises(ValueError, match="must be a number"):
        DonorAgent("a", "fixed_fraction", np.random.default_rng(0), {"p": True})
    with pytest.raises(ValueError, match="unknown donor strategy 'tit_for_tat'"):
        DonorAgent("a", "tit_for_tat", np.random.default_rng(0))


def test_mutation_stays_in_range_and_is_seeded() -> None:
    for name, s in DONOR_STRATEGIES.items():
        params = dict(s.defaults)
        for k in range(50):
            params = mutate(name, params, np.random.default_rng(k), 0.5)
            for key, value in params.items():
                lo, hi = s.ranges[key]
                assert lo <= value <= hi
    a = mutate("reciprocator", {"base": 0.2}, np.random.default_rng(7), 0.1)
    b = mutate("reciprocator", {"base": 0.2}, np.random.default_rng(7), 0.1)
    c = mutate("reciprocator", {"base": 0.2}, np.random.default_rng(8), 0.1)
    assert a == b and a != c and set(a) == {"base", "gain", "first"}
    assert mutate("reciprocator", {"base": 0.2}, np.random.default_rng(7), 0) == {"base": 0.2, "gain": 1.0,
                                                                                  "first": 0.5}
    huge = mutate("fixed_fraction", {"p": 0.5}, np.random.default_rng(1), 100.0)
    assert huge["p"] in (0.0, 1.0)
    with pytest.raises(ValueError, match="scale"):
        mutate("fixed_fraction", {}, np.random.default_rng(0), -1.0)
    with pytest.raises(ValueError, match="has no parameter"):
        mutate("fixed_fraction", {"x": 1}, np.random.default_rng(0), 0.1)


async def test_agent_answers_text_and_amounts_within_bounds() -> None:
    agent = DonorAgent("m", "fixed_fraction", np.random.default_rng(0), {"p": 0.3})
    assert (agent.policy, agent.kind, agent.model) == ("scripted:fixed_fraction", "scripted", None)
    text = await agent.act(observation({}, ActionSpec(kind="text")))
    assert text.value == "My strategy will be to donate 30% of my resources to every recipient."
    rng = np.random.default_rng(1)
    for _ in range(200):
        res = float(rng.uniform(0, 50))
        act = await agent.act(observation(donation(res), ActionSpec.real(0.0, res)))
        assert 0.0 <= act.value <= res and act.value == pytest.approx(0.3 * res)
    generous_all = DonorAgent("g", "generous", np.random.default_rng(0), {"p": 1.0})
    res = 0.1 + 0.2
    assert (await generous_all.act(observation(donation(res), ActionSpec.real(0.0, res)))).value == res


async def test_agent_punishes_and_refuses_only_where_allowed() -> None:
    punisher = DonorAgent("p", "punisher", np.random.default_rng(0), {"punish": 0.5})
    bad = donation(10.0, reputation=0.0, variant="punishment")
    act = await punisher.act(observation(bad, ActionSpec.real(-5.0, 10.0)))  # punish_cost 2
    assert act.value == -2.5  # half its resources: 2.5 units x cost 2
    act = await punisher.act(observation(donation(10.0, reputation=0.0), ActionSpec.real(0.0, 10.0)))
    assert act.value == 0.0
    shunner = DonorAgent("s", "shunner", np.random.default_rng(0))
    spec = ActionSpec(kind="regex", pattern=r"(?:[Rr]efuse(?: to play)?|[0-9]+(?:\.[0-9]+)?)\.?")
    act = await shunner.act(observation(donation(10.0, reputation=0.0, variant="partner_choice"), spec))
    assert act.value == REFUSE
    act = await shunner.act(observation(donation(10.0 / 3, reputation=1.0, variant="partner_choice"), spec))
    assert float(act.value) <= 0.6 * 10.0 / 3 and float(act.value) == pytest.approx(2.0, abs=1e-5)
    act = await shunner.act(observation(donation(10.0, reputation=0.0), ActionSpec.real(0.0, 10.0)))
    assert act.value == 0.0


def test_factory_builds_donor_agents() -> None:
    check_policy("scripted:reciprocator")
    agent = make_agent("scripted:reciprocator", name="m1", rng=np.random.default_rng(0), params={"base": 0.4})
    assert isinstance(agent, DonorAgent) and agent.params["base"] == 0.4


@pytest.mark.parametrize("variant", ["none", "punishment", "partner_choice"])
async def test_every_strategy_plays_every_variant(variant: str) -> None:
    names = sorted(DONOR_STRATEGIES)
    env = DonorGame(2 * len(names), variant=variant, punish_cost=0.5)
    agents = {a: DonorAgent(a, names[i % len(names)], np.random.default_rng(i))
              for i, a in enumerate(env.possible_agents)}
    env.reset(seed=0)
    kinds: set[str] = set()
    while env.agents:
        acting = env.acting_agents()
        acts = {a: (await agents[a].act(env.decision(a))).value for a in acting}
        _, _, _, _, infos = env.step(acts)
        env.check_invariants()
        kinds |= {infos[a].get("kind", "strategy") for a in acting}
    summary = env.episode_summary()
    assert all(s["strategy"] == agents[a].text for a, s in summary.items())
    expected = {"strategy", "donate"} | {"punishment": {"punish"}, "partner_choice": {"refuse"}}.get(variant, set())
    assert kinds == expected


def test_a_thousand_agent_generation_runs_quickly() -> None:
    names = ["fixed_fraction", "reciprocator", "image_scorer", "free_rider", "generous"]
    n = 1000
    seats = tuple(Seat(name=f"m{i}", policy=f"scripted:{names[i % 5]}") for i in range(n))
    spec = EpisodeSpec(phase=0, index=0, env_id="donor-game", env_params={"num_agents": n, "pairing": "random"},
                       seats=seats)
    start = time.perf_counter()
    out = asyncio.run(play_episode(spec, RunContext(run_id="t", seed=1, llm=LLMConfig())))
    elapsed = time.perf_counter() - start
    assert out.decisions == n + 2 * 12 * (n // 2)  # strategies, then 500 donors a round
    assert len(out.episode["summary"]) == n and all(out.episode["summary"])
    records = [json.loads(x) for x in out.events["info"]]
    assert Counter(r["kind"] for r in records) == {"strategy": n, "donate": 2 * 12 * (n // 2)}
    names = {f"agent_{i}": f"m{i}" for i in range(n)}
    donations = [(p, r) for p, r in zip(out.events["partner"], records) if r["kind"] == "donate"]
    assert all(p == names[r["recipient"]] for p, r in donations)  # the runner maps "partner" to members
    print(f"1,000 agents, 2 games x 12 rounds, {out.decisions} decisions: {elapsed:.2f} s")
