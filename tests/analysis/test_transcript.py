"""Transcripts on real run directories: every attempt beside its decision, fallbacks found, text and HTML."""

from __future__ import annotations

from pathlib import Path

import pytest

from societas.analysis import load_run
from societas.analysis.transcript import invalid_decisions, sample_episodes, transcript, transcript_text
from societas.analysis.transcript_html import transcript_html
from societas.config import load_config
from societas.runners.run import run_experiment


@pytest.fixture(scope="module")
def runs(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    out = tmp_path_factory.mktemp("runs")
    good, _ = run_experiment(load_config("pd_tournament", model="fake:random", output_dir=str(out)), progress=False)
    bad, _ = run_experiment(load_config("pd_tournament", model="fake:echo", output_dir=str(out)), progress=False)
    return {"random": good.path, "echo": bad.path}


def test_one_row_per_attempt_with_its_decision(runs: dict[str, Path]) -> None:
    run = load_run(runs["random"])
    ep = int(run.llm_calls.query("agent == 'llm-scot'")["episode"].iloc[0])
    t = transcript(runs["random"], episode=ep, agent="llm-scot")
    assert t.equals(transcript(run, episode=ep, agent="llm-scot"))  # from disk with filters, or loaded
    calls = run.llm_calls.query("agent == 'llm-scot' and episode == @ep")
    assert len(t) == len(calls) and set(t["purpose"]) == {"action", "prediction"}
    actions = t[t["purpose"] == "action"]
    events = run.events.query("agent == 'llm-scot' and episode == @ep")
    assert actions["final"].tolist() == events["action"].tolist()
    assert actions["reply"].tolist() == actions["final"].tolist() and not t["fallback"].any()
    assert t["prompt"].str.contains("Which Option").all() and t["system"].notna().all()
    text = transcript_text(t)
    assert f"episode {ep}" in text and "prediction question" in text and "=> action:" in text


def test_fallbacks_are_found(runs: dict[str, Path]) -> None:
    t = transcript(runs["echo"], agent="llm", invalid_only=True)
    assert len(t) and t["fallback"].all() and t["error"].notna().all() and (t["attempts"] == 3).all()
    assert t["prompt"].iloc[1].startswith("Your answer could not be used")
    bad = invalid_decisions(runs["echo"])
    assert set(bad["agent"]) == {"llm", "llm-scot"} and bad["fallback"].all()
    assert transcript(runs["random"], invalid_only=True).empty
    run = load_run(runs["echo"])
    sample = sample_episodes(run)
    assert sample == sample_episodes(run) and set(sample) == {"llm", "llm-scot"}
    assert "fallback" in transcript_html(transcript(run, episode=sample["llm"][0][1], agent="llm"))


def test_scripted_decisions_read_whole(runs: dict[str, Path]) -> None:
    run = load_run(runs["random"])
    ep = int(run.llm_calls["episode"].iloc[0])
    t = transcript(run, episode=ep)
    assert len(t[t["attempt"].isna()]) == 10 and "->" in transcript_text(t)
    assert transcript(run, episode=ep, calls_only=True)["attempt"].notna().all()
