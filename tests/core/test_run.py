"""End to end: config -> run directory -> analysis, on the bundled PD tournament."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest

from societas.analysis import agent_table, load_run
from societas.analysis.load import comparable
from societas.config import load_config
from societas.runners.run import run_experiment

REPO = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def pd_run(tmp_path_factory: pytest.TempPathFactory):
    cfg = load_config("pd_tournament", output_dir=str(tmp_path_factory.mktemp("runs")))
    rd, summary = run_experiment(cfg, progress=False)
    return rd, summary, load_run(rd.path)


def test_run_directory_layout(pd_run) -> None:
    rd, summary, run = pd_run
    members = 14  # the two llm members sit out without --model
    assert summary["episodes"] == members * members
    assert summary["decisions"] == members * members * 10 * 2 == len(run.events)
    for name in ("config.yaml", "checkpoint.json", "summary.json"):
        assert (rd.path / name).is_file()
    assert list((rd.path / "events").glob("part-*.parquet"))
    assert "societas_version" in (rd.path / "config.yaml").read_text()
    assert json.loads((rd.path / "checkpoint.json").read_text())["status"] == "complete"
    assert summary["skipped_agents"] == ["llm", "llm-scot"]
    assert summary["non_language_model_agents"]["gpt4"] == "replay:akata2023/pd_gpt4"
    assert summary["llm_calls"] == 0 and run.llm_calls.empty


def test_events_are_consistent(pd_run) -> None:
    _, _, run = pd_run
    ev = run.events
    assert ev["valid"].all() and (ev["retries"] == 0).all()
    assert set(ev["action"]) == {"J", "F"}
    assert (ev["cooperated"] == (ev["action"] == "J")).all()
    # cumulative reward restarts each episode and sums the rewards
    last = ev.groupby(["episode", "seat"]).agg(total=("reward", "sum"), cum=("cumulative_reward", "last"))
    assert (last["total"] == last["cum"]).all()
    # PD payoffs: the two seats' rewards per round follow the matrix
    pairs = ev.pivot_table(index=["episode", "round"], columns="seat", values="reward")
    allowed = {(8, 8), (0, 10), (10, 0), (5, 5)}
    assert set(map(tuple, pairs.to_numpy().astype(int).tolist())) <= allowed
    always = ev[ev["agent"] == "always-defect"]
    assert (always["action"] == "F").all()


def test_analysis_table(pd_run) -> None:
    _, _, run = pd_run
    t = agent_table(run.events).set_index("agent")
    assert t.loc["always-cooperate", "cooperation_rate"] == 1.0
    assert t.loc["always-defect", "cooperation_rate"] == 0.0
    assert t.loc["always-defect", "decisions"] == 14 * 2 * 10


def test_same_seed_same_events(pd_run, tmp_path: Path) -> None:
    _, _, first = pd_run
    cfg = load_config("pd_tournament", output_dir=str(tmp_path))
    rd, _ = run_experiment(cfg.model_copy(update={"runner": cfg.runner.model_copy(
        update={"max_concurrent_episodes": 3})}), progress=False)
    pd.testing.assert_frame_equal(comparable(first.events), comparable(load_run(rd.path).events))


def test_other_seed_changes_random_agents(pd_run, tmp_path: Path) -> None:
    _, _, first = pd_run
    rd, _ = run_experiment(load_config("pd_tournament", seed=1, output_dir=str(tmp_path)), progress=False)
    other = load_run(rd.path).events
    assert not comparable(first.events).equals(comparable(other))


def test_fake_model_joins_and_calls_are_recorded(tmp_path: Path) -> None:
    cfg = load_config("pd_tournament", model="fake:random", output_dir=str(tmp_path))
    rd, summary = run_experiment(cfg, progress=False)
    run = load_run(rd.path)
    assert summary["episodes"] == 16 * 16
    llm = run.events[run.events["policy_kind"] == "llm"]
    assert set(llm["model"]) == {"fake:random"} and llm["valid"].all()
    scot = llm[llm["agent"] == "llm-scot"]
    assert scot["prediction"].notna().all() and llm[llm["agent"] == "llm"]["prediction"].isna().all()
    calls = run.llm_calls
    # one call per plain decision, two (prediction, action) per social-chain-of-thought decision
    assert len(calls) == (llm["agent"] == "llm").sum() + 2 * len(scot)
    first = json.loads(calls.iloc[0]["messages"])
    assert first[0]["role"] == "system" and "You are playing a game repeatedly" in first[0]["content"]


def test_readme_commands(tmp_path: Path) -> None:
    """The README's run and analyze commands, as a newcomer types them."""
    readme = (REPO / "README.md").read_text()
    assert "societas run configs/pd_tournament.yaml" in readme
    proc = subprocess.run([sys.executable, "-m", "societas.cli", "run", "configs/pd_tournament.yaml",
                           "--out", str(tmp_path), "--quiet"], cwd=REPO, capture_output=True, text=True,
                          timeout=120)
    assert proc.returncode == 0, proc.stderr
    assert "not language models:" in proc.stdout
    run_dir = next(tmp_path.iterdir())
    proc = subprocess.run([sys.executable, "-m", "societas.cli", "analyze", str(run_dir)],
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    assert "always-defect" in proc.stdout and "cooperation" in proc.stdout
    proc = subprocess.run([sys.executable, "-m", "societas.cli", "list"], capture_output=True, text=True,
                          timeout=120)
    assert proc.returncode == 0 and "repeated-matrix-game" in proc.stdout and "pd_tournament" in proc.stdout
