"""The partner-adaptation game: each partner policy's moves, best responses, regret, and scripted players."""

from __future__ import annotations

import asyncio

import numpy as np
import pytest

from societas.agents.factory import make_agent
from societas.environments import make
from societas.environments.partner_adaptation import PARTNERS, partner_distribution
from societas.testing import check_environment

R, P, S = "rock", "paper", "scissors"


def _partner_moves(partner: str, mine: list[str], game: str = "rps", seed: int = 0) -> list[dict]:
    env = make("partner-adaptation", game=game, partner=partner, rounds=len(mine))
    env.reset(seed=seed)
    return [env.step({"player": m})[4]["player"]["record"] for m in mine]


@pytest.mark.parametrize(("partner", "mine", "theirs"), [
    ("always_rock", [P, S, R, R], [R, R, R, R]),
    ("cycle", [R, R, R, R], [R, P, S, R]),
    ("copy_last", [P, S, R, P], [R, P, S, R]),
    ("tit_for_tat", [P, S, R, P], [R, P, S, R]),
    ("beat_last", [P, S, R, P], [R, S, R, P]),
])
def test_deterministic_partners(partner: str, mine: list[str], theirs: list[str]) -> None:
    assert [r["partner_move"] for r in _partner_moves(partner, mine)] == theirs


def test_biased_partner_is_seeded_and_biased() -> None:
    a = [r["partner_move"] for r in _partner_moves("biased", [R] * 600, seed=1)]
    b = [r["partner_move"] for r in _partner_moves("biased", [R] * 600, seed=1)]
    assert a == b and 0.52 < a.count(R) / 600 < 0.68


def test_pd_partners_and_regret() -> None:
    recs = _partner_moves("tit_for_tat", ["defect", "cooperate", "defect"], game="pd")
    assert [r["partner_move"] for r in recs] == ["cooperate", "defect", "cooperate"]
    assert all(r["best_response"] == "defect" for r in recs)
    assert [r["regret"] for r in recs] == [0.0, 1.0, 0.0]
    assert [r["reward"] for r in recs] == [5.0, 0.0, 5.0]


def test_best_response_and_regret_rps() -> None:
    recs = _partner_moves("always_rock", [P, R, S])
    assert [r["best_response"] for r in recs] == [P, P, P]
    assert [r["regret"] for r in recs] == [0.0, 1.0, 2.0]
    biased = _partner_moves("biased", [R])[0]
    assert biased["best_response"] == P and biased["br_reward"] == pytest.approx(0.4)
    assert biased["regret"] == pytest.approx(0.4)  # rock's expected reward is 0
    np.testing.assert_allclose(partner_distribution("biased", "rps", [], []), [0.6, 0.2, 0.2])


def test_decision_offers_moves_and_prediction() -> None:
    env = make("partner-adaptation")
    env.reset(seed=0)
    env.step({"player": "paper"})
    obs = env.decision("player")
    assert obs.spec.choices == (R, P, S) and obs.prediction is not None
    assert "partner play next" in obs.prediction.prompt and "In round 1, you played paper" in obs.prompt
    assert obs.system == env.decision("player").system and "rock" in obs.system
    with pytest.raises(ValueError):
        make("partner-adaptation", partner="nobody")
    with pytest.raises(ValueError):
        env.step({"player": "lizard"})


@pytest.mark.parametrize("game", ["rps", "pd"])
def test_conformance(game: str) -> None:
    check_environment("partner-adaptation", game=game, partner="biased", rounds=5)


def _late_regret(game: str, partner: str, policy: str, seed: int) -> tuple[float, list]:
    env = make("partner-adaptation", game=game, partner=partner)
    env.reset(seed=seed)
    agent = make_agent(f"scripted:{policy}", name="p", rng=np.random.default_rng(seed))
    regret, preds = [], []
    while env.agents:
        action = asyncio.run(agent.act(env.decision("player")))
        preds.append(action.prediction)
        regret.append(env.step({"player": action.value})[4]["player"]["record"]["regret"])
    return float(np.mean(regret[-10:])), preds


@pytest.mark.parametrize("game", ["rps", "pd"])
@pytest.mark.parametrize("partner", PARTNERS)
def test_learner_regret_vanishes_random_does_not(game: str, partner: str) -> None:
    learner = np.mean([_late_regret(game, partner, "best_response_learner", s)[0] for s in range(4)])
    rand = np.mean([_late_regret(game, partner, "random_player", s)[0] for s in range(4)])
    if partner == "biased" and game == "rps":
        assert learner < 0.15 < 0.3 < rand  # expected regret: near optimal, random's is 0.4
    else:
        assert learner == 0.0
    assert rand > 0.3


def test_predict_only_predicts_right_but_plays_badly() -> None:
    regret, predicted = _late_regret("rps", "cycle", "predict_only", 0)
    cycle = [(R, P, S)[t % 3] for t in range(30)]
    assert predicted[-10:] == cycle[-10:] and regret > 0.3
    assert _late_regret("rps", "cycle", "random_player", 0)[1] == [None] * 30
