"""Invalid actions, retries, failed calls, tokens, latency and cost on hand-built tables."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest

from societas.analysis.cost import decision_usage, usage_table
from societas.analysis.reliability import call_errors, reliability_table


def events() -> pd.DataFrame:
    return pd.DataFrame({
        "agent": ["llm", "llm", "llm", "llm", "tft", "tft"],
        "model": ["m1", "m1", "m1", "m1", None, None],
        "valid": [True, True, False, True, True, True],
        "retries": [0, 1, 2, 0, 0, 0],
        "prompt_tokens": [100, 250, 400, 120, 0, 0],
        "completion_tokens": [1, 3, 5, 1, 0, 0],
        "latency_s": [0.1, 0.3, 0.5, 0.2, 0.0, 0.0],
    })


def calls() -> pd.DataFrame:
    return pd.DataFrame({
        "model": ["m1", "m1", "m1", "m1", "m2", "m2"],
        "attempt": [0, 0, 1, 0, 0, 1],
        "reply": ["J", "maybe", "F", None, "J", "J"],
        "error": [None, "not one of J, F", None, "timeout", None, None],
        "cache_hit": [False, False, False, False, True, False],
        "prompt_tokens": [100, 110, 150, 0, 90, 95],
        "completion_tokens": [1, 2, 1, 0, 1, 1],
        "latency_s": [0.1, 0.2, 0.3, 5.0, 0.001, 0.4],
    })


def test_reliability_table() -> None:
    t = reliability_table(events()).set_index("agent")
    assert t.loc["llm", ["decisions", "invalid", "retried", "retries"]].tolist() == [4, 1, 2, 3]
    assert t.loc["llm", ["invalid_rate", "retry_rate", "mean_retries"]].tolist() == [0.25, 0.5, 0.75]
    assert t.loc["tft", "invalid_rate"] == 0.0 and pd.isna(t.loc["tft", "model"])
    by_model = reliability_table(events(), by="model")
    assert len(by_model) == 2


def test_call_errors() -> None:
    t = call_errors(calls()).set_index("model")
    assert t.loc["m1"].tolist() == [4, 1, 0.25, 1, 0.25, 1, 0.25]
    assert t.loc["m2", ["calls", "parse_errors", "model_errors", "retry_calls"]].tolist() == [2, 0, 0, 1]
    assert call_errors(calls().iloc[0:0]).empty


def test_usage_table_and_cost() -> None:
    t = usage_table(calls(), prices={"m1": (2.0, 10.0)}).set_index("model")
    m1, m2 = t.loc["m1"], t.loc["m2"]
    assert m1[["calls", "cache_hits", "prompt_tokens", "completion_tokens"]].tolist() == [4, 0, 360, 4]
    assert m1["latency_p50"] == pytest.approx(np.percentile([0.1, 0.2, 0.3, 5.0], 50))
    assert m1["latency_mean"] == pytest.approx(5.6 / 4)
    assert m1["cost_usd"] == pytest.approx((360 * 2.0 + 4 * 10.0) / 1e6)
    # the cached call is counted, but neither billed nor timed
    assert m2[["calls", "cache_hits", "cache_hit_rate"]].tolist() == [2, 1, 0.5]
    assert m2[["prompt_tokens", "billed_prompt_tokens", "billed_completion_tokens"]].tolist() == [185, 95, 1]
    assert m2["latency_p99"] == pytest.approx(0.4)
    assert math.isnan(m2["cost_usd"])  # no price given
    assert "cost_usd" not in usage_table(calls()).columns
    with pytest.raises(ValueError, match="model"):
        usage_table(calls().assign(agent="a"), prices={}, by="agent")


def test_cached_share_and_price() -> None:
    frame = calls().assign(cached_tokens=[0, 80, 100, 0, 0, 50])
    t = usage_table(frame, prices={"m1": (2.0, 10.0, 0.5), "m2": (1.0, 4.0)}).set_index("model")
    m1, m2 = t.loc["m1"], t.loc["m2"]
    assert m1["cached_tokens"] == 180 and m1["cached_share"] == pytest.approx(180 / 360)
    assert m1["cost_usd"] == pytest.approx((180 * 2.0 + 180 * 0.5 + 4 * 10.0) / 1e6)
    # without a cached price, cached tokens are billed as prompt tokens
    assert m2["cost_usd"] == pytest.approx((95 * 1.0 + 1 * 4.0) / 1e6)
    old = usage_table(calls()).set_index("model")  # a run from before cached tokens were recorded
    assert old.loc["m1", "cached_tokens"] == 0 and old.loc["m1", "cached_share"] == 0


def test_decision_usage() -> None:
    t = decision_usage(events())
    assert t["agent"].tolist() == ["llm"]  # decisions without a model are not model usage
    row = t.iloc[0]
    assert row[["decisions", "prompt_tokens", "completion_tokens"]].tolist() == [4, 870, 10]
    assert row["tokens_per_decision"] == 880 / 4
    assert row["latency_p90"] == pytest.approx(np.percentile([0.1, 0.3, 0.5, 0.2], 90))
