"""Time and peak memory of the vectorised minimal naming game from 10^3 to 10^6 agents, and how they grow.

Each size runs in a fresh process, twice: the model alone (no events kept) and
with every decision written to one Parquet file (two rows per interaction,
`vectorized.EVENT_SCHEMA`, zstd). A run goes to consensus (3N consecutive
successes) unless `--rounds R` caps it at R population rounds (R x N
interactions). Peak memory is the process's peak RSS (getrusage); the baseline
is the same process after imports with a 100-agent run. Growth is the exponent
k in time ~ N^k between neighbouring sizes.

Beside it, the registered `naming-game` environment (the game language-model
players play, memory of the last 5 interactions) with scripted minimal players
through a normal run, one decision at a time, for a few population rounds.

Usage: python benchmarks/naming_scale.py [--agents 1000 10000 100000 1000000] [--rounds R] [--names 10]
                                         [--env-agents 100 1000] [--env-rounds 2]
"""

from __future__ import annotations

import argparse
import datetime
import json
import math
import os
import platform
import resource
import subprocess
import sys
import tempfile
import time


def one(n: int, rounds: int | None, names: int, write: bool) -> dict:
    from societas.environments.naming import vectorized
    from societas.environments.naming.minimal import MinimalNamingGame

    pool = tuple(f"n{i}" for i in range(names))
    game = MinimalNamingGame(n_agents=n, names=pool, budget=(rounds * n) if rounds else 10**15)
    size = 0
    t0 = time.perf_counter()
    if write:
        with tempfile.TemporaryDirectory() as d:
            path = os.path.join(d, "events.parquet")
            out = vectorized.write_events(game, 0, path)
            wall = time.perf_counter() - t0
            size = os.path.getsize(path)
    else:
        out = vectorized.run(game, 0)
        wall = time.perf_counter() - t0
    return {"agents": n, "write": write, "interactions": out.interactions, "decisions": 2 * out.interactions,
            "matchings": out.matchings, "consensus": out.consensus, "convention": out.convention, "wall_s": wall,
            "peak_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, "file_mb": size / 2**20}


def one_env(n: int, rounds: int) -> dict:
    """The registered naming-game environment through a normal run: N scripted minimal players,
    memory 5, `rounds` population rounds, every decision in the run directory."""
    from societas.config import parse_config
    from societas.runners.run import run_experiment

    with tempfile.TemporaryDirectory() as d:
        cfg = parse_config({
            "name": f"naming-{n}", "seed": 0, "output_dir": d,
            "environment": {"id": "naming-game", "params": {"num_agents": n, "memory": 5, "rounds": rounds}},
            "population": [{"name": "player", "policy": "scripted:minimal", "count": n}],
            "matchmaking": {"kind": "population"},
        }, source="naming_scale")
        t0 = time.perf_counter()
        _, summary = run_experiment(cfg, progress=False)
        wall = time.perf_counter() - t0
    return {"agents": n, "decisions": summary["decisions"], "wall_s": wall,
            "peak_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--agents", nargs="+", type=int, default=[1000, 10_000, 100_000, 1_000_000])
    ap.add_argument("--rounds", type=int, default=None, help="population rounds (N interactions each); "
                    "default: to consensus")
    ap.add_argument("--names", type=int, default=10, help="W, the names to choose from (<= 64)")
    ap.add_argument("--env-agents", nargs="*", type=int, default=[100, 1000],
                    help="also run the registered naming-game env with this many scripted players")
    ap.add_argument("--env-rounds", type=int, default=2, help="population rounds of those runs")
    ap.add_argument("--one", nargs=2, type=int, help=argparse.SUPPRESS)
    ap.add_argument("--one-env", type=int, help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.one_env:
        print(json.dumps(one_env(args.one_env, args.env_rounds)))
        return
    if args.one:
        print(json.dumps(one(args.one[0], args.rounds, args.names, bool(args.one[1]))))
        return
    import numpy
    import pyarrow

    import societas

    print(f"# naming_scale.py  {datetime.date.today()}  {platform.processor() or platform.machine()}, "
          f"{os.cpu_count()} cores, python {platform.python_version()}, numpy {numpy.__version__}, "
          f"pyarrow {pyarrow.__version__}, societas {societas.__version__}")
    stop = f"{args.rounds} population rounds" if args.rounds else "consensus (3N consecutive successes)"
    print(f"# minimal naming game, W={args.names}, complete graph, random matchings, seed 0, until {stop}")

    def run(n: int, write: bool) -> dict:
        cmd = [sys.executable, __file__, "--one", str(n), str(int(write)), "--names", str(args.names)]
        if args.rounds:
            cmd += ["--rounds", str(args.rounds)]
        out = subprocess.run(cmd, capture_output=True, text=True, check=True)
        return json.loads(out.stdout.strip().splitlines()[-1])

    base = {write: run(100, write) for write in (False, True)}
    print(f"baseline (100 agents): peak {base[False]['peak_mb']:.0f} MB model alone, "
          f"{base[True]['peak_mb']:.0f} MB writing events; B/agent is the growth over it")
    print(f"{'agents':>9} {'events':>7} {'pop rounds':>10} {'decisions':>11} {'wall s':>8} {'decisions/s':>12} "
          f"{'peak MB':>8} {'B/agent':>8} {'file MB':>8} {'time ~N^k':>9}")
    previous: dict[bool, dict] = {}
    for n in args.agents:
        for write in (False, True):
            row = run(n, write)
            grown = max(0.0, row["peak_mb"] - base[write]["peak_mb"]) * 2**20
            k = ""
            if write in previous:
                p = previous[write]
                k = f"{math.log(row['wall_s'] / p['wall_s']) / math.log(n / p['agents']):.2f}"
            previous[write] = row
            print(f"{n:>9,} {'Parquet' if write else 'none':>7} {row['interactions'] / n:>10.1f} "
                  f"{row['decisions']:>11,} {row['wall_s']:>8.2f} {row['decisions'] / row['wall_s']:>12,.0f} "
                  f"{row['peak_mb']:>8.0f} {grown / n:>8.0f} {row['file_mb']:>8.1f} {k:>9}", flush=True)
    if args.env_agents:
        print(f"# the registered naming-game env (memory 5) through a normal run, scripted:minimal players, "
              f"{args.env_rounds} population rounds, one decision at a time, every decision in Parquet")
        for n in args.env_agents:
            cmd = [sys.executable, __file__, "--one-env", str(n), "--env-rounds", str(args.env_rounds)]
            row = json.loads(subprocess.run(cmd, capture_output=True, text=True, check=True).stdout.strip()
                             .splitlines()[-1])
            print(f"{n:>9,} {'run dir':>7} {args.env_rounds:>10} {row['decisions']:>11,} {row['wall_s']:>8.2f} "
                  f"{row['decisions'] / row['wall_s']:>12,.0f} {row['peak_mb']:>8.0f}", flush=True)


if __name__ == "__main__":
    main()
