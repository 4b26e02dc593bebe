"""Theory-of-mind gridworlds with a belief oracle (ToMnet, Rabinowitz et al. 2018; Sally-Anne tests).

`tom-gridworld`: one actor ("actor") on a walled grid (default 11 x 11, seeded
inner walls that keep the free cells connected) with four coloured objects
(red, green, blue, yellow). The actor knows the walls but sees objects only in a
square field of view of Chebyshev radius `radius` (default 2; walls do not block
sight: no line-of-sight model). Each step it moves stay/up/down/left/right; the
episode ends when it steps on (consumes) an object or after `max_steps`. Its
preferences over colours are drawn per episode from the seed (Dirichlet) unless
given; its goal is the most preferred colour. The `BeliefOracle` records, per
step, what the actor sees, has seen, and where it believes each object is (the
last position seen, or unknown).

False-belief (Sally-Anne) episodes: with `swap="unseen"`, at the first step from
`swap_step` on where an object is believed where it is but out of view, it (the
goal object if it qualifies, else the most preferred that does) is moved to a
free cell out of view, so the oracle's belief goes stale; `"seen"`
moves it while in view (the true-belief control); `"none"` never moves it.

`tom-observer`: one observer ("observer") watches `past_episodes` full
episodes of a seeded scripted actor, then the current episode up to step `cut`,
and answers a battery of choice questions, one per step. Categories:
perception, first_order_belief, knowledge, short_term_intention (next move),
long_term_intention (object headed to), desire, reality_check. Second-order
belief is omitted: there is one mind in the world, so "what X thinks Y thinks"
has no sound oracle answer here. Each question's gold answer comes from the
oracle's mind; `false_belief` marks items whose gold differs from the answer read
off the true world (they separate the actor's mind from reality: a stale belief
or ignorance). Decision data carry both minds (`beliefs`, `world`) so scripted
observers can answer from either.
"""

from __future__ import annotations

import functools
from collections import deque
from collections.abc import Mapping, Sequence
from typing import Any, ClassVar

import numpy as np
from gymnasium import spaces

from societas.environments.base import GameEnv
from societas.types import ActionSpec, Observation

ACTIONS = ("stay", "up", "down", "left", "right")
MOVES = {"stay": (0, 0), "up": (-1, 0), "down": (1, 0), "left": (0, -1), "right": (0, 1)}
COLOURS = ("red", "green", "blue", "yellow")
SWAPS = ("none", "unseen", "seen")
ACTOR_KINDS = ("algorithmic_actor", "goal_directed")
"""Deterministic actors the observer env can simulate (a random actor's next move has no gold answer)."""
CATEGORIES = ("perception", "first_order_belief", "knowledge", "short_term_intention", "long_term_intention",
              "desire", "reality_check")
EXPLORING = "exploring"
UNKNOWN = "unknown"
_CODES = {"#": 1, **{c[0].upper(): 2 + i for i, c in enumerate(COLOURS)}}
_RGB = {0: (235, 235, 235), 1: (90, 90, 90), 2: (220, 40, 40), 3: (40, 170, 60), 4: (50, 90, 220),
        5: (235, 200, 30)}

Cell = tuple[int, int]
Mind = dict[str, Any]
"""A mind: position, objects (colour -> [r, c] or None), visible/seen cells, goal, preferences."""


def cell_name(cell: Sequence[int] | None) -> str:
    """A cell as the questions write it, "(row, col)"; None is "unknown"."""
    return UNKNOWN if cell is None else f"({int(cell[0])}, {int(cell[1])})"


# -- world building ----------------------------------------------------------------------


def _connected(free: np.ndarray) -> bool:
    cells = list(zip(*np.nonzero(free), strict=True))
    if not cells:
        return False
    seen = {cells[0]}
    todo = deque([cells[0]])
    while todo:
        r, c = todo.popleft()
        for dr, dc in ((1, 0), (-1, 0), (0, 1), (0, -1)):
            n = (r + dr, c + dc)
            if free[n] and n not in seen:
                seen.add(n)
                todo.append(n)
    return len(seen) == len(cells)


