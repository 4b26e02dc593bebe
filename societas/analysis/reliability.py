"""How often agents answered badly: invalid actions, retries, failed model calls.

From the events table (one row per decision: `valid`, `retries`) and the
llm_calls table (one row per model request: `attempt`, `reply`, `error`).
"""

from __future__ import annotations

from collections.abc import Sequence

import pandas as pd


def _keys(by: str | Sequence[str]) -> list[str]:
    return [by] if isinstance(by, str) else list(by)


def reliability_table(events: pd.DataFrame, by: str | Sequence[str] = ("agent", "model")) -> pd.DataFrame:
    """Invalid-action and retry rates per group of decisions (default: per agent and model).

    decisions = rows; invalid = decisions with valid False (the environment's
    default action was played after every attempt failed); invalid_rate =
    invalid / decisions; retried = decisions with retries > 0; retry_rate =
    retried / decisions; retries = sum of retries (extra attempts);
    mean_retries = retries / decisions. Agents without a model (scripted,
    replay) form groups with a missing model.
    """
    keys = _keys(by)
    ev = events.assign(_invalid=~events["valid"].astype(bool), _retried=events["retries"] > 0,
                       _retries=events["retries"].astype(float))
    g = ev.groupby(keys, sort=True, dropna=False)
    out = g.agg(decisions=("_invalid", "size"), invalid=("_invalid", "sum"), retried=("_retried", "sum"),
                retries=("_retries", "sum")).reset_index()
    out["invalid"] = out["invalid"].astype(int)
    out["retried"] = out["retried"].astype(int)
    out["retries"] = out["retries"].astype(int)
    out["invalid_rate"] = out["invalid"] / out["decisions"]
    out["retry_rate"] = out["retried"] / out["decisions"]
    out["mean_retries"] = out["retries"] / out["decisions"]
    return out[[*keys, "decisions", "invalid", "invalid_rate", "retried", "retry_rate", "retries", "mean_retries"]]


def call_errors(llm_calls: pd.DataFrame, by: str | Sequence[str] = "model") -> pd.DataFrame:
    """Failed model requests per group (default: per model).

    calls = rows of llm_calls; parse_errors = calls whose reply came back but
    did not satisfy the action spec (error set, reply present); model_errors =
    calls where the endpoint failed for good (error set, no reply); retry_calls
    = calls with attempt > 0 (asked again after a bad reply). Each count has a
    rate = count / calls.
    """
    keys = _keys(by)
    cols = [*keys, "calls", "parse_errors", "parse_error_rate", "model_errors", "model_error_rate",
            "retry_calls", "retry_call_rate"]
    if llm_calls.empty:
        return pd.DataFrame(columns=cols)
    err = llm_calls["error"].notna() & (llm_calls["error"].astype(str) != "")
    reply = llm_calls["reply"].notna()
    c = llm_calls.assign(_parse=err & reply, _model=err & ~reply, _retry=llm_calls["attempt"] > 0)
    out = c.groupby(keys, sort=True, dropna=False).agg(
        calls=("_parse", "size"), parse_errors=("_parse", "sum"), model_errors=("_model", "sum"),
        retry_calls=("_retry", "sum")).reset_index()
    for name in ("parse_errors", "model_errors", "retry_calls"):
        out[name] = out[name].astype(int)
    out["parse_error_rate"] = out["parse_errors"] / out["calls"]
    out["model_error_rate"] = out["model_errors"] / out["calls"]
    out["retry_call_rate"] = out["retry_calls"] / out["calls"]
    return out[cols]
