"""Model calls per second: societas language-model agents vs the bare `openai` SDK, side by side.

Both talk to the fake OpenAI-compatible server in its own process, answering
at once, so the figure is what the client side (the SDK and, for societas, the
framework around it) can push through on this machine:

- societas: a real `run_experiment` of an iterated prisoner's dilemma (16
  language-model agents, round robin with both seat orders and self-play, 10
  rounds), `openai:NAME@URL`, with `llm.max_in_flight` = the concurrency and
  as many episodes in flight, the response cache off; run directory, Parquet
  parts and summary included in the time;
- bare SDK: `AsyncOpenAI.chat.completions.create` with the very requests that
  societas sent (read back from the run's llm_calls table: same messages, same
  parameters), as many worker coroutines as the concurrency, on a client with
  the same connection limits.

For each concurrency and transport the two run back to back, alternating
which goes first, `--repeats` times; the table shows the median calls/s of
each, the median of the per-pair ratios societas / bare, and the CPU time of
this process per call (societas: the whole run, framework included; the
server runs in its own process). The machine is shared, so the ratios are the
result; absolute rates vary from run to run.

Transports: `httpx` (the SDK's default client) and `aiohttp` (its
`DefaultAioHttpClient`) for both sides; `direct` is societas' default, aiohttp
without the SDK in the request path, set beside the bare SDK on aiohttp (its
faster client).

Usage: python benchmarks/client.py [--repetitions N] [--repeats N] [--concurrency 64 256]
"""

from __future__ import annotations

import argparse
import asyncio
import datetime
import importlib.metadata
import json
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import openai
import pyarrow.parquet as pq

from societas.config import ExperimentConfig, parse_config
from societas.runners.run import run_experiment

MODEL = "bench"
TRANSPORTS = ("httpx", "aiohttp", "direct")


def conditions() -> str:
    """Machine, versions and date, printed above the results."""
    cpu = platform.processor() or platform.machine()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    versions = []
    for dist in ("societas", "openai", "aiohttp", "httpx", "httpx2"):
        try:
            versions.append(f"{dist} {importlib.metadata.version(dist)}")
        except importlib.metadata.PackageNotFoundError:
            pass
    load = ", ".join(f"{x:.2f}" for x in os.getloadavg())
    return (f"date: {datetime.datetime.now().astimezone().isoformat(timespec='seconds')}\n"
            f"machine: {cpu}, {os.cpu_count()} cores, {platform.system()} {platform.release()}, load {load}\n"
            f"Python {platform.python_version()}; {'; '.join(versions)}")


def start_server(latency: float = 0.0) -> tuple[subprocess.Popen[str], str]:
    """The fake server in its own process; returns it and its base URL."""
    proc = subprocess.Popen(
        [sys.executable, "-m", "societas.llm.testing", "--port", "0", "--responder", "first",
         "--latency", str(latency)],
        stdout=subprocess.PIPE, text=True)
    assert proc.stdout is not None
    line = proc.stdout.readline().strip()
    url = line.split()[-1] if line else ""
    if not url.startswith("http"):
        proc.kill()
        raise RuntimeError(f"fake server did not start: {line!r}")
    return proc, url


def societas_config(url: str, *, in_flight: int, transport: str, repetitions: int, out: str) -> ExperimentConfig:
    return parse_config({
        "name": f"client-{transport}-{in_flight}",
        "seed": 0,
        "model": f"openai:{MODEL}@{url}",
        "environment": {"id": "repeated-matrix-game", "params": {"game": "prisoners_dilemma", "rounds": 10}},
        "population": [{"name": f"a{i}", "policy": "llm"} for i in range(16)],
        "matchmaking": {"self_play": True, "both_orders": True, "repetitions": repetitions},
        "runner": {"max_concurrent_episodes": in_flight},
        "llm": {"max_in_flight": in_flight, "transport": transport, "cache": False},
        "output_dir": out,
    }, source="client-benchmark")


def run_societas(cfg: ExperimentConfig) -> tuple[int, float, float, Path]:
    """Model calls, wall time and CPU time of this process for one run_experiment."""
    t0, c0 = time.perf_counter(), time.process_time()
    rd, summary = run_experiment(cfg, progress=False)
    return int(summary["llm_calls"]), time.perf_counter() - t0, time.process_time() - c0, rd.path


def recorded_requests(run_dir: Path) -> list[dict[str, Any]]:
    """The chat request bodies (less the model) a societas run sent, from its llm_calls table."""
    table = pq.read_table(run_dir / "llm_calls", columns=["messages", "params"])
    out = []
    for messages, params in zip(table.column("messages").to_pylist(), table.column("params").to_pylist(),
                                strict=True):
        p = json.loads(params)
        body: dict[str, Any] = {"messages": json.loads(messages), "temperature": p["temperature"]}
        for k in ("max_tokens", "top_p", "seed"):
            if k in p:
                body[k] = p[k]
        out.append(body)
    return out


