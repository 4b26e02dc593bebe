"""Scripted players of the naming game, to play beside (or instead of) language-model agents.

- minimal: the minimal naming game's agent (`rules.Inventory`) with both roles
  at once, as the game has both players answer together: it says a random name
  of its inventory (a random one of the W names when it knows none, which it
  then keeps); after a success it keeps only that name, after a failure it adds
  the partner's. Its inventory is read from its memory (a pre-filled memory of
  successes with one name starts it knowing that name, as in the swap setup).
- best_response: the name that would have paid most over its last H
  interactions, i.e. the name its partners said most often there (ties and an
  empty memory: a random one among the best).
- committed: always says `params.name` and never changes (a committed minority).

They read `Observation.data` of `societas.environments.naming` (names, memory).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np

from societas.environments.naming.rules import MATCH, Inventory, pick
from societas.types import Action, InvalidAction, Observation

NAMING_STRATEGIES: dict[str, str] = {
    "minimal": "Naming game: the minimal model's inventory; says a random name it knows, keeps only the name "
               "after a success, adds the partner's after a failure.",
    "best_response": "Naming game: the name its partners said most often in its last H interactions.",
    "committed": "Naming game: always says params.name (a committed minority).",
}


def describe_naming_strategies() -> dict[str, str]:
    """Strategy name -> one-line description (for `societas list`)."""
    return dict(NAMING_STRATEGIES)


class NamingAgent:
    """A scripted player of the naming game; not a language model."""

    kind = "scripted"
    model: str | None = None

    def __init__(self, name: str, strategy_name: str, rng: np.random.Generator,
                 params: Mapping[str, Any] | None = None) -> None:
        if strategy_name not in NAMING_STRATEGIES:
            raise ValueError(f"unknown naming strategy {strategy_name!r}; known: {', '.join(NAMING_STRATEGIES)}")
        given = dict(params or {})
        accepted = ("name",) if strategy_name == "committed" else ()
        unknown = sorted(set(given) - set(accepted))
        if unknown:
            raise ValueError(f"scripted:{strategy_name} has no parameter {unknown[0]!r}; accepted: "
                             f"{', '.join(accepted) or 'none'}")
        if strategy_name == "committed" and not (isinstance(given.get("name"), str) and given["name"]):
            raise ValueError("scripted:committed needs the name it says: params: {name: M}")
        self.name = name
        self.strategy_name = strategy_name
        self.params = given
        self.policy = f"scripted:{strategy_name}"
        self._rng = rng
        self._inventory = Inventory()
        self._seen = 0  # the round number of the last memory entry read into the inventory

    def choose(self, data: Mapping[str, Any]) -> str:
        """The name this player says now."""
        names = data["names"]
        s = self.strategy_name
        if s == "committed":
            word = self.params["name"]
            if word not in names:
                raise InvalidAction(f"{self.policy}: {word!r} is not one of the names {', '.join(names)}")
            return word
        memory = data["memory"]
        if s == "minimal":
            for k, own, other, points in memory:
                if k > self._seen:
                    if points == MATCH:
                        self._inventory.success(own)
                    else:
                        self._inventory.hear(own)
                        self._inventory.hear(other)
                    self._seen = k
            return self._inventory.say(names, self._rng)
        counts = dict.fromkeys(names, 0)
        for _, _, other, _ in memory:
            counts[other] += 1
        top = max(counts.values())
        return pick([x for x in names if counts[x] == top], self._rng)

    async def act(self, observation: Observation) -> Action:
        data = observation.data
        if data.get("game") != "naming":
            raise InvalidAction(f"{self.policy} plays the naming game only")
        return Action(value=observation.spec.validate(self.choose(data)), policy=self.policy)
