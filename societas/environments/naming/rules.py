"""The rules of the naming game (Ashery, Aiello & Baronchelli 2025), apart from prompts and spaces.

Two agents name something at the same time from a pool of W names: the same
name pays +100 each, different names -50 each. Who meets whom is drawn ahead of
play, interaction by interaction: a uniformly random agent and a uniformly
random neighbour of it on the contact graph. `Schedule` hands those pairs out
in steps of disjoint pairs, so the pairs of a step can be played at once while
each agent's interactions keep their order: playing a step's pairs together
gives exactly the events of playing them one by one.

`Inventory` is the minimal naming game's agent: the words it knows, collapsing
to one on a success and growing on a failure. The direct simulation
(`minimal.py`) and the scripted member (`societas.agents.naming`) both use it.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Mapping, Sequence
from typing import Any

import networkx as nx
import numpy as np

LETTERS: tuple[str, ...] = ("Q", "M", "X", "Y", "F", "J", "P", "R", "C", "D")
"""The paper's pool of W = 10 names."""
MATCH, MISMATCH = 100.0, -50.0
"""Each agent's payoff when the two names agree, and when they differ."""


def payoff(a: str, b: str) -> float:
    return MATCH if a == b else MISMATCH


def pick(pool: Sequence[str], rng: np.random.Generator) -> str:
    """One of `pool`, uniformly."""
    return pool[int(rng.integers(len(pool)))]


class Inventory:
    """The words one agent of the minimal naming game knows, in the order it learnt them."""

    __slots__ = ("words",)

    def __init__(self, words: Sequence[str] = ()) -> None:
        self.words: list[str] = list(words)

    def say(self, names: Sequence[str], rng: np.random.Generator) -> str:
        """A random word it knows; with none, a random one of `names`, which it then knows."""
        word = pick(self.words or names, rng)
        if not self.words:
            self.words.append(word)
        return word

    def success(self, word: str) -> None:
        """Both agents used `word`: keep only it."""
        self.words = [word]

    def hear(self, word: str) -> None:
        """A failure: learn the other's word if it is new."""
        if word not in self.words:
            self.words.append(word)


def contact_graph(n: int, spec: Any = None, rng: np.random.Generator | None = None) -> nx.Graph:
    """The graph over agents 0..n-1: complete by default, a networkx graph, or a mapping.

    A mapping names a kind: {kind: complete}, {kind: ring}, {kind: erdos_renyi, p},
    {kind: watts_strogatz, k, p}, {kind: regular, k}, or {edges: [[i, j], ...]}; a
    random kind uses `seed` when given, else a draw from `rng` (the episode's).
    A networkx graph's nodes are taken in their order as agents 0..n-1.
    Every agent needs a neighbour.
    """
    if spec is None:
        g = nx.complete_graph(n)
    elif isinstance(spec, nx.Graph):
        if spec.number_of_nodes() != n:
            raise ValueError(f"graph has {spec.number_of_nodes()} nodes for {n} agents")
        g = nx.convert_node_labels_to_integers(spec)
    elif isinstance(spec, Mapping):
        g = _from_mapping(n, dict(spec), rng)
    else:
        raise ValueError(f"graph must be a networkx graph or a mapping such as {{kind: ring}}, got {spec!r}")
    lonely = [i for i in range(n) if g.degree(i) == 0]
    if lonely:
        raise ValueError(f"graph leaves agents without a neighbour: {', '.join(map(str, lonely[:5]))}")
    return g