def sdk_client(url: str, transport: str, in_flight: int) -> openai.AsyncOpenAI:
    """An SDK client with the connection limits societas gives its own."""
    limits_type = type(openai.DEFAULT_CONNECTION_LIMITS)
    limits = limits_type(max_connections=max(1000, in_flight), max_keepalive_connections=max(100, in_flight))
    http: Any = (openai.DefaultAioHttpClient(limits=limits, timeout=60.0) if transport == "aiohttp"
                 else openai.DefaultAsyncHttpxClient(limits=limits, timeout=60.0))
    return openai.AsyncOpenAI(api_key="EMPTY", base_url=url, max_retries=0, timeout=60.0, http_client=http)


async def _bare(url: str, transport: str, in_flight: int, requests: list[dict[str, Any]]) -> tuple[float, float]:
    client = sdk_client(url, transport, in_flight)
    queue = iter(requests)

    async def worker() -> None:
        for body in queue:
            completion = await client.chat.completions.create(model=MODEL, **body)
            if not completion.choices:
                raise RuntimeError("no choices")

    try:
        await client.models.list()  # as societas asks once (structured-output detection)
        t0, c0 = time.perf_counter(), time.process_time()
        await asyncio.gather(*(worker() for _ in range(in_flight)))
        return time.perf_counter() - t0, time.process_time() - c0
    finally:
        await client.close()


def run_bare(url: str, transport: str, in_flight: int, requests: list[dict[str, Any]]) -> tuple[float, float]:
    """Wall and CPU time of the bare SDK sending `requests`."""
    return asyncio.run(_bare(url, transport, in_flight, requests))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--repetitions", type=int, default=2, help="round robins per run (5,120 calls each)")
    ap.add_argument("--repeats", type=int, default=3, help="societas/bare pairs per condition")
    ap.add_argument("--concurrency", type=int, nargs="+", default=[64, 256])
    ap.add_argument("--transports", nargs="+", default=list(TRANSPORTS), choices=TRANSPORTS)
    args = ap.parse_args()
    out = tempfile.mkdtemp(prefix="societas-client-bench-")
    os.environ.setdefault("SOCIETAS_CACHE_DIR", str(Path(out) / "cache"))
    print(conditions())
    print("fake OpenAI server in its own process, answering at once (responder 'first'); iterated PD, 10 rounds,"
          f" 16 LLM agents round robin x {args.repetitions}; {args.repeats} interleaved pairs per condition")
    proc, url = start_server()
    try:
        # One warm-up run records the requests the bare SDK replays.
        calls, _, _, run_dir = run_societas(societas_config(url, in_flight=64, transport="aiohttp",
                                                          repetitions=args.repetitions, out=out))
        requests = recorded_requests(run_dir)
        assert len(requests) == calls
        print(f"{calls} model calls per run\n")
        header = (f"{'transport':<9} {'in flight':>9} {'societas calls/s':>17} {'bare SDK calls/s':>17} "
                  f"{'societas/bare':>14} {'CPU ms/call s|b':>16}  pairs (societas/bare calls/s)")
        print(header)
        print("-" * len(header))
        for in_flight in args.concurrency:
            for transport in args.transports:
                cfg = societas_config(url, in_flight=in_flight, transport=transport,
                                      repetitions=args.repetitions, out=out)
                sdk_transport = "aiohttp" if transport == "direct" else transport
                ours, bare, ratios, cpu_ours, cpu_bare = [], [], [], [], []
                for r in range(args.repeats):
                    first_ours = r % 2 == 0
                    for which in ("societas", "bare") if first_ours else ("bare", "societas"):
                        if which == "societas":
                            n, wall, cpu, _ = run_societas(cfg)
                            ours.append(n / wall)
                            cpu_ours.append(1000 * cpu / n)
                        else:
                            wall, cpu = run_bare(url, sdk_transport, in_flight, requests)
                            bare.append(len(requests) / wall)
                            cpu_bare.append(1000 * cpu / len(requests))
                    ratios.append(ours[-1] / bare[-1])
                pairs = " ".join(f"{a:.0f}/{b:.0f}" for a, b in zip(ours, bare, strict=True))
                print(f"{transport:<9} {in_flight:>9} {statistics.median(ours):>17,.0f} "
                      f"{statistics.median(bare):>17,.0f} {statistics.median(ratios):>14.2f} "
                      f"{statistics.median(cpu_ours):>7.2f}|{statistics.median(cpu_bare):<8.2f}  {pairs}",
                      flush=True)
    finally:
        proc.terminate()
        proc.wait()


if __name__ == "__main__":
    main()
