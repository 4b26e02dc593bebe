"""The theory-of-mind study end to end: bundled configs, the analyzer, and LLM observers and actors over HTTP."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import pytest

from societas.analysis import load_run, tom
from societas.config import load_config, parse_config
from societas.llm.testing import FakeOpenAIServer
from societas.runners.run import run_experiment


def test_battery_config_scores_the_scripted_observers(tmp_path: Path) -> None:
    rd, summary = run_experiment(load_config("tom_battery", output_dir=str(tmp_path)), progress=False)
    assert summary["invalid_actions"] == 0
    q = tom.question_table(load_run(rd.path).events)
    assert set(q["category"]) == {"perception", "first_order_belief", "knowledge", "short_term_intention",
                                  "long_term_intention", "desire", "reality_check"}
    acc = tom.accuracy(q, by=("agent",)).set_index("agent")
    assert acc.loc["belief", "accuracy"] == 1.0 and acc.loc["belief", "ci_low"] == 1.0
    reality = q[q["agent"] == "reality"]
    assert (~reality["correct"].astype(bool) == reality["false_belief"].astype(bool)).all()
    assert reality["false_belief"].any() and acc.loc["random", "accuracy"] < 0.6
    gap = tom.false_belief_gap(q).set_index("agent")
    assert gap.loc["reality", "gap"] == 1.0 and gap.loc["belief", "gap"] == 0.0
    div = tom.action_divergence(q).set_index("agent")
    assert div.loc["belief", "js_divergence"] == 0.0
    by_cat = tom.accuracy(q, by=("agent", "category"))
    assert len(by_cat) == 3 * 7 and by_cat["ci_low"].le(by_cat["accuracy"]).all()


def test_gridworld_config_runs_every_swap(tmp_path: Path) -> None:
    rd, _ = run_experiment(load_config("tom_gridworld", output_dir=str(tmp_path)), progress=False)
    run = load_run(rd.path)
    summaries = [json.loads(s) for s in run.episodes["summary"]]
    assert {s["swap"] for s in summaries} == {"none", "unseen", "seen"}
    assert len(summaries) == 3 * 3 * 4  # swaps x scripted actors x repetitions (no model: LLM seat skipped)
    records = [json.loads(x) for x in run.events["info"] if isinstance(x, str)]
    assert all("beliefs" in r and "objects" in r for r in records)


def test_configs_take_a_model() -> None:
    cfg = load_config("tom_battery", model="fake:first")
    assert [a.name for a in cfg.active_population()] == ["belief", "reality", "random", "llm"]


def test_js_divergence() -> None:
    assert tom.js_divergence([1, 0], [1, 0]) == 0.0
    assert tom.js_divergence([1, 0], [0, 1]) == pytest.approx(1.0)
    assert 0 < tom.js_divergence([3, 1, 0], [1, 1, 1]) < 1
    with pytest.raises(ValueError):
        tom.js_divergence([0, 0], [1, 0])


def _first_choice(request: Any) -> str:
    text = request.messages[-1]["content"]
    m = re.search(r"exactly as written\): ([^\n]+)", text)
    if m:
        return m.group(1).split(" | ")[0]
    return "down" if "Your move?" in text else "stay"


def test_llm_observer_and_actor_over_http(tmp_path: Path) -> None:
    with FakeOpenAIServer(_first_choice) as server:
        base = {"seed": 2, "model": f"openai:fake@{server.base_url}", "llm": {"cache": False},
                "output_dir": str(tmp_path), "matchmaking": {"kind": "solo"}}
        obs_cfg = parse_config({
            **base, "name": "tom-battery-llm-small",
            "environment": {"id": "tom-observer", "params": {"past_episodes": 1, "swap": "unseen"}},
            "population": [{"name": "llm", "policy": "llm"}]})
        rd, s = run_experiment(obs_cfg, progress=False)
        assert s["decisions"] == s["llm_calls"] == 19 and s["invalid_actions"] == 0
        run = load_run(rd.path)
        q = tom.question_table(run.events)
        calls = run.llm_calls
        assert len(q) == 19 and "Question: Can the actor see the red object" in calls["messages"].iloc[0]
        assert "Past episode 1" in calls["messages"].iloc[0]
        first = q.iloc[0]
        assert first["answer"] == "yes" and first["gold"] in ("yes", "no")
        act_cfg = parse_config({
            **base, "name": "tom-gridworld-llm-small",
            "environment": {"id": "tom-gridworld", "params": {"max_steps": 5}},
            "population": [{"name": "llm", "policy": "llm"}]})
        rd2, s2 = run_experiment(act_cfg, progress=False)
    assert s2["invalid_actions"] == 0 and 1 <= s2["decisions"] <= 5
    moves = [json.loads(x)["action"] for x in load_run(rd2.path).events["info"] if isinstance(x, str)]
    assert set(moves) <= {"down"}
    calls2 = load_run(rd2.path).llm_calls
    assert "Your goal: reach the" in calls2["messages"].iloc[0]


def test_observer_seat_rejects_an_actor_strategy(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="actor strategy; seat it in tom-gridworld"):
        cfg = parse_config({"name": "bad", "output_dir": str(tmp_path), "matchmaking": {"kind": "solo"},
                            "environment": {"id": "tom-observer"},
                            "population": [{"name": "a", "policy": "scripted:algorithmic_actor"}]})
        run_experiment(cfg, progress=False)


def test_analyze_prints_tom_tables(tmp_path) -> None:
    import subprocess
    import sys

    for config, expected in (("tom_battery", "false-belief vs true-belief items"),
                             ("tom_gridworld", "actors by swap condition")):
        ran = subprocess.run([sys.executable, "-m", "societas.cli", "run", config, "--out", str(tmp_path / config),
                              "--quiet"], capture_output=True, text=True, timeout=120)
        assert ran.returncode == 0, ran.stderr
        (run_dir,) = (tmp_path / config).iterdir()
        shown = subprocess.run([sys.executable, "-m", "societas.cli", "analyze", str(run_dir)],
                               capture_output=True, text=True, timeout=120)
        assert shown.returncode == 0 and expected in shown.stdout, shown.stderr


def test_reality_checks_are_controls_every_scripted_observer_gets_right(tmp_path) -> None:
    from societas.analysis import load_run
    from societas.analysis.tom import question_table
    from societas.config import load_config
    from societas.runners.run import run_experiment

    rd, _ = run_experiment(load_config("tom_battery", output_dir=str(tmp_path)), progress=False)
    q = question_table(load_run(rd.path).events)
    checks = q[(q["category"] == "reality_check") & q["agent"].isin(["belief", "reality"])]
    assert len(checks) and checks["correct"].all() and not checks["false_belief"].any()
