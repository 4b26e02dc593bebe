"""Chaos: runs killed at random points, resumed twice at once, an endpoint that dies and comes back, a full disk.

Every scenario runs the real command line in a subprocess against the fake
OpenAI server on 127.0.0.1 and compares the finished run's events with an
uninterrupted run of the same config and seed.
"""

from __future__ import annotations

import errno
import os
import random
import signal
import subprocess
import sys
import time
from pathlib import Path

import pandas as pd
import pytest
import yaml

from societas.analysis import load_run
from societas.analysis.load import comparable
from societas.config import load_config
from societas.llm.testing import FakeOpenAIServer
from societas.runners.run import RunStopped, run_experiment

pytestmark = pytest.mark.slow

MEMBERS = ("llm", "llm-scot", "tit-for-tat", "random", "gpt4")


def _config(tmp_path: Path, url: str, **llm: object) -> Path:
    """A small PD tournament whose parts land every few episodes, with a quick-giving-up endpoint."""
    cfg = load_config("pd_tournament", model=f"openai:fake@{url}")
    data = cfg.model_dump(mode="json", exclude_none=True)
    data.pop("societas_version", None)
    data["population"] = [m for m in data["population"] if m["name"] in MEMBERS]
    data["runner"] = {**data.get("runner", {}), "flush_every_s": 0.05, "max_concurrent_episodes": 2}
    data["llm"] = {**data.get("llm", {}), "cache": False, "backoff_base_s": 0.05, "backoff_max_s": 0.2,
                   "max_retries": 3, "breaker_window_s": 1.0, **llm}
    path = tmp_path / "chaos.yaml"
    path.write_text(yaml.safe_dump(data, sort_keys=False))
    return path


def _cli(*args: str, env: dict[str, str] | None = None) -> subprocess.Popen[str]:
    return subprocess.Popen([sys.executable, "-m", "societas.cli", *args], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, env=env)


def _only_run(folder: Path) -> Path:
    runs = [p for p in folder.iterdir() if (p / "config.yaml").is_file()]
    assert len(runs) == 1, runs
    return runs[0]


def _same_events(got: Path, want: Path, *, ignore: tuple[str, ...] = ()) -> int:
    """Events equal row by row (`ignore`: columns that name the endpoint, when it moved)."""
    a, b = load_run(got), load_run(want)
    pd.testing.assert_frame_equal(comparable(a.events).drop(columns=list(ignore)),
                                  comparable(b.events).drop(columns=list(ignore)))
    keys = a.llm_calls[["phase", "episode", "round", "seat", "purpose", "attempt"]]
    assert not keys.duplicated().any()
    return len(a.events)


@pytest.fixture(scope="module")
def server():
    with FakeOpenAIServer("random", latency=0.01) as srv:
        yield srv


@pytest.fixture(scope="module")
def reference(server: FakeOpenAIServer, tmp_path_factory: pytest.TempPathFactory) -> Path:
    tmp = tmp_path_factory.mktemp("reference")
    cfg = load_config(str(_config(tmp, server.base_url)), output_dir=str(tmp / "runs"))
    rd, _ = run_experiment(cfg, progress=False)
    return rd.path


def test_sigkill_at_random_points_then_resume_gives_identical_events(
        server: FakeOpenAIServer, reference: Path, tmp_path: Path) -> None:
    rng = random.Random(2026)
    config = _config(tmp_path, server.base_url)
    compared = []
    for trial in range(3):
        out = tmp_path / f"runs{trial}"
        proc = _cli("run", str(config), "--out", str(out), "--quiet")
        deadline = time.monotonic() + 60
        # Kill once the run directory exists and a random number of parts more have landed.
        want_parts = rng.randint(0, 6)
        while time.monotonic() < deadline and proc.poll() is None:
            parts = list(out.glob("*/events/part-*.parquet"))
            if out.exists() and any(out.iterdir()) and len(parts) >= want_parts:
                time.sleep(rng.uniform(0.0, 0.1))
                break
            time.sleep(0.01)
        proc.send_signal(signal.SIGKILL)
        proc.wait()
        if not out.exists() or not any(out.iterdir()):
            continue  # killed before anything was written: nothing to resume
        run_dir = _only_run(out)
        resumed = _cli("resume", str(run_dir), "--quiet")
        _, stderr = resumed.communicate(timeout=120)
        assert resumed.returncode == 0, stderr
        compared.append(_same_events(run_dir, reference))
    assert compared, "no kill point left a run to resume"