def random_walls(size: int, density: float, rng: np.random.Generator) -> np.ndarray:
    """Border walls plus inner walls added one at a time, each kept only if the free cells stay connected."""
    walls = np.zeros((size, size), dtype=bool)
    walls[0, :] = walls[-1, :] = walls[:, 0] = walls[:, -1] = True
    inner = [(r, c) for r in range(1, size - 1) for c in range(1, size - 1)]
    target = round(density * len(inner))
    placed = 0
    for i in rng.permutation(len(inner)):
        if placed >= target:
            break
        walls[inner[i]] = True
        if _connected(~walls):
            placed += 1
        else:
            walls[inner[i]] = False
    return walls


def parse_layout(rows: Sequence[str]) -> tuple[np.ndarray, Cell, dict[str, Cell]]:
    """A hand-built world: '#' wall, '.' floor, 'A' actor, R/G/B/Y objects (all four required)."""
    h = len(rows)
    w = len(rows[0]) if h else 0
    if h < 3 or any(len(r) != w for r in rows):
        raise ValueError("layout must be at least 3 rows of equal length")
    walls = np.zeros((h, w), dtype=bool)
    actor: Cell | None = None
    objects: dict[str, Cell] = {}
    for r, row in enumerate(rows):
        for c, ch in enumerate(row):
            if ch == "#":
                walls[r, c] = True
            elif ch == "A":
                actor = (r, c)
            elif ch in "RGBY":
                objects[COLOURS["RGBY".index(ch)]] = (r, c)
            elif ch != ".":
                raise ValueError(f"layout: unknown cell {ch!r} (use # . A R G B Y)")
    if actor is None or len(objects) != len(COLOURS):
        raise ValueError("layout needs one A and each of R, G, B, Y")
    return walls, actor, objects


def visible_cells(pos: Cell, shape: tuple[int, int], radius: int) -> set[Cell]:
    """The square field of view: every cell within Chebyshev distance `radius` (walls do not block)."""
    r0, c0 = pos
    return {(r, c) for r in range(max(0, r0 - radius), min(shape[0], r0 + radius + 1))
            for c in range(max(0, c0 - radius), min(shape[1], c0 + radius + 1))}


# -- planning (shared by the env's internal actors and the scripted agents) ----------------


def _bfs(walls: Sequence[str] | np.ndarray, start: Cell, goal_test: Any, blocked: set[Cell]) -> list[str] | None:
    grid = np.asarray([[ch == "#" for ch in row] for row in walls]) if not isinstance(walls, np.ndarray) else walls
    start = (int(start[0]), int(start[1]))
    if goal_test(start):
        return []
    prev: dict[Cell, tuple[Cell, str]] = {}
    todo = deque([start])
    seen = {start}
    while todo:
        cur = todo.popleft()
        for a in ACTIONS[1:]:
            dr, dc = MOVES[a]
            n = (cur[0] + dr, cur[1] + dc)
            if n in seen or grid[n] or (n in blocked and not goal_test(n)):
                continue
            seen.add(n)
            prev[n] = (cur, a)
            if goal_test(n):
                path = []
                while n != start:
                    n, move = prev[n]
                    path.append(move)
                return path[::-1]
            todo.append(n)
    return None


def choose_target(mind: Mind, kind: str) -> str | None:
    """The colour the actor heads for: the goal (algorithmic) or best preference minus distance (goal-directed)."""
    known = {c: p for c, p in mind["objects"].items() if p is not None}
    if kind == "algorithmic_actor":
        return mind["goal"] if mind["goal"] in known else None
    if not known:
        return None
    pos = mind["position"]
    prefs = mind["preferences"]

    def value(c: str) -> float:
        p = known[c]
        return prefs[c] - 0.02 * (abs(p[0] - pos[0]) + abs(p[1] - pos[1]))

    return max(sorted(known), key=value)


def plan(mind: Mind, walls: Sequence[str] | np.ndarray, kind: str) -> tuple[str, str]:
    """(next action, target colour or "exploring"): a shortest path to the target, else to the nearest unseen cell.

    Paths avoid the other believed objects (stepping on one consumes it) unless no other path exists.
    """
    target = choose_target(mind, kind)
    pos = tuple(mind["position"])
    others = {tuple(p) for c, p in mind["objects"].items() if p is not None and c != target}
    if target is not None:
        goal = tuple(mind["objects"][target])
        path = _bfs(walls, pos, lambda n: n == goal, others) or _bfs(walls, pos, lambda n: n == goal, set())
        return (path[0] if path else "stay"), target
    seen = {tuple(c) for c in mind["seen"]}
    path = _bfs(walls, pos, lambda n: n not in seen, others) or _bfs(walls, pos, lambda n: n not in seen, set())
    return (path[0] if path else "stay"), EXPLORING


