"""Every run-time failure through the real command line: exit code, seconds, the line printed.

Each scenario runs `python -m societas.cli ...` in a subprocess, the way a user
meets it, and prints one row: the command, the exit code, the wall time, how
many lines went to stderr and the last of them, and whether anything was left
behind. Real faults where this machine allows them: a read-only and a 1 MB
tmpfs for the read-only and disk-full cases (needs root to mount; otherwise
those rows say so), a port nobody listens on, a fake OpenAI server on
127.0.0.1 that is stopped mid-run and started again on the same port, and a
run against a slow fake server interrupted by SIGINT and then resumed.

    python benchmarks/failures.py            # the table (9 minutes on 2 cores at load average 13-17)
    python benchmarks/failures.py --kills 10 # and SIGKILL/resume at 10 random points
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import platform
import random
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import pandas as pd
import yaml

from societas.analysis import load_run
from societas.analysis.load import comparable
from societas.config import load_config
from societas.llm.testing import FakeOpenAIServer

SMALL = ("llm", "llm-scot", "tit-for-tat", "random", "gpt4")
ROWS: list[dict[str, object]] = []


def cli(*args: str, timeout: float = 300, env: dict[str, str] | None = None) -> tuple[int, float, list[str]]:
    start = time.monotonic()
    proc = subprocess.run([sys.executable, "-m", "societas.cli", *args], capture_output=True, text=True,
                          timeout=timeout, env=env)
    return proc.returncode, time.monotonic() - start, proc.stderr.strip().splitlines()


def row(name: str, command: str, code: int, seconds: float, lines: list[str], left: str = "") -> None:
    ROWS.append({"failure": name, "command": command, "exit": code, "s": round(seconds, 1),
                 "stderr lines": len(lines), "line": lines[-1] if lines else "", "left behind": left})


def small_config(tmp: Path, url: str | None = None, **llm: object) -> Path:
    cfg = load_config("pd_tournament", model=f"openai:fake@{url}" if url else None)
    data = cfg.model_dump(mode="json", exclude_none=True)
    data.pop("societas_version", None)
    data["population"] = [m for m in data["population"] if m["name"] in (SMALL if url else SMALL[2:])]
    data["runner"] = {**data.get("runner", {}), "flush_every_s": 0.05, "max_concurrent_episodes": 2}
    data["llm"] = {**data.get("llm", {}), "cache": False, "backoff_base_s": 0.05, "backoff_max_s": 0.2,
                   "max_retries": 3, "breaker_window_s": 1.0, **llm}
    path = tmp / f"small-{'llm' if url else 'scripted'}.yaml"
    path.write_text(yaml.safe_dump(data, sort_keys=False))
    return path


def only_run(folder: Path) -> Path:
    runs = [p for p in folder.iterdir() if (p / "config.yaml").is_file()] if folder.exists() else []
    assert len(runs) == 1, runs
    return runs[0]


def same_events(a: Path, b: Path, ignore: tuple[str, ...] = ()) -> bool:
    x, y = comparable(load_run(a).events), comparable(load_run(b).events)
    try:
        pd.testing.assert_frame_equal(x.drop(columns=list(ignore)), y.drop(columns=list(ignore)))
    except AssertionError:
        return False
    return True


def listing(folder: Path) -> str:
    if not folder.exists():
        return "nothing"
    items = sorted(p.name for p in folder.iterdir())
    return ", ".join(items) if items else "nothing"


@contextlib.contextmanager
def tmpfs(where: Path, size: str, read_only: bool = False) -> Iterator[bool]:
    where.mkdir(parents=True, exist_ok=True)
    opts = f"size={size}" + (",ro" if read_only else "")
    mounted = subprocess.run(["mount", "-t", "tmpfs", "-o", opts, "tmpfs", str(where)],
                             capture_output=True).returncode == 0
    try:
        yield mounted
    finally:
        if mounted:
            subprocess.run(["umount", "-l", str(where)], capture_output=True)


def scenarios(tmp: Path) -> Path:
    scripted = small_config(tmp)
    code, s, lines = cli("run", "configs/pd_tournament.yaml", "--model", "openai:m@http://127.0.0.1:9/v1",
                         "--out", str(tmp / "dead"), "--quiet")
    row("endpoint down from the start", "run pd_tournament --model openai:m@http://127.0.0.1:9/v1", code, s, lines,
        listing(tmp / "dead"))

    with tmpfs(tmp / "ro", "1m", read_only=True) as ok:
        if ok:
            code, s, lines = cli("run", str(scripted), "--out", str(tmp / "ro" / "runs"), "--quiet")
            row("--out on a read-only filesystem", "run ... --out <ro tmpfs>/runs", code, s, lines)
        else:
            row("--out on a read-only filesystem", "(mount refused: not root)", -1, 0, [])
    (tmp / "a-file").write_text("x")
    code, s, lines = cli("run", str(scripted), "--out", str(tmp / "a-file"), "--quiet")
    row("--out names a file", "run ... --out a-file", code, s, lines)

    with tmpfs(tmp / "full", "96k") as ok:
        if ok:
            code, s, lines = cli("run", "configs/donor_game.yaml", "--out", str(tmp / "full"), "--quiet")
            row("disk fills mid-run (96 KB tmpfs)", "run donor_game --out <96k tmpfs>", code, s, lines,
                listing(tmp / "full"))
        else:
            row("disk fills mid-run", "(mount refused: not root)", -1, 0, [])

    noext = tmp / "no-torch"
    noext.mkdir()
    (noext / "torch.py").write_text("raise ImportError('No module named torch')\n")
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(noext), os.environ.get("PYTHONPATH", "")])}
    code, s, lines = cli("run", "configs/pd_tournament.yaml", "--model", "hf:/x", "--out", str(tmp / "hf"), "--quiet",
                         env=env)
    row("--model hf:/x without torch", "run pd_tournament --model hf:/x (torch not importable)", code, s, lines,
        listing(tmp / "hf"))
    code, s, lines = cli("run", "configs/pd_tournament.yaml", "--model", "hf:/x", "--out", str(tmp / "hf"), "--quiet")
    row("--model hf:/x with torch", "run pd_tournament --model hf:/x", code, s, lines, listing(tmp / "hf"))

    code, s, lines = cli("run", str(scripted), "--runner", "ray", "--address", "127.0.0.1:1",
                         "--out", str(tmp / "ray"), "--quiet")
    row("unreachable Ray address", "run ... --runner ray --address 127.0.0.1:1", code, s, lines, listing(tmp / "ray"))

    code, s, lines = cli("run", str(scripted), "--out", str(tmp / "done"), "--quiet")
    done = only_run(tmp / "done")
    with tmpfs(tmp / "ro2", "1m", read_only=True) as ok:
        if ok:
            code, s, lines = cli("report", str(done), "-o", str(tmp / "ro2" / "r.html"))
            row("report -o on a read-only path", "report RUN -o <ro tmpfs>/r.html", code, s, lines)

    for what, damage in (("a garbage Parquet part", lambda r: next((r / "events").glob("*.parquet"))),
                         ("a broken summary.json", lambda r: r / "summary.json"),
                         ("a broken config.yaml", lambda r: r / "config.yaml")):
        for command in ("analyze", "report", "resume"):  # resume of a complete run reads no part
            run = tmp / f"damaged-{len(ROWS)}"
            shutil.copytree(done, run)
            damage(run).write_bytes(b"\x00garbage{")
            code, s, lines = cli(command, str(run))
            row(f"{what}: {command}", f"{command} RUN", code, s, lines)

    run = tmp / "damaged-unfinished"
    shutil.copytree(done, run)
    (run / "summary.json").unlink()
    next((run / "events").glob("*.parquet")).write_bytes(b"\x00garbage{")
    code, s, lines = cli("resume", str(run))
    row("a garbage Parquet part in an unfinished run: resume", "resume RUN", code, s, lines)

    before = (done / "summary.json").read_bytes()
    code, s, lines = cli("resume", str(done))
    row("resume of a complete run", "resume RUN", code, s, lines,
        "summary.json unchanged" if (done / "summary.json").read_bytes() == before else "summary.json REWRITTEN")

    empty = tmp / "empty-run"
    shutil.copytree(done, empty)
    for folder in ("events", "llm_calls", "episodes"):
        for p in (empty / folder).glob("*.parquet"):
            p.unlink()
    (empty / "summary.json").unlink()
    for command in ("analyze", "report"):
        code, s, lines = cli(command, str(empty))
        row(f"{command} of a run with no events", f"{command} RUN", code, s, lines,
            "report.html written" if (empty / "report.html").exists() else "nothing")

    sweep_cfg = yaml.safe_load(scripted.read_text())
    sweep_cfg["sweep"] = {"seeds": [0, 1]}
    (tmp / "sweep.yaml").write_text(yaml.safe_dump(sweep_cfg))
    cli("run", str(tmp / "sweep.yaml"), "--out", str(tmp / "sweeps"), "--quiet")
    sweep = next((tmp / "sweeps").iterdir())
    code, s, lines = cli("report", str(sweep))
    row("report of a sweep directory", "report SWEEP_DIR", code, s, lines, listing(sweep))

    cli("run", str(scripted), "--out", str(tmp / "done"), "--seed", "7", "--quiet")
    runs = sorted(p for p in (tmp / "done").iterdir() if p.is_dir())
    here = tmp / "cwd"
    here.mkdir()
    proc = subprocess.run([sys.executable, "-m", "societas.cli", "report", *map(str, runs)], cwd=here,
                          capture_output=True, text=True, env={**os.environ, "PYTHONPATH": os.pathsep.join(
                              [str(Path(__file__).resolve().parents[1]), os.environ.get("PYTHONPATH", "")])})
    row("comparison report of 2 runs", "report RUN RUN (from another folder)", proc.returncode, 0,
        proc.stderr.strip().splitlines() or proc.stdout.strip().splitlines(),
        f"cwd: {listing(here)}; runs folder: {listing(tmp / 'done')}")

    return scripted


def ctrl_c(tmp: Path) -> None:
    """Ctrl-C mid-run: exit 130 naming the run; resume equals a run that never saw it.

    The fake server answers in 50 ms, so the run is still playing when the
    signal comes (after its first part is on disk); a scripted run would end first.
    """
    with FakeOpenAIServer("random", latency=0.05) as srv:
        config = small_config(tmp, srv.base_url)
        from societas.runners.run import run_experiment

        reference, _ = run_experiment(load_config(str(config), output_dir=str(tmp / "cref")), progress=False)
        out = tmp / "int"
        proc = subprocess.Popen([sys.executable, "-m", "societas.cli", "run", str(config), "--out", str(out),
                                 "--quiet"], stderr=subprocess.PIPE, text=True)
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline and proc.poll() is None and not list(out.glob("*/events/part-*.parquet")):
            time.sleep(0.01)
        running = proc.poll() is None
        proc.send_signal(signal.SIGINT)
        started = time.monotonic()
        _, err = proc.communicate(timeout=60)
        stopped = time.monotonic() - started
        run = only_run(out)
        kept = len(load_run(run).events)
        row("Ctrl-C during a run", "run small PD (fake server at 50 ms a reply), SIGINT after the first part",
            proc.returncode, stopped, err.strip().splitlines(),
            f"{kept} events kept" + ("" if running else "; the run had ENDED before the signal"))
        code, s, lines = cli("resume", str(run), "--quiet")
        ok = same_events(run, reference.path)
    row("... resume after Ctrl-C", "resume RUN", code, s, lines,
        f"events identical to an uninterrupted run: {ok} ({len(load_run(run).events)} events)")


def outage(tmp: Path) -> None:
    """The endpoint dies mid-run, comes back on the same port; resume equals a run that never saw it."""
    with FakeOpenAIServer("random", latency=0.01) as srv:
        ref_cfg = load_config(str(small_config(tmp, srv.base_url)), output_dir=str(tmp / "ref"))
        from societas.runners.run import run_experiment

        reference, _ = run_experiment(ref_cfg, progress=False)
        port = srv.port
    srv = FakeOpenAIServer("random", latency=0.01, port=port)
    srv.__enter__()
    out = tmp / "outage"
    proc = subprocess.Popen([sys.executable, "-m", "societas.cli", "run", str(small_config(tmp, srv.base_url)),
                             "--out", str(out), "--quiet"], stderr=subprocess.PIPE, text=True)
    while not list(out.glob("*/events/part-*.parquet")):
        time.sleep(0.01)
    srv.__exit__(None, None, None)
    started = time.monotonic()
    _, err = proc.communicate(timeout=300)
    stopped = time.monotonic() - started
    run = only_run(out)
    events = load_run(run).events
    row("endpoint dies mid-run", "run small PD (fake server on 127.0.0.1, stopped after the first part)",
        proc.returncode, stopped, err.strip().splitlines(),
        f"{len(events)} events kept, {int((~events['valid']).sum())} invalid")
    with FakeOpenAIServer("random", latency=0.01, port=port):
        code, s, lines = cli("resume", str(run), "--quiet")
    ok = same_events(run, reference.path)
    row("... endpoint back: resume", "resume RUN", code, s, lines,
        f"events identical to an uninterrupted run: {ok} ({len(load_run(run).events)} events)")


def kills(tmp: Path, n: int) -> None:
    rng = random.Random(2026)
    identical = tried = resumed = 0
    with FakeOpenAIServer("random", latency=0.01) as srv:
        config = small_config(tmp, srv.base_url)
        from societas.runners.run import run_experiment

        reference, _ = run_experiment(load_config(str(config), output_dir=str(tmp / "kref")), progress=False)
        for trial in range(n):
            out = tmp / f"kill{trial}"
            proc = subprocess.Popen([sys.executable, "-m", "societas.cli", "run", str(config), "--out", str(out),
                                     "--quiet"], stderr=subprocess.DEVNULL)
            want = rng.randint(0, 8)
            deadline = time.monotonic() + 120
            while time.monotonic() < deadline and proc.poll() is None:
                if out.exists() and any(out.iterdir()) and len(list(out.glob("*/events/part-*.parquet"))) >= want:
                    time.sleep(rng.uniform(0.0, 0.1))
                    break
                time.sleep(0.01)
            proc.send_signal(signal.SIGKILL)
            proc.wait()
            tried += 1
            if not out.exists() or not any(out.iterdir()):
                continue
            run = only_run(out)
            code, _, _ = cli("resume", str(run), "--quiet")
            resumed += code == 0
            identical += code == 0 and same_events(run, reference.path)
    print(f"\nSIGKILL at random points: {tried} kills, {resumed} resumed, {identical} identical to the uninterrupted "
          f"run ({len(load_run(reference.path).events)} events each)")


def markdown(rows: list[dict[str, object]]) -> str:
    cols = list(rows[0])
    lines = ["| " + " | ".join(cols) + " |", "|" + "---|" * len(cols)]
    lines += ["| " + " | ".join(str(r[c]).replace("|", "\\|") for c in cols) + " |" for r in rows]
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--kills", type=int, default=0, help="SIGKILL/resume trials after the table")
    args = parser.parse_args()
    os.chdir(Path(__file__).resolve().parents[1])
    print(f"# {platform.node()} {platform.machine()}, {os.cpu_count()} cores, Python {platform.python_version()}, "
          f"{time.strftime('%Y-%m-%d %H:%M')}")
    with tempfile.TemporaryDirectory() as d:
        tmp = Path(d)
        os.environ["SOCIETAS_CACHE_DIR"] = str(tmp / "cache")
        scenarios(tmp)
        ctrl_c(tmp)
        outage(tmp)
        print(markdown(ROWS))
        print(json.dumps({"rows": len(ROWS), "exit codes": sorted({int(r["exit"]) for r in ROWS})}))
        if args.kills:
            kills(tmp, args.kills)


if __name__ == "__main__":
    main()
