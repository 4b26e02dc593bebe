"""Scripted players for the partner-adaptation game: baselines for literal and functional theory of mind.

- best_response_learner: counts the partner's moves conditioned on the last
  round (own move, partner move), backing off to the partner's last move, the
  own last move and finally all rounds when a context has been seen fewer than
  `min_count` times; predicts the most frequent move and plays its best
  response. Literal and functional theory of mind together.
- predict_only: predicts like the learner but plays at random: literal without
  functional theory of mind (Riemer et al. 2024's dissociation).
- random_player: plays at random and predicts nothing.

They read `Observation.data` of `societas.environments.partner_adaptation`
(moves, payoffs, own_history, partner_history) and fill `Action.prediction`
with the predicted move's name.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from societas.agents.params import checked_params
from societas.types import Action, InvalidAction, Observation


@dataclass(frozen=True, kw_only=True, slots=True)
class PartnerStrategy:
    """A named player: whether it predicts, whether it plays the best response, and its parameters."""

    name: str
    description: str
    predicts: bool
    plays_best_response: bool
    defaults: Mapping[str, float]
    ranges: Mapping[str, tuple[float, float]]

    def params(self, given: Mapping[str, Any] | None = None) -> dict[str, float]:
        """The defaults overridden by `given`, checked."""
        return checked_params(self.name, self.defaults, self.ranges, given)


_LEARN = ({"min_count": 1.0}, {"min_count": (1.0, 100.0)})
PARTNER_STRATEGIES: dict[str, PartnerStrategy] = {
    s.name: s for s in (
        PartnerStrategy(name="best_response_learner", description="Predicts the partner's next move from "
                        "conditional frequencies and plays the best response to it.", predicts=True,
                        plays_best_response=True, defaults=_LEARN[0], ranges=_LEARN[1]),
        PartnerStrategy(name="predict_only", description="Predicts like the best-response learner but plays "
                        "at random (literal without functional theory of mind).", predicts=True,
                        plays_best_response=False, defaults=_LEARN[0], ranges=_LEARN[1]),
        PartnerStrategy(name="random_player", description="Plays uniformly at random; predicts nothing.",
                        predicts=False, plays_best_response=False, defaults={}, ranges={}),
    )
}


def describe_partner_strategies() -> dict[str, str]:
    """Strategy name -> one-line description (for `societas list`)."""
    return {name: s.description for name, s in PARTNER_STRATEGIES.items()}


def predict_partner(own: Sequence[int], theirs: Sequence[int], n: int, min_count: int = 1) -> int:
    """The partner's most frequent next move after the current context, backing off to shorter contexts."""
    if not theirs:
        return 0
    keys = (lambda t: (own[t - 1], theirs[t - 1]), lambda t: theirs[t - 1], lambda t: own[t - 1], lambda t: None)
    for key in keys:
        now = key(len(theirs))
        counts = np.zeros(n)
        for t in range(1, len(theirs)):
            if key(t) == now:
                counts[theirs[t]] += 1
        if key is keys[-1]:
            counts[theirs[0]] += 1
        if counts.sum() >= min_count:
            return int(np.argmax(counts))
    return 0


class PartnerAgent:
    """A scripted player of the partner-adaptation game; not a language model."""

    kind = "scripted"
    model: str | None = None

    def __init__(self, name: str, strategy_name: str, rng: np.random.Generator,
                 params: Mapping[str, Any] | None = None) -> None:
        try:
            self._strategy = PARTNER_STRATEGIES[strategy_name]
        except KeyError:
            known = ", ".join(sorted(PARTNER_STRATEGIES))
            raise ValueError(f"unknown partner-game strategy {strategy_name!r}; known: {known}") from None
        self.name = name
        self.strategy_name = strategy_name
        self.params = self._strategy.params(params)
        self.policy = f"scripted:{strategy_name}"
        self._rng = rng

    async def act(self, observation: Observation) -> Action:
        data = observation.data
        if "moves" not in data or "partner_history" not in data:
            raise InvalidAction(f"{self.policy} plays the partner-adaptation game only")
        moves = tuple(data["moves"])
        n = len(moves)
        s = self._strategy
        guess = None
        if s.predicts:
            guess = predict_partner(data["own_history"], data["partner_history"], n, int(self.params["min_count"]))
        if s.plays_best_response and guess is not None:
            move = int(np.argmax(np.asarray(data["payoffs"], dtype=float)[:, guess]))
        else:
            move = int(self._rng.integers(n))
        return Action(value=observation.spec.validate(moves[move]), policy=self.policy,
                      prediction=None if guess is None else moves[guess])
