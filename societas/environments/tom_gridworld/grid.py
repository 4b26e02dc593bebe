"""The gridworld's vocabulary (moves, colours, swaps, question categories) and its geometry: walls,
hand-built layouts and the field of view."""

from __future__ import annotations

from collections import deque
from collections.abc import Sequence
from typing import Any

import numpy as np

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

Cell = tuple[int, int]
Mind = dict[str, Any]
"""A mind: position, objects (colour -> [r, c] or None), visible/seen cells, goal, preferences."""


def cell_name(cell: Sequence[int] | None) -> str:
    """A cell as the questions write it, "(row, col)"; None is "unknown"."""
    return UNKNOWN if cell is None else f"({int(cell[0])}, {int(cell[1])})"


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
