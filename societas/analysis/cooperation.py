"""Cooperation, reciprocity, coordination and payoffs per agent, from an events DataFrame.

`agent_table` summarises each agent; the other functions read two-player
repeated matrix games round by round (see the note above `paired_rounds`).
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
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


# --------------------------------------------------------------------------- round-by-round metrics
#
# The functions below read the repeated-matrix-game columns of an events frame:
# one row per (episode, round, seat) with `option` (0 / 1, the canonical option),
# `cooperated` (True / False where the game has a cooperative option, missing
# otherwise) and `reward`. An episode is identified by (run_id, phase, episode)
# when the frame has a run_id column, else by (phase, episode); the partner's
# move in a round is the other seat's row of the same episode and round. Rows of
# rounds that do not have exactly two decisions (other games) are ignored.


def _episode_keys(events: pd.DataFrame) -> list[str]:
    return ["run_id", "phase", "episode"] if "run_id" in events else ["phase", "episode"]


def _as_float(series: pd.Series) -> pd.Series:
    """A boolean-like column (bool, object with None, pandas boolean) as 1.0 / 0.0 / NaN."""
    return pd.Series(series.astype("boolean").to_numpy(dtype=float, na_value=np.nan), index=series.index)


def paired_rounds(events: pd.DataFrame) -> pd.DataFrame:
    """Each two-player decision with the partner's move in the same round and both moves of the previous round.

    Columns: the episode keys, round, seat, agent, partner, option, cooperated
    (float: 1, 0 or NaN), reward, partner_option, partner_cooperated,
    prev_cooperated, prev_partner_cooperated (NaN in an episode's first round or
    when the previous round is missing). Sorted by episode, seat, round.
    """
    keys = _episode_keys(events)
    cols = [*keys, "round", "seat", "agent", "partner", "option", "cooperated", "reward"]
    ev = events.loc[events["option"].notna(), [c for c in cols if c in events]].copy()
    if "partner" not in ev:
        ev["partner"] = pd.NA
    ev["cooperated"] = _as_float(ev["cooperated"]) if "cooperated" in ev else np.nan
    ev["option"] = ev["option"].astype(float)
    rounds = ev.groupby([*keys, "round"], sort=False)
    two = (rounds["seat"].transform("size") == 2).to_numpy()
    ev = ev[two]
    # Each row's partner is the other row of its round: sorted by (round, seat) the two sit side by side,
    # at positions 2k and 2k+1 (a self-merge on the round keys did the same at several times the cost).
    seat = ev["seat"].to_numpy()
    order = np.lexsort((seat, rounds.ngroup().to_numpy()[two]))
    at = np.empty_like(order)
    at[order] = np.arange(len(order))
    other = order[at ^ 1]
    out = ev.assign(partner_option=ev["option"].to_numpy()[other],
                    partner_cooperated=ev["cooperated"].to_numpy()[other])[seat != seat[other]]
    out = out.sort_values([*keys, "seat", "round"], kind="stable").reset_index(drop=True)
    g = out.groupby([*keys, "seat"], sort=False)
    consecutive = g["round"].diff() == 1
    out["prev_cooperated"] = g["cooperated"].shift(1).where(consecutive)
    out["prev_partner_cooperated"] = g["partner_cooperated"].shift(1).where(consecutive)
    return out


def conditional_cooperation(events: pd.DataFrame) -> pd.DataFrame:
    """Per agent: cooperation conditional on the partner's move in the previous round.

    p_c_after_c = P(C_t | partner C_{t-1}) = (# rounds t >= 2 with own C and
    partner C at t-1) / (# rounds t >= 2 with partner C at t-1); p_c_after_d the
    same after a partner D. n_after_c / n_after_d are the denominators (NaN
    probability when 0). Tit-for-tat gives 1 and 0; unconditional players give
    the same value twice.
    """
    p = paired_rounds(events)
    p = p[p["cooperated"].notna() & p["prev_partner_cooperated"].notna()]
    rows = []
    for agent, d in p.groupby("agent", sort=True):
        after_c = d.loc[d["prev_partner_cooperated"] == 1, "cooperated"]
        after_d = d.loc[d["prev_partner_cooperated"] == 0, "cooperated"]
        rows.append({"agent": agent,
                     "p_c_after_c": float(after_c.mean()) if len(after_c) else np.nan, "n_after_c": len(after_c),
                     "p_c_after_d": float(after_d.mean()) if len(after_d) else np.nan, "n_after_d": len(after_d)})
    return pd.DataFrame(rows, columns=["agent", "p_c_after_c", "n_after_c", "p_c_after_d", "n_after_d"])


def reciprocity_forgiveness(events: pd.DataFrame, k: int = 2) -> pd.DataFrame:
    """Per agent: how it answers a partner's defection.

    reciprocity = P(D_t | partner D_{t-1}): among rounds t >= 2 after a partner
    defection, the share where the agent defects (1 - p_c_after_d of
    `conditional_cooperation`); reciprocity_n its denominator.
    forgiveness(k) = among the partner's defections at rounds s < R (R the
    episode's last round), the share after which the agent cooperates at least
    once in rounds s+1 .. min(s+k, R); forgiveness_n the number of such
    defections. With k = 1 forgiveness = 1 - reciprocity; with larger k it also
    credits agents that retaliate, then come back (tit-for-tat against a partner
    that returns to cooperation), while grim trigger scores 0.
    """
    if k < 1:
        raise ValueError(f"k must be at least 1, got {k}")
    p = paired_rounds(events)
    keys = _episode_keys(events)
    g = p.groupby([*keys, "seat"], sort=False)
    forgiven = pd.Series(False, index=p.index)
    for j in range(1, k + 1):
        later_round, later_c = g["round"].shift(-j), g["cooperated"].shift(-j)
        forgiven |= (later_round <= p["round"] + k) & (later_c == 1)
    provoked = (p["partner_cooperated"] == 0) & (p["round"] < g["round"].transform("max"))
    answered = (p["prev_partner_cooperated"] == 0) & p["cooperated"].notna()
    p = p.assign(_forgiven=forgiven.astype(float), _provoked=provoked,
                 _defect=1.0 - p["cooperated"], _answered=answered)
    rows = []
    for agent, d in p.groupby("agent", sort=True):
        r, f = d.loc[d["_answered"], "_defect"], d.loc[d["_provoked"], "_forgiven"]
        rows.append({"agent": agent,
                     "reciprocity": float(r.mean()) if len(r) else np.nan, "reciprocity_n": len(r),
                     "forgiveness": float(f.mean()) if len(f) else np.nan, "forgiveness_n": len(f)})
    return pd.DataFrame(rows, columns=["agent", "reciprocity", "reciprocity_n", "forgiveness", "forgiveness_n"])


def end_game_effect(events: pd.DataFrame, last: int = 1) -> pd.DataFrame:
    """Per agent: cooperation in the last `last` rounds of its episodes against the rounds before.

    A round is an end round when round > R - last, R the episode's last round.
    coop_last = mean cooperated over end rounds (n_last of them), coop_rest over
    the other rounds (n_rest); effect = coop_last - coop_rest (negative: the
    agent defects as the game ends). Rows without a cooperative option are ignored.
    """
    if last < 1:
        raise ValueError(f"last must be at least 1, got {last}")
    keys = _episode_keys(events)
    ev = events.assign(_c=_as_float(events["cooperated"]))
    end = ev["round"] > ev.groupby(keys)["round"].transform("max") - last
    ev = ev.assign(_end=end)[ev["_c"].notna()]
    rows = []
    for agent, d in ev.groupby("agent", sort=True):
        a, b = d.loc[d["_end"], "_c"], d.loc[~d["_end"], "_c"]
        cl = float(a.mean()) if len(a) else np.nan
        cr = float(b.mean()) if len(b) else np.nan
        rows.append({"agent": agent, "coop_last": cl, "n_last": len(a), "coop_rest": cr, "n_rest": len(b),
                     "effect": cl - cr})
    return pd.DataFrame(rows, columns=["agent", "coop_last", "n_last", "coop_rest", "n_rest", "effect"])


def cooperation_by_round(events: pd.DataFrame, by: str | Sequence[str] | None = "agent") -> pd.DataFrame:
    """Cooperation rate per round: mean of cooperated over the rows of each (by..., round).

    Columns: the `by` columns (none when by is None: all agents together),
    round, n (decisions with a cooperative option), cooperation_rate.
    """
    keys = [] if by is None else ([by] if isinstance(by, str) else list(by))
    ev = events.assign(_c=_as_float(events["cooperated"]))
    ev = ev[ev["_c"].notna()]
    out = ev.groupby([*keys, "round"], sort=True)["_c"].agg(["size", "mean"]).reset_index()
    return out.rename(columns={"size": "n", "mean": "cooperation_rate"})


def payoff_matrix(events: pd.DataFrame) -> pd.DataFrame:
    """Mean payoff per round of each agent (rows) against each partner (columns).

    cell[a, b] = mean of reward over the decisions of agent a whose partner was b
    (both seat orders and every episode pooled; self-play on the diagonal).
    Missing pairs are NaN. Rows and columns are sorted by name.
    """
    ev = events[events["partner"].notna()]
    m = ev.pivot_table(index="agent", columns="partner", values="reward", aggfunc="mean", sort=True)
    m.index.name, m.columns.name = "agent", "partner"
    return m


def coordination_rate(events: pd.DataFrame, by: str | Sequence[str] = "agent") -> pd.DataFrame:
    """Share of rounds in which both seats chose the same option (Battle of the Sexes coordination).

    Over each agent's two-player decisions: coordination_rate = (# rounds with
    option == partner_option) / rounds. Columns: the `by` columns (agent, or
    e.g. ("agent", "partner")), rounds, coordinated, coordination_rate.
    """
    keys = [by] if isinstance(by, str) else list(by)
    p = paired_rounds(events)
    p = p.assign(_same=(p["option"] == p["partner_option"]).astype(float))
    out = p.groupby(keys, sort=True)["_same"].agg(["size", "sum"]).reset_index()
    out = out.rename(columns={"size": "rounds", "sum": "coordinated"})
    out["coordinated"] = out["coordinated"].astype(int)
    out["coordination_rate"] = out["coordinated"] / out["rounds"]
    return out


def normalised_scores(events: pd.DataFrame, games: pd.DataFrame) -> pd.DataFrame:
    """The 144-game study's score per episode and seat: total / (rounds x the game's largest per-round payoff).

    `games` has one row per game with columns game (as in the events' game
    column), max_payoff (the largest points either player can win in one round)
    and optionally family. For each (episode, seat): total = sum of reward,
    rounds = number of its decisions, score = total / (rounds * max_payoff), in
    [0, 1] for non-negative payoffs. Columns: the episode keys, seat, agent,
    partner, game, family, rounds, total, max_payoff, score. Events of a game
    missing from `games` raise ValueError.
    """
    keys = _episode_keys(events)
    ev = events[events["game"].notna()]
    missing = sorted(set(ev["game"]) - set(games["game"]))
    if missing:
        shown = ", ".join(map(str, missing[:5])) + (" ..." if len(missing) > 5 else "")
        raise ValueError(f"games table has no row for {len(missing)} game(s) of the events: {shown}")
    g = ev.groupby([*keys, "seat"], sort=True)
    out = g.agg(agent=("agent", "first"), partner=("partner", "first"), game=("game", "first"),
                rounds=("reward", "size"), total=("reward", "sum")).reset_index()
    info = games[["game", "max_payoff", *(["family"] if "family" in games else [])]].drop_duplicates("game")
    out = out.merge(info, on="game", how="left")
    if "family" not in out:
        out["family"] = pd.NA
    out["score"] = out["total"] / (out["rounds"] * out["max_payoff"])
    return out[[*keys, "seat", "agent", "partner", "game", "family", "rounds", "total", "max_payoff", "score"]]


def family_scores(scores: pd.DataFrame, by: str | Sequence[str] = "agent") -> pd.DataFrame:
    """Mean normalised score per agent and game family, and over all games.

    From `normalised_scores`: score = mean of the per-episode scores in each
    (by..., family), with n episodes; family "all" pools every game (a mean over
    episodes, so families weigh by how many episodes they have).
    """
    keys = [by] if isinstance(by, str) else list(by)
    fam = scores.groupby([*keys, "family"], sort=True, dropna=False)["score"].agg(["size", "mean"]).reset_index()
    tot = scores.groupby(keys, sort=True)["score"].agg(["size", "mean"]).reset_index().assign(family="all")
    out = pd.concat([fam, tot[fam.columns]], ignore_index=True)
    out = out.rename(columns={"size": "n", "mean": "score"})
    return out.sort_values([*keys], kind="stable").reset_index(drop=True)
