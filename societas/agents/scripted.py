"""Scripted strategies for repeated 2x2 games: the hand-coded opponents of the
repeated-games study (Akata et al. 2023) plus the classics.

A strategy is a small pure function of the observation's structured `data`
and a per-episode random generator, returning a canonical option index
(0 = cooperate / "J", 1 = defect / "F"). Keeping them pure and index-based
makes them cheap (an act() costs microseconds), testable without an
environment, and independent of the letters a game shows its players.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

import numpy as np

from societas.types import Action, Observation

Strategy = Callable[[Mapping[str, Any], np.random.Generator], int]
"""(observation data, per-episode rng) -> canonical option index (0 or 1)."""

COOPERATE = 0
DEFECT = 1

STRATEGIES: dict[str, Strategy] = {}
_DESCRIPTIONS: dict[str, str] = {}


def _register(name: str, description: str, *aliases: str) -> Callable[[Strategy], Strategy]:
    def add(fn: Strategy) -> Strategy:
        STRATEGIES[name] = fn
        _DESCRIPTIONS[name] = description
        for alias in aliases:
            STRATEGIES[alias] = fn
            _DESCRIPTIONS[alias] = f"Same as {name}."
        return fn

    return add


def describe_strategies() -> dict[str, str]:
    """Strategy name -> one-line description, aliases included (for `societas list`)."""
    return dict(_DESCRIPTIONS)


@_register("always_cooperate", "Always plays option 0 (J, cooperate).", "always_j")
def always_cooperate(data: Mapping[str, Any], rng: np.random.Generator) -> int:
    return COOPERATE


@_register("always_defect", "Always plays option 1 (F, defect).", "always_f")
def always_defect(data: Mapping[str, Any], rng: np.random.Generator) -> int:
    return DEFECT


@_register("tit_for_tat", "Cooperates first, then copies the partner's last move.")
def tit_for_tat(data: Mapping[str, Any], rng: np.random.Generator) -> int:
    partner = data["partner_history"]
    return partner[-1] if partner else COOPERATE


@_register("tit_for_two_tats", "Cooperates unless the partner defected in both of the last two rounds.")
def tit_for_two_tats(data: Mapping[str, Any], rng: np.random.Generator) -> int:
    partner = data["partner_history"]
    return DEFECT if len(partner) >= 2 and partner[-1] == DEFECT and partner[-2] == DEFECT else COOPERATE


@_register("suspicious_tit_for_tat", "Defects first, then copies the partner's last move.")
def suspicious_tit_for_tat(data: Mapping[str, Any], rng: np.random.Generator) -> int:
    partner = data["partner_history"]
    return partner[-1] if partner else DEFECT


@_register("grim_trigger", "Cooperates until the partner defects once, then defects for good.")
def grim_trigger(data: Mapping[str, Any], rng: np.random.Generator) -> int:
    return DEFECT if DEFECT in data["partner_history"] else COOPERATE


@_register(
    "win_stay_lose_shift",
    "Cooperates first; repeats its move after one of its two best outcomes, else switches (Pavlov).",
)
def win_stay_lose_shift(data: Mapping[str, Any], rng: np.random.Generator) -> int:
    own = data["own_history"]
    if not own:
        return COOPERATE
    payoffs = data["payoffs"]
    # "Win" = at least the second-best of the four payoffs: in PD that is
    # mutual cooperation or exploiting, in BoS any coordination.
    threshold = sorted((payoffs[0][0], payoffs[0][1], payoffs[1][0], payoffs[1][1]))[2]
    rewards = data.get("own_rewards")
    last = rewards[-1] if rewards else payoffs[own[-1]][data["partner_history"][-1]]
    return own[-1] if last >= threshold else 1 - own[-1]


@_register("alternating", "Plays J, F, J, F, ... by round number.", "alternating_jf")
def alternating(data: Mapping[str, Any], rng: np.random.Generator) -> int:
    return len(data["own_history"]) % 2


@_register("alternating_fj", "Plays F, J, F, J, ... by round number.")
def alternating_fj(data: Mapping[str, Any], rng: np.random.Generator) -> int:
    return 1 - len(data["own_history"]) % 2


@_register("defect_once", "Defects in round 1, then cooperates whatever the partner does.")
def defect_once(data: Mapping[str, Any], rng: np.random.Generator) -> int:
    return COOPERATE if data["own_history"] else DEFECT


def _noisy_tit_for_tat(p_defect: float) -> Strategy:
    # As in the study's "naive prober": round 1 cooperates without a draw; later
    # rounds defect with probability p, else copy the partner's last move.
    def strategy(data: Mapping[str, Any], rng: np.random.Generator) -> int:
        partner = data["partner_history"]
        if not partner:
            return COOPERATE
        return DEFECT if rng.random() < p_defect else partner[-1]

    strategy.__name__ = f"tft_noise{round(p_defect * 100)}"
    strategy.__doc__ = f"Tit-for-tat that defects at random with probability {p_defect:g} after round 1."
    return strategy


tft_noise10 = _register(
    "tft_noise10", "Tit-for-tat, but defects at random with probability 0.1 after round 1."
)(_noisy_tit_for_tat(0.1))
tft_noise20 = _register(
    "tft_noise20", "Tit-for-tat, but defects at random with probability 0.2 after round 1."
)(_noisy_tit_for_tat(0.2))


@_register("random", "Picks either option with probability 1/2 each round.")
def uniform_random(data: Mapping[str, Any], rng: np.random.Generator) -> int:
    return 0 if rng.random() < 0.5 else 1


class ScriptedAgent:
    """An agent that plays a registered strategy; not a language model.

    All randomness comes from `rng` (one per episode and seat, spawned by the
    runner), so runs replay exactly.
    """

    kind = "scripted"
    model: str | None = None

    def __init__(self, name: str, strategy_name: str, rng: np.random.Generator) -> None:
        try:
            self._strategy = STRATEGIES[strategy_name]
        except KeyError:
            known = ", ".join(sorted(STRATEGIES))
            raise ValueError(f"unknown scripted strategy {strategy_name!r}; known: {known}") from None
        self.name = name
        self.strategy_name = strategy_name
        self.policy = f"scripted:{strategy_name}"
        self._rng = rng

    async def act(self, observation: Observation) -> Action:
        data = observation.data
        index = self._strategy(data, self._rng)
        value = observation.spec.validate(data["options"][index])
        return Action(value=value, policy=self.policy)
