"""Agents for the stag hunt: one scripted strategy and one policy kind.

`register()` is the `societas.agents` entry point: societas calls it once,
the first time a config names a policy it does not know.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np

from societas.agents import register_policy, register_strategy
from societas.types import Action, Observation

STAG, HARE = 0, 1


def stag_if_all_stag(data: Mapping[str, Any], rng: np.random.Generator) -> int:
    """Hunts stag first; afterwards only if every other hunter hunted stag last round."""
    others = data["others_history"]
    return STAG if not others or all(m == STAG for m in others[-1]) else HARE


class ThresholdHunter:
    """Hunts stag while the share of other stag hunters last round reaches `trust` (a config param).

    An agent is any object with name, policy, kind, model and `async act()`;
    this one is not a language model, so `model` is None.
    """

    kind = "hunter"
    model: str | None = None

    def __init__(self, name: str, trust: float) -> None:
        if not 0.0 <= trust <= 1.0:
            raise ValueError(f"hunter:threshold param trust must be between 0 and 1, got {trust!r}")
        self.name = name
        self.policy = "hunter:threshold"
        self.trust = trust

    async def act(self, observation: Observation) -> Action:
        data = observation.data
        others = data["others_history"]
        share = 1.0 if not others else sum(m == STAG for m in others[-1]) / len(others[-1])
        index = STAG if share >= self.trust else HARE
        return Action(value=observation.spec.validate(data["options"][index]), policy=self.policy)


def make_hunter(
    ident: str, *, name: str, rng: np.random.Generator, model: Any, llm_options: Any, params: Mapping[str, Any],
) -> ThresholdHunter:
    """Builds `hunter:threshold` agents; `params: {trust: 0.5}` in the config sets the threshold."""
    unknown = set(params) - {"trust"}
    if unknown:
        raise ValueError(f"hunter:{ident} takes the param trust; got {', '.join(sorted(unknown))}")
    return ThresholdHunter(name, float(params.get("trust", 0.5)))


def register() -> None:
    """The `societas.agents` entry point: add the strategy and the policy kind."""
    register_strategy(
        "stag_if_all_stag", stag_if_all_stag,
        description="Stag hunt: hunts stag first, then only if every other hunter hunted stag last round.",
    )
    register_policy(
        "hunter", make_hunter,
        names={"threshold": "Stag hunt: hunts stag while the share of other stag hunters last round "
                            "reaches params.trust (default 0.5)."},
        description="Threshold hunters for the stag hunt.",
    )
