"""Run folders for `societas view`, and the app served by the real command line on 127.0.0.1."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from served import ViewServer, small_config

from societas.config import dump_config
from societas.llm.testing import FakeOpenAIServer, FaultConfig
from societas.runners.run import RunStopped, run_experiment


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


@pytest.fixture(scope="session")
def view_server(runs_folder: dict[str, Path]) -> Iterator[ViewServer]:
    server = ViewServer(runs_folder["root"])
    try:
        yield server
    finally:
        server.stop()