def _from_mapping(n: int, spec: dict[str, Any], rng: np.random.Generator | None) -> nx.Graph:
    if "edges" in spec:
        extra = sorted(set(spec) - {"edges"})
        if extra:
            raise ValueError(f"graph: edges takes no other keys, got {', '.join(extra)}")
        g = nx.empty_graph(n)
        for edge in spec["edges"]:
            i, j = (int(x) for x in edge)
            if not (0 <= i < n and 0 <= j < n) or i == j:
                raise ValueError(f"graph edge {edge!r} must join two agents among 0..{n - 1}")
            g.add_edge(i, j)
        return g
    kind = spec.pop("kind", "complete")
    seed = spec.pop("seed", None)
    if seed is None and rng is not None:
        seed = int(rng.integers(2**31))
    p, k = float(spec.pop("p", 0.5)), int(spec.pop("k", 2))
    if spec:
        raise ValueError(f"graph: unknown keys {', '.join(sorted(spec))} (kind, p, k, seed, or edges)")
    builders = {
        "complete": lambda: nx.complete_graph(n),
        "ring": lambda: nx.cycle_graph(n),
        "erdos_renyi": lambda: nx.erdos_renyi_graph(n, p, seed=seed),
        "watts_strogatz": lambda: nx.watts_strogatz_graph(n, k, p, seed=seed),
        "regular": lambda: nx.random_regular_graph(k, n, seed=seed),
    }
    if kind not in builders:
        raise ValueError(f"graph kind must be one of {', '.join(builders)} (or give edges); got {kind!r}")
    try:
        return builders[kind]()
    except nx.NetworkXError as exc:
        raise ValueError(f"graph {kind}: {exc}") from None


class Schedule:
    """The interactions of one run, drawn in order from one generator, handed out in steps of disjoint pairs.

    Interaction t is (t, a, b, order_a, order_b): agent a, its neighbour b, and
    the order in which each is shown the W names. `graph` is a contact graph
    over agents 0..n-1, or n for the complete graph (drawn the same way, without
    holding its n^2 edges). A step takes the next pairs
    while they share no agent and stay under `limit` (so a step never runs past
    the point where the run could stop).
    """

    def __init__(self, graph: nx.Graph | int, names: int, rng: np.random.Generator, *, shuffle: bool = True) -> None:
        if isinstance(graph, int):  # the complete graph over that many agents, without building it
            self._n = graph
            self._neighbours: list[np.ndarray] | None = None
        else:
            agents = sorted(graph.nodes)
            if agents != list(range(len(agents))):
                raise ValueError("a schedule's graph has the agents 0..n-1 as its nodes")
            self._n = len(agents)
            self._neighbours = [np.array(sorted(graph.neighbors(i)), dtype=np.int64) for i in agents]
        self._w = names
        self._rng = rng
        self._shuffle = shuffle
        self._identity = tuple(range(names))
        self._pending: deque[tuple[int, int, int, tuple[int, ...], tuple[int, ...]]] = deque()
        self.drawn = 0

    def _draw(self) -> tuple[int, int, int, tuple[int, ...], tuple[int, ...]]:
        rng = self._rng
        a = int(rng.integers(self._n))
        if self._neighbours is None:  # the j-th of the others in order, as on a built complete graph
            j = int(rng.integers(self._n - 1))
            b = j + (j >= a)
        else:
            near = self._neighbours[a]
            b = int(near[int(rng.integers(len(near)))])
        if self._shuffle:
            order_a = tuple(rng.permutation(self._w).tolist())
            order_b = tuple(rng.permutation(self._w).tolist())
        else:
            order_a = order_b = self._identity
        t = self.drawn
        self.drawn += 1
        return t, a, b, order_a, order_b

    def step(self, limit: int) -> list[tuple[int, int, int, tuple[int, ...], tuple[int, ...]]]:
        """The next step: at least one pair, at most `limit`, no agent twice."""
        out: list[tuple[int, int, int, tuple[int, ...], tuple[int, ...]]] = []
        busy: set[int] = set()
        while len(out) < max(1, limit):
            if not self._pending:
                self._pending.append(self._draw())
            _, a, b, _, _ = self._pending[0]
            if a in busy or b in busy:
                break
            out.append(self._pending.popleft())
            busy.update((a, b))
        return out
