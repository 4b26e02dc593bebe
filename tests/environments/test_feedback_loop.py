"""The feedback-loop game and its belief strategies: the formal model, played by agents, number for number."""

from __future__ import annotations

import asyncio
from typing import Any

import numpy as np
import pytest

from societas.agents.belief import BELIEF_STRATEGIES, BeliefAgent, aggregate, bayesian_human
from societas.agents.factory import check_policy, make_agent
from societas.environments import make
from societas.environments.feedback_loop import STATEMENT_PATTERN, FeedbackLoop
from societas.societies import lockin
from societas.types import ActionSpec


def play(env: FeedbackLoop, seed: int, policies: dict[str, str] | None = None,
         params: dict[str, dict[str, float]] | None = None) -> list[dict[str, dict[str, Any]]]:
    """Play an episode with scripted belief agents (bayesian humans, aggregator AI); the infos of every step."""
    env.reset(seed=seed)
    policies = policies or {}
    agents = {a: make_agent(policies.get(a, "scripted:aggregator" if a == "ai" else "scripted:bayesian"), name=a,
                            rng=np.random.default_rng(i), params=(params or {}).get(a))
              for i, a in enumerate(env.possible_agents)}

    async def episode() -> list[dict[str, dict[str, Any]]]:
        steps = []
        while env.agents:
            live = env.acting_agents()
            acts = [await agents[a].act(env.decision(a)) for a in live]
            *_, infos = env.step({a: act.value for a, act in zip(live, acts)})
            steps.append(infos)
        return steps

    return asyncio.run(episode())


def stated(env: FeedbackLoop, steps: list[dict[str, dict[str, Any]]]) -> np.ndarray:
    """(rounds, N) stances stated each round, NaN where an agent did not act."""
    out = np.full((len(steps), len(env.possible_agents)), np.nan)
    for t, infos in enumerate(steps):
        for i, a in enumerate(env.possible_agents):
            if infos.get(a):
                out[t, i] = infos[a]["record"]["stance"]
    return out


CASES = {
    "star": {"num_humans": 20, "rounds": 120, "lambda1": 0.5, "lambda2": 0.11},
    "ring-topics-releases": {"num_humans": 7, "rounds": 60, "topics": 3, "lambda1": 0.3, "lambda2": 0.2,
                             "graph": "ring", "human_weight": 0.3, "self_weight": 0.2, "release_every": 3,
                             "drift": 0.1, "ai_sigma": 2.0, "sigma": [0.5, 1, 1.5, 2, 1, 1, 0.7]},
    "random-graph-statements": {"num_humans": 8, "rounds": 40, "statements": True, "graph": "erdos_renyi",
                                "graph_params": {"p": 0.5}, "human_weight": 0.5, "truth": 8.0},
}


@pytest.mark.parametrize("case", list(CASES))
@pytest.mark.parametrize("seed", [3, 11])
def test_bayesian_humans_reproduce_the_formal_model(case: str, seed: int) -> None:
    env = FeedbackLoop(**CASES[case])
    got = stated(env, play(env, seed))
    w = env.trust_matrix()
    # The environment's trust matrix is the formal model's for this episode's contact graph.
    assert np.array_equal(w, lockin.trust_matrix(env.contacts, env.lambda1, env.lambda2,
                                                 human_weight=env.human_weight, self_weight=env.self_weight))
    traj = lockin.simulate(w, mu=env.truth, sigmas=env.sigmas, rounds=env.rounds, seed=seed, bounds=env.scale,
                           release_every=env.release_every)
    want = traj.stated
    acted = ~np.isnan(got)
    assert acted[:, :-1].all()
    np.testing.assert_allclose(got[acted], want[acted], rtol=1e-12, atol=1e-12)
    # ...and the precisions the environment keeps are the model's.
    np.testing.assert_allclose(env.precisions, traj.precision[-1], rtol=1e-12)


def test_the_lockin_regime_is_reached_through_the_lambdas() -> None:
    spreads = {}
    for lambda2 in (0.09, 0.11):  # 20 x 0.5 x lambda2 = 0.9 and 1.1
        env = make("feedback-loop", num_humans=20, rounds=150, lambda1=0.5, lambda2=lambda2)
        steps = play(env, 5)
        summary = env.episode_summary()["ai"]
        assert summary["coupling"] == pytest.approx(20 * 0.5 * lambda2)
        assert summary["spectral_radius"] == pytest.approx(np.sqrt(20 * 0.5 * lambda2))
        spreads[lambda2] = stated(env, steps)[-1, :-1].std()
    assert spreads[0.09] > 0.05 and spreads[0.11] < 1e-4


