"""The donor game: pairings, reputation, conservation, prompts, strategy step, variants, API."""

from __future__ import annotations

import json
import math
from collections import Counter
from typing import Any

import numpy as np
import pytest
from pettingzoo.test import parallel_api_test, parallel_seed_test

from societas.environments import make
from societas.environments.donor_game import REFUSE, DonorGame
from societas.types import InvalidAction


def play_round(env: DonorGame, amounts: dict[str, Any] | None = None, default: Any = 0.0) -> tuple:
    """Step one round; donors not in `amounts` give `default`."""
    amounts = amounts or {}
    return env.step({a: amounts.get(a, default) for a in env.acting_agents()})


def schedule(env: DonorGame) -> list[list[list[tuple[str, str]]]]:
    """Every round's (donor, recipient) pairs, per game, playing zero donations."""
    games: list[list[list[tuple[str, str]]]] = [[] for _ in range(env.games)]
    while env.agents:
        games[env._game].append(env.current_pairs())
        play_round(env)
    return games


# -- pairing -----------------------------------------------------------------------


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_bipartite_schedule_matches_the_study(seed: int) -> None:
    env = DonorGame(12, strategy_step=False)
    env.reset(seed=seed)
    first, second = env.halves
    assert sorted(first + second) == sorted(env.possible_agents) and len(first) == len(second) == 6
    half = {a: 0 for a in first} | {b: 1 for b in second}
    games = schedule(env)
    assert [len(g) for g in games] == [12, 12]
    for game in games:
        donors = Counter(d for rnd in game for d, _ in rnd)
        assert donors == dict.fromkeys(env.possible_agents, 6)
        directed = Counter(pair for rnd in game for pair in rnd)
        for d, r in directed:
            assert half[d] != half[r], "agents of the same half met"
        cross = {(a, b) for a in first for b in second} | {(b, a) for a in first for b in second}
        assert directed == dict.fromkeys(cross, 1), "every cross pair meets once each way"
        for rnd in game:  # each agent in exactly one pair per round
            assert sorted(x for pair in rnd for x in pair) == sorted(env.possible_agents)
        # The study's alternation: donors of one round receive in the next (within each half of the rounds).
        for k in (0, 1, 2, 3, 4, 6, 7, 8, 9, 10):
            assert {d for d, _ in game[k]} == {r for _, r in game[k + 1]}
    # The second game reverses the roles of the first, round by round.
    assert games[1] == [[(r, d) for d, r in rnd] for rnd in games[0]]


def test_bipartite_halves_follow_the_seed_or_seat_order() -> None:
    env = DonorGame(12, strategy_step=False, shuffle_halves=False)
    env.reset(seed=5)
    assert env.halves == ([f"agent_{i}" for i in range(6)], [f"agent_{i}" for i in range(6, 12)])
    a, b = DonorGame(12), DonorGame(12)
    a.reset(seed=5)
    b.reset(seed=5)
    assert a.halves == b.halves
    b.reset(seed=6)
    assert a.halves != b.halves


def test_bipartite_with_other_sizes_cycles_the_schedule() -> None:
    env = DonorGame(4, rounds=10, games=1, strategy_step=False, shuffle_halves=False)
    env.reset(seed=0)
    (game,) = schedule(env)
    assert game[:4] == [[("agent_0", "agent_2"), ("agent_1", "agent_3")],
                        [("agent_3", "agent_0"), ("agent_2", "agent_1")],
                        [("agent_2", "agent_0"), ("agent_3", "agent_1")],
                        [("agent_0", "agent_3"), ("agent_1", "agent_2")]]
    assert game[4:8] == game[:4] and game[8:] == game[:2]