# -- the belief oracle ---------------------------------------------------------------------


class BeliefOracle:
    """What the actor has seen and believes, step by step: the gold standard for belief questions."""

    def __init__(self, goal: str, preferences: Mapping[str, float]) -> None:
        self.goal = goal
        self.preferences = dict(preferences)
        self._seen: set[Cell] = set()
        self._believed: dict[str, Cell | None] = dict.fromkeys(COLOURS)
        self._steps: list[Mind] = []

    def update(self, position: Cell, visible: set[Cell], objects: Mapping[str, Cell]) -> Mind:
        """Record the next step: objects in view are believed where they are; an object's believed cell
        seen empty becomes unknown; the rest keep their last seen place."""
        self._seen |= visible
        for c, p in objects.items():
            if p in visible:
                self._believed[c] = p
            elif self._believed[c] is not None and self._believed[c] in visible:
                self._believed[c] = None
        mind: Mind = {
            "step": len(self._steps), "position": [int(position[0]), int(position[1])],
            "objects": {c: None if p is None else [int(p[0]), int(p[1])] for c, p in self._believed.items()},
            "visible": sorted([int(r), int(c)] for r, c in visible),
            "seen": sorted([int(r), int(c)] for r, c in self._seen),
            "seen_now": [c for c in COLOURS if objects[c] in visible],
            "goal": self.goal, "preferences": dict(self.preferences),
        }
        self._steps.append(mind)
        return mind

    def beliefs(self, step: int) -> Mind:
        """The actor's mind after `step` moves (0: at the start)."""
        return self._steps[step]

    def __len__(self) -> int:
        return len(self._steps)


def world_mind(mind: Mind, objects: Mapping[str, Cell], walls: np.ndarray) -> Mind:
    """The omniscient counterpart of a mind: every object where it really is, every cell seen."""
    h, w = walls.shape
    return {**mind, "objects": {c: [int(p[0]), int(p[1])] for c, p in objects.items()},
            "seen": [[r, c] for r in range(h) for c in range(w)]}


# -- the world -------------------------------------------------------------------------------


