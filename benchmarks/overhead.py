"""What the framework itself costs per decision, measured end to end.

Prints three figures, each from a full `run_experiment` (run directory,
Parquet parts and summary included):

1. decisions per second with scripted agents (iterated PD, 10 rounds);
2. decisions per second with language-model agents on an in-process
   responder that answers instantly (fake:first): the cost of prompting,
   parsing, recording and scheduling without any model;
3. against the fake OpenAI server in a separate process answering after
   50 ms, with 256 requests in flight: achieved model calls per second divided
   by the ideal 256 / 0.05 s. Below 1 means the client side (SDK + societas)
   cannot keep 256 requests in flight on this machine.

Usage: python benchmarks/overhead.py [--quick]
"""

from __future__ import annotations

import argparse
import os
import platform
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from societas.config import parse_config
from societas.runners.run import run_experiment


def config(name: str, population: list[dict], *, repetitions: int, out: str, model: str | None = None,
           concurrent: int = 256, llm: dict | None = None) -> object:
    return parse_config({
        "name": name,
        "seed": 0,
        "model": model,
        "environment": {"id": "repeated-matrix-game", "params": {"game": "prisoners_dilemma", "rounds": 10}},
        "population": population,
        "matchmaking": {"self_play": True, "both_orders": True, "repetitions": repetitions},
        "runner": {"max_concurrent_episodes": concurrent},
        "llm": llm or {},
        "output_dir": out,
    }, source=name)


def timed(cfg: object) -> tuple[float, dict]:
    t0 = time.perf_counter()
    _, summary = run_experiment(cfg, progress=False)
    return time.perf_counter() - t0, summary


def start_server(latency: float) -> tuple[subprocess.Popen, str]:
    proc = subprocess.Popen(
        [sys.executable, "-m", "societas.llm.testing", "--port", "0", "--responder", "first",
         "--latency", str(latency)],
        stdout=subprocess.PIPE, text=True)
    line = proc.stdout.readline().strip()
    url = line.split()[-1]
    if not url.startswith("http"):
        proc.kill()
        raise RuntimeError(f"fake server did not start: {line!r}")
    return proc, url


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--quick", action="store_true", help="smaller workloads")
    args = ap.parse_args()
    scale = 1 if args.quick else 4
    out = tempfile.mkdtemp(prefix="societas-bench-")
    os.environ.setdefault("SOCIETAS_CACHE_DIR", str(Path(out) / "cache"))
    print(f"machine: {platform.machine()}, {os.cpu_count()} cores, Python {platform.python_version()}")

    scripted = [{"name": f"s{i}", "policy": p} for i, p in enumerate([
        "scripted:tit_for_tat", "scripted:always_defect", "scripted:grim_trigger", "scripted:random",
        "scripted:win_stay_lose_shift", "scripted:tft_noise10", "replay:akata2023/pd_gpt4",
        "scripted:alternating"])]
    wall, s = timed(config("bench-scripted", scripted, repetitions=8 * scale, out=out))
    print(f"scripted agents: {s['decisions']} decisions in {wall:.2f} s = "
          f"{s['decisions'] / wall:,.0f} decisions/s ({1e6 * wall / s['decisions']:.1f} us each, run directory "
          "included)")

    llm = [{"name": f"m{i}", "policy": "llm"} for i in range(4)]
    wall, s = timed(config("bench-llm", llm, repetitions=16 * scale, out=out, model="fake:first"))
    print(f"LLM agents, in-process zero-latency responder: {s['decisions']} decisions in {wall:.2f} s = "
          f"{s['decisions'] / wall:,.0f} decisions/s, {s['llm_calls'] / s['decisions']:.2f} model calls/decision")

    latency, in_flight = 0.05, 256
    proc, url = start_server(latency)
    try:
        agents = [{"name": f"h{i}", "policy": "llm"} for i in range(16)]
        cfg = config("bench-http", agents, repetitions=1 * scale, out=out, model=f"openai:bench@{url}",
                     concurrent=in_flight // 2,
                     llm={"max_in_flight": in_flight, "structured_outputs": "none", "cache": False})
        wall, s = timed(cfg)
    finally:
        proc.terminate()
        proc.wait()
    ideal = in_flight / latency
    achieved = s["llm_calls"] / wall
    print(f"HTTP, fake server at {latency * 1000:.0f} ms, {in_flight} in flight: {s['llm_calls']} calls in "
          f"{wall:.2f} s = {achieved:,.0f} calls/s; ideal {ideal:,.0f} calls/s; ratio {achieved / ideal:.3f}")


if __name__ == "__main__":
    main()
