"""The partner-adaptation study end to end: the bundled config, `societas analyze`, and LLM players over HTTP."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

from typer.testing import CliRunner

from societas.analysis import load_run
from societas.analysis.tom_partner import rounds_table, summary
from societas.cli import app
from societas.config import load_config, parse_config
from societas.llm.testing import FakeOpenAIServer
from societas.runners.run import run_experiment


def test_config_runs_and_analyze_prints_the_table(tmp_path: Path) -> None:
    rd, s = run_experiment(load_config("partner_adaptation", output_dir=str(tmp_path)), progress=False)
    assert s["invalid_actions"] == 0 and s["episodes"] == 6 * 3 * 3  # partners x scripted players x repetitions
    run = load_run(rd.path)
    table = summary(rounds_table(run.events)).set_index(["agent", "partner_policy"])
    assert len(table) == 3 * 6
    learner, rand = table.loc["learner"], table.loc["random"]
    assert (learner["late_regret"] < rand["late_regret"]).all()
    predicted = table.loc["predict_only", "accuracy"]
    assert rand["accuracy"].isna().all() and (predicted.drop("biased") > 0.5).all()
    # The biased partner draws i.i.d. (0.6, 0.2, 0.2): context counts over 90 rounds beat chance, not 0.6.
    assert predicted["biased"] > 1 / 3
    assert {json.loads(x)["partner_policy"] for x in run.episodes["summary"]} == {
        "always_rock", "cycle", "copy_last", "beat_last", "biased", "tit_for_tat"}
    result = CliRunner().invoke(app, ["analyze", str(rd.path)])
    assert result.exit_code == 0, result.output
    assert "literal vs functional" in result.output and "predict_only" in result.output


def test_config_takes_a_model() -> None:
    cfg = load_config("partner_adaptation", model="fake:first")
    assert [a.name for a in cfg.active_population()] == ["learner", "predict_only", "random", "llm"]


def _answer(request: Any) -> str:
    # Predict "rock"; play "paper", the best response to it.
    text = request.messages[-1]["content"]
    return "rock" if re.search(r"partner play next", text) else "paper"


def test_llm_players_with_social_chain_of_thought(tmp_path: Path) -> None:
    with FakeOpenAIServer(_answer) as server:
        cfg = parse_config({
            "name": "partner-llm-small", "seed": 1, "model": f"openai:fake@{server.base_url}",
            "llm": {"cache": False}, "output_dir": str(tmp_path), "matchmaking": {"kind": "solo"},
            "environment": {"id": "partner-adaptation", "params": {"rounds": 4},
                            "vary": {"partner": ["always_rock", "copy_last"]}},
            "population": [{"name": "llm", "policy": "llm", "social_chain_of_thought": True}]})
        rd, s = run_experiment(cfg, progress=False)
    assert s["decisions"] == 8 and s["invalid_actions"] == 0 and s["llm_calls"] == 16
    run = load_run(rd.path)
    assert run.llm_calls["purpose"].value_counts().to_dict() == {"action": 8, "prediction": 8}
    r = rounds_table(run.events)
    assert (r["prediction"] == "rock").all() and (r["move"] == "paper").all()
    t = summary(r).set_index("partner_policy")
    assert t.loc["always_rock", "accuracy"] == 1.0 and t.loc["always_rock", "total_regret"] == 0.0
    # copy_last: rock first, then paper -> one right prediction of four; paper vs paper is a draw, regret 1 each.
    assert t.loc["copy_last", "accuracy"] == 0.25 and t.loc["copy_last", "total_regret"] == 3.0