def test_two_resumes_at_once_one_refuses(server: FakeOpenAIServer, reference: Path, tmp_path: Path) -> None:
    config = _config(tmp_path, server.base_url)
    out = tmp_path / "runs"
    proc = _cli("run", str(config), "--out", str(out), "--quiet")
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline and not list(out.glob("*/events/part-*.parquet")):
        time.sleep(0.01)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    run_dir = _only_run(out)
    first, second = _cli("resume", str(run_dir), "--quiet"), _cli("resume", str(run_dir), "--quiet")
    results = [(p.returncode, err) for p in (first, second) for _, err in [p.communicate(timeout=120)]]
    codes = sorted(code for code, _ in results)
    assert codes == [0, 2], results
    refusal = next(err for code, err in results if code == 2)
    assert len(refusal.strip().splitlines()) == 1 and "another societas process" in refusal
    _same_events(run_dir, reference)


def test_endpoint_dies_mid_run_then_resume_finishes_identically(reference: Path, tmp_path: Path) -> None:
    with FakeOpenAIServer("random", latency=0.01) as probe_port:
        port = probe_port.port
    srv = FakeOpenAIServer("random", latency=0.01, port=port)
    srv.__enter__()
    config = _config(tmp_path, srv.base_url)
    out = tmp_path / "runs"
    proc = _cli("run", str(config), "--out", str(out), "--quiet")
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline and not list(out.glob("*/events/part-*.parquet")):
        time.sleep(0.01)
    srv.__exit__(None, None, None)  # the endpoint goes away mid-run
    started = time.monotonic()
    _, stderr = proc.communicate(timeout=120)
    stopped_after = time.monotonic() - started
    assert proc.returncode == 3, stderr
    assert len(stderr.strip().splitlines()) == 1 and "run stopped: model endpoint failed" in stderr
    assert stopped_after < 30
    run_dir = _only_run(out)
    events = load_run(run_dir).events
    assert events["valid"].all(), "a failed request was recorded as a move"
    with FakeOpenAIServer("random", latency=0.01, port=port):  # back on the same address
        resumed = _cli("resume", str(run_dir), "--quiet")
        _, stderr = resumed.communicate(timeout=120)
    assert resumed.returncode == 0, stderr
    _same_events(run_dir, reference, ignore=("model",))  # the reference ran on another port


def test_disk_full_mid_run_stops_with_one_line_and_resumes(
        server: FakeOpenAIServer, reference: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from societas.runners import rundir

    config = load_config(str(_config(tmp_path, server.base_url)), output_dir=str(tmp_path / "runs"))
    real = rundir._write_table
    written = []

    def fill_up(table, path):  # the third part finds the disk full
        if len(written) >= 2 and path.parent.name == "events":
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC), str(path))
        written.append(path)
        real(table, path)

    monkeypatch.setattr(rundir, "_write_table", fill_up)
    with pytest.raises(RunStopped, match="No space left on device") as stopped:
        run_experiment(config, progress=False)
    assert "societas resume" in str(stopped.value) and "\n" not in str(stopped.value)
    run_dir = stopped.value.run_dir
    assert not list(run_dir.glob("**/.*.tmp"))
    monkeypatch.setattr(rundir, "_write_table", real)
    resumed = _cli("resume", str(run_dir), "--quiet")
    _, stderr = resumed.communicate(timeout=120)
    assert resumed.returncode == 0, stderr
    _same_events(run_dir, reference)
