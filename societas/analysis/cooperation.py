"""Cooperation and payoff per agent, from an events DataFrame."""

from __future__ import annotations

import pandas as pd


def agent_table(events: pd.DataFrame) -> pd.DataFrame:
    """Per agent: decisions, cooperation rate (rounds with the cooperative option
    / rounds where the game defines one), mean payoff per round, total payoff per
    episode, invalid-action rate. One row per agent, sorted by mean payoff.
    """
    if events.empty:
        return pd.DataFrame(columns=["agent", "policy", "decisions", "cooperation_rate",
                                     "mean_payoff", "payoff_per_episode", "invalid_rate"])
    g = events.groupby("agent", sort=False)
    coop = events.dropna(subset=["cooperated"]).groupby("agent")["cooperated"].mean()
    episodes = events.groupby("agent")[["phase", "episode", "seat"]].apply(
        lambda d: len(d.drop_duplicates()))
    table = pd.DataFrame({
        "policy": g["policy"].first(),
        "decisions": g.size(),
        "cooperation_rate": coop.astype(float),
        "mean_payoff": g["reward"].mean(),
        "payoff_per_episode": g["reward"].sum() / episodes,
        "invalid_rate": 1.0 - g["valid"].mean(),
    })
    return table.sort_values("mean_payoff", ascending=False).reset_index(names="agent")
