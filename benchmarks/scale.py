"""Decisions per second and peak memory: the local runner vs the Ray runner with 1, 2 and 4 shards.

Two workloads, each configuration in a fresh process (so Ray starts anew and
peak memory is that run's alone):

- llm-50ms: 32 language-model agents in a round robin of iterated Prisoner's
  Dilemma (496 pairs, 10 rounds, 9,920 decisions) against the fake OpenAI
  server in its own process answering after 50 ms; up to 256 episodes and 256
  requests in flight per shard.
- scripted-10k: a 10,000-agent society of scripted players (tit-for-tat,
  grim trigger, always defect, random, ...) on a ring: each agent meets its two
  neighbours, 10 rounds (10,000 pairs, 200,000 decisions), every decision
  logged to the Parquet run directory.

Peak memory is the largest sum of resident memory over the benchmark's process
tree (driver, Ray's own processes and shard workers; not the fake server),
sampled every 0.1 s. "Ray start" is the run's fixed cost of starting Ray and
its shards (summary.json's runner.start_s); "after start" divides the
decisions by the rest of the wall time. The events of every configuration are
checked identical to the local runner's.

Usage: python benchmarks/scale.py [--quick] [--workloads llm-50ms scripted-10k] [--shards 1 2 4]
"""

from __future__ import annotations

import argparse
import datetime
import hashlib
import json
import os
import platform
import subprocess
import sys
import tempfile
import threading
import time

STRATEGIES = ["tit_for_tat", "grim_trigger", "always_defect", "always_cooperate", "random", "win_stay_lose_shift"]


def workload(name: str, quick: bool, url: str | None, out: str, runner: dict) -> dict:
    if name == "llm-50ms":
        n = 12 if quick else 32
        return {
            "name": name, "seed": 0, "output_dir": out,
            "environment": {"id": "repeated-matrix-game", "params": {"game": "prisoners_dilemma", "rounds": 10}},
            "population": [{"name": "llm", "policy": "llm", "model": f"openai:bench@{url}", "count": n}],
            "matchmaking": {"self_play": False, "both_orders": False},
            "llm": {"max_in_flight": 256, "cache": False},
            "runner": runner,
        }
    n = 1_000 if quick else 10_000
    per = n // len(STRATEGIES)
    population = [{"name": s, "policy": f"scripted:{s}", "count": per + (n - per * len(STRATEGIES) if i == 0 else 0)}
                  for i, s in enumerate(STRATEGIES)]
    return {
        "name": name, "seed": 0, "output_dir": out,
        "environment": {"id": "repeated-matrix-game", "params": {"game": "prisoners_dilemma", "rounds": 10}},
        "population": population,
        "matchmaking": {"self_play": False, "both_orders": False, "graph": {"kind": "ring"}},
        "runner": runner,
    }


def _tree_rss_mb(root: int, exclude: set[int]) -> float:
    """Resident memory of `root` and its descendants, from /proc (Linux)."""
    parent: dict[int, int] = {}
    rss: dict[int, int] = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat") as f:
                fields = f.read().rsplit(")", 1)[1].split()
            parent[int(entry)] = int(fields[1])
            rss[int(entry)] = int(fields[21]) * os.sysconf("SC_PAGE_SIZE")
        except (OSError, IndexError, ValueError):
            continue
    total = 0
    for pid in rss:
        p, seen = pid, 0
        while p and p != root and seen < 64:
            p, seen = parent.get(p, 0), seen + 1
        if p == root and pid not in exclude:
            total += rss[pid]
    return total / 2**20


def one(name: str, kind: str, shards: int, quick: bool, url: str | None, server_pid: int) -> dict:
    """Run one configuration in this process; print its figures as JSON."""
    from societas.analysis.load import comparable, load_run
    from societas.config import parse_config
    from societas.runners.run import run_experiment

    peak = [0.0]
    stop = threading.Event()

    def sample() -> None:
        while not stop.is_set():
            peak[0] = max(peak[0], _tree_rss_mb(os.getpid(), {server_pid}))
            stop.wait(0.1)

    runner = {"kind": "local"} if kind == "local" else {"kind": "ray", "shards": shards}
    out = tempfile.mkdtemp(prefix="scale-")
    cfg = parse_config(workload(name, quick, url, out, runner), source=name)
    sampler = threading.Thread(target=sample, daemon=True)
    sampler.start()
    t0 = time.perf_counter()
    rd, summary = run_experiment(cfg, progress=False)
    wall = time.perf_counter() - t0
    stop.set()
    sampler.join()
    events = comparable(load_run(rd.path).events)
    digest = hashlib.sha256(events.to_csv(index=False).encode()).hexdigest()[:16]
    start = summary["runner"].get("start_s", 0.0)
    return {"workload": name, "runner": kind, "shards": shards if kind == "ray" else None, "wall_s": wall,
            "start_s": start, "play_per_s": summary["decisions"] / (wall - start),
            "decisions": summary["decisions"], "decisions_per_s": summary["decisions"] / wall,
            "peak_mb": peak[0], "events_digest": digest}


