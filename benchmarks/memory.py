"""Peak memory per agent, and how it grows with agents and with rounds.

A scripted iterated-PD society on a ring (each agent meets its two
neighbours), every decision logged to the Parquet run directory; each size in
a fresh process, peak resident memory from getrusage. The baseline is the same
process after imports with a 10-agent run, so "per agent" is the growth.

Usage: python benchmarks/memory.py [--agents 1000 10000] [--rounds 10 40]
"""

from __future__ import annotations

import argparse
import datetime
import json
import platform
import resource
import subprocess
import sys
import tempfile
import time

STRATEGIES = ["tit_for_tat", "grim_trigger", "always_defect", "always_cooperate", "random", "win_stay_lose_shift"]


def one(n: int, rounds: int) -> dict:
    from societas.config import parse_config
    from societas.runners.run import run_experiment

    per = max(1, n // len(STRATEGIES))
    population = [{"name": s, "policy": f"scripted:{s}", "count": per} for s in STRATEGIES]
    population[0]["count"] += n - per * len(STRATEGIES)
    cfg = parse_config({
        "name": f"memory-{n}-{rounds}", "seed": 0, "output_dir": tempfile.mkdtemp(),
        "environment": {"id": "repeated-matrix-game", "params": {"game": "prisoners_dilemma", "rounds": rounds}},
        "population": population,
        "matchmaking": {"self_play": False, "both_orders": False, "graph": {"kind": "ring"}},
    }, source="memory")
    t0 = time.perf_counter()
    _, summary = run_experiment(cfg, progress=False)
    return {"agents": n, "rounds": rounds, "decisions": summary["decisions"], "wall_s": time.perf_counter() - t0,
            "peak_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--agents", nargs="+", type=int, default=[1000, 10000])
    ap.add_argument("--rounds", nargs="+", type=int, default=[10, 40])
    ap.add_argument("--one", nargs=2, type=int, help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.one:
        print(json.dumps(one(*args.one)))
        return
    import societas

    print(f"# memory.py  {datetime.date.today()}  {platform.machine()}, python {platform.python_version()}, "
          f"societas {societas.__version__}")

    def run(n: int, r: int) -> dict:
        out = subprocess.run([sys.executable, __file__, "--one", str(n), str(r)], capture_output=True, text=True,
                             check=True)
        return json.loads(out.stdout.strip().splitlines()[-1])

    base = run(10, min(args.rounds))
    print(f"baseline (10 agents, {base['rounds']} rounds): peak {base['peak_mb']:.0f} MB")
    print(f"{'agents':>7} {'rounds':>6} {'decisions':>9} {'wall s':>7} {'peak MB':>8} {'KB per agent':>12} "
          f"{'bytes per decision':>18}")
    for n in args.agents:
        for r in args.rounds:
            row = run(n, r)
            grown = (row["peak_mb"] - base["peak_mb"]) * 1024
            print(f"{n:>7} {r:>6} {row['decisions']:>9} {row['wall_s']:>7.2f} {row['peak_mb']:>8.0f} "
                  f"{grown / n:>12.1f} {grown * 1024 / row['decisions']:>18.0f}", flush=True)


if __name__ == "__main__":
    main()
