"""How long `load_run` takes on a run of about a million decisions.

Plays the PD tournament (scripted and replayed agents) with enough
repetitions for ~1M events, then times loading it into pandas.

Usage: python benchmarks/load_run.py [--repetitions N]
"""

from __future__ import annotations

import argparse
import os
import platform
import tempfile
import time

from societas.analysis import agent_table, load_run
from societas.config import load_config
from societas.runners.run import run_experiment


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--repetitions", type=int, default=256)
    args = ap.parse_args()
    print(f"machine: {platform.machine()}, {os.cpu_count()} cores, Python {platform.python_version()}")
    with tempfile.TemporaryDirectory() as out:
        cfg = load_config("pd_tournament", output_dir=out)
        cfg = cfg.model_copy(update={"matchmaking": cfg.matchmaking.model_copy(
            update={"repetitions": args.repetitions})})
        t0 = time.perf_counter()
        rd, summary = run_experiment(cfg, progress=False)
        run_s = time.perf_counter() - t0
        size_mb = sum(p.stat().st_size for p in rd.path.rglob("*") if p.is_file()) / 2**20
        t0 = time.perf_counter()
        run = load_run(rd.path)
        load_s = time.perf_counter() - t0
        t0 = time.perf_counter()
        agent_table(run.events)
        table_s = time.perf_counter() - t0
    print(f"{summary['decisions']:,} decisions: run {run_s:.1f} s ({summary['decisions'] / run_s:,.0f}/s), "
          f"run directory {size_mb:.1f} MB; load_run {load_s:.2f} s; agent_table {table_s:.2f} s")


if __name__ == "__main__":
    main()
