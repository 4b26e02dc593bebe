"""tom-observer: an observer answers a battery of theory-of-mind questions about a gridworld actor it watched."""

from __future__ import annotations

import functools
from collections.abc import Mapping, Sequence
from typing import Any, ClassVar

import numpy as np
from gymnasium import spaces

from societas.environments.base import GameEnv
from societas.environments.tom_gridworld.grid import (
    ACTIONS,
    ACTOR_KINDS,
    CATEGORIES,
    COLOURS,
    EXPLORING,
    UNKNOWN,
    cell_name,
)
from societas.environments.tom_gridworld.mind import answer_question, world_mind
from societas.environments.tom_gridworld.world import _build_world, _Params, _play, _prefs, _read, _trajectory_text
from societas.types import ActionSpec, Observation

_QUESTION_TEXT = {
    "perception": "Can the actor see the {colour} object right now?",
    "first_order_belief": "Where does the actor think the {colour} object is?",
    "knowledge": "Does the actor know of a place for the {colour} object (has it seen it there)?",
    "short_term_intention": "What will the actor's next move be?",
    "long_term_intention": "Which object is the actor heading to (or is it exploring)?",
    "desire": "Which colour does the actor want most?",
    "reality_check": "Where is the {colour} object really?",
}


class TomObserver(GameEnv):
    """An observer answers questions about a scripted actor it has watched (see the package docstring).

    actor: the simulated actor (algorithmic_actor or goal_directed); past_episodes: full episodes shown
    first (same preferences, fresh worlds); cut: moves of the current episode shown before the questions
    (default: one past the swap step); other parameters as in TomGridworld (they shape the current episode).
    """

    metadata: ClassVar[dict[str, Any]] = {"name": "tom_observer_v0", "render_modes": ["ansi"],
                                          "is_parallelizable": True}

    def __init__(self, *, actor: str = "algorithmic_actor", past_episodes: int = 2, cut: int | None = None,
                 size: int = 11, radius: int = 2, wall_density: float = 0.15, max_steps: int = 50,
                 swap: str = "unseen", swap_step: int = 3, layout: Sequence[str] | None = None,
                 preferences: Mapping[str, float] | None = None, render_mode: str | None = None) -> None:
        if actor not in ACTOR_KINDS:
            raise ValueError(f"actor must be one of {', '.join(ACTOR_KINDS)}, got {actor!r}")
        if not isinstance(past_episodes, int) or past_episodes < 0:
            raise ValueError(f"past_episodes must be an integer >= 0, got {past_episodes!r}")
        if cut is not None and (not isinstance(cut, int) or cut < 0):
            raise ValueError(f"cut must be None or an integer >= 0, got {cut!r}")
        if render_mode not in (None, "ansi"):
            raise ValueError(f"render_mode must be None or 'ansi', got {render_mode!r}")
        self.actor, self.past_episodes, self.cut = actor, past_episodes, cut
        self.params = _Params(size, radius, wall_density, max_steps, swap, swap_step, layout, preferences)
        self.render_mode = render_mode
        self.possible_agents = ["observer"]
        self.agents: list[str] = []
        self._rng: np.random.Generator | None = None
        self.questions: list[dict[str, Any]] = []
        self._q = 0
        self._last: str | None = None

    def observation_space(self, agent: str) -> spaces.Space:
        """The index of the question about to be asked (the battery's length once over)."""
        return self._spaces[0]

    def action_space(self, agent: str) -> spaces.Space:
        """An index into the question's choices (taken modulo their number), or the choice itself."""
        return self._spaces[1]

    @functools.cached_property
    def _spaces(self) -> tuple[spaces.Discrete, spaces.Discrete]:
        return spaces.Discrete(len(CATEGORIES) * len(COLOURS) + 4), spaces.Discrete(6)

    def reset(self, seed: int | None = None, options: dict[str, Any] | None = None) -> tuple[dict, dict]:
        """Play the past episodes and the current one from the seed, and build the question battery."""
        if seed is not None or self._rng is None:
            self._rng = np.random.default_rng(seed)
        rng = self._rng
        p = self.params
        prefs = _prefs(p.preferences, rng)
        fixed = _Params(p.size, p.radius, p.wall_density, p.max_steps, p.swap, p.swap_step, p.layout, prefs)
        past_p = _Params(p.size, p.radius, p.wall_density, p.max_steps, "none", 0, None, prefs)
        self.past = []
        for _ in range(self.past_episodes):
            w = _build_world(past_p, rng)
            _play(w, self.actor, past_p, rng)
            self.past.append(w)
        self.current = _build_world(fixed, rng)
        _play(self.current, self.actor, fixed, rng)
        n = len(self.current.actions)
        default = (self.current.swapped + 1) if self.current.swapped is not None else min(p.swap_step, n // 2)
        self.at = max(0, min(self.cut if self.cut is not None else default, n - 1 if n else 0))
        self.questions = self._battery()
        self._q = 0
        self._last = None
        self.agents = list(self.possible_agents)
        return {"observer": 0}, {"observer": {}}

    def _battery(self) -> list[dict[str, Any]]:
        w, t = self.current, self.at
        mind = w.oracle.beliefs(t)
        real = world_mind(mind, w.truths[t], w.walls)
        rows = w.rows
        items: list[dict[str, Any]] = []
        for colour in COLOURS:
            for cat in ("perception", "first_order_belief", "knowledge", "reality_check"):
                items.append({"category": cat, "colour": colour})
        for cat in ("short_term_intention", "long_term_intention", "desire"):
            items.append({"category": cat, "colour": None, "actor": self.actor})
        cells = [cell_name(c) for c in w.truths[t].values()]
        for q in items:
            q["actor"] = self.actor
            q["question"] = _QUESTION_TEXT[q["category"]].format(colour=q.get("colour"))
            q["reality"] = answer_question(q, real, rows)
            # Reality checks are controls about the world itself: their gold answer is the world's.
            q["gold"] = q["reality"] if q["category"] == "reality_check" else answer_question(q, mind, rows)
            q["false_belief"] = q["gold"] != q["reality"]
            cat = q["category"]
            if cat in ("perception", "knowledge"):
                choices = ["yes", "no"]
            elif cat == "short_term_intention":
                choices = list(ACTIONS)
            elif cat == "long_term_intention":
                choices = [*COLOURS, EXPLORING]
            elif cat == "desire":
                choices = list(COLOURS)
            else:
                choices = [q["gold"], q["reality"], *cells, UNKNOWN]
            q["choices"] = list(dict.fromkeys(choices))[:6]
        return items

    def step(self, actions: dict[str, Any]) -> tuple[dict, dict, dict, dict, dict]:
        """Score the answer to the current question; the battery's end ends the episode."""
        if not self.agents:
            raise RuntimeError("the episode is over (or never started); call reset() first")
        if "observer" not in actions:
            raise ValueError("step() needs an action for 'observer'")
        q = self.questions[self._q]
        answer = _read(actions["observer"], q["choices"])
        correct = answer == q["gold"]
        record = {"category": q["category"], "question": q["question"], "colour": q.get("colour"),
                  "answer": answer, "gold": q["gold"], "reality": q["reality"], "correct": correct,
                  "false_belief": q["false_belief"], "actor": self.actor, "swap": self.params.swap,
                  "at_step": self.at}
        self._last = f"Q{self._q + 1} {q['question']} -> {answer} (gold {q['gold']})"
        self._q += 1
        done = self._q >= len(self.questions)
        if done:
            self.agents = []
        return ({"observer": self._q}, {"observer": float(correct)}, {"observer": done}, {"observer": False},
                {"observer": {"action": answer, "record": record}})

    def render(self) -> str | None:
        """The last question and answer."""
        return self._last

    def decision(self, agent: str) -> Observation:
        """The past episodes, the current one up to the cut, and one question; data carry both minds."""
        if agent != "observer":
            raise ValueError(f"unknown agent {agent!r}; the only agent is 'observer'")
        if not self.agents:
            raise RuntimeError("the episode is over (or never started); call reset() first")
        w, t = self.current, self.at
        q = self.questions[self._q]
        mind = w.oracle.beliefs(t)
        past = "\n".join(f"Past episode {i + 1}:\n{pw.ascii()}\n{_trajectory_text(pw)}"
                         for i, pw in enumerate(self.past)) or "(none)"
        now = w.ascii({**world_mind(mind, w.truths[t], w.walls), "position": mind["position"]})
        prompt = (f"{past}\n\nCurrent episode after {t} moves (the true grid; the actor sees {self.params.radius} "
                  f"cells around it):\n{now}\n{_trajectory_text(w, t)}\n\nQuestion: {q['question']}\n"
                  f"Choices (answer with one, exactly as written): {' | '.join(q['choices'])}")
        data = {"game": "tom-observer", "role": "observer", "question": {k: q[k] for k in ("category", "colour",
                "actor", "question")}, "choices": q["choices"], "beliefs": mind,
                "world": world_mind(mind, w.truths[t], w.walls), "walls": w.rows}
        system = ("You watch an actor in a grid world: '#' wall, '.' floor, 'A' the actor, R/G/B/Y coloured "
                  "objects. Rows count down from 0, columns right from 0. The actor sees only nearby cells and "
                  "remembers where it last saw each object. Answer with one of the choices.")
        return Observation(agent=agent, round=self._q + 1, system=system, prompt=prompt,
                           spec=ActionSpec.choice(q["choices"], default=q["choices"][-1]), data=data)

    def episode_summary(self) -> dict[str, dict[str, Any]]:
        """Questions asked, the cut, the swap, and the actor."""
        return {"observer": {"questions": len(self.questions), "at_step": getattr(self, "at", None),
                             "actor": self.actor, "swap": self.params.swap,
                             "swapped_at": getattr(getattr(self, "current", None), "swapped", None)}}
