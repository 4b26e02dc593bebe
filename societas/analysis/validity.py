"""What a finding stands on: the share of an agent's decisions that were invalid fallbacks.

When a model's reply never parsed, the environment's default action was
played and recorded as invalid. A table built on such decisions describes the
default, not the agent: above `FALLBACK_LIMIT` a finding about that agent is
marked as not interpretable, in words, wherever it is shown (`societas
analyze`, the report, the run summary).
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass

import pandas as pd

from societas.types import FALLBACK_LIMIT

__all__ = ["FALLBACK_LIMIT", "Standing", "standing", "who"]
MAX_NAMED = 8
"""More agents than this are grouped by member name ("human-1", "human-2", ... -> "human")."""

_MEMBER = re.compile(r"-\d+$")


@dataclass(frozen=True, slots=True)
class Standing:
    """The fallback shares behind one table or section, and the sentences that say what they mean."""

    shares: pd.DataFrame
    """One row per agent (or member group): who, decisions, fallbacks, share."""
    decisions: int
    fallbacks: int

    @property
    def share(self) -> float:
        return self.fallbacks / self.decisions if self.decisions else 0.0

    @property
    def failing(self) -> pd.DataFrame:
        """The rows above the limit, worst first."""
        return self.shares[self.shares["share"] > FALLBACK_LIMIT].sort_values("share", ascending=False)

    @property
    def interpretable(self) -> bool:
        return self.failing.empty

    def summary(self) -> str:
        """One line: the overall share, then each agent that took a model's answers (or fell back at all)."""
        if not self.decisions:
            return "invalid fallbacks: no decisions"
        shown = self.shares[(self.shares["model_decisions"] > 0) | (self.shares["fallbacks"] > 0)]
        detail = ", ".join(f"{r.who} {_pct(r.share)}" for r in shown.itertuples())
        return (f"invalid fallbacks (no usable answer, the environment's default played): {_pct(self.share)} of "
                f"{self.decisions:,} decisions" + (f"; {detail}" if detail else ""))

    def warnings(self) -> list[str]:
        """"not interpretable: 100% of lm's decisions are fallbacks", one per agent above the limit."""
        return [f"not interpretable: {_pct(r.share)} of {r.who}'s decisions are fallbacks (limit "
                f"{FALLBACK_LIMIT:.0%})" for r in self.failing.itertuples()]

    def verdict(self, who: str) -> str:
        """'' when the agent's findings stand, else "not interpretable (N% fallbacks)"."""
        row = self.shares[self.shares["who"] == who]
        if row.empty or float(row["share"].iloc[0]) <= FALLBACK_LIMIT:
            return ""
        return f"not interpretable ({_pct(float(row['share'].iloc[0]))} fallbacks)"


def _pct(x: float) -> str:
    return f"{x:.0%}" if x == 0 or x >= 0.01 else f"{x:.1%}"


def who(events: pd.DataFrame) -> pd.Series:
    """The name findings are reported under: the agent, or its member group when there are many agents."""
    agents = events["agent"].astype(str)
    if agents.nunique() <= MAX_NAMED:
        return agents
    codes, names = pd.factorize(agents, use_na_sentinel=False)  # the pattern once per name, not per decision
    short = pd.Series(names, dtype=agents.dtype).str.replace(_MEMBER, "", regex=True)
    return pd.Series(short.to_numpy()[codes], index=agents.index, dtype=agents.dtype, name=agents.name)


def standing(events: pd.DataFrame, agents: Iterable[str] | None = None) -> Standing:
    """The fallback shares of `agents`' decisions (all agents when None), per agent or member group."""
    ev = events
    if agents is not None:
        ev = ev[ev["agent"].isin(set(agents))]
    if ev.empty:
        empty = pd.DataFrame(columns=["who", "decisions", "model_decisions", "fallbacks", "share"])
        return Standing(shares=empty, decisions=0, fallbacks=0)
    invalid = ~ev["valid"].astype(bool)
    model = ev["model"].notna() if "model" in ev else pd.Series(False, index=ev.index)
    frame = pd.DataFrame({"who": who(ev), "invalid": invalid.astype(int), "model": model.astype(int)})
    shares = frame.groupby("who", sort=True).agg(decisions=("invalid", "size"), model_decisions=("model", "sum"),
                                                fallbacks=("invalid", "sum")).reset_index()
    shares["share"] = shares["fallbacks"] / shares["decisions"]
    return Standing(shares=shares, decisions=len(ev), fallbacks=int(invalid.sum()))
