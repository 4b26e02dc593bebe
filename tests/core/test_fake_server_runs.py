"""Whole studies against a real OpenAI-compatible HTTP server on 127.0.0.1.

The fake server stands in for a model endpoint: faults (429, 500, hangs,
off-format replies) must never lose a decision, and a run killed with SIGKILL
must resume to the same events as an uninterrupted one.
"""

from __future__ import annotations

import json
import os
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
from societas.llm.testing import FakeOpenAIServer, FaultConfig
from societas.runners.run import run_experiment


def test_pd_tournament_survives_faults(tmp_path: Path) -> None:
    faults = FaultConfig(off_format=0.3, rate_limit=0.034, server_error=0.033, hang=0.033,
                         retry_after_s=0.05, seed=3)
    with FakeOpenAIServer("random", faults=faults) as server:
        cfg = load_config("pd_tournament", model=f"openai:fake@{server.base_url}", output_dir=str(tmp_path))
        cfg = cfg.model_copy(update={"llm": cfg.llm.model_copy(update={
            "timeout_s": 0.5, "backoff_base_s": 0.01, "backoff_max_s": 0.1, "max_attempts": 2,
            "max_retries": 8})})
        rd, summary = run_experiment(cfg, progress=False)
        stats = server.stats
    run = load_run(rd.path)
    assert summary["episodes"] == 16 * 16
    assert len(run.events) == 16 * 16 * 10 * 2  # nothing lost
    llm = run.events[run.events["policy_kind"] == "llm"]
    assert (llm["retries"] > 0).any(), "off-format replies should have been retried"
    assert (~llm["valid"]).any(), "some decisions should have fallen back to the default"
    assert set(llm.loc[~llm["valid"], "action"]) == {"J"}  # the environment's default action
    assert run.events.loc[run.events["policy_kind"] != "llm", "valid"].all()
    for kind in ("rate_limit", "server_error", "hang", "off_format"):
        assert stats.by_kind[kind] > 0, kind
    calls = run.llm_calls
    assert (calls["error"].notna()).sum() >= (llm["retries"]).sum()
    assert calls["prompt_tokens"].gt(0).all()


def test_sigkill_then_resume_matches_uninterrupted_run(tmp_path: Path) -> None:
    with FakeOpenAIServer("random", latency=0.01) as server:
        model = f"openai:fake@{server.base_url}"
        cfg = {
            "name": "killme", "seed": 5,
            "environment": {"id": "repeated-matrix-game", "params": {"game": "prisoners_dilemma"}},
            "population": [{"name": "m", "policy": "llm", "count": 5},
                           {"name": "tft", "policy": "scripted:tft_noise20"}],
            "llm": {"temperature": 0.7, "structured_outputs": "none"},
            "runner": {"max_concurrent_episodes": 2, "flush_every_s": 0.05},
        }
        path = tmp_path / "cfg.yaml"
        path.write_text(yaml.safe_dump(cfg))
        out = tmp_path / "runs"
        env = dict(os.environ, SOCIETAS_CACHE_DIR=str(tmp_path / "cache-a"))
        proc = subprocess.Popen([sys.executable, "-m", "societas.cli", "run", str(path), "--model", model,
                                 "--out", str(out), "--quiet"], env=env,
                                stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        deadline = time.time() + 60
        run_dir = None
        while time.time() < deadline:
            dirs = list(out.glob("killme-*")) if out.exists() else []
            if dirs and len(list((dirs[0] / "events").glob("part-*.parquet"))) >= 3:
                run_dir = dirs[0]
                break
            time.sleep(0.02)
        assert run_dir is not None, "the run never wrote a part"
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait()
        assert not (run_dir / "summary.json").exists(), "killed too late: the run had finished"
        status = json.loads((run_dir / "checkpoint.json").read_text())
        assert status["status"] == "running"
        resumed = subprocess.run([sys.executable, "-m", "societas.cli", "resume", str(run_dir), "--quiet"],
                                 env=env, capture_output=True, text=True, timeout=120)
        assert resumed.returncode == 0, resumed.stderr

        os.environ["SOCIETAS_CACHE_DIR"] = str(tmp_path / "cache-b")  # a cold cache for the reference
        ref_dir, _ = run_experiment(load_config(path, model=model, output_dir=str(tmp_path / "ref")),
                                    progress=False)
    got, want = load_run(run_dir), load_run(ref_dir.path)
    assert len(got.events) == 36 * 10 * 2
    pd.testing.assert_frame_equal(comparable(got.events), comparable(want.events))
    # no model call is recorded twice for the same attempt
    keys = got.llm_calls[["phase", "episode", "round", "seat", "purpose", "attempt"]]
    assert not keys.duplicated().any()
    assert len(got.llm_calls) == len(want.llm_calls)


@pytest.mark.parametrize("owned_by", ["vllm", "societas-fake"])
def test_constraints_reach_the_server(tmp_path: Path, owned_by: str) -> None:
    with FakeOpenAIServer("first", owned_by=owned_by, record_bodies=50) as server:
        cfg = load_config("pd_tournament", model=f"openai:fake@{server.base_url}", output_dir=str(tmp_path))
        cfg = cfg.model_copy(update={"population": [a for a in cfg.population if a.name in ("llm", "gpt4")]})
        run_experiment(cfg, progress=False)
        bodies = server.bodies
    assert bodies
    extra = [b.get("structured_outputs") for b in bodies]
    if owned_by == "vllm":
        # The prompt ends "A: Option", so the constraint is the answer as written: "Option J" or "Option F".
        assert all(e and e["regex"] in ("Option (?:J|F)", "Option (?:F|J)") for e in extra)
    else:
        assert not any(extra) and not any("response_format" in b for b in bodies)
