"""The feedback loop at the language-model study's scale, against a model that answers instantly.

Runs the bundled `lockin_llm` config (100 language-model humans and a
language-model AI, 4 questions, 200 rounds: 20,200 decisions) against the fake
OpenAI-compatible server in a separate process, answering at once with a
responder that moves each human's stance halfway toward the AI's answer found
in its prompt (the AI answers the confidence-weighted average it is shown).

Prints decisions per second and where the time goes: the share of the wall
time during which at least one request was inside the model client (the
OpenAI SDK, HTTP and the server: "waiting on the model"), and the rest (the
environment, agents, prompts, parsing, recording, Parquet: the framework).
With an instant model the second share is the framework's overhead; with a
real model the first grows and the second stays the same in seconds.

Usage: python benchmarks/lockin_llm.py [--rounds N] [--humans N]
"""

from __future__ import annotations

import argparse
import os
import platform
import re
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

_NUM = r"([-+]?\d+(?:\.\d+)?)"
_WEIGHTED = re.compile(r"weighted by confidence " + _NUM)
_AVERAGE = re.compile(r"average " + _NUM)
_OWN = re.compile(r"Your current stance: " + _NUM)
_READING = re.compile(r"Your new reading: " + _NUM)
_AI = re.compile(r"The AI assistant's answer: " + _NUM)


def responder(request: Any) -> str:
    """Humans move halfway toward the AI's answer; the AI repeats the weighted average it is shown."""
    text = request.messages[-1]["content"] if request.messages else ""
    if text.startswith("Release"):
        m = _WEIGHTED.search(text) or _AVERAGE.search(text)
        x = float(m.group(1)) if m else 5.0
        return f"Answer: {x:.2f} | This is what people are saying."
    own = _OWN.search(text) or _READING.search(text)
    x = float(own.group(1)) if own else 5.0
    ai = _AI.search(text)
    if ai:
        x += 0.5 * (float(ai.group(1)) - x)
    return f"Answer: {x:.2f} | I moved toward the assistant's answer."


def serve() -> None:
    """Run the fake server with `responder` until killed, printing its base URL first."""
    import threading

    from societas.llm.testing import FakeOpenAIServer

    with FakeOpenAIServer(responder) as server:
        print(f"serving {server.base_url}", flush=True)
        threading.Event().wait()


class TimedModel:
    """Wraps a ChatModel and records when each request entered and left it."""

    def __init__(self, inner: Any, spans: list[tuple[float, float]]) -> None:
        self._inner = inner
        self.name = inner.name
        self._spans = spans

    async def complete(self, request: Any) -> Any:
        t0 = time.perf_counter()
        try:
            return await self._inner.complete(request)
        finally:
            self._spans.append((t0, time.perf_counter()))

    async def aclose(self) -> None:
        await self._inner.aclose()


def busy_time(spans: list[tuple[float, float]]) -> float:
    """Length of the union of the intervals: time with at least one request in the model client."""
    total, end = 0.0, float("-inf")
    for a, b in sorted(spans):
        if a > end:
            total += b - a
            end = b
        elif b > end:
            total += b - end
            end = b
    return total


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--serve", action="store_true", help=argparse.SUPPRESS)
    ap.add_argument("--rounds", type=int, default=200)
    ap.add_argument("--humans", type=int, default=100)
    args = ap.parse_args()
    if args.serve:
        serve()
        return

    from societas.config import load_config
    from societas.runners import run as run_module

    out = tempfile.mkdtemp(prefix="societas-lockin-bench-")
    os.environ.setdefault("SOCIETAS_CACHE_DIR", str(Path(out) / "cache"))
    proc = subprocess.Popen([sys.executable, __file__, "--serve"], stdout=subprocess.PIPE, text=True)
    try:
        line = proc.stdout.readline().strip()
        url = line.split()[-1]
        if not url.startswith("http"):
            raise RuntimeError(f"fake server did not start: {line!r}")
        cfg = load_config("lockin_llm", model=f"openai:fake@{url}", output_dir=out)
        env = cfg.environment.model_copy(update={"params": {**cfg.environment.params, "rounds": args.rounds,
                                                             "num_humans": args.humans}})
        population = [cfg.population[0].model_copy(update={"count": args.humans}), cfg.population[1]]
        cfg = cfg.model_copy(update={"environment": env, "population": population,
                                     "llm": cfg.llm.model_copy(update={"cache": False})})
        spans: list[tuple[float, float]] = []
        make = run_module.make_model
        run_module.make_model = lambda spec, options=None: TimedModel(make(spec, options), spans)
        try:
            t0, c0 = time.perf_counter(), time.process_time()
            _, summary = run_module.run_experiment(cfg, progress=False)
            wall, cpu = time.perf_counter() - t0, time.process_time() - c0
        finally:
            run_module.make_model = make
    finally:
        proc.kill()
        proc.wait()
    waiting = busy_time(spans)
    calls = len(spans)
    print(f"machine: {platform.machine()}, {os.cpu_count()} cores, Python {platform.python_version()}")
    print(f"feedback loop: {args.humans} LLM humans + LLM AI, 4 questions, {args.rounds} rounds, "
          f"fake server answering instantly (separate process)")
    print(f"{summary['decisions']} decisions, {calls} model calls, {summary['invalid_actions']} invalid, "
          f"{wall:.1f} s: {summary['decisions'] / wall:.0f} decisions/s")
    print(f"inside the model client (SDK + HTTP + server): {waiting:.1f} s ({waiting / wall:.0%} of the wall time); "
          f"mean call {sum(b - a for a, b in spans) / max(1, calls) * 1000:.1f} ms")
    print(f"framework (env, agents, prompts, parsing, recording, Parquet): {wall - waiting:.1f} s "
          f"({(wall - waiting) / wall:.0%}), {(wall - waiting) / max(1, summary['decisions']) * 1e6:.0f} us "
          "per decision")
    print(f"CPU time of this process (framework + SDK client): {cpu:.1f} s; the server ran in its own process")


if __name__ == "__main__":
    main()
