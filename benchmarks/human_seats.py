"""What a human seat costs the framework per decision, with a "person" that answers at once.

Prints, side by side in one run:

1. the seat hub alone (SeatHub.ask / state / answer in one event loop, no HTTP):
   microseconds per decision;
2. a whole `run_experiment` of SEATS people, each playing a 10-round Prisoner's
   Dilemma against replayed GPT-4, every answer sent by a script over HTTP
   (`societas.human.testing.play_seat`: a long poll for the question, a POST
   for the answer, as the page does): the recorded latency of the people's
   decisions (question shown to answer taken: the HTTP round trips and the
   script), median and 90th percentile, and the run's wall time;
3. the same run with the people replaced by scripted tit-for-tat: its wall time.
   The difference is mostly fixed: the web server's start and its short wait
   for open pages to hear the run is over.

A person takes seconds per decision, so what matters is that (1) is far below
a millisecond and (2) is a few HTTP round trips.

Usage: python benchmarks/human_seats.py [--seats N] [--decisions N]
"""

from __future__ import annotations

import argparse
import asyncio
import os
import platform
import sys
import tempfile
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from societas.config import parse_config
from societas.human.hub import SeatHub
from societas.human.testing import play_seat
from societas.runners.run import run_experiment
from societas.types import ActionSpec


async def hub_alone(decisions: int) -> float:
    """Seconds per decision through the hub: one seat, questions asked and answered in turn."""
    hub = SeatHub({"p": 60.0}, tokens={"p": "t"})
    spec = ActionSpec.choice(["J", "F"])
    view = {"question": "Which Option do you choose?"}

    async def person() -> None:
        version = -1
        answered = 0
        while answered < decisions:
            state = await hub.wait_state("t", version, 5.0)
            version = state["version"]
            q = state.get("question")
            if q is not None:
                hub.answer("t", q["id"], "J")
                answered += 1

    clicker = asyncio.create_task(person())
    t0 = time.perf_counter()
    for _ in range(decisions):
        await hub.ask("p", (0, 0), spec, view)
    elapsed = time.perf_counter() - t0
    await clicker
    return elapsed / decisions


def config(out: str, seats: int, human: bool) -> object:
    person = {"name": "person", "policy": "human" if human else "scripted:tit_for_tat", "count": seats}
    return parse_config({
        "name": "seats-bench", "seed": 0, "output_dir": out,
        "environment": {"id": "repeated-matrix-game", "params": {"game": "prisoners_dilemma", "rounds": 10}},
        "population": [person, {"name": "gpt4", "policy": "replay:akata2023/pd_gpt4"}],
        "matchmaking": {"kind": "assigned", "assign": {"person": ["gpt4"]}},
        "runner": {"batch_scripted": False} if "batch_scripted" in _runner_fields() else {},
    })


def _runner_fields() -> set[str]:
    from societas.config import RunnerConfig

    return set(RunnerConfig.model_fields)


def full_run(out: str, seats: int, human: bool) -> tuple[float, object]:
    """(wall seconds, run directory) of one run; with people, every seat answered by a script over HTTP."""
    cfg = config(out, seats, human)
    urls: dict[str, str] = {}
    ready = threading.Event()
    result: dict[str, object] = {}

    def announce(found: dict[str, str]) -> None:
        urls.update(found)
        ready.set()

    t0 = time.perf_counter()
    if not human:
        rd, _ = run_experiment(cfg, progress=False)
        return time.perf_counter() - t0, rd.path
    runner = threading.Thread(target=lambda: result.update(
        rd=run_experiment(cfg, progress=False, on_seats=announce)[0]))
    runner.start()
    ready.wait(60)
    with ThreadPoolExecutor(seats) as pool:
        list(pool.map(lambda u: play_seat(u, lambda q: "J"), urls.values()))
    runner.join()
    return time.perf_counter() - t0, result["rd"].path  # type: ignore[attr-defined]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--seats", type=int, default=4)
    ap.add_argument("--decisions", type=int, default=5000)
    args = ap.parse_args()
    import datetime

    import fastapi
    import uvicorn

    print(f"{datetime.datetime.now(datetime.timezone.utc):%Y-%m-%d %H:%M} UTC, python {platform.python_version()}, "
          f"{os.cpu_count()} CPUs, load {os.getloadavg()[0]:.1f}, fastapi {fastapi.__version__}, "
          f"uvicorn {uvicorn.__version__}, httpx {httpx.__version__}; {args.seats} seats x 10 rounds vs replay GPT-4")
    per = asyncio.run(hub_alone(args.decisions))
    print(f"hub alone:               {per * 1e6:8.1f} us per decision ({args.decisions} decisions)")
    from societas.analysis import load_run

    with tempfile.TemporaryDirectory() as out:
        wall_h, run_h = full_run(out, args.seats, human=True)
        wall_s, _ = full_run(out, args.seats, human=False)
        ev = load_run(run_h).events
    lat = ev.loc[ev["policy"] == "human", "latency_s"]
    print(f"people over HTTP:        {lat.median() * 1e3:8.2f} ms median, {lat.quantile(0.9) * 1e3:.2f} ms p90 "
          f"from question shown to answer taken ({len(lat)} decisions)")
    print(f"run wall, people:        {wall_h:8.2f} s (server start and the end-of-run notice included)")
    print(f"run wall, tit-for-tat:   {wall_s:8.2f} s; difference {wall_h - wall_s:.2f} s")


if __name__ == "__main__":
    main()