def test_seeds_fix_truths_readings_and_graphs() -> None:
    def readings(seed: int) -> tuple[np.ndarray, list[Any], list[float]]:
        env = FeedbackLoop(num_humans=6, rounds=5, graph="erdos_renyi", graph_params={"p": 0.5}, drift=0.2)
        env.reset(seed=seed)
        obs = [env.decision(a).data["observation"] for a in env.acting_agents() if a != "ai"]
        return env.truth, sorted(env.contacts.edges), obs

    a, b, c = readings(1), readings(1), readings(2)
    assert np.array_equal(a[0], b[0]) and a[1] == b[1] and a[2] == b[2]
    assert not np.array_equal(a[0], c[0]) and a[2] != c[2]
    truth = readings(1)[0]
    assert truth.shape == (5, 1) and np.all((truth >= 0) & (truth <= 10)) and np.ptp(truth) > 0


def test_releases_the_ai_acts_only_on_release_steps() -> None:
    env = FeedbackLoop(num_humans=3, rounds=8, topics=2, release_every=2)
    env.reset(seed=0)
    acted = []
    for _ in range(8):
        acting = env.acting_agents()
        acted.append("ai" in acting)
        if "ai" not in acting:
            with pytest.raises(ValueError, match="no release"):
                env.decision("ai")
        env.step({a: 5.0 for a in acting})
    # Question steps 1, 1, 2, 2, 3, 3, 4, 4: releases on even steps of each question.
    assert acted == [False, False, True, True, False, False, True, True]
    assert env.episode_summary()["ai"]["releases"] == 4


def test_human_decision_carries_the_formal_models_fields() -> None:
    env = FeedbackLoop(num_humans=4, rounds=3, lambda1=0.4, graph="complete", human_weight=0.6, self_weight=0.1)
    env.reset(seed=4)
    env.step({a: 6.0 for a in env.acting_agents()})
    obs = env.decision("human_1")
    d = obs.data
    assert d["role"] == "human" and d["lambda1"] == 0.4 and d["self_weight"] == 0.1
    assert d["belief"] == 6.0 and d["precision"] == pytest.approx(1.0)  # q = p after the first reading
    assert d["ai_answer"] == 6.0 and d["ai_precision"] == pytest.approx(0.0)  # q_ai = lambda2 x 0 in round 1
    assert d["peer_precision"] == pytest.approx(0.6) and d["peer_mean"] == pytest.approx(6.0)
    assert d["signal_precision"] == 1.0 and 0 <= d["observation"] <= 10
    mean, q = bayesian_human(d)
    assert q == pytest.approx(1.0 + 0.1 + 0.6)  # p + self_weight q + lambda1 q_ai + peers
    assert mean == pytest.approx((d["observation"] + 0.1 * 6.0 + 0.6 * 6.0) / 1.7)
    assert obs.spec.kind == "real" and obs.spec.answer_marker == "Answer:"
    assert "Your new reading" in obs.prompt and "Round 2 of 3" in obs.prompt
    ai = env.decision("ai")
    assert ai.data["stances"].shape == (1, 4) and ai.data["precisions"].shape == (1, 4)
    assert not ai.data["stances"].flags.writeable


def test_consulting_is_optional() -> None:
    env = FeedbackLoop(num_humans=30, rounds=3, consult_prob=0.5)
    env.reset(seed=2)
    env.step({a: 5.0 for a in env.acting_agents()})
    seen = [env.decision(f"human_{i}").data for i in range(30)]
    skipped = [d for d in seen if not d["consulted"]]
    assert 0 < len(skipped) < 30
    assert all(d["ai_answer"] is None and d["ai_precision"] == 0.0 for d in skipped)
    assert "did not consult" in env.decision(f"human_{seen.index(skipped[0])}").prompt


def test_actions_numbers_statements_dicts_and_clipping() -> None:
    env = FeedbackLoop(num_humans=3, rounds=2, statements=True)
    env.reset(seed=0)
    spec = env.decision("human_0").spec
    assert spec.kind == "regex" and spec.pattern == STATEMENT_PATTERN
    assert spec.parse("I think so.\nAnswer: 6.5 | Most readings point up.") == "6.5 | Most readings point up."
    *_, infos = env.step({"human_0": "6.5 | Most readings point up.", "human_1": {"stance": 12, "statement": "x\ny"},
                          "human_2": np.float64(3.0), "ai": "4"})
    r0, r1, r2 = (infos[f"human_{i}"]["record"] for i in range(3))
    assert (r0["stance"], r0["statement"]) == (6.5, "Most readings point up.")
    assert (r1["stance"], r1["clipped"], r1["statement"]) == (10.0, True, "x y")
    assert r2["stance"] == 3.0 and r2["statement"] is None
    assert infos["ai"]["record"]["role"] == "ai" and infos["ai"]["record"]["observation"] is None
    assert 'you said: "Most readings point up."' in env.decision("human_0").prompt
    for bad in ("high", None, True, float("nan")):
        with pytest.raises(ValueError, match="invalid action"):
            env.step({"human_0": bad, "human_1": 1, "human_2": 1, "ai": 1})
    with pytest.raises(ValueError, match="missing: human_2"):
        env.step({"human_0": 1, "human_1": 1, "ai": 1})


