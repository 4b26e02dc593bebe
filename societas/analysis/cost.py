"""Tokens, latency and money per model, from a run's llm_calls and events tables.

Prices are not part of a run: pass a table of USD per million tokens, e.g.
{"openai:gpt-4o": (2.5, 10.0)} (prompt, completion), or with a third price
for prompt tokens the provider served from its prefix cache, e.g.
(2.5, 10.0, 1.25). Calls answered from the response cache cost nothing and
their latency is the cache's, so both are counted apart.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np
import pandas as pd

Prices = Mapping[str, tuple[float, float] | tuple[float, float, float]]
"""Model spec -> USD per million (prompt, completion[, cached prompt]) tokens.

Without the third price, cached prompt tokens are billed as prompt tokens."""

PERCENTILES = (50, 90, 99)


def _keys(by: str | Sequence[str]) -> list[str]:
    return [by] if isinstance(by, str) else list(by)


def _latency(values: pd.Series) -> dict[str, float]:
    x = values.dropna().to_numpy(dtype=float)
    out = {"latency_mean": float(x.mean()) if len(x) else np.nan}
    for q in PERCENTILES:
        out[f"latency_p{q}"] = float(np.percentile(x, q)) if len(x) else np.nan
    return out


def usage_table(llm_calls: pd.DataFrame, prices: Prices | None = None,
                by: str | Sequence[str] = "model") -> pd.DataFrame:
    """Model requests, cache hits, tokens, latency and cost per group (default: per model).

    calls = rows; cache_hits = calls served from the response cache;
    cache_hit_rate = cache_hits / calls; prompt_tokens / completion_tokens =
    sums over all calls; billed_prompt_tokens / billed_completion_tokens = the
    same over calls not served from the cache; cached_tokens = prompt tokens of
    those calls the engine reported serving from its prefix cache;
    cached_share = cached_tokens / billed_prompt_tokens (NaN when there are
    none; 0 also when the engine does not report it); latency_mean and latency_p50 /
    p90 / p99 (linear-interpolated percentiles, seconds) over calls not served
    from the cache (NaN when all were). With `prices` (by must include model):
    cost_usd = ((billed_prompt_tokens - cached_tokens) * prompt_price +
    cached_tokens * cached_price + billed_completion_tokens * completion_price)
    / 1e6, cached_price defaulting to prompt_price; NaN for a model missing from
    the table.
    """
    keys = _keys(by)
    cols = [*keys, "calls", "cache_hits", "cache_hit_rate", "prompt_tokens", "completion_tokens",
            "billed_prompt_tokens", "billed_completion_tokens", "cached_tokens", "cached_share", "latency_mean",
            *[f"latency_p{q}" for q in PERCENTILES], *(["cost_usd"] if prices is not None else [])]
    if llm_calls.empty:
        return pd.DataFrame(columns=cols)
    if prices is not None and "model" not in keys:
        raise ValueError("a price table needs by to include 'model'")
    rows = []
    for key, d in llm_calls.groupby(keys, sort=True, dropna=False):
        key_t = key if isinstance(key, tuple) else (key,)
        hit = d["cache_hit"].astype("boolean").fillna(False).astype(bool)
        live = d[~hit]
        # Runs recorded before engines' cached tokens were kept have no such column.
        cached = int(live["cached_tokens"].fillna(0).sum()) if "cached_tokens" in live else 0
        row = {**dict(zip(keys, key_t)), "calls": len(d), "cache_hits": int(hit.sum()),
               "cache_hit_rate": float(hit.mean()),
               "prompt_tokens": int(d["prompt_tokens"].fillna(0).sum()),
               "completion_tokens": int(d["completion_tokens"].fillna(0).sum()),
               "billed_prompt_tokens": int(live["prompt_tokens"].fillna(0).sum()),
               "billed_completion_tokens": int(live["completion_tokens"].fillna(0).sum()),
               "cached_tokens": cached,
               **_latency(live["latency_s"])}
        row["cached_share"] = cached / row["billed_prompt_tokens"] if row["billed_prompt_tokens"] else np.nan
        if prices is not None:
            price = prices.get(row["model"])
            if price is None:
                row["cost_usd"] = np.nan
            else:
                cached_price = price[2] if len(price) > 2 else price[0]
                row["cost_usd"] = ((row["billed_prompt_tokens"] - cached) * price[0] + cached * cached_price
                                   + row["billed_completion_tokens"] * price[1]) / 1e6
        rows.append(row)
    return pd.DataFrame(rows, columns=cols)


def decision_usage(events: pd.DataFrame, by: str | Sequence[str] = ("agent", "model")) -> pd.DataFrame:
    """Tokens and latency per decision, per group of the events table (default: per agent and model).

    Only decisions made by a model (model not missing). decisions = rows;
    prompt_tokens / completion_tokens = sums over every attempt of the
    decisions; tokens_per_decision = (prompt + completion) / decisions;
    latency_mean and latency_p50 / p90 / p99 = of the decision latency (all
    attempts of a decision together, seconds).
    """
    keys = _keys(by)
    cols = [*keys, "decisions", "prompt_tokens", "completion_tokens", "tokens_per_decision", "latency_mean",
            *[f"latency_p{q}" for q in PERCENTILES]]
    ev = events[events["model"].notna()] if "model" in events else events.iloc[0:0]
    rows = []
    for key, d in ev.groupby(keys, sort=True, dropna=False):
        key_t = key if isinstance(key, tuple) else (key,)
        p, c = int(d["prompt_tokens"].fillna(0).sum()), int(d["completion_tokens"].fillna(0).sum())
        rows.append({**dict(zip(keys, key_t)), "decisions": len(d), "prompt_tokens": p, "completion_tokens": c,
                     "tokens_per_decision": (p + c) / len(d), **_latency(d["latency_s"])})
    return pd.DataFrame(rows, columns=cols)
