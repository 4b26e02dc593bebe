"""Language-model agents at population scale: the naming game under `sampling: distribution`.

Every player is a language-model agent. With `show_rounds: false` a prompt
depends only on the player's memory (its last H interactions) and the order of
the W names, so the model is asked once per distinct prompt for its
probabilities of the names, and each player draws its own answer from them
(Flint et al. 2025). For each population size the run plays `--rounds`
population rounds (N interactions each) twice with one fresh response cache:
first asking the model, then replaying from the cache. Printed per run:
decisions, distinct prompts (llm_calls rows), model calls (not from the
cache), cache hits, wall time and time per decision; beside them the same game
with `sampling: reply` (one model call per decision) where `--reply` asks.

Usage: python benchmarks/llm_distribution.py [--agents 1000 1000000] [--rounds 2] [--memory 3] [--model hf:PATH]
                                             [--graph complete|ring|regular] [--reply] [--once]
`--once` asks only (no replay), for sizes where one pass is what the time allows.
The default model is SmolLM2-135M-Instruct through hf: (`societas.llm.models.smollm2_path`).
"""

from __future__ import annotations

import argparse
import datetime
import os
import platform
import resource
import tempfile
import time
from pathlib import Path


def one_run(n: int, rounds: int, memory: int, model: str, graph: str, sampling: str, cache: Path, out: str) -> dict:
    from societas.analysis import load_run
    from societas.config import parse_config
    from societas.runners.run import run_experiment

    cfg = parse_config({
        "name": f"naming-llm-{n}", "seed": 0, "output_dir": out, "model": model,
        "environment": {"id": "naming-game", "params": {
            "num_agents": n, "names": ["F", "J"], "memory": memory, "rounds": rounds, "show_rounds": False,
            "graph": {"kind": graph, **({"k": 4} if graph == "regular" else {})}, "max_pairs": 4096}},
        "population": [{"name": "player", "policy": "llm", "count": n}],
        "llm": {"sampling": sampling, "temperature": 1.0, "cache": str(cache)},
        "matchmaking": {"kind": "population"},
    }, source="llm_distribution")
    t0 = time.perf_counter()
    rd, _ = run_experiment(cfg, progress=False)
    wall = time.perf_counter() - t0
    run = load_run(rd.path)
    calls, events = run.llm_calls, run.events
    hits = int(calls["cache_hit"].sum())
    return {"agents": n, "sampling": sampling, "decisions": len(events), "prompts": len(calls),
            "model_calls": len(calls) - hits, "cache_hits": hits, "wall_s": wall,
            "us_per_decision": wall / max(1, len(events)) * 1e6,
            "peak_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--agents", nargs="+", type=int, default=[1000, 1_000_000])
    ap.add_argument("--rounds", type=int, default=2, help="population rounds of N interactions")
    ap.add_argument("--memory", type=int, default=3, help="interactions each player remembers (H)")
    ap.add_argument("--model", default=None, help="a model spec (default: hf: on SmolLM2-135M-Instruct)")
    ap.add_argument("--graph", default="complete", help="contact graph kind (complete is O(N^2) edges)")
    ap.add_argument("--reply", action="store_true", help="also run sampling: reply (one call per decision)")
    ap.add_argument("--once", action="store_true", help="ask only; no replay from the cache")
    args = ap.parse_args()
    model = args.model
    if model is None:
        from societas.llm.models import smollm2_path

        model = f"hf:{smollm2_path()}"
    print(f"# llm_distribution.py  {datetime.date.today()}  {platform.processor() or platform.machine()}, "
          f"{os.cpu_count()} cores; model {model}")
    print(f"# naming game W=2 (F, J), memory {args.memory}, no round numbers, graph {args.graph}, "
          f"{args.rounds} population "
          "rounds, temperature 1; each size " + ("once on a fresh cache (asked)" if args.once else
                                                   "twice on one fresh cache (asked, then replayed)"))
    print(f"# load average at start {' '.join(f'{x:.1f}' for x in os.getloadavg())}")
    print(f"{'agents':>9} {'sampling':>12} {'pass':>6} {'decisions':>10} {'prompts':>8} {'calls':>7} "
          f"{'hits':>7} {'wall_s':>8} {'us/dec':>7} {'peak_mb':>8}")
    for n in args.agents:
        modes = ["distribution", "reply"] if args.reply else ["distribution"]
        for sampling in modes:
            with tempfile.TemporaryDirectory() as d:
                cache = Path(d) / "responses.sqlite"
                for label in ("asked",) if args.once else ("asked", "cached"):
                    r = one_run(n, args.rounds, args.memory, model, args.graph, sampling, cache, d)
                    print(f"{r['agents']:>9} {sampling:>12} {label:>6} {r['decisions']:>10} {r['prompts']:>8} "
                          f"{r['model_calls']:>7} {r['cache_hits']:>7} {r['wall_s']:>8.1f} "
                          f"{r['us_per_decision']:>7.0f} {r['peak_mb']:>8.0f}  load {os.getloadavg()[0]:.1f}",
                          flush=True)


if __name__ == "__main__":
    main()