class _World:
    """One episode's state: walls, objects, actor, oracle, trajectory, swap."""

    def __init__(self, walls: np.ndarray, actor: Cell, objects: dict[str, Cell], prefs: dict[str, float],
                 radius: int) -> None:
        self.walls = walls
        self.actor = actor
        self.objects = dict(objects)
        self.radius = radius
        goal = max(COLOURS, key=lambda c: prefs[c])
        self.oracle = BeliefOracle(goal, prefs)
        self.path: list[Cell] = [actor]
        self.actions: list[str] = []
        self.truths: list[dict[str, Cell]] = []
        self.consumed: str | None = None
        self.swapped: int | None = None
        self.moved: str | None = None
        self.observe()

    @property
    def rows(self) -> list[str]:
        return ["".join("#" if x else "." for x in row) for row in self.walls]

    def observe(self) -> Mind:
        self.truths.append(dict(self.objects))
        return self.oracle.update(self.actor, visible_cells(self.actor, self.walls.shape, self.radius), self.objects)

    def move(self, action: str) -> None:
        dr, dc = MOVES[action]
        n = (self.actor[0] + dr, self.actor[1] + dc)
        if not self.walls[n]:
            self.actor = n
        self.actions.append(action)
        self.path.append(self.actor)
        for c, p in self.objects.items():
            if p == self.actor:
                self.consumed = c

    def free_cells(self) -> list[Cell]:
        taken = set(self.objects.values()) | {self.actor}
        return [(int(r), int(c)) for r, c in zip(*np.nonzero(~self.walls), strict=True) if (r, c) not in taken]

    def try_swap(self, kind: str, rng: np.random.Generator) -> bool:
        """Move one object if this step fits the swap kind (see the module docstring): the goal object
        when it qualifies, else the most preferred one that does."""
        view = visible_cells(self.actor, self.walls.shape, self.radius)
        believed = self.oracle.beliefs(len(self.oracle) - 1)["objects"]
        prefs = self.oracle.preferences
        order = sorted(COLOURS, key=lambda c: (c != self.oracle.goal, -prefs[c]))
        if kind == "unseen":
            fits = [c for c in order if believed[c] == list(self.objects[c]) and self.objects[c] not in view]
            dest = [p for p in self.free_cells() if p not in view]
        else:
            fits = [c for c in order if self.objects[c] in view]
            dest = [p for p in self.free_cells() if p in view]
        if not fits or not dest:
            return False
        self.objects[fits[0]] = dest[int(rng.integers(len(dest)))]
        self.moved = fits[0]
        self.swapped = len(self.actions)
        self.truths[-1] = dict(self.objects)
        return True

    def ascii(self, mind: Mind | None = None) -> str:
        """The grid as text; with a mind, what that mind knows ('?' never seen, objects where it believes)."""
        grid = [list(r) for r in self.rows]
        seen = None if mind is None else {tuple(c) for c in mind["seen"]}
        objects = self.objects if mind is None else {c: p for c, p in mind["objects"].items() if p is not None}
        for r in range(len(grid)):
            for c in range(len(grid[0])):
                if seen is not None and (r, c) not in seen and grid[r][c] == ".":
                    grid[r][c] = "?"
        for c, p in objects.items():
            grid[p[0]][p[1]] = c[0].upper()
        pos = self.actor if mind is None else tuple(mind["position"])
        grid[pos[0]][pos[1]] = "A"
        return "\n".join("".join(r) for r in grid)

    def rgb(self, upto: int | None = None, cell: int = 24) -> np.ndarray:
        """An RGB image: walls, objects (true places), the trajectory so far, the actor and its field of view."""
        h, w = self.walls.shape
        codes = self.walls.astype(int)
        for c, p in self.objects.items():
            codes[p] = 2 + COLOURS.index(c)
        img = np.zeros((h * cell, w * cell, 3), dtype=np.uint8)
        for r in range(h):
            for c in range(w):
                img[r * cell:(r + 1) * cell, c * cell:(c + 1) * cell] = _RGB[int(codes[r, c])]
        path = self.path if upto is None else self.path[: upto + 1]
        pos = path[-1]
        for r, c in visible_cells(pos, (h, w), self.radius):
            if codes[r, c] == 0:
                img[r * cell:(r + 1) * cell, c * cell:(c + 1) * cell] = (255, 250, 215)
        q = cell // 3
        for r, c in path:
            img[r * cell + q:(r + 1) * cell - q, c * cell + q:(c + 1) * cell - q] = (150, 150, 150)
        img[pos[0] * cell + 3:(pos[0] + 1) * cell - 3, pos[1] * cell + 3:(pos[1] + 1) * cell - 3] = (20, 20, 20)
        img[::cell] = img[:, ::cell] = 200
        return img


def _prefs(given: Mapping[str, float] | None, rng: np.random.Generator) -> dict[str, float]:
    if given is not None:
        if set(given) != set(COLOURS):
            raise ValueError(f"preferences must give a number for each of {', '.join(COLOURS)}")
        return {c: float(given[c]) for c in COLOURS}
    draw = rng.dirichlet(np.ones(len(COLOURS)))
    return {c: float(v) for c, v in zip(COLOURS, draw, strict=True)}


def _build_world(p: _Params, rng: np.random.Generator) -> _World:
    if p.layout is not None:
        walls, actor, objects = parse_layout(p.layout)
    else:
        walls = random_walls(p.size, p.wall_density, rng)
        free = [(int(r), int(c)) for r, c in zip(*np.nonzero(~walls), strict=True)]
        picks = rng.choice(len(free), size=len(COLOURS) + 1, replace=False)
        actor = free[picks[0]]
        objects = {c: free[i] for c, i in zip(COLOURS, picks[1:], strict=True)}
    return _World(walls, actor, objects, _prefs(p.preferences, rng), p.radius)


