"""How close a study against a 50 ms model comes to the lower bound set by the model alone.

An iterated prisoner's dilemma of 10 rounds against the fake OpenAI-compatible
server in its own process, answering every request after `--latency` seconds.
Both players of a pair ask the model at once and every pair plays at once, so
the model alone needs (rounds x latency): the lower bound. Workloads (the
pairs of `benchmarks/peers/common.py`):

- `8`: 8 players in 4 fixed disjoint pairs (0-1, 2-3, 4-5, 6-7);
- `8rr`: 8 players, round robin: all 28 pairs at once (each player in 7 games);
- `1000`: a society of 1,000 agents in 500 fixed disjoint pairs, 10,000 model calls.

Each is a real `run_experiment` with the default settings except
`runner.max_concurrent_episodes` (all pairs at once) and, where named,
`llm.max_in_flight`; the response cache is on (a new file per run, so nothing
is replayed). One uncounted run first pays for imports. Printed per setting
(medians of `--repeats` runs):

- wall time of the whole run (config to summary) and of the model rounds
  (first request sent to last reply), each divided by the lower bound;
- where the societas process spent the wall time, from py-spy samples of its
  main thread: societas code, the OpenAI SDK and HTTP stack (openai, httpx,
  aiohttp, pydantic, ...), the asyncio loop, Parquet/pandas, and idle (waiting
  in `select` for the network); plus its CPU time per model call;
- the fake server's CPU time per call (it shares the machine's cores);
- the client-throughput bound: model calls per round x client CPU per call,
  against the latency (when it exceeds the latency, rounds take that long
  however fast the model is).

With `--before REF` every run is played twice, interleaved, in fresh processes
against the same server: once on the code of git revision REF (unpacked into a
temporary directory) and once on this checkout, and the figures are printed
side by side (this script measures both, so only societas differs).

Usage: python benchmarks/latency.py [--workloads 8 8rr 1000] [--in-flight 64 1024] [--repeats N]
       python benchmarks/latency.py --workloads 1000 --in-flight 0 --before 61fa504
"""

from __future__ import annotations

import argparse
import collections
import json
import os
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

from client import conditions, start_server

from societas.config import ExperimentConfig, parse_config
from societas.runners import run as run_module

ROUNDS = 10
WORKLOADS = {"8": 8, "8rr": 8, "1000": 1000}
_HTTP = ("openai", "httpx", "httpx2", "httpcore", "h11", "aiohttp", "yarl", "multidict", "anyio", "sniffio",
         "pydantic", "pydantic_core", "propcache", "frozenlist", "aiohappyeyeballs", "aiosignal", "distro")
_DATA = ("pyarrow", "pandas", "numpy")


def make_config(workload: str, url: str, *, in_flight: int | None, out: str) -> ExperimentConfig:
    players = WORKLOADS[workload]
    names = [f"a{i:04d}" for i in range(players)]
    matchmaking: dict[str, Any] = {"self_play": False, "both_orders": False}
    if workload != "8rr":
        edges = [[names[i], names[i + 1]] for i in range(0, players, 2)]
        matchmaking["graph"] = {"kind": "edges", "edges": edges}
    episodes = players * (players - 1) // 2 if workload == "8rr" else players // 2
    llm: dict[str, Any] = {"cache": str(Path(out) / f"cache-{time.monotonic_ns()}.sqlite")}
    if in_flight is not None:
        llm["max_in_flight"] = in_flight
    return parse_config({
        "name": f"latency-{workload}",
        "seed": 0,
        "model": f"openai:bench@{url}",
        "environment": {"id": "repeated-matrix-game", "params": {"game": "prisoners_dilemma", "rounds": ROUNDS}},
        "population": [{"name": n, "policy": "llm"} for n in names],
        "matchmaking": matchmaking,
        "runner": {"max_concurrent_episodes": episodes},
        "llm": llm,
        "output_dir": out,
    }, source="latency-benchmark")


class TimedModel:
    """Wraps a ChatModel and notes when the first request went out and the last reply came back."""

    def __init__(self, inner: Any, span: list[float]) -> None:
        self._inner = inner
        self.name = inner.name
        self._span = span

    async def complete(self, request: Any) -> Any:
        t0 = time.perf_counter()
        if not self._span:
            self._span.extend((t0, t0))
        result = await self._inner.complete(request)
        self._span[1] = max(self._span[1], time.perf_counter())
        return result

    async def aclose(self) -> None:
        await self._inner.aclose()


