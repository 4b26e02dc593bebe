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

With `--before REF` each folder is also served by the code of git revision
REF (its `societas` package unpacked into a temporary directory), in a fresh
server before this checkout's, and the figures are printed side by side with
their ratio (the folders are the same, so only the viewer's code differs).

Usage: python benchmarks/view_load.py [--runs 100] [--repetitions 223] [--before REF]
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


def _unpack(ref: str, into: Path) -> Path:
    """The `societas` package of git revision `ref`, unpacked under `into` (a PYTHONPATH entry)."""
    root = Path(__file__).resolve().parent.parent
    archive = subprocess.run(["git", "-C", str(root), "archive", ref, "societas"], capture_output=True, check=True)
    subprocess.run(["tar", "-x", "-C", str(into)], input=archive.stdout, check=True)
    return into


def _serve(folder: Path, code: Path | None = None) -> tuple[subprocess.Popen[str], str, float]:
    """`societas view FOLDER` in a fresh process importing societas from `code` (None: this checkout)."""
    here = Path(__file__).resolve().parent.parent
    env = dict(os.environ, PYTHONUNBUFFERED="1")
    env["PYTHONPATH"] = os.pathsep.join([str(code or here), env.get("PYTHONPATH", "")])
    t0 = time.perf_counter()
    proc = subprocess.Popen([sys.executable, "-m", "societas.cli", "view", str(folder), "--port", "0"],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env,
                            cwd=code or here)  # `-m` puts the working directory first on sys.path
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


Rows = list[tuple[str, float, int]]


def _many(client: httpx.Client, name: str) -> Rows:
    """The requests timed on the folder of runs (`name`: the run whose pages are opened)."""
    return [("runs list, first request (every part read)", *_time(client, "/")),
            ("runs list, again (part totals cached)", *_time(client, "/")),
            ("runs list refresh fragment", *_time(client, "/fragment/runs")),
            ("one run's page (header; the report follows)", *_time(client, f"/run/{name}")),
            ("its report fragment, cold (tables and figures drawn)",
             *_time(client, f"/fragment/run/{name}/report")),
            ("its report fragment, again (same version)", *_time(client, f"/fragment/run/{name}/report")),
            ("transcript, page 1", *_time(client, f"/run/{name}/transcript"))]


def _big(client: httpx.Client, name: str) -> Rows:
    """The requests timed on the big run."""
    return [("runs list, first request", *_time(client, "/")),
            ("transcript, page 1 (all decisions)", *_time(client, f"/run/{name}/transcript")),
            ("transcript, invalid only, page 1", *_time(client, f"/run/{name}/transcript", invalid=1)),
            ("transcript, invalid only, page 100", *_time(client, f"/run/{name}/transcript", invalid=1, page=100)),
            ("transcript, agent llm in episode 5000", *_time(client, f"/run/{name}/transcript", agent="llm",
                                                             episode=5000)),
            ("run page (header; the report follows)", *_time(client, f"/run/{name}")),
            ("report fragment, cold (load + tables and figures)", *_time(client, f"/fragment/run/{name}/report")),
            ("report fragment, again (same version)", *_time(client, f"/fragment/run/{name}/report"))]


def _measure(folder: Path, code: Path | None, requests, name: str) -> tuple[float, Rows]:
    proc, url, start_s = _serve(folder, code)
    try:
        with httpx.Client(base_url=url, timeout=600) as client:
            return start_s, requests(client, name)
    finally:
        _stop(proc)


def _print(title: str, after: tuple[float, Rows], before: tuple[float, Rows] | None, ref: str | None) -> None:
    print(f"\n{title}")
    if before is None:
        print(f"  {'server start (URL printed)':<52} {after[0] * 1000:>9,.0f} ms")
        for label, seconds, size in after[1]:
            print(f"  {label:<52} {seconds * 1000:>9,.0f} ms  {size / 1024:>8,.0f} KiB")
        return
    print(f"  {'':<52} {'before ' + ref:>14} {'after':>10} {'after/before':>13} {'KiB after':>10}")
    rows = [("server start (URL printed)", before[0], after[0], 0)]
    rows += [(label, b, a, size) for (label, b, _), (_, a, size) in zip(before[1], after[1])]
    for label, b, a, size in rows:
        print(f"  {label:<52} {b * 1000:>11,.0f} ms {a * 1000:>7,.0f} ms {a / b:>13.2f} {size / 1024:>10,.0f}")


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--runs", type=int, default=100)
    ap.add_argument("--repetitions", type=int, default=223, help="round-robin repetitions of the big run "
                    "(223: 1,003,500 decisions)")
    ap.add_argument("--before", metavar="REF", help="also serve each folder with the code of git revision REF")
    args = ap.parse_args()
    print(f"machine: {platform.machine()}, {os.cpu_count()} cores, Python {platform.python_version()}, "
          f"load average {os.getloadavg()[0]:.1f}")
    with tempfile.TemporaryDirectory() as tmp:
        many, big = Path(tmp) / "many", Path(tmp) / "big"
        old = None
        if args.before:
            (Path(tmp) / "before").mkdir()
            old = _unpack(args.before, Path(tmp) / "before")
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
        for title, folder, requests, name in (
                (f"`societas view` on {args.runs} runs", many, _many, rd.path.name),
                (f"`societas view` on one run of {big_summary['decisions']:,} decisions", big, _big,
                 big_rd.path.name)):
            before = _measure(folder, old, requests, name) if old is not None else None
            _print(title, _measure(folder, None, requests, name), before, args.before)
        print(f"\nload average at the end {os.getloadavg()[0]:.1f}")


if __name__ == "__main__":
    main()
