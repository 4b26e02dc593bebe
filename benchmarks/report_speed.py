"""How long `societas report RUN` and the run page of `societas view` take to draw a run of a million decisions.

Builds one run of about a million decisions (the PD tournament repeated, its
`llm` member answered by fake:echo, as benchmarks/view_load.py does), or
takes one given with `--run`. Then, each in a fresh process and with a fresh
figure cache (`$SOCIETAS_CACHE_DIR`): the real `societas report RUN` from the
command's start to its exit, and the real `societas view` serving the run's
folder, timed over HTTP on 127.0.0.1 from the request of the run's report
fragment (its tables and figures, drawn on first request) to the answer. Both
a second time with the figure cache the first left behind (a complete run's
figures are drawn once), and a breakdown in one process: the imports, reading
the events with every column and with the report's columns, the tables and
the figures.

With `--before REF` the same is timed on the code of git revision REF (its
`societas` package unpacked into a temporary directory), interleaved with
this checkout's, and printed side by side with the ratio. The load average is
printed with every row: the machine is shared, so read the ratios.

Usage: python benchmarks/report_speed.py [--before REF] [--run RUN_DIR] [--repetitions 223]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import re
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx

ROOT = Path(__file__).resolve().parent.parent

BREAKDOWN = r"""
import json, sys, time
t0 = time.perf_counter()
from societas.analysis.load import load_run
from societas.analysis import report as R
t1 = time.perf_counter()
out = {"imports": t1 - t0}
path = sys.argv[1]
t = time.perf_counter(); full = load_run(path); out["read, every column"] = time.perf_counter() - t
out["events columns, every"] = len(full.events.columns)
if hasattr(R, "load_for_report"):
    t = time.perf_counter(); run = R.load_for_report(path, transcripts=False)
    out["read, the report's columns"] = time.perf_counter() - t
    out["events columns, the report's"] = len(run.events.columns)
else:
    run = full
