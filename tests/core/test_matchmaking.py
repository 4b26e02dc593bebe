from __future__ import annotations

from societas.societies.matchmaking import build_graph, round_robin


def test_round_robin_counts() -> None:
    names = ["a", "b", "c"]
    assert len(round_robin(names)) == 9
    assert len(round_robin(names, self_play=False)) == 6
    assert round_robin(names, self_play=False, both_orders=False) == [("a", "b"), ("a", "c"), ("b", "c")]
    assert len(round_robin(names, repetitions=3)) == 27


def test_graph_restricts_meetings() -> None:
    names = ["a", "b", "c", "d"]
    ring = build_graph(names, "ring")
    pairs = round_robin(names, self_play=False, graph=ring)
    assert ("a", "c") not in pairs and ("a", "b") in pairs and ("a", "d") in pairs
    assert len(pairs) == 8
    g = build_graph(names, "edges", edges=[("a", "b")])
    assert round_robin(names, self_play=False, graph=g) == [("a", "b"), ("b", "a")]
    assert sorted(build_graph(names, "watts_strogatz", k=2, p=0.5, seed=1).nodes) == sorted(names)
