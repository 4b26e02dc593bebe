"""What the bundled games share beyond PettingZoo's ParallelEnv: the space lookups and number reading."""

from __future__ import annotations

import math
from typing import Any

import numpy as np
from gymnasium import spaces
from pettingzoo import ParallelEnv


def read_number(agent: str, value: Any, *, expected: str = "a number") -> float:
    """A numeric action as a float: a real number, or a numeric string (surrounding space and a
    closing full stop ignored, as language models write them).

    One reading for every game that takes numbers, so they accept and refuse the same
    things with the same words: bools, None, NaN and non-numbers raise ValueError naming
    `agent`; `expected` is what a bad string is told to be instead.
    """
    if isinstance(value, str):
        try:
            number = float(value.strip().rstrip(".").strip())
        except ValueError:
            raise ValueError(f"invalid action {value!r} for {agent}: expected {expected}") from None
    elif isinstance(value, (bool, np.bool_)) or value is None:
        raise ValueError(f"invalid action {value!r} for {agent}: expected a number")
    else:
        try:
            number = float(value)
        except (TypeError, ValueError):
            raise ValueError(f"invalid action {value!r} for {agent}: expected a number") from None
    if math.isnan(number):
        raise ValueError(f"invalid action {value!r} for {agent}: expected a number, got NaN")
    return number


class GameEnv(ParallelEnv):
    """A ParallelEnv whose per-agent spaces come from its `observation_spaces` / `action_spaces` dicts.

    PettingZoo warns unless a game overrides `observation_space` and
    `action_space`; every bundled game reads them from its dicts, so the lookup
    lives here once. `close` releases nothing: the games hold no external resources.
    """

    _index: dict[str, int]  # agent -> position in possible_agents, set by each game

    def observation_space(self, agent: str) -> spaces.Space:
        return self.observation_spaces[agent]

    def action_space(self, agent: str) -> spaces.Space:
        return self.action_spaces[agent]

    def _deciding(self, agent: str) -> int:
        """`agent`'s index in `_index`, checked the way every game's `decision` starts."""
        i = self._index.get(agent)
        if i is None:
            raise ValueError(f"unknown agent {agent!r}; agents are {self.possible_agents[0]} .. "
                             f"{self.possible_agents[-1]}")
        if not self.agents:
            raise RuntimeError("the episode is over (or never started); call reset() first")
        return i

    def close(self) -> None:
        """Nothing to release: the game holds no external resources."""