@pytest.mark.parametrize("n", [2, 11, 12, 101])
def test_random_pairing_is_a_seeded_matching(n: int) -> None:
    def rounds(seed: int) -> list[list[tuple[str, str]]]:
        env = DonorGame(n, pairing="random", strategy_step=False, rounds=6)
        env.reset(seed=seed)
        return [p for g in schedule(env) for p in g]

    seen = rounds(3)
    assert len(seen) == 12
    for rnd in seen:
        assert len(rnd) == n // 2
        members = [x for pair in rnd for x in pair]
        assert len(set(members)) == len(members) == 2 * (n // 2)
    assert rounds(3) == seen
    if n > 2:
        assert rounds(4) != seen


@pytest.mark.parametrize(("kind", "params"), [
    ("ring", {}), ("erdos_renyi", {}), ("erdos_renyi", {"p": 0.3}), ("watts_strogatz", {"k": 4, "p": 0.2}),
])
def test_graph_pairing_is_a_maximal_matching_along_edges(kind: str, params: dict[str, Any]) -> None:
    env = DonorGame(30, pairing="graph", graph_kind=kind, graph_params=params, strategy_step=False, rounds=5)
    env.reset(seed=2)
    edges = {frozenset(e) for e in env.edges}
    assert edges
    if kind == "ring":
        assert len(edges) == 30 and all(len(e) == 2 for e in edges)
    for rnd in (p for g in schedule(env) for p in g):
        members = [x for pair in rnd for x in pair]
        assert len(set(members)) == len(members)
        assert all(frozenset(pair) in edges for pair in rnd)
        free = set(env.possible_agents) - set(members)
        assert not any(e <= free for e in edges), "a matching along the graph could still take an edge"
    again = DonorGame(30, pairing="graph", graph_kind=kind, graph_params=params)
    again.reset(seed=2)
    assert again.edges == env.edges


# -- reputation and traces ------------------------------------------------------------


def four(**kw: Any) -> DonorGame:
    """4 agents, halves in seat order: round 1 0->2, 1->3; round 2 3->0, 2->1; round 3 2->0, 3->1."""
    env = DonorGame(4, strategy_step=False, shuffle_halves=False, **kw)
    env.reset(seed=0)
    return env


def test_reputation_follows_the_study_formula() -> None:
    env = four()
    play_round(env, {"agent_0": 5.0, "agent_1": 0.0})
    assert env.reputations == {"agent_0": 0.5, "agent_1": 0.0, "agent_2": None, "agent_3": None}
    play_round(env, {"agent_3": 10.0, "agent_2": 5.0})  # agent_2 has 20: 25%
    assert env.reputations["agent_3"] == 1.0 and env.reputations["agent_2"] == 0.25
    assert env.decision("agent_2").data["recipient_reputation"] == 0.5
    play_round(env, {"agent_2": 15.0, "agent_3": 0.0})  # agent_2 gives all; agent_3 has nothing left
    rep = env.reputations
    # ((1 - |pct - recipient rep|) + 0.5 * rep) / 1.5
    assert rep["agent_2"] == pytest.approx(((1 - abs(1.0 - 0.5)) + 0.5 * 0.25) / 1.5)
    # A donor with no resources counts as giving 100% (as in the study).
    assert rep["agent_3"] == pytest.approx(((1 - abs(1.0 - 0.0)) + 0.5 * 1.0) / 1.5)
    assert rep["agent_0"] == 0.5 and rep["agent_1"] == 0.0  # only donors' scores change


def test_unknown_recipient_reputation_counts_as_zero() -> None:
    env = four(variant="partner_choice")
    play_round(env, {"agent_0": 5.0, "agent_1": REFUSE})
    assert env.reputations["agent_1"] is None
    play_round(env, {"agent_3": 5.0, "agent_2": 4.0})  # agent_3 (nothing received) gives 50%
    assert env.reputations["agent_3"] == 0.5
    play_round(env, {"agent_2": 0.0, "agent_3": 5.0})  # agent_3 gives all to agent_1, who has no reputation
    assert env.reputations["agent_1"] is None
    assert env.reputations["agent_3"] == pytest.approx(((1 - abs(1.0 - 0.0)) + 0.5 * 0.5) / 1.5)


def test_trace_lines_use_the_study_wording() -> None:
    env = four()
    first = env.decision("agent_0")
    assert "In this round, you have been paired with agent_2. They currently have 10 units" in first.prompt
    assert "\nagent_2 did not have any previous interactions.\n" in first.prompt
    assert first.data["recipient_trace"] == ()
    play_round(env, {"agent_0": 5.0, "agent_1": 2.5})
    second = env.decision("agent_3")
    assert second.data["partner"] == "agent_0"
    assert ("In round 1, agent_0 donated 50.00% of their resources to agent_2.\n"
            "agent_2 did not have any previous interactions.\n") in second.prompt
    play_round(env, {"agent_3": 10.0, "agent_2": 5.0})
    assert env.decision("agent_2").data["recipient_trace"] == ((1, "agent_0", 0.5, "agent_2"),)
    play_round(env, {"agent_2": 15.0, "agent_3": 0.0})
    play_round(env, {"agent_0": 0.0, "agent_1": 0.0})
    # Round 5 repeats round 1: agent_0 -> agent_2, whose last act (round 3) went to agent_0, whose act
    # before that (round 1) went to agent_2, who had not acted yet.
    fifth = env.decision("agent_0")
    assert fifth.data["recipient_trace"] == ((3, "agent_2", 1.0, "agent_0"), (1, "agent_0", 0.5, "agent_2"))
    assert ("They currently have 0 units of the valuable resource.\n"
            "In round 3, agent_2 donated 100.00% of their resources to agent_0.\n"
            "In round 1, agent_0 donated 50.00% of their resources to agent_2.\n"
            "agent_2 did not have any previous interactions.\n"
            "You will take the role of donor. You currently have 55 units of the valuable resource.\n") \
        in fifth.prompt
    play_round(env, {"agent_0": 11.0, "agent_1": 0.0})
    sixth = env.decision("agent_3")  # recipient agent_0: a chain three deep, cut there
    assert len(sixth.data["recipient_trace"]) == 3
    assert ("In round 5, agent_0 donated 20.00% of their resources to agent_2.\n"
            "In round 3, agent_2 donated 100.00% of their resources to agent_0.\n"
            "In round 1, agent_0 donated 50.00% of their resources to agent_2.\n"
            "You will take the role of donor.") in sixth.prompt


@pytest.mark.parametrize("depth", [0, 1, 2])
def test_trace_depth_limits_the_lines(depth: int) -> None:
    env = four(trace_depth=depth)
    for _ in range(4):
        play_round(env, default=1.0)
    obs = env.decision(env.acting_agents()[0])
    assert obs.prompt.count("In round ") == depth
    assert len(obs.data["recipient_trace"]) == depth
    assert ("at most" in obs.system) is (depth > 1)
    assert ("limited information" in obs.system) is (depth > 0)


def test_reputation_carries_over_between_games_by_default() -> None:
    env = DonorGame(4, rounds=2, strategy_step=False)
    env.reset(seed=0)
    play_round(env, default=5.0)
    play_round(env, default=5.0)
    assert env._game == 1
    assert env.resources == dict.fromkeys(env.possible_agents, 10.0)
    assert None not in set(env.reputations.values())
    obs = env.decision(env.acting_agents()[0])
    assert obs.data["round"] == 1 and obs.data["game_index"] == 1 and obs.round == 3
    assert obs.data["recipient_trace"]  # the recipient's acts of the first game are still shown


def test_traces_and_reputations_start_afresh_each_game_when_asked() -> None:
    env = DonorGame(4, rounds=2, strategy_step=False, carry_reputation=False)
    env.reset(seed=0)
    play_round(env, default=5.0)
    play_round(env, default=5.0)
    assert env._game == 1
    assert env.resources == dict.fromkeys(env.possible_agents, 10.0)
    assert set(env.reputations.values()) == {None}
    obs = env.decision(env.acting_agents()[0])
    assert obs.data["round"] == 1 and obs.data["game_index"] == 1 and obs.round == 3
    assert "did not have any previous interactions" in obs.prompt


# -- conservation --------------------------------------------------------------------


def random_episode(env: DonorGame, seed: int, lo: float = 0.0) -> tuple[float, float, float, float]:
    """Play random answers; return (donated, punishment spent, punishment lost, created) summed over games."""
    rng = np.random.default_rng(seed)
    env.reset(seed=seed)
    donated = spent = lost = 0.0
    while env.agents:
        res = env.resources
        acts = {}
        expected_delta = 0.0
        for d, r in env.current_pairs():
            spec = env.decision(d).spec
            low = spec.minimum if spec.minimum is not None else 0.0
            x = float(rng.uniform(low * lo, res[d]))
            if rng.random() < 0.1:
                x = res[d]  # all in
            acts[d] = x
            if x >= 0:
                donated += x
                expected_delta += (env.multiplier - 1) * x
            else:
                cost = min(-x * env.punish_cost, res[d])
                loss = min(-x * env.punish_loss, res[r])
                spent += cost
                lost += loss
                expected_delta -= cost + loss
        game = env._game
        _, rewards, *_ = env.step(acts)
        env.check_invariants()
        assert all(v >= 0 for v in env.resources.values())
        assert sum(rewards.values()) == pytest.approx(expected_delta, abs=1e-9)
        if env.agents and env._game == game:
            total = sum(env.resources.values())
            assert total == pytest.approx(sum(res.values()) + expected_delta, abs=1e-9)
    return donated, spent, lost, (env.multiplier - 1) * donated


@pytest.mark.parametrize("pairing", ["bipartite", "random", "graph"])
def test_resources_are_conserved_with_random_donations(pairing: str) -> None:
    env = DonorGame(12, pairing=pairing, strategy_step=False)
    for seed in range(5):
        donated, spent, lost, _ = random_episode(env, seed)
        assert spent == lost == 0.0
        summary = env.episode_summary()
        total_donated = sum(s["donated"] for s in summary.values())
        assert total_donated == pytest.approx(donated)
        received = sum(s["received"] for s in summary.values())
        assert received == pytest.approx(env.multiplier * donated)
        finals = sum(s["total_final_resources"] for s in summary.values())
        assert finals == pytest.approx(env.games * 12 * env.endowment + (env.multiplier - 1) * donated)


def test_resources_are_conserved_with_punishment() -> None:
    env = DonorGame(12, variant="punishment", punish_cost=1.0, punish_loss=3.0, strategy_step=False)
    for seed in range(5):
        _, spent, lost, created = random_episode(env, seed, lo=1.0)
        assert spent > 0 and lost > 0
        summary = env.episode_summary()
        assert sum(s["punishment_spent"] for s in summary.values()) == pytest.approx(spent)
        assert sum(s["punishment_lost"] for s in summary.values()) == pytest.approx(lost)
        finals = sum(s["total_final_resources"] for s in summary.values())
        assert finals == pytest.approx(2 * 12 * 10 + created - spent - lost)


def test_punishment_floors_the_target_at_zero() -> None:
    env = four(variant="punishment", punish_cost=0.5)
    play_round(env, {"agent_0": 10.0, "agent_1": 0.0})  # agent_0 now has 0
    obs = env.decision("agent_3")  # recipient agent_0
    assert obs.spec.minimum == -20.0 and obs.spec.maximum == 10.0
    _, rewards, _, _, infos = play_round(env, {"agent_3": -4.0, "agent_2": 0.0})
    assert env.resources["agent_0"] == 0.0
    assert env.resources["agent_3"] == 8.0  # paid 4 x 0.5
    assert rewards["agent_3"] == -2.0 and rewards["agent_0"] == 0.0
    assert infos["agent_3"]["kind"] == "punish" and infos["agent_0"]["lost"] == 0.0
    env.check_invariants()
    nxt = env.decision("agent_2")  # recipient agent_0
    play_round(env, {"agent_2": -100.0, "agent_3": 0.0})  # clipped to what agent_2 can pay
    assert env.resources["agent_2"] == 0.0 and env.resources["agent_0"] == 0.0
    assert nxt.spec.minimum == -60.0
    assert env.episode_summary()["agent_2"]["punishment_spent"] == 30.0
    env.check_invariants()
    assert ("In round 3, agent_2 punished agent_0 by spending 30 units to take away 0 units from their "
            "resources.") in env.decision("agent_1").prompt


def test_punishment_prompt_explains_the_encoding() -> None:
    env = four(variant="punishment")
    obs = env.decision("agent_0")
    assert obs.spec.kind == "real" and obs.spec.minimum == -10.0 and obs.spec.maximum == 10.0
    assert "between -10 and 10 (inclusive)" in obs.prompt
    assert "A negative number -x means you punish agent_2: you give up x units and they lose 2x units" in obs.prompt
    assert "spending x units to take away 2x units from them" in obs.system
    assert obs.spec.parse("Justification: they defected.\nAnswer: -3") == -3.0
    play_round(env, {"agent_0": -3.0, "agent_1": 2.0})
    assert env.resources == {"agent_0": 7.0, "agent_1": 8.0, "agent_2": 4.0, "agent_3": 14.0}
    line = env.decision("agent_3").prompt
    assert "In round 1, agent_0 punished agent_2 by spending 3 units to take away 6 units from their resources." \
        in line
    assert env.trace("agent_0") == ((1, "agent_0", -0.3, "agent_2"),)
    summary = env.episode_summary()
    assert summary["agent_0"]["punishments_given"] == 1 and summary["agent_2"]["punishments_received"] == 1


def test_partner_choice_refusal() -> None:
    env = four(variant="partner_choice")
    obs = env.decision("agent_0")
    assert obs.spec.kind == "regex" and obs.data["refuse"] == REFUSE
    assert "If you do not wish to play with agent_2, simply state: Refuse to play." in obs.prompt
    reply = obs.spec.parse("Justification: agent_2 is unknown.\nAnswer: Refuse to play.")
    assert obs.spec.parse("Answer: 2.5") == "2.5"
    with pytest.raises(InvalidAction):
        obs.spec.parse("Answer: maybe")
    _, rewards, _, _, infos = play_round(env, {"agent_0": reply, "agent_1": "2.5"})
    assert env.resources == {"agent_0": 10.0, "agent_1": 7.5, "agent_2": 10.0, "agent_3": 15.0}
    assert rewards["agent_0"] == rewards["agent_2"] == 0.0
    record = {"kind": "refuse", "amount": 0.0, "fraction": None, "recipient": "agent_2", "resources": 10.0,
              "recipient_resources": 10.0, "recipient_reputation": None, "game_index": 0, "round": 1}
    assert infos["agent_0"] == {**record, "cooperated": False, "record": record}
    assert infos["agent_1"]["record"]["kind"] == "donate" and infos["agent_1"]["cooperated"] is True
    assert infos["agent_3"] == {"kind": "received", "donor": "agent_1", "received": 5.0}
    assert env.reputations["agent_0"] is None and env.reputations["agent_1"] == 0.25
    assert env.trace("agent_0") == ((1, "agent_0", None, "agent_2"),)
    assert "In round 1, agent_0 refused to play with agent_2." in env.decision("agent_3").prompt
    summary = env.episode_summary()
    assert summary["agent_0"]["refusals_given"] == 1 and summary["agent_2"]["refusals_received"] == 1
    with pytest.raises(ValueError, match="expected a number or 'refuse'"):
        play_round(env, {"agent_3": "lots"})


def test_refusal_is_not_an_option_elsewhere() -> None:
    env = four()
    with pytest.raises(ValueError, match="expected a number"):
        play_round(env, {"agent_0": "refuse"})


# -- strategy step and prompts -----------------------------------------------------------


def test_strategy_step_and_kept_strategies() -> None:
    env = DonorGame(4, strategies={"agent_1": "My strategy will be to give half."}, generation=3)
    env.reset(seed=0)
    assert env.acting_agents() == ["agent_0", "agent_2", "agent_3"]
    obs = env.decision("agent_0")
    assert obs.spec.kind == "text" and obs.round == 0 and obs.data["phase"] == "strategy"
    assert obs.prompt.endswith("describe your strategy briefly without explanation in one sentence that starts: "
                               "My strategy will be")
    with pytest.raises(ValueError, match="keeps one"):
        env.decision("agent_1")
    _, rewards, _, _, infos = env.step({
        "agent_0": "Cooperation pays.\nMy strategy will be to donate 40% to everyone.",
        "agent_2": "I will wing it.",
        "agent_3": 0.7,  # not a string: no strategy
        "agent_1": "ignored: agent_1 keeps its strategy",
    })
    assert set(rewards.values()) == {0.0}
    assert infos["agent_0"] == {"strategy": "My strategy will be to donate 40% to everyone.", "record": {
        "kind": "strategy", "strategy": "My strategy will be to donate 40% to everyone.", "source": "written"}}
    summary = env.episode_summary()
    assert summary["agent_0"]["strategy_justification"] == "Cooperation pays."
    assert (summary["agent_1"]["strategy"], summary["agent_1"]["strategy_source"]) == (
        "My strategy will be to give half.", "given")
    assert (summary["agent_2"]["strategy"], summary["agent_3"]["strategy_source"]) == ("I will wing it.", "none")
    prompts = {a: env.decision(a).prompt for a in env.acting_agents()}
    by_agent = {a: env.decision(a) for a in env.acting_agents()}
    for a, o in by_agent.items():
        assert o.data["own_strategy"] == summary[a]["strategy"]
        assert o.prompt.startswith(f"Your name is {a}.\n")
        assert "This is generation 3. It is now round 1." in o.prompt
        recall = "As you will recall, here is the strategy you decided to follow: "
        assert (recall in prompts[a]) is bool(summary[a]["strategy"])
        if summary[a]["strategy"]:
            assert recall + summary[a]["strategy"] + "\n" in prompts[a]
    assert by_agent[next(iter(by_agent))].spec.answer_marker == "Answer:"


def test_inherited_strategies_shown_to_new_agents_only() -> None:
    inherited = ["My strategy will be to donate 60%.", "My strategy will be to mirror the recipient."]
    env = DonorGame(4, generation=2, inherited_strategies=inherited, new_agents=["agent_2", "agent_3"],
                    strategies={"agent_0": "My strategy will be to keep it all."})
    env.reset(seed=0)
    assert env.acting_agents() == ["agent_1", "agent_2", "agent_3"]
    new = env.decision("agent_2")
    assert new.data["new"] is True and new.data["inherited_strategies"] == tuple(inherited)
    assert "Here is the advice of the best-performing agents of the previous generation." in new.prompt
    assert "- My strategy will be to donate 60%.\n- My strategy will be to mirror the recipient.\n" in new.prompt
    assert "improve on the surviving agents' strategies" in new.prompt
    old = env.decision("agent_1")
    assert old.data["new"] is False
    assert "advice" not in old.prompt and "Based on the description of the game" in old.prompt


def test_no_strategy_step_when_every_strategy_is_kept_or_switched_off() -> None:
    env = DonorGame(4, strategies={f"agent_{i}": f"My strategy will be {i}." for i in range(4)})
    env.reset(seed=0)
    assert env.decision(env.acting_agents()[0]).data["phase"] == "donation"
    env = DonorGame(4, strategy_step=False)
    env.reset(seed=0)
    obs = env.decision(env.acting_agents()[0])
    assert obs.round == 1 and "As you will recall" not in obs.prompt


def test_system_prompt_is_static_and_states_the_rules() -> None:
    env = DonorGame(12, endowment=10, multiplier=3)
    env.reset(seed=0)
    system = env.decision("agent_0").system
    assert "Each player is given an initial endowment of 10 units of a resource." in system
    assert "The recipient receives 3x the number of units that the donor gave up." in system
    assert "If you were a donor in one round, you will be a recipient in the next round" in system
    env.step({a: "My strategy will be to give." for a in env.acting_agents()})
    while env.agents:
        assert {env.decision(a).system for a in env.acting_agents()} == {system}
        play_round(env, default=1.0)
    assert "you will be a recipient in the next round" not in DonorGame(12, pairing="random")._system


# -- data, summary, step contract -----------------------------------------------------------


def test_decision_data_fields() -> None:
    env = four(generation=4, variant="none")
    obs = env.decision("agent_1")
    assert obs.agent == "agent_1" and obs.round == 1
    assert {k: obs.data[k] for k in ("game", "partner", "resources", "recipient_resources", "recipient_reputation",
                                     "recipient_trace", "round", "game_index", "generation", "variant",
                                     "own_strategy")} == {
        "game": "donor-game", "partner": "agent_3", "resources": 10.0, "recipient_resources": 10.0,
        "recipient_reputation": None, "recipient_trace": (), "round": 1, "game_index": 0, "generation": 4,
        "variant": "none", "own_strategy": ""}
    assert obs.spec.kind == "real" and (obs.spec.minimum, obs.spec.maximum, obs.spec.default) == (0.0, 10.0, 0.0)
    with pytest.raises(ValueError, match="not a donor"):
        env.decision("agent_2")


def test_rewards_are_resource_changes_and_summary_is_json() -> None:
    env = DonorGame(12, strategy_step=False)
    env.reset(seed=1)
    cumulative = dict.fromkeys(env.possible_agents, 0.0)
    rng = np.random.default_rng(0)
    while env.agents:
        live = list(env.agents)
        acts = {a: float(rng.uniform(0, env.resources[a])) for a in env.acting_agents()}
        obs, rewards, terms, truncs, infos = env.step(acts)
        assert set(rewards) == set(obs) == set(terms) == set(truncs) == set(infos) == set(live)
        for a, r in rewards.items():
            cumulative[a] += r
    summary = env.episode_summary()
    json.dumps(summary)
    for a, s in summary.items():
        assert len(s["final_resources"]) == 2 and s["times_donor"] == 12
        assert cumulative[a] == pytest.approx(sum(f - 10.0 for f in s["final_resources"]))
        assert s["reputation"] == s["reputations"][-1]
    assert all(terms.values()) and env.agents == []


def test_step_contract() -> None:
    env = four()
    with pytest.raises(ValueError, match="missing: agent_1"):
        env.step({"agent_0": 1.0})
    with pytest.raises(ValueError, match="unknown agent"):
        env.step({"agent_0": 1.0, "agent_1": 1.0, "bob": 1.0})
    with pytest.raises(ValueError, match="NaN"):
        env.step({"agent_0": 1.0, "agent_1": math.nan})
    with pytest.raises(ValueError, match="expected a number"):
        env.step({"agent_0": 1.0, "agent_1": None})
    assert env.resources == dict.fromkeys(env.possible_agents, 10.0), "a rejected step moves nothing"
    env.step({a: 3.0 for a in env.agents})  # waiting agents' actions are ignored
    assert env.resources == {"agent_0": 7.0, "agent_1": 7.0, "agent_2": 16.0, "agent_3": 16.0}
    env.step({"agent_3": 99.0, "agent_2": -5.0})  # clipped into [0, resources]
    assert env.resources == {"agent_0": 39.0, "agent_1": 7.0, "agent_2": 16.0, "agent_3": 0.0}
    while env.agents:
        play_round(env)
    with pytest.raises(RuntimeError, match="reset"):
        env.step({})


@pytest.mark.parametrize(("params", "message"), [
    ({"num_agents": 1}, "num_agents"),
    ({"num_agents": 5}, "num_agents must be even"),
    ({"endowment": 0}, "endowment"),
    ({"multiplier": -1}, "multiplier"),
    ({"rounds": 0}, "rounds"),
    ({"games": 1.5}, "games"),
    ({"pairing": "ladder"}, "pairing"),
    ({"pairing": "graph", "graph_kind": "star"}, "graph_kind"),
    ({"pairing": "graph", "graph_kind": "ring", "graph_params": {"p": 0.1}}, "graph_params"),
    ({"pairing": "graph", "graph_kind": "erdos_renyi", "graph_params": {"p": 2}}, r"graph_params\['p'\]"),
    ({"pairing": "graph", "graph_kind": "watts_strogatz", "graph_params": {"k": 12}}, r"graph_params\['k'\]"),
    ({"graph_params": {"p": 0.1}}, "only apply to pairing='graph'"),
    ({"variant": "tax"}, "variant"),
    ({"punish_cost": 0}, "punish_cost"),
    ({"punish_loss": -2}, "punish_loss"),
    ({"trace_depth": -1}, "trace_depth"),
    ({"strategy_step": "yes"}, "strategy_step"),
    ({"shuffle_halves": 1}, "shuffle_halves"),
    ({"inherited_strategies": "My strategy"}, "inherited_strategies"),
    ({"inherited_strategies": [3]}, r"inherited_strategies\[0\]"),
    ({"strategies": {"agent_99": "x"}}, "strategies: unknown agent 'agent_99'"),
    ({"strategies": {"agent_0": 3}}, r"strategies\['agent_0'\]"),
    ({"strategies": {"agent_0": "x" * 3000}}, "longer than"),
    ({"new_agents": ["agent_0"], "strategies": {"agent_0": "x"}}, "overlap"),
    ({"new_agents": "agent_0"}, "new_agents"),
    ({"generation": -1}, "generation"),
    ({"reputation_discount": -0.5}, "reputation_discount"),
    ({"render_mode": "human"}, "render_mode"),
])
def test_parameters_are_checked(params: dict[str, Any], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        make("donor-game", **params)


def test_render() -> None:
    env = four(render_mode="ansi")
    assert env.render() is None
    play_round(env, default=5.0)
    assert env.render() == ("Game 1, round 1: 2 pairs, 2 donations (mean 50% of resources), "
                            "total resources 50.")


# -- PettingZoo conformance for the variants ------------------------------------------------

VARIANTS: list[dict[str, Any]] = [
    {"variant": "punishment"},
    {"variant": "partner_choice", "pairing": "random", "num_agents": 7},
    {"pairing": "graph", "graph_kind": "watts_strogatz", "num_agents": 10, "trace_depth": 5},
    {"num_agents": 6, "rounds": 3, "games": 3, "inherited_strategies": ["My strategy will be — to give ½."],
     "new_agents": ["agent_1"], "strategies": {"agent_0": "My strategy will be to give 10%."}},
    {"strategy_step": False, "multiplier": 5, "rounds": 30},
]


@pytest.mark.filterwarnings("error::UserWarning")
@pytest.mark.parametrize("params", VARIANTS, ids=str)
def test_parallel_api_variants(params: dict[str, Any]) -> None:
    parallel_api_test(make("donor-game", **params), num_cycles=1000)
    parallel_seed_test(lambda: make("donor-game", **params))


@pytest.mark.parametrize("params", VARIANTS, ids=str)
def test_observations_lie_in_their_spaces(params: dict[str, Any]) -> None:
    env = make("donor-game", **params)
    obs, _ = env.reset(seed=7)
    for a in env.agents:
        env.action_space(a).seed(7)
    while True:
        for agent, o in obs.items():
            assert env.observation_space(agent).contains(o), f"{agent}: {o!r}"
        if not env.agents:
            break
        if env._phase == "strategy":
            acts = {a: "Reasoning.\nMy strategy will be to give “most” — always." for a in env.acting_agents()}
        else:
            acts = {a: env.action_space(a).sample() for a in env.agents}
        obs, *_ = env.step(acts)
        env.check_invariants()
