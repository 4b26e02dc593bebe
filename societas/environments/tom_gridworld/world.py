"""One episode's world: checked parameters, building it from the seed, moves, the false-belief swap,
text and RGB rendering, and reading a choice action."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from societas.environments.tom_gridworld.grid import (
    COLOURS,
    MOVES,
    SWAPS,
    Cell,
    Mind,
    cell_name,
    parse_layout,
    random_walls,
    visible_cells,
)
from societas.environments.tom_gridworld.mind import BeliefOracle, plan

_RGB = {0: (235, 235, 235), 1: (90, 90, 90), 2: (220, 40, 40), 3: (40, 170, 60), 4: (50, 90, 220),
        5: (235, 200, 30)}


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
        """Move one object if this step fits the swap kind (see the package docstring): the goal object
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


def _read(value: Any, choices: Sequence[str]) -> str:
    if isinstance(value, (int, np.integer)) and not isinstance(value, bool):
        return choices[int(value) % len(choices)]
    if isinstance(value, str) and value in choices:
        return value
    raise ValueError(f"action must be one of {', '.join(choices)} or its index, got {value!r}")