@pytest.mark.parametrize(("params", "message"), [
    ({"num_humans": 0}, "num_humans"),
    ({"scale": [3, 1]}, "scale"),
    ({"truth": 12}, "truth must lie on the scale"),
    ({"topics": 2, "questions": ["one"]}, "questions"),
    ({"sigma": [1, 2]}, "sigma must be one number or one per human"),
    ({"lambda1": -1}, "lambda1"),
    ({"consult_prob": 2}, "consult_prob"),
    ({"graph": "star"}, "graph must be one of"),
    ({"graph": "ring", "graph_params": {"p": 0.1}}, "unknown key"),
    ({"statements": "yes"}, "statements"),
])
def test_bad_parameters_are_one_clear_line(params: dict[str, Any], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        FeedbackLoop(**params)


def test_episode_summary() -> None:
    env = FeedbackLoop(num_humans=5, rounds=10, topics=2, truth=[3.0, 7.0])
    play(env, 1)
    s = env.episode_summary()
    assert set(s) == {*(f"human_{i}" for i in range(5)), "ai"}
    h = s["human_0"]
    assert h["role"] == "human" and len(h["stances"]) == 2 and h["truth"] == [3.0, 7.0]
    assert h["distance"] == pytest.approx(np.abs(np.array(h["stances"]) - [3, 7]).tolist())
    assert h["coupling"] == pytest.approx(5 * 0.5 * 0.1) and h["scale"] == [0.0, 10.0]
    assert len(h["diversity"]) == 2 and len(h["consensus_error"]) == 2


# -- belief strategies -----------------------------------------------------------------


def test_belief_strategies_are_policies() -> None:
    assert {"bayesian", "social_learner", "stubborn", "aggregator", "confirming_ai"} <= set(BELIEF_STRATEGIES)
    for name in BELIEF_STRATEGIES:
        check_policy(f"scripted:{name}")
    agent = make_agent("scripted:aggregator", name="ai", rng=np.random.default_rng(0), params={"precision_power": 0})
    assert isinstance(agent, BeliefAgent) and agent.params == {"precision_power": 0.0}
    with pytest.raises(ValueError, match="precision_power must be a number in"):
        make_agent("scripted:aggregator", name="ai", rng=np.random.default_rng(0), params={"precision_power": 3})


def test_a_strategy_in_the_wrong_seat_says_so() -> None:
    env = FeedbackLoop(num_humans=2, rounds=2)
    with pytest.raises(ValueError, match="seat it in the AI seat"):
        play(env, 0, {"human_0": "scripted:aggregator"})
    with pytest.raises(ValueError, match="seat it in a human seat"):
        play(env, 0, {"ai": "scripted:stubborn"})


def test_statement_answers_read_back_exactly() -> None:
    env = FeedbackLoop(num_humans=4, rounds=30, statements=True)
    plain = FeedbackLoop(num_humans=4, rounds=30)
    a, b = stated(env, play(env, 8)), stated(plain, play(plain, 8))
    assert np.array_equal(a, b, equal_nan=True)
    agent = BeliefAgent("h", "bayesian", np.random.default_rng(0))
    spec = ActionSpec(kind="json", schema={"required": ["stance", "statement"]})
    assert agent.answer(spec, {"scale": (0, 10)}, 11.0) == {"stance": 10.0, "statement": agent._strategy.statement}


def test_social_learner_stubborn_and_confirming_ai() -> None:
    policies = {"human_0": "scripted:stubborn", "human_1": "scripted:social_learner", "ai": "scripted:confirming_ai"}
    env = FeedbackLoop(num_humans=3, rounds=12, lambda1=0.5)
    got = stated(env, play(env, 6, policies, {"human_1": {"rate": 1.0, "evidence": 0.0}}))
    assert np.all(got[:, 0] == got[0, 0])  # stubborn: its first reading forever
    # a social learner with rate 1 and no evidence weight states the AI's answer of the round before
    assert np.allclose(got[2:, 1], got[1:-1, 3])
    data = {"stances": np.array([[6.0, 7.0, 2.0]]), "scale": (0, 10)}
    strategy = BELIEF_STRATEGIES["confirming_ai"]
    assert strategy.decide(data, np.random.default_rng(0), {"amplify": 0.5}, {}) == pytest.approx(6.5 + 0.75)
    uniform = {"stances": np.array([[2.0, 4.0]]), "precisions": np.array([[1.0, 3.0]]), "answer": 5.0,
               "lambda2": 0.1}
    assert aggregate(uniform, 1.0) == pytest.approx(3.5) and aggregate(uniform, 0.0) == pytest.approx(3.0)