def proc_cpu_s(pid: int) -> float:
    """User + system CPU seconds of a process, from /proc (0 where unavailable)."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
    except (OSError, IndexError, ValueError):
        return 0.0


def _group(frame: str) -> str | None:
    """The share a py-spy frame counts toward, or None for standard-library code other than asyncio."""
    path = frame.rsplit("(", 1)[-1]
    if "/societas/" in path:
        return "societas"
    if "site-packages/" in path or "dist-packages/" in path:
        pkg = path.split("-packages/", 1)[1].split("/", 1)[0].split(".", 1)[0]
        if pkg in _HTTP:
            return "SDK+HTTP"
        if pkg in _DATA:
            return "Parquet/pandas"
        return "other"
    if "/asyncio/" in path:
        return "asyncio loop"
    return None


def classify(stack: str) -> str:
    """Idle when the loop waits in select; else the innermost frame of a known group (the leaf's caller chain)."""
    frames = stack.split(";")
    name, _, where = frames[-1].partition(" (")
    if name.endswith("select") and "selectors.py" in where:
        return "idle"
    for frame in reversed(frames):
        group = _group(frame)
        if group is not None:
            return group
    return "other"


class Sampler:
    """py-spy attached to this process, recording raw stacks (with idle ones) until stopped."""

    def __init__(self, path: Path, rate: int = 200) -> None:
        self.path = path
        self.proc: subprocess.Popen[bytes] | None = None
        exe = shutil.which("py-spy")
        if exe is not None:
            self.proc = subprocess.Popen(
                [exe, "record", "--pid", str(os.getpid()), "--rate", str(rate), "--format", "raw", "--idle",
                 "--full-filenames", "--nonblocking", "--output", str(path)],
                stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
            time.sleep(1.0)  # let it attach

    def stop(self) -> dict[str, float]:
        """Shares of the main thread's samples taken during the run, by group."""
        if self.proc is None:
            return {}
        self.proc.send_signal(signal.SIGINT)
        try:
            self.proc.wait(timeout=60)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            return {}
        counts: collections.Counter[str] = collections.Counter()
        if not self.path.is_file():
            return {}
        for line in self.path.read_text().splitlines():
            stack, _, n = line.rpartition(" ")
            if "run_experiment" in stack:
                counts[classify(stack)] += int(n)
        total = sum(counts.values())
        return {k: v / total for k, v in counts.most_common()} if total else {}


def one(workload: str, url: str, server_pid: int, *, in_flight: int | None, latency: float, out: str,
        profile: bool) -> dict[str, Any]:
    cfg = make_config(workload, url, in_flight=in_flight, out=out)
    span: list[float] = []
    make = run_module.make_model
    run_module.make_model = lambda spec, options=None: TimedModel(make(spec, options), span)  # type: ignore
    sampler = Sampler(Path(out) / f"spy-{time.monotonic_ns()}.txt") if profile else None
    try:
        s0 = proc_cpu_s(server_pid)
        t0, c0 = time.perf_counter(), time.process_time()
        _, summary = run_module.run_experiment(cfg, progress=False)
        wall, cpu = time.perf_counter() - t0, time.process_time() - c0
        server_cpu = proc_cpu_s(server_pid) - s0
    finally:
        run_module.make_model = make
        shares = sampler.stop() if sampler is not None else {}
    bound = ROUNDS * latency
    calls = int(summary["llm_calls"])
    players = WORKLOADS[workload]
    calls_per_round = calls / ROUNDS
    cpu_per_call = cpu / calls
    return {
        "workload": workload, "players": players, "episodes": summary["episodes"], "calls": calls,
        "in_flight": cfg.llm.max_in_flight, "wall": wall, "model_span": span[1] - span[0] if span else 0.0,
        "bound": bound, "cpu": cpu, "cpu_per_call": cpu_per_call, "server_cpu_per_call": server_cpu / calls,
        "client_round_s": calls_per_round * cpu_per_call,
        "inflight_round_s": latency * calls_per_round / cfg.llm.max_in_flight, "shares": shares,
    }


def report(rows: list[dict[str, Any]], latency: float) -> None:
    r = rows[0]
    walls = [x["wall"] for x in rows]
    spans = [x["model_span"] for x in rows]
    med = statistics.median
    label = {"8": "8 players, 4 pairs", "8rr": "8 players, round robin (28 pairs)",
             "1000": "1,000 agents, 500 pairs"}[r["workload"]]
    print(f"\n{label}; {r['calls']} model calls; llm.max_in_flight {r['in_flight']}; {len(rows)} run(s)")
    print(f"  lower bound {ROUNDS} rounds x {latency * 1000:.0f} ms = {r['bound']:.2f} s")
    print(f"  whole run   {med(walls):6.2f} s = {med(walls) / r['bound']:5.2f} x bound   (runs: "
          + ", ".join(f"{w:.2f}" for w in walls) + ")")
    print(f"  model rounds {med(spans):5.2f} s = {med(spans) / r['bound']:5.2f} x bound   "
          "(first request to last reply)")
    cpu_call = med(x["cpu_per_call"] for x in rows)
    print(f"  societas process CPU {med(x['cpu'] for x in rows):.2f} s = {cpu_call * 1000:.3f} ms per call; "
          f"fake server CPU {med(x['server_cpu_per_call'] for x in rows) * 1000:.3f} ms per call")
    per_round = med(x["client_round_s"] for x in rows)
    print(f"  client-throughput bound per round: {r['calls'] / ROUNDS:.0f} calls x {cpu_call * 1000:.3f} ms = "
          f"{per_round * 1000:.1f} ms vs {latency * 1000:.0f} ms latency"
          + (" (the client, not the model, sets the pace)" if per_round > latency else ""))
    inflight = r["inflight_round_s"]
    if inflight > latency:
        print(f"  in-flight bound per round: {r['calls'] / ROUNDS:.0f} calls / {r['in_flight']} in flight x "
              f"{latency * 1000:.0f} ms = {inflight * 1000:.0f} ms")
    shares = [x["shares"] for x in rows if x["shares"]]
    if shares:
        keys = sorted({k for s in shares for k in s}, key=lambda k: -med(s.get(k, 0.0) for s in shares))
        print("  wall time of the societas process (py-spy samples of its main thread): "
              + ", ".join(f"{k} {100 * med(s.get(k, 0.0) for s in shares):.0f}%" for k in keys))


def unpack(ref: str, into: Path) -> Path:
    """The `societas` package of git revision `ref`, unpacked under `into` (a PYTHONPATH entry)."""
    root = Path(__file__).resolve().parent.parent
    archive = subprocess.run(["git", "-C", str(root), "archive", ref, "societas"], capture_output=True, check=True)
    subprocess.run(["tar", "-x", "-C", str(into)], input=archive.stdout, check=True)
    return into


def child(workload: str, url: str, server_pid: int, *, in_flight: int | None, latency: float, out: str,
          code: Path | None) -> dict[str, Any]:
    """One measured run in a fresh process importing societas from `code` (None: this checkout)."""
    env = dict(os.environ)
    here = Path(__file__).resolve().parent.parent
    env["PYTHONPATH"] = os.pathsep.join([str(code or here), env.get("PYTHONPATH", "")])
    args = {"workload": workload, "url": url, "server_pid": server_pid, "in_flight": in_flight,
            "latency": latency, "out": out}
    proc = subprocess.run([sys.executable, __file__, "--child", json.dumps(args)], env=env,
                          capture_output=True, text=True)
    if proc.returncode != 0:
        raise RuntimeError(f"measured run failed: {proc.stderr.strip().splitlines()[-1:]}")
    return json.loads(proc.stdout.strip().splitlines()[-1])


def run_child(spec: str) -> None:
    """The --child side: one uncounted warm-up run, then the measured one, as JSON on the last line."""
    import societas

    a = json.loads(spec)
    one("8", a["url"], a["server_pid"], in_flight=None, latency=a["latency"], out=a["out"], profile=False)
    row = one(a["workload"], a["url"], a["server_pid"], in_flight=a["in_flight"], latency=a["latency"],
              out=a["out"], profile=False)
    row["societas"] = str(Path(societas.__file__).resolve().parent)
    print(json.dumps(row))


def report_pairs(pairs: dict[str, list[dict[str, Any]]], ref: str, latency: float) -> None:
    """Before and after side by side: medians of wall time over the bound and CPU per call."""
    med = statistics.median
    first = pairs["before"][0]
    print(f"\n{first['players']:,} agents ({first['workload']}); {first['calls']} model calls; "
          f"llm.max_in_flight {first['in_flight']}; lower bound {first['bound']:.2f} s; "
          f"{len(pairs['before'])} interleaved pair(s)")
    print("| code | whole run s | / bound | model rounds / bound | client CPU ms per call | server CPU ms per call |")
    print("| --- | ---: | ---: | ---: | ---: | ---: |")
    for name, label in (("before", f"before ({ref})"), ("after", "after (this checkout)")):
        rows = pairs[name]
        wall = med(r["wall"] for r in rows)
        print(f"| {label} | {wall:.2f} | {wall / first['bound']:.1f} | "
              f"{med(r['model_span'] for r in rows) / first['bound']:.1f} | "
              f"{med(r['cpu_per_call'] for r in rows) * 1000:.3f} | "
              f"{med(r['server_cpu_per_call'] for r in rows) * 1000:.3f} |")
    b, a = pairs["before"], pairs["after"]
    print(f"after / before: whole run {med(r['wall'] for r in a) / med(r['wall'] for r in b):.2f}, "
          f"client CPU per call {med(r['cpu_per_call'] for r in a) / med(r['cpu_per_call'] for r in b):.2f}; "
          "runs (before/after, s): " + ", ".join(f"{x['wall']:.1f}/{y['wall']:.1f}" for x, y in zip(b, a)))
    del latency


def main() -> None:
    if len(sys.argv) == 3 and sys.argv[1] == "--child":
        run_child(sys.argv[2])
        return
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--workloads", nargs="+", default=["8", "8rr", "1000"], choices=list(WORKLOADS))
    ap.add_argument("--in-flight", type=int, nargs="+", default=[0, 1024],
                    help="llm.max_in_flight values for the 1,000-agent workload (0: the default)")
    ap.add_argument("--latency", type=float, default=0.05)
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--no-profile", action="store_true", help="skip the py-spy samples")
    ap.add_argument("--before", metavar="REF", help="also run the code of git revision REF, interleaved")
    args = ap.parse_args()
    out = tempfile.mkdtemp(prefix="societas-latency-bench-")
    print(conditions())
    print(f"fake OpenAI server in its own process, answering after {args.latency * 1000:.0f} ms; "
          f"iterated PD, {ROUNDS} rounds, every pair at once; py-spy: "
          f"{'off' if args.no_profile or not shutil.which('py-spy') else 'on'}")
    proc, url = start_server(args.latency)
    try:
        if args.before:
            before = unpack(args.before, Path(tempfile.mkdtemp(prefix="societas-before-", dir=out)))
            for workload in args.workloads:
                settings = [v or None for v in args.in_flight] if workload == "1000" else [None]
                for in_flight in settings:
                    pairs: dict[str, list[dict[str, Any]]] = {"before": [], "after": []}
                    for _ in range(args.repeats):
                        for name, code in (("before", before), ("after", None)):
                            pairs[name].append(child(workload, url, proc.pid, in_flight=in_flight,
                                                     latency=args.latency, out=out, code=code))
                    report_pairs(pairs, args.before, args.latency)
                    sys.stdout.flush()
            return
        # One run first, not counted: imports and first-use setup, as in a long study.
        one("8", url, proc.pid, in_flight=None, latency=args.latency, out=out, profile=False)
        for workload in args.workloads:
            settings = [v or None for v in args.in_flight] if workload == "1000" else [None]
            for in_flight in settings:
                rows = [one(workload, url, proc.pid, in_flight=in_flight, latency=args.latency, out=out,
                            profile=not args.no_profile) for _ in range(args.repeats)]
                report(rows, args.latency)
                sys.stdout.flush()
    finally:
        proc.terminate()
        proc.wait()
        shutil.rmtree(out, ignore_errors=True)


if __name__ == "__main__":
    main()
