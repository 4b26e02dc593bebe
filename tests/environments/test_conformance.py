"""The conformance kit: every registered game passes it, and broken games fail it with a clear message."""

from __future__ import annotations

import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from societas.environments import register, registered
from societas.environments import registry as registry_module
from societas.environments.matrix_game import RepeatedMatrixGame
from societas.testing import ConformanceError, ConformanceReport, check_environment, first_valid
from societas.types import ActionSpec, Observation

EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "plugin-stag-hunt"


@pytest.fixture
def clean_registry(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    monkeypatch.setattr(registry_module, "_REGISTRY", dict(registry_module._REGISTRY))
    yield


@pytest.mark.parametrize("env_id", sorted(registered()))
def test_every_registered_game_conforms(env_id: str) -> None:
    report = check_environment(env_id)
    assert isinstance(report, ConformanceReport)
    assert report.decisions > 0 and report.events > 0 and report.llm_calls > 0
    assert report.sample_prompt and report.action_kinds
    assert env_id in str(report)


def test_parameters_reach_the_game() -> None:
    report = check_environment("repeated-matrix-game", game="battle_of_the_sexes", rounds=3)
    assert report.decisions == 2 * 3 and report.events == 2 * 2 * 3
    assert report.params == {"game": "battle_of_the_sexes", "rounds": 3}


def test_the_kit_leaves_nothing_registered() -> None:
    from societas.agents.registry import policy_kinds

    check_environment("repeated-matrix-game", rounds=1)
    assert "conformance" not in policy_kinds()


@pytest.mark.parametrize("params", [{}, {"players": 4, "needed": 3, "rounds": 3}], ids=["2-hunters", "4-hunters"])
def test_example_plugin_game_conforms(clean_registry: None, monkeypatch: pytest.MonkeyPatch,
                                      params: dict[str, Any]) -> None:
    monkeypatch.syspath_prepend(str(EXAMPLE))
    register("stag-hunt-example", "societas_stag_hunt.env:StagHunt")
    try:
        report = check_environment("stag-hunt-example", **params)
    finally:
        sys.modules.pop("societas_stag_hunt.env", None)
        sys.modules.pop("societas_stag_hunt", None)
    assert len(report.agents) == params.get("players", 2)
    assert "Option J" in report.sample_prompt and report.action_kinds == ("choice",)


@pytest.mark.parametrize(("spec", "answer"), [
    (ActionSpec.choice(["a", "b"]), "a"),
    (ActionSpec.integer(3, 9), 3),
    (ActionSpec.real(-1.5, 2.0), -1.5),
    (ActionSpec(kind="text"), "ok"),
    (ActionSpec(kind="regex", pattern=r"\d+", default="42"), "42"),
    (ActionSpec(kind="json", schema={"required": ["give"]}), {"give": None}),
])
def test_first_valid_answers_any_spec(spec: ActionSpec, answer: Any) -> None:
    assert first_valid(spec) == answer


# -- deliberately broken games -------------------------------------------------------------------


class DecisionIsADict(RepeatedMatrixGame):
    def decision(self, agent: str) -> Any:  # type: ignore[override]
        return {"prompt": "choose"}


class IgnoresTheSeed(RepeatedMatrixGame):
    """Each instance draws its letters from its own seed, whatever reset() is given."""

    built = 0

    def __init__(self) -> None:
        super().__init__(random_letters=True)
        IgnoresTheSeed.built += 1
        self.own_seed = IgnoresTheSeed.built

    def reset(self, seed: int | None = None, options: dict[str, Any] | None = None) -> Any:
        return super().reset(seed=self.own_seed, options=options)


class ForgetsARewards(RepeatedMatrixGame):
    def step(self, actions: dict[str, Any]) -> Any:
        obs, rewards, terms, truncs, infos = super().step(actions)
        rewards.pop("player_1")
        return obs, rewards, terms, truncs, infos


class DefaultOutOfRange(RepeatedMatrixGame):
    def decision(self, agent: str) -> Observation:
        obs = super().decision(agent)
        return Observation(agent=agent, round=obs.round, system=obs.system, prompt=obs.prompt,
                           spec=ActionSpec.integer(0, 1, default=7), data=obs.data)

    def step(self, actions: dict[str, Any]) -> Any:
        return super().step(actions)


class OptionIsText(RepeatedMatrixGame):
    def step(self, actions: dict[str, Any]) -> Any:
        obs, rewards, terms, truncs, infos = super().step(actions)
        for info in infos.values():
            info["option"] = "first"
        return obs, rewards, terms, truncs, infos


def cannot_build() -> RepeatedMatrixGame:
    raise RuntimeError("no game today")


@pytest.mark.parametrize(("factory", "check", "detail"), [
    (cannot_build, "build", "RuntimeError: no game today"),
    (DecisionIsADict, "decision", "must return a societas.types.Observation, got dict"),
    (IgnoresTheSeed, "PettingZoo parallel_seed_test", ""),
    (ForgetsARewards, "PettingZoo parallel_api_test", "Live agent was not given reward"),
    (DefaultOutOfRange, "decision", "spec.default 7 is not a valid answer"),
    (OptionIsText, "runner episode (valid agents)", "events rows do not fit the run directory's schema"),
], ids=["build", "decision-type", "seed", "api", "default", "events"])
def test_broken_games_fail_with_a_clear_message(clean_registry: None, factory: Any, check: str,
                                                detail: str) -> None:
    register("broken-game", factory)
    with pytest.raises(ConformanceError) as err:
        check_environment("broken-game")
    assert err.value.env_id == "broken-game" and err.value.check == check
    assert str(err.value).startswith(f"broken-game: {check}: ") and detail in str(err.value)
    assert "\n" not in str(err.value)


def test_the_kit_works_inside_a_running_event_loop() -> None:
    import asyncio

    async def inside() -> ConformanceReport:
        return check_environment("repeated-matrix-game", rounds=2)

    assert asyncio.run(inside()).decisions == 4
