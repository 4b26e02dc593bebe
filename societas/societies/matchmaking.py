"""Who meets whom: round-robin schedules, optionally restricted to a graph."""

from __future__ import annotations

from collections.abc import Sequence

import networkx as nx


def build_graph(
    names: Sequence[str],
    kind: str = "complete",
    *,
    p: float = 0.5,
    k: int = 2,
    edges: Sequence[tuple[str, str]] = (),
    seed: int | None = None,
) -> nx.Graph:
    """A contact graph over agent names (nodes keep the population's order)."""
    n = len(names)
    if kind == "complete":
        g = nx.complete_graph(n)
    elif kind == "ring":
        g = nx.cycle_graph(n)
    elif kind == "erdos_renyi":
        g = nx.erdos_renyi_graph(n, p, seed=seed)
    elif kind == "watts_strogatz":
        g = nx.watts_strogatz_graph(n, k, p, seed=seed)
    elif kind == "edges":
        g = nx.Graph()
        g.add_nodes_from(names)
        unknown = sorted({x for e in edges for x in e} - set(names))
        if unknown:
            raise ValueError(f"graph edges name agents not in the population: {', '.join(unknown)}")
        g.add_edges_from(edges)
        return g
    else:
        raise ValueError(f"unknown graph kind {kind!r}")
    return nx.relabel_nodes(g, dict(enumerate(names)))


def round_robin(
    names: Sequence[str],
    *,
    self_play: bool = True,
    both_orders: bool = True,
    repetitions: int = 1,
    graph: nx.Graph | None = None,
) -> list[tuple[str, str]]:
    """Seat pairs (first, second) for every meeting, in a fixed order.

    With `both_orders` every pair plays once in each seat order (as in Akata et
    al. 2023, where each model met each other model as player 1 and as player 2);
    `self_play` adds each agent against a copy of itself; a `graph` keeps only
    pairs joined by an edge.
    """
    pairs: list[tuple[str, str]] = []
    position = {a: i for i, a in enumerate(names)} if graph is not None else {}
    for i, a in enumerate(names):
        if graph is None:
            partners: Sequence[int] = range(len(names))
        else:
            # Only neighbours can meet: O(edges), not O(n^2), for sparse societies of thousands.
            near = {position[b] for b in graph.neighbors(a) if b in position}
            partners = sorted(near | {i})
        for j in partners:
            b = names[j]
            if i == j:
                if self_play:
                    pairs.append((a, b))
                continue
            if not both_orders and j < i:
                continue
            pairs.append((a, b))
    return [pair for _ in range(repetitions) for pair in pairs]
