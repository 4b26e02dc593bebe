"""Run folders for `societas view`, and the app served by the real command line on 127.0.0.1."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from societas.config import dump_config, load_config
from societas.llm.testing import FakeOpenAIServer, FaultConfig
from societas.runners.run import RunStopped, run_experiment

pytest.importorskip("fastapi", reason="societas view needs the [view] extra")
pytest.importorskip("uvicorn", reason="societas view needs the [view] extra")

SMALL = ("llm", "llm-scot", "tit-for-tat", "always-defect", "gpt4")


def small_config(model: str, out: Path, *, members: tuple[str, ...] = SMALL, **runner: object):
    """A PD tournament of a few members: 25 episodes, parts every few episodes."""
    cfg = load_config("pd_tournament", model=model, output_dir=str(out))
    return cfg.model_copy(update={
        "population": [m for m in cfg.population if m.name in members],
        "llm": cfg.llm.model_copy(update={"cache": False, "backoff_base_s": 0.01, "backoff_max_s": 0.05,
                                          "max_retries": 1, "breaker_window_s": 0.5}),
        "runner": cfg.runner.model_copy(update={"flush_every_s": 0.05, **runner}),
    })


@pytest.fixture(scope="session")
def runs_folder(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """A folder with a scripted run, a fake:echo run full of invalid replies, a stopped run and a sweep."""
    root = tmp_path_factory.mktemp("view-runs")
    scripted, _ = run_experiment(small_config("fake:random", root, members=("tit-for-tat", "always-defect",
                                                                                  "gpt4")), progress=False)
    echo, _ = run_experiment(small_config("fake:echo", root), progress=False)
    faults = FaultConfig(script=(None,) * 30, server_error=1.0)  # the probe and a few episodes, then 500s
    with FakeOpenAIServer("random", faults=faults) as server:
        try:
            run_experiment(small_config(f"openai:fake@{server.base_url}", root, max_concurrent_episodes=1),
                           progress=False)
        except RunStopped as exc:
            stopped = exc.run_dir
        else:
            raise AssertionError("the run was meant to stop")
    sweep_cfg = small_config("fake:random", root, members=("llm", "tit-for-tat"))
    sweep_path = root.parent / "sweep.yaml"
    sweep_path.write_text(dump_config(sweep_cfg).replace("sweep: null", "sweep: {seeds: [0, 1]}"))
    proc = subprocess.run([sys.executable, "-m", "societas.cli", "run", str(sweep_path), "--quiet"],
                          capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr
    (sweep,) = [p for p in root.iterdir() if (p / "sweep.yaml").is_file()]
    return {"root": root, "scripted": scripted.path, "echo": echo.path, "stopped": stopped, "sweep": sweep}


class ViewServer:
    """`societas view ROOT --port 0` in a subprocess; `url` is what it printed."""

    def __init__(self, root: Path) -> None:
        self.proc = subprocess.Popen([sys.executable, "-m", "societas.cli", "view", str(root), "--port", "0"],
                                     stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                                     env=dict(os.environ, PYTHONUNBUFFERED="1"))
        deadline = time.time() + 120
        line = ""
        while time.time() < deadline:
            line = self.proc.stdout.readline()
            if line or self.proc.poll() is not None:
                break
        match = re.search(r"http://127\.0\.0\.1:\d+/", line)
        if match is None:
            self.stop()
            raise AssertionError(f"societas view printed no URL: {line!r} {self.proc.stderr.read()}")
        self.url = match.group(0)

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGINT)
            try:
                self.proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()


@pytest.fixture(scope="session")
def view_server(runs_folder: dict[str, Path]) -> Iterator[ViewServer]:
    server = ViewServer(runs_folder["root"])
    try:
        yield server
    finally:
        server.stop()
