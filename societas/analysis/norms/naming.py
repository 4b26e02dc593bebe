"""Conventions in naming games, from any events frame whose actions are choices.

Each interaction is one (episode, round) with two rows (the two seats); it
succeeds when both chose the same action. Time is counted in population rounds
of N interactions (N = the agents seen in the episode unless given), as in
Ashery, Aiello & Baronchelli (2025): a run reaches consensus when its last 3N
interactions all succeed, and its convention is the most used name in that
final window. An episode is identified by (run_id, phase, episode) when the
frame has a run_id column, else by (phase, episode).
"""

from __future__ import annotations

from collections.abc import Collection

import numpy as np
import pandas as pd


def _keys(events: pd.DataFrame) -> list[str]:
    return ["run_id", "phase", "episode"] if "run_id" in events else ["phase", "episode"]


def _population(events: pd.DataFrame, n_agents: int | None) -> pd.Series:
    """N per episode: given, or the number of distinct agents seen in it."""
    keys = _keys(events)
    counts = events.groupby(keys, sort=True)["agent"].nunique()
    return counts if n_agents is None else counts * 0 + int(n_agents)


def interactions(events: pd.DataFrame, n_agents: int | None = None) -> pd.DataFrame:
    """One row per two-seat interaction: the two actions, success, its index in
    the episode (`t`, from 0) and its population round (`t // N`). Rounds that do
    not have exactly two decisions are ignored.
    """
    keys = _keys(events)
    columns = [*keys, "round", "t", "population_round", "n_agents", "action_a", "action_b", "success"]
    if events.empty:
        return pd.DataFrame(columns=columns)
    ev = events.sort_values([*keys, "round", "seat"], kind="stable")
    sizes = ev.groupby([*keys, "round"], sort=False)["seat"].transform("size")
    ev = ev[sizes == 2]
    first = ev.groupby([*keys, "round"], sort=True).nth(0)
    second = ev.groupby([*keys, "round"], sort=True).nth(1)
    pairs = first[[*keys, "round"]].reset_index(drop=True)
    pairs["action_a"] = first["action"].to_numpy()
    pairs["action_b"] = second["action"].to_numpy()
    pairs["success"] = pairs["action_a"] == pairs["action_b"]
    pairs["t"] = pairs.groupby(keys, sort=False).cumcount()
    n = _population(events, n_agents).rename("n_agents").reset_index()
    pairs = pairs.merge(n, on=keys, how="left")
    pairs["population_round"] = pairs["t"] // pairs["n_agents"]
    return pairs[columns]


def convention_share(events: pd.DataFrame, n_agents: int | None = None) -> pd.DataFrame:
    """Per episode and population round: the most used action and its share of
    the answers given in that round."""
    keys = _keys(events)
    pairs = interactions(events, n_agents)
    if pairs.empty:
        return pd.DataFrame(columns=[*keys, "population_round", "convention", "share"])
    answers = pd.concat([
        pairs[[*keys, "population_round", "action_a"]].rename(columns={"action_a": "action"}),
        pairs[[*keys, "population_round", "action_b"]].rename(columns={"action_b": "action"}),
    ])
    counts = answers.groupby([*keys, "population_round", "action"]).size().rename("count").reset_index()
    totals = counts.groupby([*keys, "population_round"])["count"].transform("sum")
    counts["share"] = counts["count"] / totals
    counts = counts.sort_values([*keys, "population_round", "count", "action"],
                                ascending=[*[True] * len(keys), True, False, True], kind="stable")
    top = counts.groupby([*keys, "population_round"], sort=True).head(1)
    return top.rename(columns={"action": "convention"})[[*keys, "population_round", "convention", "share"]] \
        .reset_index(drop=True)


def success_rate(events: pd.DataFrame, n_agents: int | None = None) -> pd.DataFrame:
    """Per episode and population round: the share of interactions that succeeded."""
    keys = _keys(events)
    pairs = interactions(events, n_agents)
    if pairs.empty:
        return pd.DataFrame(columns=[*keys, "population_round", "success_rate"])
    out = pairs.groupby([*keys, "population_round"])["success"].mean().rename("success_rate")
    return out.reset_index()


def _consensus_index(success: np.ndarray, window: int) -> int | None:
    """The first interaction index at which the last `window` interactions all succeeded."""
    if len(success) < window:
        return None
    run = 0
    for i, ok in enumerate(success):
        run = run + 1 if ok else 0
        if run >= window:
            return i
    return None


def time_to_consensus(events: pd.DataFrame, n_agents: int | None = None, window_rounds: int = 3) -> pd.DataFrame:
    """Per episode: whether it reached consensus (`window_rounds` x N consecutive
    successes), the interactions it took (the index of the last one of the window,
    plus one) and that time in population rounds; missing where it did not."""
    keys = _keys(events)
    pairs = interactions(events, n_agents)
    rows = []
    for key, ep in pairs.groupby(keys, sort=True):
        n = int(ep["n_agents"].iloc[0])
        at = _consensus_index(ep["success"].to_numpy(), window_rounds * n)
        rows.append({**dict(zip(keys, key, strict=True)), "n_agents": n, "interactions": len(ep),
                     "consensus": at is not None,
                     "consensus_interactions": np.nan if at is None else at + 1,
                     "consensus_rounds": np.nan if at is None else (at + 1) / n})
    return pd.DataFrame(rows, columns=[*keys, "n_agents", "interactions", "consensus",
                                       "consensus_interactions", "consensus_rounds"])