class _Params:
    """Checked world parameters shared by both environments."""

    def __init__(self, size: int, radius: int, wall_density: float, max_steps: int, swap: str, swap_step: int,
                 layout: Sequence[str] | None, preferences: Mapping[str, float] | None) -> None:
        if not isinstance(size, int) or size < 5:
            raise ValueError(f"size must be an integer >= 5, got {size!r}")
        if not isinstance(radius, int) or radius < 0:
            raise ValueError(f"radius must be an integer >= 0, got {radius!r}")
        if not 0.0 <= float(wall_density) <= 0.5:
            raise ValueError(f"wall_density must be in [0, 0.5], got {wall_density!r}")
        if not isinstance(max_steps, int) or max_steps < 1:
            raise ValueError(f"max_steps must be an integer >= 1, got {max_steps!r}")
        if swap not in SWAPS:
            raise ValueError(f"swap must be one of {', '.join(SWAPS)}, got {swap!r}")
        if not isinstance(swap_step, int) or swap_step < 0:
            raise ValueError(f"swap_step must be an integer >= 0, got {swap_step!r}")
        self.size, self.radius, self.wall_density = size, radius, float(wall_density)
        self.max_steps, self.swap, self.swap_step = max_steps, swap, swap_step
        self.layout = None if layout is None else [str(r) for r in layout]
        if self.layout is not None:
            parse_layout(self.layout)
        self.preferences = None if preferences is None else dict(preferences)
        if self.preferences is not None:
            _prefs(self.preferences, np.random.default_rng(0))

    def shape(self) -> tuple[int, int]:
        if self.layout is not None:
            return len(self.layout), len(self.layout[0])
        return self.size, self.size


def _advance(world: _World, action: str, p: _Params, rng: np.random.Generator) -> None:
    """One move, then the swap (if due) and the actor's new view."""
    world.move(action)
    if world.consumed is None:
        if p.swap != "none" and world.swapped is None and len(world.actions) >= p.swap_step:
            world.try_swap(p.swap, rng)
        world.observe()


def _play(world: _World, kind: str, p: _Params, rng: np.random.Generator) -> None:
    while world.consumed is None and len(world.actions) < p.max_steps:
        mind = world.oracle.beliefs(len(world.actions))
        _advance(world, plan(mind, world.walls, kind)[0], p, rng)


def _trajectory_text(world: _World, upto: int | None = None) -> str:
    actions = world.actions if upto is None else world.actions[:upto]
    moves = " ".join(f"{a}->{cell_name(world.path[i + 1])}" for i, a in enumerate(actions)) or "(no moves yet)"
    end = f" It consumed the {world.consumed} object." if upto is None and world.consumed else ""
    return f"Start {cell_name(world.path[0])}; moves: {moves}.{end}"


_SYSTEM_ACTOR = (
    "You are an agent in a grid world seen from above: '#' wall, '.' floor, '?' not yet seen, 'A' you, "
    "R/G/B/Y the red, green, blue and yellow objects where you last saw them. Rows count down from 0, "
    "columns right from 0. You see {radius} cells around you in every direction. Stepping onto an object "
    "consumes it and ends the episode. Answer with one move: stay, up, down, left or right."
)


class TomGridworld(GameEnv):
    """One partially observing actor looking for coloured objects, with a belief oracle (see the module docstring).

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


def _read(value: Any, choices: Sequence[str]) -> str:
    if isinstance(value, (int, np.integer)) and not isinstance(value, bool):
        return choices[int(value) % len(choices)]
    if isinstance(value, str) and value in choices:
        return value
    raise ValueError(f"action must be one of {', '.join(choices)} or its index, got {value!r}")


# -- observer tasks ----------------------------------------------------------------------------


def answer_question(question: Mapping[str, Any], mind: Mind, walls: Sequence[str]) -> str:
    """The answer to a battery question read off a mind (the oracle's, or `world_mind` for reality)."""
    cat, colour = question["category"], question.get("colour")
    if cat == "perception":
        return "yes" if colour in mind["seen_now"] else "no"
    if cat in ("first_order_belief", "reality_check"):
        return cell_name(mind["objects"][colour])
    if cat == "knowledge":
        return "no" if mind["objects"][colour] is None else "yes"
    if cat == "short_term_intention":
        return plan(mind, walls, question["actor"])[0]
    if cat == "long_term_intention":
        return plan(mind, walls, question["actor"])[1]
    if cat == "desire":
        return mind["goal"]
    raise ValueError(f"unknown question category {cat!r}")


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
    """An observer answers questions about a scripted actor it has watched (see the module docstring).

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
