"""What playing the naming game's pairs in steps of disjoint pairs buys against a model with latency.

A naming game of N language-model players (complete graph, W = 10, memory 5)
against the fake OpenAI-compatible server answering every request after
`--latency` seconds, for `--rounds` population rounds (N interactions each; the
fake's random names never reach consensus, so every run plays the same number).
Side by side in one process: `max_pairs: 1` (one pair at a time, the two
players asking at once: the sequential game's lower bound is interactions x
latency) and the default (every step takes the next pairs that share no player,
so their calls overlap). Both give the events of the sequential game. Printed:
wall time of the whole run, model calls, the wall time per interaction, and the
default's speed-up. With `--episodes E` both also play E runs at once.

Usage: python benchmarks/naming_pairs.py [--agents 24] [--rounds 2] [--latency 0.05] [--episodes 1]
"""

from __future__ import annotations

import argparse
import os
import platform
import tempfile
import time

from societas.config import parse_config
from societas.llm.testing import FakeOpenAIServer
from societas.runners.run import run_experiment


def one(url: str, agents: int, rounds: int, episodes: int, max_pairs: int | None, out: str) -> tuple[float, int]:
    params = {"num_agents": agents, "rounds": rounds, **({"max_pairs": max_pairs} if max_pairs else {})}
    cfg = parse_config({
        "name": "naming-pairs", "seed": 0, "output_dir": out, "model": f"openai:fake@{url}",
        "environment": {"id": "naming-game", "params": params},
        "population": [{"name": "p", "policy": "llm", "count": agents}],
        "matchmaking": {"kind": "population", "repetitions": episodes},
        "llm": {"temperature": 0.5, "cache": False, "max_attempts": 1},
    })
    t0 = time.perf_counter()
    _, summary = run_experiment(cfg, progress=False)
    return time.perf_counter() - t0, int(summary["llm_calls"])


def mean_step(agents: int, steps: int = 2000) -> float:
    """Pairs per step of the schedule on a complete graph (without the stopping rule's cap)."""
    import numpy as np

    from societas.environments.naming import Schedule, contact_graph

    schedule = Schedule(contact_graph(agents), 10, np.random.default_rng(0))
    return float(np.mean([len(schedule.step(agents)) for _ in range(steps)]))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--agents", type=int, default=24)
    ap.add_argument("--rounds", type=int, default=2)
    ap.add_argument("--latency", type=float, default=0.05)
    ap.add_argument("--episodes", type=int, default=1)
    args = ap.parse_args()
    interactions = args.agents * args.rounds * args.episodes
    print(f"# naming game, {args.agents} language-model players, {args.rounds} population rounds x "
          f"{args.episodes} run(s) = {interactions} interactions; fake server, {args.latency * 1000:.0f} ms per "
          f"request; {platform.python_version()}, {os.cpu_count()} CPUs")
    print(f"# mean pairs per step of the schedule at N={args.agents}: {mean_step(args.agents):.2f}")
    print(f"{'pairs per step':>16} {'wall s':>8} {'calls':>7} {'ms/interaction':>15} {'speed-up':>9}")
    with FakeOpenAIServer("random", owned_by="vllm", latency=args.latency) as server, \
            tempfile.TemporaryDirectory() as tmp:
        one(server.base_url, 4, 1, 1, None, tmp)  # imports and first connections, not counted
        base = None
        for label, max_pairs in (("1", 1), ("disjoint (all)", None)):
            wall, calls = one(server.base_url, args.agents, args.rounds, args.episodes, max_pairs, tmp)
            base = base or wall
            print(f"{label:>16} {wall:8.2f} {calls:7d} {wall / interactions * 1000:15.1f} {base / wall:8.1f}x")


if __name__ == "__main__":
    main()
