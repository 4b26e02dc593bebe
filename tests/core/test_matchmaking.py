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


def test_graph_schedule_matches_the_all_pairs_definition() -> None:
    names = [f"m{i}" for i in range(30)]
    for seed in range(3):
        g = build_graph(names, "erdos_renyi", p=0.2, seed=seed)
        for self_play in (True, False):
            for both_orders in (True, False):
                expected = [
                    (a, b) for i, a in enumerate(names) for j, b in enumerate(names)
                    if (i == j and self_play)
                    or (i != j and (both_orders or j > i) and g.has_edge(a, b))
                ]
                assert round_robin(names, self_play=self_play, both_orders=both_orders, graph=g) == expected
