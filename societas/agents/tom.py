"""Scripted theory-of-mind agents for the gridworld (actors) and the observer tasks (observers).

Actors (seat them in `tom-gridworld`):
- random_actor: draws one action distribution per episode from a flat Dirichlet and samples moves from it
  (ToMnet's random species).
- algorithmic_actor: a shortest path to its goal colour once it believes the object exists somewhere,
  exploring the nearest unseen cell until then.
- goal_directed: goes to the believed object of best preference minus a small distance cost.
Observers (seat them in `tom-observer`):
- reality_observer: answers from the true world (fails exactly the items that separate mind from reality).
- belief_observer: answers from the belief oracle's mind in the decision data (the ceiling);
  reality-check questions, which are about the world, from the world.
- random_observer: a uniform choice.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np

from societas.types import Action, InvalidAction, Observation

TOM_STRATEGIES: dict[str, tuple[str, str]] = {
    "random_actor": ("actor", "Samples moves from an action distribution drawn per episode (Dirichlet)."),
    "algorithmic_actor": ("actor", "Shortest path to its goal object once seen; explores the nearest unseen cell."),
    "goal_directed": ("actor", "Goes to the believed object of best preference minus a distance cost."),
    "reality_observer": ("observer", "Answers theory-of-mind questions from the true world state."),
    "belief_observer": ("observer", "Answers theory-of-mind questions from the belief oracle's mind."),
    "random_observer": ("observer", "Answers theory-of-mind questions uniformly at random."),
}
"""Strategy name -> (role, description)."""


def describe_tom_strategies() -> dict[str, str]:
    """Strategy name -> one-line description (for `societas list`)."""
    return {name: desc for name, (_, desc) in TOM_STRATEGIES.items()}


class TomAgent:
    """A scripted gridworld actor or observer; not a language model."""

    kind = "scripted"
    model: str | None = None

    def __init__(self, name: str, strategy_name: str, rng: np.random.Generator,
                 params: Mapping[str, Any] | None = None) -> None:
        if strategy_name not in TOM_STRATEGIES:
            raise ValueError(f"unknown theory-of-mind strategy {strategy_name!r}; known: "
                             f"{', '.join(sorted(TOM_STRATEGIES))}")
        if params:
            raise ValueError(f"scripted:{strategy_name} takes no parameters; got {', '.join(sorted(params))}")
        self.name = name
        self.strategy_name = strategy_name
        self.role = TOM_STRATEGIES[strategy_name][0]
        self.policy = f"scripted:{strategy_name}"
        self._rng = rng
        self._probs: np.ndarray | None = None

    async def act(self, observation: Observation) -> Action:
        data = observation.data
        role = data.get("role")
        if role not in ("actor", "observer"):
            raise InvalidAction(f"{self.policy} plays the theory-of-mind gridworld games only")
        if role != self.role:
            raise ValueError(f"{self.name}: {self.policy} is an {self.role} strategy; seat it in "
                             f"{'tom-gridworld' if self.role == 'actor' else 'tom-observer'}")
        choices = observation.spec.choices
        from societas.environments.tom_gridworld import answer_question, plan

        name = self.strategy_name
        if name == "random_actor":
            if self._probs is None:
                self._probs = self._rng.dirichlet(np.ones(len(choices)))
            value = choices[int(self._rng.choice(len(choices), p=self._probs))]
        elif name in ("algorithmic_actor", "goal_directed"):
            value = plan(data["mind"], data["walls"], name)[0]
        elif name == "random_observer":
            value = choices[int(self._rng.integers(len(choices)))]
        else:
            reality_check = data["question"].get("category") == "reality_check"
            mind = data["beliefs"] if name == "belief_observer" and not reality_check else data["world"]
            value = answer_question(data["question"], mind, data["walls"])
        return Action(value=observation.spec.validate(value), policy=self.policy)
