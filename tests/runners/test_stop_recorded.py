"""A run that ends early says why in its checkpoint.json, so the directory alone tells a reader."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from societas.config import dump_config, load_config
from societas.llm.testing import FakeOpenAIServer, FaultConfig
from societas.runners.run import RunStopped, record_stop, run_experiment
from societas.runners.rundir import RunDirectory


def _checkpoint(run_dir: Path) -> dict:
    return json.loads((run_dir / "checkpoint.json").read_text())


def _small(url: str, out: Path, **llm: object):
    cfg = load_config("pd_tournament", model=f"openai:fake@{url}", output_dir=str(out))
    population = [m for m in cfg.population if m.name in ("llm", "tit-for-tat", "random")]
    return cfg.model_copy(update={
        "population": population,
        "llm": cfg.llm.model_copy(update={"cache": False, "backoff_base_s": 0.01, "backoff_max_s": 0.05,
                                          "max_retries": 1, "breaker_window_s": 0.5, **llm}),
        "runner": cfg.runner.model_copy(update={"flush_every_s": 0.05, "max_concurrent_episodes": 1}),
    })


def test_an_endpoint_that_fails_mid_run_is_recorded_as_stopped_with_its_error(tmp_path: Path) -> None:
    # The probe passes, then every request fails: the run stops with exit 3's error.
    faults = FaultConfig(script=(None,), server_error=1.0)
    with FakeOpenAIServer("random", faults=faults) as server:
        with pytest.raises(RunStopped) as stopped:
            run_experiment(_small(server.base_url, tmp_path), progress=False)
    status = _checkpoint(stopped.value.run_dir)
    assert status["status"] == "stopped"
    assert status["error"] == " ".join(stopped.value.reason.split())
    assert "model endpoint failed" in status["error"] and "\n" not in status["error"]
    assert not (stopped.value.run_dir / "summary.json").exists()


def test_the_command_line_records_the_error_and_a_resume_clears_it(tmp_path: Path) -> None:
    faults = FaultConfig(script=(None,), server_error=1.0)
    with FakeOpenAIServer("random", faults=faults) as server:
        cfg = _small(server.base_url, tmp_path / "runs")
        path = tmp_path / "small.yaml"
        path.write_text(dump_config(cfg))
        proc = subprocess.run([sys.executable, "-m", "societas.cli", "run", str(path), "--quiet"],
                              capture_output=True, text=True, timeout=120)
        port = server.port
    assert proc.returncode == 3, proc.stderr
    (run_dir,) = (tmp_path / "runs").iterdir()
    status = _checkpoint(run_dir)
    assert status["status"] == "stopped" and status["error"] in proc.stderr.replace("\n", " ")
    with FakeOpenAIServer("random", port=port):
        resumed = subprocess.run([sys.executable, "-m", "societas.cli", "resume", str(run_dir), "--quiet"],
                                 capture_output=True, text=True, timeout=120)
    assert resumed.returncode == 0, resumed.stderr
    status = _checkpoint(run_dir)
    assert status["status"] == "complete" and "error" not in status
    assert status["episodes_done"] == status["phase_episodes"] == 9


def test_interruptions_and_bugs_are_told_apart(tmp_path: Path) -> None:
    rd = RunDirectory(tmp_path)
    rd.write_json("checkpoint.json", {"run_id": "r", "status": "running", "episodes_done": 4, "parts": 2})
    record_stop(rd, KeyboardInterrupt())
    assert _checkpoint(tmp_path) | {"updated": 0} == {"run_id": "r", "status": "interrupted", "episodes_done": 4,
                                                      "parts": 2, "error": "interrupted", "updated": 0}
    record_stop(rd, ValueError("bad\nvalue"))
    status = _checkpoint(tmp_path)
    assert (status["status"], status["error"], status["episodes_done"]) == ("failed", "ValueError: bad value", 4)
