"""The commons' outcomes as GovSim defines them, on scripted members and on language-model members over HTTP."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow.parquet as pq
import pytest

from societas.analysis import load_run
from societas.analysis.load import comparable
from societas.analysis.norms.commons import commons_runs, commons_summary, gini_equality, harvests, stock_table
from societas.analysis.report import write_report
from societas.config import load_config, parse_config
from societas.llm.testing import FakeOpenAIServer
from societas.runners.run import resume_run, run_experiment


def _scripted(tmp: Path, policy: str):
    cfg = load_config("commons", output_dir=str(tmp))
    member = cfg.population[0].model_copy(update={"policy": policy})
    rd, _ = run_experiment(cfg.model_copy(update={"population": [member], "sweep": None}), progress=False)
    return rd, load_run(rd.path)


@pytest.fixture(scope="module")
def sustainable(tmp_path_factory: pytest.TempPathFactory):
    return _scripted(tmp_path_factory.mktemp("sustainable"), "scripted:sustainable")


@pytest.fixture(scope="module")
def greedy(tmp_path_factory: pytest.TempPathFactory):
    return _scripted(tmp_path_factory.mktemp("greedy"), "scripted:greedy")


def test_sustainable_members_survive_twelve_months_with_120_each(sustainable) -> None:
    runs = commons_runs(harvests(sustainable[1].events))
    assert list(runs["scenario"]) == ["fishery", "pasture", "pollution"]
    assert (runs["survival_time"] == 12).all() and runs["survived"].all()
    assert (runs["gain"] == 120.0).all() and (runs["total_gain"] == 600.0).all()
    assert (runs["efficiency"] == 1.0).all() and (runs["equality"] == 1.0).all() and (runs["over_usage"] == 0).all()
    overall = commons_summary(runs).iloc[-1]
    assert overall["scenario"] == "all" and overall["runs"] == 3 and overall["survival_rate"] == 1.0


def test_greedy_members_collapse_in_month_one_with_20_each(greedy) -> None:
    runs = commons_runs(harvests(greedy[1].events))
    assert (runs["survival_time"] == 1).all() and not runs["survived"].any()
    assert (runs["gain"] == 20.0).all() and (runs["total_gain"] == 100.0).all()
    assert np.allclose(runs["efficiency"], 1 / 6) and round(runs["efficiency"].iloc[0], 3) == 0.167
    assert (runs["over_usage"] == 1.0).all() and (runs["final_stock"] == 0).all()
    # Random single units: unequal catches, so equality is below 1 (and the same for the same seed).
    assert (runs["equality"] < 1).all() and (runs["equality"] > 0.8).all()


def test_equality_is_one_minus_gini() -> None:
    assert gini_equality(np.array([10, 10, 10])) == 1.0
    assert gini_equality(np.array([0, 0, 30])) == pytest.approx(1 - 60 / 90)  # sum |Ri-Rj| = 120, 2 * 3 * 30
    assert gini_equality(np.zeros(4)) == 1.0


def test_stock_table_ends_with_what_the_last_harvest_left(sustainable, greedy) -> None:
    s = stock_table(harvests(sustainable[1].events))
    one = s[s["episode"] == 0]
    assert list(one["month"]) == list(range(1, 14)) and list(one["stock"]) == [100] * 12 + [50]
    g = stock_table(harvests(greedy[1].events))
    assert list(g[g["episode"] == 0]["stock"]) == [100, 0]


def test_analyze_and_report_show_the_commons(sustainable, tmp_path: Path) -> None:
    rd, _ = sustainable
    proc = subprocess.run([sys.executable, "-m", "societas.cli", "analyze", str(rd.path)],
                          capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0, proc.stderr
    assert "commons outcomes per condition" in proc.stdout and "survival rate" in proc.stdout
    assert "│ all " in proc.stdout and "120.0" in proc.stdout and "100.0%" in proc.stdout
    assert "as Piatti et al. (2024) define them" in proc.stdout  # the table's notes, as in the report
    html = write_report([rd.path], tmp_path / "r.html").read_text()
    assert "Commons" in html and "stock over months" in html and html.count("data:image/png;base64") >= 1


def _lm_config(tmp: Path, base_url: str) -> dict:
    return {"name": "commons-lm", "seed": 2, "output_dir": str(tmp), "model": f"openai:fake@{base_url}",
            "environment": {"id": "commons", "params": {"num_agents": 3, "months": 4, "collapse": 0},
                            "vary": {"discussion": [True, False], "universalization": [False, True]}},
            "population": [{"name": "member", "policy": "llm", "count": 3}],
            "matchmaking": {"kind": "population"},
            "runner": {"max_concurrent_episodes": 1, "flush_every_rows": 1}}


def test_language_model_members_over_http_report_invalid_share_and_resume_identically(tmp_path: Path) -> None:
    with FakeOpenAIServer("random", owned_by="vllm") as server:  # constraints sent as vLLM structured outputs
        rd, summary = run_experiment(parse_config(_lm_config(tmp_path / "a", server.base_url)), progress=False)
        run = load_run(rd.path)
        rows = harvests(run.events)
        table = commons_summary(commons_runs(rows))
        assert summary["invalid_actions"] == 0 and (table["invalid"] == 0).all()
        assert len(table) == 5 and set(table["members"]) == {"llm", "all"}
        talk = run.events[run.events["info"].str.contains('"phase": "discussion"')]
        assert len(talk) == 2 * 3 * 3  # two discussion variants x 3 town halls (months 1-3) x 3 speakers
        copy = tmp_path / "copy" / rd.path.name
        shutil.copytree(rd.path, copy)
        parts = sorted((copy / "events").glob("part-*.parquet"))
        assert len(parts) > 1
        removed = 0
        for folder in ("events", "episodes", "llm_calls"):
            for part in (copy / folder).glob("part-*.parquet"):
                episodes = pq.read_table(part, columns=["episode"]).column("episode").to_pylist()
                if episodes and min(episodes) >= 2:
                    part.unlink()
                    removed += 1
        assert removed >= 3  # the later episodes' events, episodes and calls are gone
        (copy / "summary.json").unlink()
        resume_run(copy, progress=False)
    again = load_run(copy)
    pd.testing.assert_frame_equal(comparable(again.events), comparable(run.events))


def test_invalid_harvests_are_counted() -> None:
    rows = pd.DataFrame({"phase": 0, "episode": 0, "agent": ["a", "b"], "policy": "llm", "valid": [True, False],
                         "month": 1, "scenario": "fishery", "stock": 100, "requested": [10, 0], "caught": [10, 0],
                         "remaining": 90, "threshold": 25.0, "collapsed": False, "months": 1, "collapse": 5,
                         "discussion": False, "universalization": False, "newcomer": False})
    runs = commons_runs(rows)
    assert runs["invalid"].iloc[0] == 0.5 and runs["efficiency"].iloc[0] == pytest.approx(10 / 50)
