"""tom-gridworld: one partially observing actor looking for coloured objects, as a PettingZoo parallel env."""

from __future__ import annotations

import functools
from collections.abc import Mapping, Sequence
from typing import Any, ClassVar

import numpy as np
from gymnasium import spaces

from societas.environments.base import GameEnv
from societas.environments.tom_gridworld.grid import ACTIONS, COLOURS, cell_name, visible_cells
from societas.environments.tom_gridworld.mind import BeliefOracle
from societas.environments.tom_gridworld.world import _advance, _build_world, _Params, _read, _trajectory_text, _World
from societas.types import ActionSpec, Observation

_SYSTEM_ACTOR = (
    "You are an agent in a grid world seen from above: '#' wall, '.' floor, '?' not yet seen, 'A' you, "
    "R/G/B/Y the red, green, blue and yellow objects where you last saw them. Rows count down from 0, "
    "columns right from 0. You see {radius} cells around you in every direction. Stepping onto an object "
    "consumes it and ends the episode. Answer with one move: stay, up, down, left or right."
)


class TomGridworld(GameEnv):
    """One partially observing actor looking for coloured objects, with a belief oracle (see the package docstring).

    size, wall_density: the random grid (ignored with `layout`); radius: the field of view;
    max_steps: the longest episode; swap, swap_step: the false-belief manipulation;
    layout: a hand-built world as rows of text; preferences: colour -> weight (default drawn).
    """

    metadata: ClassVar[dict[str, Any]] = {"name": "tom_gridworld_v0", "render_modes": ["ansi", "rgb_array"],
                                          "is_parallelizable": True}

    def __init__(self, *, size: int = 11, radius: int = 2, wall_density: float = 0.15, max_steps: int = 50,
                 swap: str = "none", swap_step: int = 3, layout: Sequence[str] | None = None,
                 preferences: Mapping[str, float] | None = None, render_mode: str | None = None) -> None:
        self.params = _Params(size, radius, wall_density, max_steps, swap, swap_step, layout, preferences)
        if render_mode not in (None, "ansi", "rgb_array"):
            raise ValueError(f"render_mode must be None, 'ansi' or 'rgb_array', got {render_mode!r}")
        self.render_mode = render_mode
        self.possible_agents = ["actor"]
        self.agents: list[str] = []
        self._rng: np.random.Generator | None = None
        self.world: _World | None = None
        self._spec = ActionSpec.choice(ACTIONS, default="stay")
        self._system = _SYSTEM_ACTOR.format(radius=radius)

    @functools.cached_property
    def _obs_space(self) -> spaces.Dict:
        h, w = self.params.shape()
        k = 2 * self.params.radius + 1
        return spaces.Dict({
            "position": spaces.MultiDiscrete([h, w]),
            "view": spaces.Box(-1, 5, shape=(k, k), dtype=np.int64),
            "step": spaces.Discrete(self.params.max_steps + 1),
        })

    def observation_space(self, agent: str) -> spaces.Space:
        """position; view: the cells around the actor (-1 off the grid, 0 floor, 1 wall, 2-5 objects); step."""
        return self._obs_space

    def action_space(self, agent: str) -> spaces.Space:
        """An index into ACTIONS (or the action's name)."""
        return self._act_space

    @functools.cached_property
    def _act_space(self) -> spaces.Discrete:
        return spaces.Discrete(len(ACTIONS))

    def reset(self, seed: int | None = None, options: dict[str, Any] | None = None) -> tuple[dict, dict]:
        """A new world from the seed (None continues the stream)."""
        if seed is not None or self._rng is None:
            self._rng = np.random.default_rng(seed)
        self.world = _build_world(self.params, self._rng)
        self.agents = list(self.possible_agents)
        return {"actor": self._observe()}, {"actor": {}}

    def step(self, actions: dict[str, Any]) -> tuple[dict, dict, dict, dict, dict]:
        """Move the actor; consuming an object or running out of steps ends the episode."""
        if not self.agents or self.world is None or self._rng is None:
            raise RuntimeError("the episode is over (or never started); call reset() first")
        if "actor" not in actions:
            raise ValueError("step() needs an action for 'actor'")
        action = _read(actions["actor"], ACTIONS)
        w = self.world
        _advance(w, action, self.params, self._rng)
        t = len(w.actions)
        done = w.consumed is not None or t >= self.params.max_steps
        reward = 0.0 if w.consumed is None else w.oracle.preferences[w.consumed]
        record = {"step": t, "action": action, "position": list(w.actor), "consumed": w.consumed,
                  "swapped": w.swapped == t, "beliefs": w.oracle.beliefs(len(w.oracle) - 1)["objects"],
                  "objects": {c: list(p) for c, p in w.objects.items()}, "goal": w.oracle.goal}
        obs = {"actor": self._observe()}
        if done:
            self.agents = []
        return (obs, {"actor": reward}, {"actor": done}, {"actor": False},
                {"actor": {"action": action, "record": record}})

    def render(self) -> Any:
        """Text (ansi) or an RGB array of the world with the trajectory so far."""
        if self.world is None:
            return None
        if self.render_mode == "rgb_array":
            return self.world.rgb()
        return self.world.ascii() + "\n" + _trajectory_text(self.world)

    # -- societas runner API ------------------------------------------------------------------

    @property
    def oracle(self) -> BeliefOracle:
        """The current episode's belief oracle."""
        if self.world is None:
            raise RuntimeError("call reset() first")
        return self.world.oracle

    def decision(self, agent: str) -> Observation:
        """The actor's map as it knows it, its goal, and a choice of moves; data carry its mind and the walls."""
        if agent != "actor":
            raise ValueError(f"unknown agent {agent!r}; the only agent is 'actor'")
        if not self.agents or self.world is None:
            raise RuntimeError("the episode is over (or never started); call reset() first")
        w = self.world
        mind = w.oracle.beliefs(len(w.oracle) - 1)
        known = ", ".join(f"{c} at {cell_name(p)}" for c, p in mind["objects"].items() if p is not None) or "none"
        prompt = (f"Step {len(w.actions)}. You are at {cell_name(w.actor)}. What you know of the grid:\n"
                  f"{w.ascii(mind)}\nObjects you believe in: {known}.\n"
                  f"Your goal: reach the {mind['goal']} object (it is worth most to you).\nYour move?")
        data = {"game": "tom-gridworld", "role": "actor", "mind": mind, "walls": w.rows,
                "goal": mind["goal"], "preferences": mind["preferences"], "actions": list(ACTIONS)}
        return Observation(agent=agent, round=len(w.actions) + 1, system=self._system, prompt=prompt,
                           spec=self._spec, data=data)

    def episode_summary(self) -> dict[str, dict[str, Any]]:
        """The object consumed (if any), whether it was the goal, steps, and the swap."""
        w = self.world
        if w is None:
            return {"actor": {}}
        final = w.oracle.beliefs(len(w.oracle) - 1)
        stale = w.moved is not None and final["objects"][w.moved] not in (None, list(w.objects[w.moved]))
        return {"actor": {"consumed": w.consumed, "goal": w.oracle.goal, "reached_goal": w.consumed == w.oracle.goal,
                          "steps": len(w.actions), "swap": self.params.swap, "swapped_at": w.swapped, "moved": w.moved,
                          "false_belief_at_end": stale, "trajectory": _trajectory_text(w)}}

    def _observe(self) -> dict[str, Any]:
        w = self.world
        assert w is not None
        k = self.params.radius
        view = np.full((2 * k + 1, 2 * k + 1), -1, dtype=np.int64)
        h, wd = w.walls.shape
        codes = {p: 2 + COLOURS.index(c) for c, p in w.objects.items()}
        for r, c in visible_cells(w.actor, (h, wd), k):
            view[r - w.actor[0] + k, c - w.actor[1] + k] = codes.get((r, c), int(w.walls[r, c]))
        return {"position": np.array(w.actor, dtype=np.int64), "view": view,
                "step": min(len(w.actions), self.params.max_steps)}
