"""Donor-game metrics per generation (Vallinder & Hughes 2024), from a run's tables.

Generations are numbered from 1, as in the prompts and the paper (phase + 1).
Inputs are the DataFrames of `load_run`: `events` (one row per donation
decision, with the environment's record of it in the `info` JSON column),
`episodes` (per seat and generation: final resources, reputation, strategy)
and `lineage` (who lived in which generation, and who survived).

Formulas, per generation and society:
- resources: mean over agents of their final resources summed over the
  generation's games, divided by the number of games (the paper's "average
  final resources");
- donated fraction: mean of amount / donor's resources over donation decisions
  (punishments and refusals count as 0);
- cooperation rate: share of donation decisions giving more than 0;
- indirect reciprocity: Pearson correlation between the recipient's reputation
  at the time and the fraction donated (NaN when either is constant);
- punishment rate: share of decisions that punished;
- strategy diversity: distinct strategies / members (1 = all different).
Across societies (seeds), `across_societies` gives the mean and a t-based
confidence interval per generation.
"""

from __future__ import annotations

import json

import numpy as np
import pandas as pd


def decisions(events: pd.DataFrame) -> pd.DataFrame:
    """Donation decisions with the environment's record expanded into columns."""
    ev = events[(events["env"] == "donor-game") & events["info"].notna()]
    records = pd.DataFrame([json.loads(x) for x in ev["info"]], index=ev.index)
    records = records.drop(columns=[c for c in ("round", "phase", "generation") if c in records])
    out = pd.concat([ev[["phase", "episode", "round", "agent", "partner", "valid", "retries", "value"]], records],
                    axis=1)
    out = out[out["kind"].isin(["donate", "punish", "refuse"])].rename(columns={"episode": "society"})
    return out.assign(generation=out.pop("phase") + 1)


def episode_facts(episodes: pd.DataFrame) -> pd.DataFrame:
    """The episodes table with the donor game's per-agent summary expanded."""
    facts = pd.DataFrame([json.loads(x) if x else {} for x in episodes["summary"]], index=episodes.index)
    facts = facts.drop(columns=[c for c in ("generation", "phase") if c in facts])  # the run's own numbering wins
    out = pd.concat([episodes[["phase", "episode", "seat", "agent", "policy", "total_reward"]], facts], axis=1)
    out = out.rename(columns={"episode": "society"})
    return out.assign(generation=out.pop("phase") + 1)


def _corr(x: pd.Series, y: pd.Series) -> float:
    ok = x.notna() & y.notna()
    if ok.sum() < 3 or x[ok].nunique() < 2 or y[ok].nunique() < 2:
        return float("nan")
    return float(np.corrcoef(x[ok].astype(float), y[ok].astype(float))[0, 1])


def generation_table(events: pd.DataFrame, episodes: pd.DataFrame) -> pd.DataFrame:
    """One row per (generation, society) with the metrics in the module docstring."""
    facts = episode_facts(episodes)
    dec = decisions(events)
    rows = []
    for (gen, soc), f in facts.groupby(["generation", "society"], sort=True):
        d = dec[(dec["generation"] == gen) & (dec["society"] == soc)]
        games = max(1, len(f["final_resources"].iloc[0]) if isinstance(f["final_resources"].iloc[0], list) else 1)
        frac = d["fraction"].where(d["kind"] == "donate", 0.0).astype(float)
        rows.append({
            "generation": int(gen),
            "society": int(soc),
            "resources": float(f["total_final_resources"].mean()) / games,
            "donated_fraction": float(frac.mean()) if len(d) else float("nan"),
            "cooperation_rate": float((d["kind"].eq("donate") & (d["amount"] > 0)).mean()) if len(d) else float("nan"),
            "reciprocity": _corr(d.get("recipient_reputation", pd.Series(dtype=float)), frac),
            "punishment_rate": float(d["kind"].eq("punish").mean()) if len(d) else float("nan"),
            "refusal_rate": float(d["kind"].eq("refuse").mean()) if len(d) else float("nan"),
            "strategy_diversity": f["strategy"].nunique() / len(f),
            "invalid_rate": float((~d["valid"]).mean()) if len(d) else float("nan"),
        })
    return pd.DataFrame(rows)


def across_societies(table: pd.DataFrame, metric: str = "resources", confidence: float = 0.95,
                     floor: float | None = None) -> pd.DataFrame:
    """Mean of a metric per generation over societies (seeds), with a t confidence interval.

    `floor` cuts the interval at the metric's lowest possible value (0 for
    resources, which cannot go negative): the t interval is symmetric and
    would otherwise reach below it.
    """
    from scipy import stats  # imported on use: it takes seconds
    out = []
    for gen, g in table.groupby("generation", sort=True):
        x = g[metric].dropna().to_numpy(dtype=float)
        mean = float(x.mean()) if len(x) else float("nan")
        if len(x) > 1 and x.std(ddof=1) > 0:
            half = stats.t.ppf(0.5 + confidence / 2, len(x) - 1) * x.std(ddof=1) / np.sqrt(len(x))
        else:
            half = 0.0 if len(x) else float("nan")
        low = mean - half if floor is None else max(mean - half, floor)
        out.append({"generation": int(gen), "n": len(x), "mean": mean, "ci_low": low, "ci_high": mean + half})
    return pd.DataFrame(out)


def strategy_shares(lineage: pd.DataFrame) -> pd.DataFrame:
    """Share of each policy in the population per generation (the selection dynamics)."""
    counts = lineage.groupby(["phase", "policy"]).size().unstack(fill_value=0)
    shares = counts.div(counts.sum(axis=1), axis=0)
    shares.index = shares.index + 1
    shares.index.name = "generation"
    shares.columns.name = None
    return shares.reset_index()


def strategies_by_generation(lineage: pd.DataFrame) -> pd.DataFrame:
    """The strategy texts alive in each generation, with their authors and whether they survived."""
    cols = ["phase", "society", "agent", "policy", "strategy", "total_reward", "survived"]
    out = lineage[cols].rename(columns={"phase": "generation"})
    return out.assign(generation=out["generation"] + 1)
