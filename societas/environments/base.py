"""What the bundled games share beyond PettingZoo's ParallelEnv."""

from __future__ import annotations

from gymnasium import spaces
from pettingzoo import ParallelEnv


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
