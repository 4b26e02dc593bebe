"""Scripted members of the commons: baselines that sustain, exhaust or keep to an agreement.

- sustainable: takes f(t)/N, its share of the sustainability threshold (whole
  units, rounded down), and proposes it as the limit at the town hall.
- greedy: asks for the whole stock every month and proposes no limit.
- fixed_share: asks for `units` every month (capped at the stock) and proposes it.
- rule_follower: keeps to the latest limit the town hall agreed on; before any
  agreement it takes `units`, and it proposes f(t)/N.

They read `Observation.data` of `societas.environments.commons` (phase, stock,
members, sustainable_total, agreed_limit) and answer the town hall in its
"LIMIT | sentence" form.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np

from societas.agents.params import checked_params
from societas.types import Action, InvalidAction, Observation


@dataclass(frozen=True, kw_only=True, slots=True)
class CommonsStrategy:
    """A named member: its description and parameters."""

    name: str
    description: str
    defaults: Mapping[str, float]
    ranges: Mapping[str, tuple[float, float]]

    def params(self, given: Mapping[str, Any] | None = None) -> dict[str, float]:
        return checked_params(self.name, self.defaults, self.ranges, given)


_UNITS = ({"units": 10.0}, {"units": (0.0, 1e9)})
COMMONS_STRATEGIES: dict[str, CommonsStrategy] = {
    s.name: s for s in (
        CommonsStrategy(name="sustainable", description="Commons: takes f(t)/N, its share of the "
                        "sustainability threshold, and proposes it as the limit.", defaults={}, ranges={}),
        CommonsStrategy(name="greedy", description="Commons: asks for the whole stock every month.",
                        defaults={}, ranges={}),
        CommonsStrategy(name="fixed_share", description="Commons: asks for `units` every month.",
                        defaults=_UNITS[0], ranges=_UNITS[1]),
        CommonsStrategy(name="rule_follower", description="Commons: keeps the agreed limit (`units` before "
                        "any agreement) and proposes f(t)/N.", defaults=_UNITS[0], ranges=_UNITS[1]),
    )
}


def describe_commons_strategies() -> dict[str, str]:
    """Strategy name -> one-line description (for `societas list`)."""
    return {name: s.description for name, s in COMMONS_STRATEGIES.items()}


class CommonsAgent:
    """A scripted member of the commons; not a language model."""

    kind = "scripted"
    model: str | None = None

    def __init__(self, name: str, strategy_name: str, rng: np.random.Generator,
                 params: Mapping[str, Any] | None = None) -> None:
        try:
            self._strategy = COMMONS_STRATEGIES[strategy_name]
        except KeyError:
            known = ", ".join(sorted(COMMONS_STRATEGIES))
            raise ValueError(f"unknown commons strategy {strategy_name!r}; known: {known}") from None
        self.name = name
        self.strategy_name = strategy_name
        self.params = self._strategy.params(params)
        self.policy = f"scripted:{strategy_name}"

    def harvest(self, data: Mapping[str, Any]) -> int:
        """Units asked for this month."""
        stock, share = int(data["stock"]), int(data["sustainable_total"]) // int(data["members"])
        s = self.strategy_name
        if s == "sustainable":
            return share
        if s == "greedy":
            return stock
        limit = data.get("agreed_limit") if s == "rule_follower" else None
        return min(stock, int(self.params["units"]) if limit is None else int(limit))

    def proposal(self, data: Mapping[str, Any]) -> str:
        """The town-hall utterance."""
        share = int(data["sustainable_total"]) // int(data["members"])
        s = self.strategy_name
        if s == "greedy":
            return "none | I will take what I need."
        units = int(self.params["units"]) if s == "fixed_share" else share
        return f"{units} | Let us each take at most {units} next month."

    async def act(self, observation: Observation) -> Action:
        data = observation.data
        if data.get("game") != "commons":
            raise InvalidAction(f"{self.policy} plays the commons only")
        value = self.harvest(data) if data["phase"] == "harvest" else self.proposal(data)
        return Action(value=observation.spec.validate(value), policy=self.policy)
