"""Literal vs functional theory of mind in the partner-adaptation game (Riemer et al. 2024).

Literal theory of mind is how often the player predicts its partner's next
move; functional theory of mind is how close its play comes to the best
response to the partner's policy (reward and regret, which the environment
records each round). Agents can have the first without the second, so the two
are reported side by side per agent and partner policy. Intervals bootstrap
over episodes, the independent units of a run.
"""

from __future__ import annotations

import json
from collections.abc import Sequence

import numpy as np
import pandas as pd

from societas.analysis import stats
from societas.analysis.stats import bootstrap_ci

ENV = "partner-adaptation"
GROUP = ("partner_policy", "agent")


def rounds_table(events: pd.DataFrame) -> pd.DataFrame:
    """One row per round of the partner-adaptation episodes, the info record spread into columns.

    `correct` is whether the prediction named the partner's move (NaN where the
    player made none), from the events' prediction column, which the runner
    fills from Action.prediction.
    """
    ev = events[events["env"] == ENV]
    cols = ["phase", "episode", "round", "agent", "policy", "partner_policy", "game", "move", "partner_move",
            "prediction", "correct", "reward", "expected_reward", "br_reward", "regret", "best_response"]
    if ev.empty:
        return pd.DataFrame(columns=cols)
    records = pd.DataFrame([json.loads(x) for x in ev["info"]], index=ev.index)
    out = ev[["phase", "episode", "round", "agent", "policy", "prediction"]].join(
        records[["partner_policy", "game", "move", "partner_move", "best_response", "br_reward",
                 "expected_reward", "regret", "reward"]])
    pred = out["prediction"]
    out["correct"] = np.where(pred.isna(), np.nan, (pred == out["partner_move"]).astype(float))
    return out[cols].sort_values(["phase", "episode", "round"]).reset_index(drop=True)


def _ci(values: Sequence[float] | np.ndarray, seed: int = 0) -> tuple[float, float, float]:
    v = np.asarray(values, dtype=float)
    v = v[~np.isnan(v)]
    if v.size == 0:
        return (np.nan, np.nan, np.nan)
    if v.size == 1:
        return (float(v[0]), float(v[0]), float(v[0]))
    est, lo, hi = bootstrap_ci(v, n_resamples=2000, seed=seed)
    return float(est), float(lo), float(hi)


def summary(rounds: pd.DataFrame, *, late_window: int = 10, group: Sequence[str] = GROUP) -> pd.DataFrame:
    """Per group: literal ToM (prediction accuracy) and functional ToM (reward, regret), with 95% CIs.

    Per-episode values first (accuracy, mean reward, total regret, mean regret
    of the last `late_window` rounds), then their mean and a bootstrap interval
    over episodes. `js_divergence` compares the predicted and the actual
    partner-move distributions of the group.
    """
    rows = []
    for key, g in rounds.groupby(list(group), sort=True):
        per_ep = g.groupby(["phase", "episode"]).agg(
            accuracy=("correct", "mean"), reward=("reward", "mean"), regret=("regret", "mean"),
            total_regret=("regret", "sum"),
            late_regret=("regret", lambda s: s.iloc[-late_window:].mean()))
        row = dict(zip(group, key if isinstance(key, tuple) else (key,), strict=True))
        row["episodes"] = len(per_ep)
        for name in ("accuracy", "reward", "regret", "total_regret", "late_regret"):
            est, lo, hi = _ci(per_ep[name].to_numpy())
            row[name], row[f"{name}_low"], row[f"{name}_high"] = est, lo, hi
        row["js_divergence"] = prediction_divergence(g)
        rows.append(row)
    return pd.DataFrame(rows)


def over_rounds(rounds: pd.DataFrame, *, window: int = 5, group: Sequence[str] = GROUP) -> pd.DataFrame:
    """Per group and round: accuracy, reward and regret (means over episodes), their `window`-round
    rolling means and the cumulative regret: how fast each kind of theory of mind is acquired."""
    by_round = rounds.groupby([*group, "round"], sort=True).agg(
        accuracy=("correct", "mean"), reward=("reward", "mean"), regret=("regret", "mean")).reset_index()
    g = by_round.groupby(list(group), sort=False)
    for name in ("accuracy", "reward", "regret"):
        by_round[f"{name}_windowed"] = g[name].transform(lambda s: s.rolling(window, min_periods=1).mean())
    by_round["cumulative_regret"] = g["regret"].cumsum()
    return by_round


def js_divergence(p: Sequence[float] | np.ndarray, q: Sequence[float] | np.ndarray) -> float:
    """`stats.js_divergence`, but NaN when a distribution is empty (a player that never predicted)."""
    try:
        return stats.js_divergence(p, q)
    except ValueError:
        return float("nan")

def prediction_divergence(rounds: pd.DataFrame) -> float:
    """JS divergence between the predicted and the actual partner-move distributions (rounds with a prediction)."""
    r = rounds.dropna(subset=["prediction"])
    if r.empty:
        return float("nan")
    moves = sorted(set(r["prediction"]) | set(r["partner_move"]))
    pred = r["prediction"].value_counts().reindex(moves, fill_value=0).to_numpy()
    actual = r["partner_move"].value_counts().reindex(moves, fill_value=0).to_numpy()
    return js_divergence(pred, actual)
