"""How close a study comes to the most its inference engine can serve of the study's own requests.

For a study and an endpoint:

1. societas plays the study once (uncounted: it warms the engine and yields the
   request mix, the run's `llm_calls`);
2. a bare load generator (aiohttp alone, no societas in the request path)
   replays those calls, rebuilt from `llm_calls` into the bodies societas sent,
   at rising concurrency (1, 2, 4, ...) until throughput stops growing (less
   than 5% over the best so far): the engine's limit on this mix;
3. societas plays the same study end to end again, timed (response cache off).

Printed: both throughputs in model calls per second and their ratio (societas
over the engine's limit; 1.0 means the framework leaves nothing on the table),
the prompt tokens the engine served from its prefix cache (`cached_tokens`,
and for a server started here the reuse its log reports) beside the share a
prefix cache could have served (each prompt's longest
common prefix with any earlier prompt of the run, in characters, scaled to its
prompt tokens), and the conditions. A study has rounds, so it cannot keep the
engine as busy as a free-running generator: the ratio says how much of the
engine a study's structure and the framework leave idle together.

Studies: `pd` (the PD tournament's live small form: 2 rounds, 2 language-model
members and one scripted) and `society100` (100 language-model agents in 50
fixed pairs of iterated PD, `--rounds` rounds). Endpoints: `--gguf FILE`
starts llama.cpp's server on the file here (llama-cpp-python's, as `llamacpp:`
specs do) and stops it after; `--endpoint URL` uses a running OpenAI-compatible
server (vLLM, llama-server, ...), e.g. the CPU build of vLLM (opt-in).

Usage: python benchmarks/engine_limit.py --gguf PATH.gguf [--studies pd society100] [--rounds 1]
       python benchmarks/engine_limit.py --endpoint http://127.0.0.1:8000/v1 --name MODEL
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import re
import shutil
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path
from typing import Any

import aiohttp
import yaml

sys.path.insert(0, str(Path(__file__).resolve().parent))

from client import conditions
from latency import TimedModel

from societas.analysis import load_run
from societas.config import ExperimentConfig, bundled_config, parse_config
from societas.llm.base import ChatRequest
from societas.llm.openai_backend import OpenAIChatModel
from societas.llm.retry import RetryingModel
from societas.llm.specs import ModelOptions, parse_model_spec
from societas.runners import run as run_module
from societas.small_form import LIVE, small_form
from societas.types import ActionSpec

GROWTH = 1.05  # a concurrency level must beat the best so far by 5% to count as growth


def study_config(study: str, model: str, *, rounds: int, out: str) -> ExperimentConfig:
    llm = {"cache": False}
    if study == "pd":
        data = small_form(yaml.safe_load(bundled_config("pd_tournament").read_text()), LIVE)
        data["environment"].setdefault("params", {})["rounds"] = min(rounds, 2) if rounds else 2
        return parse_config({**data, "model": model, "output_dir": out, "llm": {**data.get("llm", {}), **llm}},
                            source="engine-limit")
    names = [f"a{i:03d}" for i in range(100)]
    return parse_config({
        "name": "society100", "seed": 0, "model": model,
        "environment": {"id": "repeated-matrix-game", "params": {"game": "prisoners_dilemma", "rounds": rounds}},
        "population": [{"name": n, "policy": "llm"} for n in names],
        "matchmaking": {"self_play": False, "both_orders": False,
                        "graph": {"kind": "edges", "edges": [[names[i], names[i + 1]] for i in range(0, 100, 2)]}},
        "llm": {**llm, "max_attempts": 2}, "output_dir": out,
    }, source="engine-limit")


def play(cfg: ExperimentConfig, sent: list[dict[str, Any]] | None = None) -> dict[str, Any]:
    """One societas run: wall time, first-request-to-last-reply span, calls, and the llm_calls table."""
    span: list[float] = []
    make, body = run_module.make_model, OpenAIChatModel._body

    def recording(self: OpenAIChatModel, request: ChatRequest, mode: Any) -> dict[str, Any]:
        out = body(self, request, mode)
        if sent is not None and request.max_tokens != 1:  # not the connection check
            sent.append(out)
        return out

    failed = RetryingModel._failed
    transient: list[str] = []

    def noting(self: RetryingModel, error: str) -> None:
        transient.append(error)
        failed(self, error)

    run_module.make_model = lambda spec, options=None: TimedModel(make(spec, options), span)  # type: ignore
    OpenAIChatModel._body = recording  # type: ignore[method-assign]
    RetryingModel._failed = noting  # type: ignore[method-assign]
    try:
        t0 = time.perf_counter()
        rd, summary = run_module.run_experiment(cfg, progress=False)
        wall = time.perf_counter() - t0
    finally:
        run_module.make_model, OpenAIChatModel._body = make, body  # type: ignore[method-assign]
        RetryingModel._failed = failed  # type: ignore[method-assign]
    if transient:
        print(f"    transient failures retried: {len(transient)} (first: {transient[0]})")
    calls = load_run(rd.path).llm_calls
    return {"wall": wall, "span": span[1] - span[0] if span else 0.0, "calls": len(calls), "table": calls,
            "decisions": int(summary.get("decisions", 0))}


def bodies_from_calls(calls: Any, model: OpenAIChatModel, mode: Any) -> list[dict[str, Any]]:
    """The request bodies societas sent for each row of `llm_calls`, rebuilt from the table alone."""
    out = []
    for messages, params in zip(calls["messages"], calls["params"]):
        p = json.loads(params)
        c = p.get("constraint")
        spec = None if c is None else ActionSpec(**{k: tuple(v) if isinstance(v, list) else v for k, v in c.items()})
        request = ChatRequest(messages=tuple(json.loads(messages)), temperature=p.get("temperature", 0.0),
                              max_tokens=p.get("max_tokens"), top_p=p.get("top_p"), seed=p.get("seed"),
                              constraint=spec)
        out.append(model._body(request, mode))
    return out


async def replay(url: str, bodies: list[dict[str, Any]], concurrency: int) -> float:
    """Calls per second of a bare aiohttp client sending `bodies` with `concurrency` workers."""
    queue = list(reversed(bodies))
    async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=concurrency)) as session:
        async def worker() -> None:
            while queue:
                body = queue.pop()
                async with session.post(url + "/chat/completions", json=body) as resp:
                    await resp.read()
                    if resp.status != 200:
                        raise RuntimeError(f"engine answered {resp.status}")

        t0 = time.perf_counter()
        await asyncio.gather(*(worker() for _ in range(concurrency)))
        return len(bodies) / (time.perf_counter() - t0)


def engine_limit(url: str, bodies: list[dict[str, Any]], *, per_level: int, max_level: int
                 ) -> tuple[float, int, list[tuple[int, float]]]:
    """Rising concurrency until throughput stops growing: the best calls/s, its level, every level seen."""
    seen: list[tuple[int, float]] = []
    best, best_level, level = 0.0, 1, 1
    step = max(1, len(bodies) // per_level)
    sample = bodies[::step][:per_level]  # spread over the run: early and late rounds' prompts alike
    while level <= max_level:
        rate = asyncio.run(replay(url, sample, level))
        seen.append((level, rate))
        print(f"    load generator, {level:3d} in flight: {rate:7.2f} calls/s", flush=True)
        if rate < best * GROWTH:
            if rate > best:
                best, best_level = rate, level
            break
        best, best_level = rate, level
        level *= 2
    return best, best_level, seen


def _common(a: str, b: str) -> int:
    """Length of the longest common prefix of two strings."""
    n = min(len(a), len(b))
    i = 0
    while i < n and a[i] == b[i]:
        i += 1
    return i


def prefix_shares(calls: Any) -> tuple[float, float]:
    """Prompt tokens the engine served from cache, and what a prefix cache could have: shares of all."""
    prompts = ["".join(m.get("content") or "" for m in json.loads(x)) for x in calls["messages"]]
    total = float(calls["prompt_tokens"].sum()) or 1.0
    cached = float(calls["cached_tokens"].fillna(0).sum()) / total
    shared = 0.0
    for i, (text, tokens) in enumerate(zip(prompts, calls["prompt_tokens"])):
        best = max((_common(text, p) for p in prompts[:i]), default=0)
        shared += tokens * best / max(1, len(text))
    return cached, shared / total


_PREFIX_HIT = re.compile(rb"(\d+) prefix-match hit, remaining (\d+) prompt tokens")


def log_reuse(log: Path, start: int) -> tuple[int, int] | None:
    """Prompt tokens llama-cpp-python's server reused from its cache, of all it was given, in `log` past `start`.

    That server reuses the prefix its last prompt shares with the next one but does not say so in
    its replies (`cached_tokens` stays 0); its log does ("N prefix-match hit, remaining M prompt tokens").
    """
    if not log.is_file():
        return None
    with open(log, "rb") as f:
        f.seek(start)
        pairs = [(int(a), int(b)) for a, b in _PREFIX_HIT.findall(f.read())]
    return sum(a for a, _ in pairs), sum(a + b for a, b in pairs)


def start_llamacpp(gguf: Path, log_path: Path) -> tuple[subprocess.Popen[bytes], str]:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    log = open(log_path, "wb")
    proc = subprocess.Popen([sys.executable, "-m", "societas.llm.llamacpp_server", "--model", str(gguf),
                             "--host", "127.0.0.1", "--port", str(port), "--n_ctx", "8192"],
                            stdout=log, stderr=subprocess.STDOUT)
    base = f"http://127.0.0.1:{port}"
    for _ in range(600):
        if proc.poll() is not None:
            raise RuntimeError(f"llama.cpp's server exited ({proc.returncode}); log: {log.name}")
        try:
            with urllib.request.urlopen(base + "/health", timeout=2) as r:
                if r.status == 200:
                    return proc, base + "/v1"
        except OSError:
            time.sleep(0.5)
    proc.kill()
    raise RuntimeError("llama.cpp's server did not come up in 5 minutes")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    where = ap.add_mutually_exclusive_group(required=True)
    where.add_argument("--gguf", type=Path, help="start llama.cpp's server on this GGUF file")
    where.add_argument("--endpoint", help="a running OpenAI-compatible server's base URL (.../v1)")
    ap.add_argument("--name", default="model", help="the model name to ask a running server for")
    ap.add_argument("--studies", nargs="+", default=["pd", "society100"], choices=["pd", "society100"])
    ap.add_argument("--rounds", type=int, default=1, help="rounds of society100 (pd keeps its 2)")
    ap.add_argument("--per-level", type=int, default=24, help="requests the load generator sends per level")
    ap.add_argument("--max-level", type=int, default=64)
    args = ap.parse_args()
    print(conditions())
    server = None
    log = Path(tempfile.gettempdir()) / f"engine-limit-llamacpp-{os.getpid()}.log"
    if args.gguf is not None:
        server, url = start_llamacpp(args.gguf, log)
        engine = f"llama-cpp-python's server on {args.gguf.name} (started here)"
    else:
        url, engine = args.endpoint.rstrip("/"), f"the server at {args.endpoint}"
    spec = f"openai:{args.name if args.gguf is None else 'smollm2'}@{url}"
    print(f"engine: {engine}; model spec {spec}; response cache off; load generator: aiohttp, "
          f"{args.per_level} requests per level, growth counted from {GROWTH:.2f}x")
    out = tempfile.mkdtemp(prefix="societas-engine-limit-")
    rows = []
    try:
        for study in args.studies:
            cfg = study_config(study, spec, rounds=args.rounds, out=out)
            print(f"\n{study}: {len(cfg.population)} members", flush=True)
            sent: list[dict[str, Any]] = []
            first = play(cfg, sent)
            print(f"    societas, first run (uncounted): {first['calls']} calls in {first['wall']:.1f} s", flush=True)
            model = OpenAIChatModel(parse_model_spec(spec), ModelOptions())
            mode = asyncio.run(model.constraint_mode())
            bodies = bodies_from_calls(first["table"], model, mode)
            # The table is in episode order, the requests went out as agents asked: compare as multisets.
            rebuilt, wire = (sorted(json.dumps(b, sort_keys=True) for b in x) for x in (bodies, sent))
            same = sum(a == b for a, b in zip(rebuilt, wire))
            print(f"    bodies rebuilt from llm_calls: {len(bodies)}, identical to those sent: {same}/{len(sent)}")
            best, level, _ = engine_limit(url, bodies, per_level=min(args.per_level, len(bodies)),
                                          max_level=args.max_level)
            start = log.stat().st_size if server is not None and log.is_file() else 0
            second = play(cfg)
            reuse = log_reuse(log, start) if server is not None else None
            rate = second["calls"] / second["span"] if second["span"] else 0.0
            whole = second["calls"] / second["wall"]
            cached, shared = prefix_shares(second["table"])
            print(f"    societas, end to end: {second['calls']} calls in {second['wall']:.1f} s "
                  f"(model span {second['span']:.1f} s)", flush=True)
            rows.append((study, best, level, rate, whole, cached, shared,
                         "-" if not reuse or not reuse[1] else f"{100 * reuse[0] / reuse[1]:.0f}%"))
    finally:
        if server is not None:
            server.terminate()
            server.wait(timeout=30)
            log.unlink(missing_ok=True)
        shutil.rmtree(out, ignore_errors=True)
    print("\n| study | engine limit calls/s (at in flight) | societas calls/s (model span) | ratio "
          "| societas calls/s (whole run) | ratio | cached_tokens reported | reused per server log | shared prefix |")
    print("| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |")
    for study, best, level, rate, whole, cached, shared, reused in rows:
        print(f"| {study} | {best:.2f} ({level}) | {rate:.2f} | {rate / best:.2f} | {whole:.2f} | {whole / best:.2f} "
              f"| {100 * cached:.0f}% | {reused} | {100 * shared:.0f}% |")


if __name__ == "__main__":
    main()