t = time.perf_counter(); R.report_sections(run, transcripts=False)
out["tables and figures drawn (matplotlib imported)"] = time.perf_counter() - t
# Every figure built but not rendered: savefig writes a 1 x 1 PNG header, into a fresh figure cache.
import os, struct
from matplotlib.figure import Figure
Figure.savefig = lambda self, buf, **kw: buf.write(b"\x89PNG\r\n\x1a\n\0\0\0\rIHDR" + struct.pack(">II", 1, 1))
os.environ["SOCIETAS_CACHE_DIR"] += "-not-drawn"
t = time.perf_counter(); R.report_sections(run, transcripts=False)
out["tables, figures built but not drawn"] = time.perf_counter() - t
print(json.dumps(out))
"""


def _load() -> str:
    return f"{os.getloadavg()[0]:.1f}"


def _env(code: Path | None, cache: Path) -> dict[str, str]:
    env = dict(os.environ, PYTHONUNBUFFERED="1", SOCIETAS_CACHE_DIR=str(cache))
    env["PYTHONPATH"] = os.pathsep.join([str(code or ROOT), env.get("PYTHONPATH", "")])
    return env


def _unpack(ref: str, into: Path) -> Path:
    """The `societas` package of git revision `ref`, unpacked under `into` (a PYTHONPATH entry)."""
    archive = subprocess.run(["git", "-C", str(ROOT), "archive", ref, "societas"], capture_output=True, check=True)
    subprocess.run(["tar", "-x", "-C", str(into)], input=archive.stdout, check=True)
    return into


def _report(run: Path, code: Path | None, cache: Path, out: Path) -> float:
    """`societas report RUN --out OUT` in a fresh process: seconds from its start to its exit."""
    t0 = time.perf_counter()
    proc = subprocess.run([sys.executable, "-m", "societas.cli", "report", str(run), "--out", str(out)],
                          capture_output=True, text=True, env=_env(code, cache), cwd=code or ROOT, timeout=1800)
    if proc.returncode != 0:
        raise SystemExit(f"societas report failed: {proc.stderr.strip()}")
    return time.perf_counter() - t0


def _view(run: Path, code: Path | None, cache: Path) -> float:
    """`societas view` on the run's folder in a fresh process: seconds for the run page's first draw."""
    proc = subprocess.Popen([sys.executable, "-m", "societas.cli", "view", str(run.parent), "--port", "0"],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=_env(code, cache),
                            cwd=code or ROOT)
    try:
        line = proc.stdout.readline()
        match = re.search(r"http://127\.0\.0\.1:\d+/", line)
        if match is None:
            raise SystemExit(f"societas view did not start: {line!r} {proc.stderr.read()}")
        with httpx.Client(base_url=match.group(0), timeout=1800) as client:
            client.get(f"/run/{run.name}").raise_for_status()  # the header, as a browser asks first
            t0 = time.perf_counter()
            r = client.get(f"/fragment/run/{run.name}/report")
            r.raise_for_status()
            seconds = time.perf_counter() - t0
            if r.text.count("data:image/png;base64,") < 2:
                raise SystemExit("the run page came without its figures")
            return seconds
    finally:
        proc.send_signal(signal.SIGINT)
        try:
            proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            proc.kill()


def _breakdown(run: Path, code: Path | None, cache: Path) -> dict[str, float]:
    proc = subprocess.run([sys.executable, "-c", BREAKDOWN, str(run)], capture_output=True, text=True,
                          env=_env(code, cache), cwd=code or ROOT, timeout=1800)
    if proc.returncode != 0:
        raise SystemExit(f"breakdown failed: {proc.stderr.strip()[-500:]}")
    return json.loads(proc.stdout.strip().splitlines()[-1])


def _build(out: Path, repetitions: int) -> Path:
    sys.path.insert(0, str(ROOT / "benchmarks"))
    from view_load import _config

    from societas.runners.run import run_experiment

    t0 = time.perf_counter()
    rd, summary = run_experiment(_config(out, repetitions), progress=False)
    print(f"built the run: {summary['decisions']:,} decisions, {summary['llm_calls']:,} model calls in "
          f"{time.perf_counter() - t0:.0f} s")
    return rd.path


def _measure(run: Path, code: Path | None, tmp: Path, tag: str) -> dict[str, tuple[float, str]]:
    cache = tmp / f"cache-{tag}"
    rows: dict[str, tuple[float, str]] = {}
    rows["societas report, figure cache empty"] = (_report(run, code, cache, tmp / f"{tag}-1.html"), _load())
    rows["societas report, figure cache kept"] = (_report(run, code, cache, tmp / f"{tag}-2.html"), _load())
    view_cache = tmp / f"view-cache-{tag}"
    rows["run page first draw, figure cache empty"] = (_view(run, code, view_cache), _load())
    rows["run page first draw, figure cache kept"] = (_view(run, code, view_cache), _load())
    for key, value in _breakdown(run, code, tmp / f"breakdown-{tag}").items():
        rows[f"in one process: {key}"] = (value, _load())
    return rows


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--before", metavar="REF", help="also time the code of git revision REF, side by side")
    ap.add_argument("--run", type=Path, help="a run directory to time (default: build one of ~1M decisions)")
    ap.add_argument("--repetitions", type=int, default=223, help="round-robin repetitions of the built run "
                    "(223: 1,003,500 decisions)")
    args = ap.parse_args()
    head = subprocess.run(["git", "-C", str(ROOT), "rev-parse", "--short", "HEAD"], capture_output=True,
                          text=True).stdout.strip()
    print(f"machine: {platform.machine()}, {os.cpu_count()} cores, Python {platform.python_version()}, "
          f"this checkout {head}, {time.strftime('%Y-%m-%d %H:%M %Z')}, load average {_load()}")
    with tempfile.TemporaryDirectory() as tmp_name:
        tmp = Path(tmp_name)
        run = args.run.resolve() if args.run else _build(tmp / "runs", args.repetitions)
        size_mb = sum(p.stat().st_size for p in run.rglob("*") if p.is_file()) / 2**20
        print(f"run {run.name}: {size_mb:.1f} MB on disk, {len(list((run / 'events').glob('*.parquet')))} "
              "events parts")
        before = None
        if args.before:
            (tmp / "before").mkdir()
            old = _unpack(args.before, tmp / "before")
            before = _measure(run, old, tmp, "before")  # interleaved: before, then after, same minutes
        after = _measure(run, None, tmp, "after")
    print()
    if before is None:
        for label, (value, load) in after.items():
            shown = f"{value:,.0f}" if "columns" in label else f"{value:,.2f} s"
            print(f"  {label:<58} {shown:>10}   load {load}")
    else:
        print(f"  {'':<58} {'before ' + args.before:>14} {'after':>10} {'after/before':>13}   load (before, after)")
        for label, (value, load) in after.items():
            old_value, old_load = before.get(label, (None, ""))
            if "columns" in label:
                print(f"  {label:<58} {old_value if old_value is not None else '–':>14} {value:>10,.0f}")
                continue
            ratio = f"{value / old_value:.2f}" if old_value else "–"
            old_text = f"{old_value:,.2f} s" if old_value is not None else "–"
            print(f"  {label:<58} {old_text:>14} {value:>8,.2f} s {ratio:>13}   {old_load or '–'}, {load}")
    print(f"\nload average at the end {_load()}")


if __name__ == "__main__":
    main()
