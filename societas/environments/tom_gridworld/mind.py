"""Minds in the gridworld: the belief oracle that records what the actor has seen and believes, the
omniscient counterpart, planning from a mind, and answering battery questions from one.

`plan` and `answer_question` are shared by the env's simulated actors and the scripted agents."""

from __future__ import annotations

from collections import deque
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from societas.environments.tom_gridworld.grid import ACTIONS, COLOURS, EXPLORING, MOVES, Cell, Mind, cell_name


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
