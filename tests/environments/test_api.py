"""PettingZoo conformance for every registered environment (so games added later are covered)."""

from __future__ import annotations

from typing import Any

import pytest
from pettingzoo.test import parallel_api_test, parallel_seed_test

from societas.environments import make, registered

ENV_IDS = sorted(registered())

# Non-default parameter sets worth their own conformance run.
VARIANTS: list[tuple[str, dict[str, Any]]] = [
    ("repeated-matrix-game", {"game": "battle_of_the_sexes"}),
    ("repeated-matrix-game", {"game": "akata144:1", "random_letters": True}),
    ("repeated-matrix-game", {"game": "akata144:144", "rounds": 3, "shuffle_options": False}),
    ("repeated-matrix-game", {
        "payoffs": [[[3, 3], [-1.5, 4]], [[4, -1.5], [0, 0]]], "letters": ["Share", "Keep"], "rounds": 25,
    }),
]
CASES = [(env_id, {}) for env_id in ENV_IDS] + VARIANTS
CASE_IDS = [f"{env_id}-{params}" if params else env_id for env_id, params in CASES]


def test_builtin_games_are_registered() -> None:
    assert "repeated-matrix-game" in ENV_IDS


@pytest.mark.filterwarnings("error::UserWarning")
@pytest.mark.parametrize(("env_id", "params"), CASES, ids=CASE_IDS)
def test_parallel_api(env_id: str, params: dict[str, Any]) -> None:
    parallel_api_test(make(env_id, **params), num_cycles=1000)


@pytest.mark.filterwarnings("error::UserWarning")
@pytest.mark.parametrize(("env_id", "params"), CASES, ids=CASE_IDS)
def test_parallel_seed(env_id: str, params: dict[str, Any]) -> None:
    parallel_seed_test(lambda: make(env_id, **params))


@pytest.mark.parametrize(("env_id", "params"), CASES, ids=CASE_IDS)
def test_observations_lie_in_their_spaces(env_id: str, params: dict[str, Any]) -> None:
    env = make(env_id, **params)
    obs, _ = env.reset(seed=7)
    for a in env.agents:
        env.action_space(a).seed(7)
    for _ in range(10_000):
        for agent, o in obs.items():
            assert env.observation_space(agent).contains(o), f"{agent}: {o!r}"
        if not env.agents:
            break
        obs, *_ = env.step({a: env.action_space(a).sample() for a in env.agents})
    else:
        pytest.fail(f"{env_id} did not end within 10,000 steps")
    env.close()
