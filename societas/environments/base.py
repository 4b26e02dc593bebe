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

    def observation_space(self, agent: str) -> spaces.Space:
        return self.observation_spaces[agent]

    def action_space(self, agent: str) -> spaces.Space:
        return self.action_spaces[agent]

    def close(self) -> None:
        """Nothing to release: the game holds no external resources."""
