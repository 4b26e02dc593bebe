"""How quickly `societas view` answers on a folder of 100 runs and on a run of a million decisions.

Builds two folders: 100 run directories (one real PD tournament run with a
fake:echo language-model member, copied 99 times under other names, so
every part is read on its own), and one run of about a million decisions
(the PD tournament repeated, its `llm` member answered by fake:echo, so a
share of its decisions have model calls and invalid replies). Then starts
the real `societas view FOLDER --port 0` in a subprocess for each and times,
over HTTP on 127.0.0.1: the server's start (to the printed URL), the runs
list cold and warm, the run page (the report's tables and figures) cold and
warm, and transcript pages: the first page, invalid decisions only, and one
agent in one episode.

Usage: python benchmarks/view_load.py [--runs 100] [--repetitions 196]
"""

from __future__ import annotations

import argparse
import os
import platform
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx

from societas.config import load_config
from societas.runners.run import run_experiment

MEMBERS_DROPPED = ("llm-scot",)  # one language-model member: a million decisions build in minutes


def _config(out: Path, repetitions: int):
    cfg = load_config("pd_tournament", model="fake:echo", output_dir=str(out))
    return cfg.model_copy(update={
        "population": [m for m in cfg.population if m.name not in MEMBERS_DROPPED],
        "matchmaking": cfg.matchmaking.model_copy(update={"repetitions": repetitions}),
        "llm": cfg.llm.model_copy(update={"cache": False}),
    })


def _serve(folder: Path) -> tuple[subprocess.Popen[str], str, float]:
    t0 = time.perf_counter()
    proc = subprocess.Popen([sys.executable, "-m", "societas.cli", "view", str(folder), "--port", "0"],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            env=dict(os.environ, PYTHONUNBUFFERED="1"))
    line = proc.stdout.readline()
    match = re.search(r"http://127\.0\.0\.1:\d+/", line)
    if match is None:
        raise SystemExit(f"societas view did not start: {line!r} {proc.stderr.read()}")
    return proc, match.group(0), time.perf_counter() - t0


def _stop(proc: subprocess.Popen[str]) -> None:
    proc.send_signal(signal.SIGINT)
    try:
        proc.wait(timeout=20)
    except subprocess.TimeoutExpired:
        proc.kill()


def _time(client: httpx.Client, path: str, **params: object) -> tuple[float, int]:
    t0 = time.perf_counter()
    r = client.get(path, params=params)
    r.raise_for_status()
    return time.perf_counter() - t0, len(r.content)


def _row(label: str, seconds: float, size: int) -> None:
    print(f"  {label:<52} {seconds * 1000:>9,.0f} ms  {size / 1024:>8,.0f} KiB")


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--runs", type=int, default=100)
    ap.add_argument("--repetitions", type=int, default=223, help="round-robin repetitions of the big run "
                    "(223: 1,003,500 decisions)")
    args = ap.parse_args()
    print(f"machine: {platform.machine()}, {os.cpu_count()} cores, Python {platform.python_version()}, "
          f"load average {os.getloadavg()[0]:.1f}")
    with tempfile.TemporaryDirectory() as tmp:
        many, big = Path(tmp) / "many", Path(tmp) / "big"
        rd, summary = run_experiment(_config(many, 1), progress=False)
        for i in range(1, args.runs):
            shutil.copytree(rd.path, many / f"{rd.path.name}-copy{i:03d}")
        print(f"folder of {args.runs} runs: each {summary['decisions']:,} decisions, "
              f"{summary['llm_calls']:,} model calls, {summary['invalid_actions']:,} invalid")
        t0 = time.perf_counter()
        big_rd, big_summary = run_experiment(_config(big, args.repetitions), progress=False)
        build_s = time.perf_counter() - t0
        parts = len(list((big_rd.path / "events").glob("part-*.parquet")))
        size_mb = sum(p.stat().st_size for p in big_rd.path.rglob("*") if p.is_file()) / 2**20
        print(f"big run: {big_summary['decisions']:,} decisions, {big_summary['llm_calls']:,} model calls, "
              f"{big_summary['invalid_actions']:,} invalid, {parts} events parts, {size_mb:.1f} MB "
              f"(built in {build_s:.0f} s)")

        proc, url, start_s = _serve(many)
        try:
            with httpx.Client(base_url=url, timeout=600) as client:
                print(f"\n`societas view` on {args.runs} runs: started (URL printed) in {start_s:.2f} s")
                _row("runs list, first request (every part read)", *_time(client, "/"))
                _row("runs list, again (part totals cached)", *_time(client, "/"))
                _row("runs list refresh fragment", *_time(client, "/fragment/runs"))
                _row("one run's page (header; the report follows)", *_time(client, f"/run/{rd.path.name}"))
                _row("its report fragment, cold (tables and figures drawn)",
                     *_time(client, f"/fragment/run/{rd.path.name}/report"))
                _row("its report fragment, again (same version)",
                     *_time(client, f"/fragment/run/{rd.path.name}/report"))
                _row("transcript, page 1", *_time(client, f"/run/{rd.path.name}/transcript"))
        finally:
            _stop(proc)

        proc, url, start_s = _serve(big)
        name = big_rd.path.name
        try:
            with httpx.Client(base_url=url, timeout=600) as client:
                print(f"\n`societas view` on one run of {big_summary['decisions']:,} decisions: "
                      f"started in {start_s:.2f} s")
                _row("runs list, first request", *_time(client, "/"))
                _row("transcript, page 1 (all decisions)", *_time(client, f"/run/{name}/transcript"))
                _row("transcript, invalid only, page 1", *_time(client, f"/run/{name}/transcript", invalid=1))
                _row("transcript, invalid only, page 100", *_time(client, f"/run/{name}/transcript", invalid=1,
                                                                   page=100))
                _row("transcript, agent llm in episode 5000", *_time(client, f"/run/{name}/transcript",
                                                                      agent="llm", episode=5000))
                _row("run page (header; the report follows)", *_time(client, f"/run/{name}"))
                _row("report fragment, cold (load + tables and figures)",
                     *_time(client, f"/fragment/run/{name}/report"))
                _row("report fragment, again (same version)", *_time(client, f"/fragment/run/{name}/report"))
        finally:
            _stop(proc)


if __name__ == "__main__":
    main()
