"""The metrics on real run directories of the bundled PD tournament (scripted, fake models)."""

from __future__ import annotations

import pandas as pd
import pytest

from societas.analysis import cooperation as c
from societas.analysis.cost import decision_usage, usage_table
from societas.analysis.load import Run, load_run
from societas.analysis.reliability import call_errors, reliability_table
from societas.config import load_config
from societas.runners.run import run_experiment


def run(tmp_path_factory: pytest.TempPathFactory, model: str) -> Run:
    cfg = load_config("pd_tournament", model=model, output_dir=str(tmp_path_factory.mktemp("runs")))
    rd, _ = run_experiment(cfg, progress=False)
    return load_run(rd.path)


@pytest.fixture(scope="module")
def random_run(tmp_path_factory: pytest.TempPathFactory) -> Run:
    return run(tmp_path_factory, "fake:random")


def test_scripted_strategies_have_their_signatures(random_run: Run) -> None:
    ev = random_run.events
    cc = c.conditional_cooperation(ev).set_index("agent")
    assert cc.loc["tit-for-tat", ["p_c_after_c", "p_c_after_d"]].tolist() == [1.0, 0.0]
    assert cc.loc["always-cooperate", ["p_c_after_c", "p_c_after_d"]].tolist() == [1.0, 1.0]
    rf = c.reciprocity_forgiveness(ev).set_index("agent")
    assert rf.loc["grim-trigger", ["reciprocity", "forgiveness"]].tolist() == [1.0, 0.0]
    assert rf.loc["always-defect", "forgiveness"] == 0.0
    by_round = c.cooperation_by_round(ev).query("agent == 'always-cooperate'")
    assert (by_round["cooperation_rate"] == 1.0).all() and len(by_round) == 10
    m = c.payoff_matrix(ev)
    assert m.loc["always-defect", "always-cooperate"] == 10.0 and m.loc["always-cooperate", "always-defect"] == 0.0
    games = pd.DataFrame({"game": ["prisoners_dilemma"], "max_payoff": [10.0], "family": ["PD Family"]})
    s = c.normalised_scores(ev, games)
    assert len(s) == 2 * random_run.events["episode"].nunique()
    assert s["score"].between(0, 1).all()
    mutual = s[(s["agent"] == "always-cooperate") & (s["partner"] == "always-cooperate")]
    assert mutual["score"].tolist() == pytest.approx([0.8, 0.8])  # 8 points a round of at most 10


def test_usage_and_reliability_of_a_fake_model(random_run: Run) -> None:
    usage = usage_table(random_run.llm_calls, prices={"fake:random": (1.0, 1.0)}).set_index("model")
    calls = random_run.llm_calls
    assert usage.loc["fake:random", "calls"] == len(calls)
    assert usage.loc["fake:random", "prompt_tokens"] == calls["prompt_tokens"].sum()
    assert usage.loc["fake:random", "cost_usd"] > 0
    per_decision = decision_usage(random_run.events).set_index("agent")
    assert set(per_decision.index) == {"llm", "llm-scot"}
    assert per_decision.loc["llm-scot", "tokens_per_decision"] > per_decision.loc["llm", "tokens_per_decision"]
    rel = reliability_table(random_run.events).set_index("agent")
    assert rel["invalid_rate"].eq(0).all()


def test_a_model_that_never_answers_is_invalid_every_time(tmp_path_factory: pytest.TempPathFactory) -> None:
    r = run(tmp_path_factory, "fake:echo")  # echoes the prompt back: no reply parses
    rel = reliability_table(r.events).set_index("agent")
    assert rel.loc["llm", ["invalid_rate", "retry_rate", "mean_retries"]].tolist() == [1.0, 1.0, 2.0]
    assert rel.loc["tit-for-tat", "invalid_rate"] == 0.0
    errors = call_errors(r.llm_calls).set_index("model")
    assert errors.loc["fake:echo", "parse_error_rate"] == 1.0