def start_server(latency: float) -> tuple[subprocess.Popen, str]:
    proc = subprocess.Popen([sys.executable, "-m", "societas.llm.testing", "--port", "0", "--responder", "first",
                             "--latency", str(latency)], stdout=subprocess.PIPE, text=True)
    assert proc.stdout is not None
    return proc, proc.stdout.readline().strip().split()[-1]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--quick", action="store_true", help="12 LLM agents and a 1,000-agent society")
    ap.add_argument("--workloads", nargs="+", default=["llm-50ms", "scripted-10k"])
    ap.add_argument("--shards", nargs="+", type=int, default=[1, 2, 4])
    ap.add_argument("--one", nargs=3, metavar=("WORKLOAD", "KIND", "SHARDS"), help=argparse.SUPPRESS)
    ap.add_argument("--url", help=argparse.SUPPRESS)
    ap.add_argument("--server-pid", type=int, default=0, help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.one:
        w, kind, shards = args.one
        print(json.dumps(one(w, kind, int(shards), args.quick, args.url, args.server_pid)))
        return
    import ray

    import societas

    print(f"# scale.py  {datetime.date.today()}  {platform.machine()}, {os.cpu_count()} cores, "
          f"python {platform.python_version()}, societas {societas.__version__}, ray {ray.__version__}")
    proc, url = start_server(0.05)
    rows = []
    try:
        for w in args.workloads:
            for kind, shards in [("local", 1), *(("ray", k) for k in args.shards)]:
                cmd = [sys.executable, __file__, "--one", w, kind, str(shards), "--url", url,
                       "--server-pid", str(proc.pid), *(["--quick"] if args.quick else [])]
                res = subprocess.run(cmd, capture_output=True, text=True, env={**os.environ, "RAY_DEDUP_LOGS": "0"})
                if res.returncode != 0:
                    print(f"{w} {kind} {shards}: failed\n{res.stderr[-2000:]}", file=sys.stderr)
                    continue
                rows.append(json.loads(res.stdout.strip().splitlines()[-1]))
                r = rows[-1]
                print(f"  {w:<13} {kind:<5} {r['shards'] or '-':>2} shards  {r['decisions']:>7} decisions  "
                      f"{r['wall_s']:7.2f} s  {r['decisions_per_s']:9.0f}/s  Ray start {r['start_s']:5.2f} s  "
                      f"peak {r['peak_mb']:6.0f} MB", flush=True)
    finally:
        proc.terminate()
        proc.wait()
    print(f"\n{'workload':<13} {'runner':<8} {'decisions':>9} {'wall s':>7} {'decisions/s':>11} {'vs local':>8} "
          f"{'Ray start s':>11} {'after start/s':>13} {'peak MB':>8} {'events':>9}")
    for w in args.workloads:
        local = next((r for r in rows if r["workload"] == w and r["runner"] == "local"), None)
        for r in (r for r in rows if r["workload"] == w):
            label = "local" if r["runner"] == "local" else f"ray x{r['shards']}"
            same = "-" if local is None else ("identical" if r["events_digest"] == local["events_digest"] else "DIFFER")
            ratio = r["decisions_per_s"] / local["decisions_per_s"] if local else float("nan")
            print(f"{w:<13} {label:<8} {r['decisions']:>9} {r['wall_s']:>7.2f} {r['decisions_per_s']:>11.0f} "
                  f"{ratio:>8.2f} {r['start_s']:>11.2f} {r['play_per_s']:>13.0f} {r['peak_mb']:>8.0f} {same:>9}")


if __name__ == "__main__":
    main()
