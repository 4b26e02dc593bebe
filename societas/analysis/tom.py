"""Theory-of-mind results: observer accuracy by category, the false-belief gap, and action-prediction divergence.

Reads the events table of runs of `tom-observer` (each question's record in the
`info` column) and `tom-gridworld` (each move's record).
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Sequence

import numpy as np
import pandas as pd

from societas.analysis.stats import bootstrap_ci, js_divergence

ACTIONS = ("stay", "up", "down", "left", "right")


def question_table(events: pd.DataFrame) -> pd.DataFrame:
    """One row per answered observer question: agent, policy, episode, and the record's fields."""
    rows = []
    for row in events.itertuples(index=False):
        info = getattr(row, "info", None)
        if not isinstance(info, str):
            continue
        rec = json.loads(info)
        if "category" not in rec or "gold" not in rec:
            continue
        rows.append({"agent": row.agent, "policy": row.policy, "phase": row.phase, "episode": row.episode,
                     "round": row.round, **rec})
    cols = ["agent", "policy", "phase", "episode", "round", "category", "question", "answer", "gold", "correct",
            "false_belief"]
    return pd.DataFrame(rows) if rows else pd.DataFrame(columns=cols)


def _ci(values: Sequence[float], seed: int) -> tuple[float, float, float]:
    x = np.asarray(values, dtype=float)
    if len(x) < 2 or np.all(x == x[0]):
        m = float(x.mean()) if len(x) else float("nan")
        return m, m, m
    return bootstrap_ci(x, n_resamples=2000, seed=seed)


def accuracy(questions: pd.DataFrame, by: Iterable[str] = ("agent", "category"), *, seed: int = 0) -> pd.DataFrame:
    """Accuracy per group with a 95% percentile bootstrap interval over questions."""
    keys = list(by)
    out = []
    for key, g in questions.groupby(keys, sort=True):
        est, lo, hi = _ci(g["correct"].astype(float).to_numpy(), seed)
        names = key if isinstance(key, tuple) else (key,)
        out.append({**dict(zip(keys, names, strict=True)), "n": len(g), "accuracy": est, "ci_low": lo, "ci_high": hi})
    return pd.DataFrame(out, columns=[*keys, "n", "accuracy", "ci_low", "ci_high"])


def false_belief_gap(questions: pd.DataFrame, by: Iterable[str] = ("agent",), *, seed: int = 0) -> pd.DataFrame:
    """Per group: accuracy on items that separate mind from reality, on the rest, and the gap (rest minus false)."""
    keys = list(by)
    out = []
    for key, g in questions.groupby(keys, sort=True):
        fb = g.loc[g["false_belief"].astype(bool), "correct"].astype(float).to_numpy()
        tb = g.loc[~g["false_belief"].astype(bool), "correct"].astype(float).to_numpy()
        f, t = _ci(fb, seed), _ci(tb, seed)
        names = key if isinstance(key, tuple) else (key,)
        out.append({**dict(zip(keys, names, strict=True)), "n_false": len(fb), "n_true": len(tb),
                    "false_belief_accuracy": f[0], "true_belief_accuracy": t[0], "gap": t[0] - f[0]})
    return pd.DataFrame(out)


def action_divergence(questions: pd.DataFrame, by: Iterable[str] = ("agent",)) -> pd.DataFrame:
    """Per group: JS divergence between predicted and actual next-move distributions (short-term intention)."""
    keys = list(by)
    moves = questions[questions["category"] == "short_term_intention"]
    out = []
    for key, g in moves.groupby(keys, sort=True):
        pred = [int((g["answer"] == a).sum()) for a in ACTIONS]
        real = [int((g["gold"] == a).sum()) for a in ACTIONS]
        names = key if isinstance(key, tuple) else (key,)
        out.append({**dict(zip(keys, names, strict=True)), "n": len(g), "js_divergence": js_divergence(pred, real)})
    return pd.DataFrame(out)