def winning_convention(events: pd.DataFrame, n_agents: int | None = None, window_rounds: int = 3) -> pd.DataFrame:
    """Per episode: the most used action over its last `window_rounds` x N
    interactions (ties to the alphabetically first), its share there, and whether
    the episode reached consensus."""
    keys = _keys(events)
    pairs = interactions(events, n_agents)
    reached = time_to_consensus(events, n_agents, window_rounds).set_index(keys)["consensus"]
    rows = []
    for key, ep in pairs.groupby(keys, sort=True):
        n = int(ep["n_agents"].iloc[0])
        tail = ep.tail(window_rounds * n)
        said = pd.concat([tail["action_a"], tail["action_b"]]).value_counts()
        said = said.sort_index(kind="stable").sort_values(ascending=False, kind="stable")
        rows.append({**dict(zip(keys, key, strict=True)), "convention": said.index[0],
                     "share": float(said.iloc[0] / said.sum()), "consensus": bool(reached.loc[key])})
    return pd.DataFrame(rows, columns=[*keys, "convention", "share", "consensus"])


def winner_distribution(events: pd.DataFrame, n_agents: int | None = None, window_rounds: int = 3,
                        consensus_only: bool = True) -> pd.DataFrame:
    """How often each action won across episodes (collective bias), with a 95%
    Clopper-Pearson interval on its share of the episodes."""
    from scipy.stats import binomtest  # imported on use: scipy.stats takes seconds
    won = winning_convention(events, n_agents, window_rounds)
    if consensus_only:
        won = won[won["consensus"]]
    total = len(won)
    counts = won["convention"].value_counts().sort_index().sort_values(ascending=False, kind="stable")
    rows = []
    for name, k in counts.items():
        ci = binomtest(int(k), total).proportion_ci(0.95)
        rows.append({"convention": name, "runs": int(k), "share": k / total,
                     "ci_low": ci.low, "ci_high": ci.high})
    return pd.DataFrame(rows, columns=["convention", "runs", "share", "ci_low", "ci_high"])


def adoption(events: pd.DataFrame, new_name: str, committed: Collection[str] | None = None,
             last_rounds: int = 1, n_agents: int | None = None) -> pd.DataFrame:
    """Per episode: the share of the non-committed agents' answers that were
    `new_name` over the last `last_rounds` population rounds. Committed agents are
    those named in `committed`, or else those whose policy name contains
    "committed"."""
    keys = _keys(events)
    ev = events
    if committed is None:
        is_committed = ev["policy"].astype(str).str.contains("committed") if "policy" in ev else False
    else:
        is_committed = ev["agent"].isin(list(committed))
    rows = []
    for key, ep in ev.assign(_committed=is_committed).groupby(keys, sort=True):
        n = int(n_agents or ep["agent"].nunique())
        rounds = np.sort(ep["round"].unique())
        tail_rounds = set(rounds[-last_rounds * n:])
        rest = ep[~ep["_committed"] & ep["round"].isin(tail_rounds)]
        share = float((rest["action"] == new_name).mean()) if len(rest) else np.nan
        rows.append({**dict(zip(keys, key, strict=True)),
                     "committed": int(ep.loc[ep["_committed"], "agent"].nunique()),
                     "n_agents": n, "adoption": share})
    return pd.DataFrame(rows, columns=[*keys, "committed", "n_agents", "adoption"])


def critical_minority(table: pd.DataFrame, size: str = "committed", value: str = "adoption",
                      threshold: float = 0.95, level: float = 0.5) -> tuple[pd.DataFrame, dict[str, float]]:
    """The chance that the convention flips (adoption >= `threshold`) per minority
    size, with a 95% Clopper-Pearson interval across runs, and the critical size:
    the smallest size whose flip chance reaches `level`, bracketed by the
    smallest sizes whose interval's upper and lower ends reach it (NaN where none).
    """
    from scipy.stats import binomtest  # imported on use: scipy.stats takes seconds
    rows = []
    for s, runs in table.groupby(size, sort=True):
        flips = int((runs[value] >= threshold).sum())
        ci = binomtest(flips, len(runs)).proportion_ci(0.95)
        rows.append({size: s, "runs": len(runs), "flips": flips, "flip_rate": flips / len(runs),
                     "ci_low": ci.low, "ci_high": ci.high, "mean_adoption": float(runs[value].mean())})
    curve = pd.DataFrame(rows, columns=[size, "runs", "flips", "flip_rate", "ci_low", "ci_high", "mean_adoption"])

    def first(column: str) -> float:
        hit = curve.loc[curve[column] >= level, size]
        return float(hit.iloc[0]) if len(hit) else float("nan")

    return curve, {"critical": first("flip_rate"), "low": first("ci_high"), "high": first("ci_low")}
