"""The naming game: time to consensus, the convention's share over time, which names won, committed minorities.

One run: a row per condition (the number of names, a prefilled "swap" memory,
the players' policies) with how many runs reached consensus and how long it
took in population rounds, the winning names across runs, and, where a
committed minority played, how far the others adopted its name. A sweep over
minority sizes (`committed_minority`) is read across its runs: the chance that
the convention flips at each size, and the critical minority.
"""

from __future__ import annotations

import json

import numpy as np
import pandas as pd

from societas.analysis.load import Run
from societas.analysis.norms.naming import (
    adoption,
    critical_minority,
    interactions,
    time_to_consensus,
    winner_distribution,
    winning_convention,
)
from societas.analysis.report_html import figure, naming_plots, plots
from societas.analysis.sections import Section, SectionView, Table, agent_standing, has_env, register
from societas.analysis.validity import Standing, standing

ENV = "naming-game"
_COMMITTED = "committed"


def _keys(events: pd.DataFrame) -> list[str]:
    return ["run_id", "phase", "episode"] if "run_id" in events else ["phase", "episode"]


def conditions(events: pd.DataFrame, episodes: pd.DataFrame | None = None) -> pd.DataFrame:
    """Per episode: its condition label (W names, prefill, the players' policies) and its committed players."""
    keys = _keys(events)
    ev = events[events["env"] == ENV] if "env" in events else events
    per = ev.groupby(keys, sort=True).agg(
        policies=("policy", lambda s: " + ".join(sorted({str(p).split(":", 1)[-1] for p in s}))),
        names=("action", "nunique")).reset_index()
    committed = (ev[ev["policy"].astype(str).str.contains(_COMMITTED)].groupby(keys)["agent"].nunique()
                 .rename("committed"))
    per = per.merge(committed.reset_index(), on=keys, how="left")
    per["committed"] = per["committed"].fillna(0).astype(int)
    per["w"], per["prefill"] = np.nan, None
    if episodes is not None and not episodes.empty and "summary" in episodes:
        facts = episodes.drop_duplicates(["phase", "episode"]).copy()
        parsed = [json.loads(s) if isinstance(s, str) else {} for s in facts["summary"]]
        facts["w"] = [p.get("names", np.nan) for p in parsed]
        facts["prefill"] = [p.get("prefill") for p in parsed]
        per = per.drop(columns=["w", "prefill"]).merge(facts[["phase", "episode", "w", "prefill"]],
                                                       on=["phase", "episode"], how="left")
    w = per["w"].where(per["w"].notna(), per["names"])
    per["condition"] = [f"W={int(x)}" + (f", swap from {p}" if p else "") + f": {pol}"
                        for x, p, pol in zip(w, per["prefill"], per["policies"], strict=True)]
    return per[[*keys, "condition", "committed"]]


def consensus_table(events: pd.DataFrame, cond: pd.DataFrame) -> pd.DataFrame:
    """Per condition: runs, share reaching consensus, time to consensus in population rounds, success rate."""
    keys = _keys(events)
    t = time_to_consensus(events).merge(cond, on=keys, how="left")
    pairs = interactions(events)
    success = pairs.groupby(keys)["success"].mean().rename("success").reset_index()
    t = t.merge(success, on=keys, how="left")
    rows = []
    for label, g in t.groupby("condition", sort=True):
        r = g["consensus_rounds"].dropna()
        rows.append({"condition": label, "n_agents": int(g["n_agents"].max()), "runs": len(g),
                     "consensus": float(g["consensus"].mean()),
                     "median": r.median() if len(r) else np.nan, "p10": r.quantile(0.1) if len(r) else np.nan,
                     "p90": r.quantile(0.9) if len(r) else np.nan, "mean": r.mean() if len(r) else np.nan,
                     "length": float((g["interactions"] / g["n_agents"]).median()), "success": g["success"].mean()})
    return pd.DataFrame(rows)


def winner_share(events: pd.DataFrame) -> pd.DataFrame:
    """Per episode and population round: the share of answers that were the episode's winning name,
    held at its last value up to the longest episode (a run that stopped at consensus stays there)."""
    keys = _keys(events)
    pairs = interactions(events)
    if pairs.empty:
        return pd.DataFrame(columns=[*keys, "population_round", "share"])
    won = winning_convention(events).set_index(keys)["convention"]
    pairs = pairs.join(won.rename("winner"), on=keys)
    hits = (pairs["action_a"] == pairs["winner"]).astype(float) + (pairs["action_b"] == pairs["winner"])
    share = (pairs.assign(hits=hits / 2).groupby([*keys, "population_round"])["hits"].mean()
             .rename("share").unstack("population_round"))
    share = share.T.ffill().T
    return share.stack().rename("share").reset_index()


def minority_adoption(events: pd.DataFrame) -> tuple[pd.DataFrame, dict[str, float], str | None]:
    """Adoption of the committed name among the others in each episode's last population round, the
    flip chance per minority size, and the critical size; the committed name is what committed players said."""
    said = events.loc[events["policy"].astype(str).str.contains(_COMMITTED), "action"]
    if said.empty:
        return pd.DataFrame(), {"critical": np.nan, "low": np.nan, "high": np.nan}, None
    new = str(said.value_counts().index[0])
    table = adoption(events, new)
    curve, critical = critical_minority(table)
    n = table.groupby("committed")["n_agents"].max()
    curve["fraction"] = curve["committed"] / curve["committed"].map(n)
    return curve, critical, new


def build(run: Run) -> SectionView:
    ev = run.events[run.events["env"] == ENV]
    st = agent_standing(run)
    cond = conditions(ev, run.episodes)
    table = consensus_table(ev, cond)
    winners = winner_distribution(ev)
    w_names = int(ev["action"].nunique())
    tables = [
        Table(key="naming-consensus", title="time to consensus per condition", frame=table, standing=st,
              columns={"condition": ("condition", "text"), "n_agents": ("N", "int"), "runs": ("runs", "int"),
                       "consensus": ("reached consensus", "pct"), "median": ("median rounds", "num1"),
                       "p10": ("10%", "num1"), "p90": ("90%", "num1"), "mean": ("mean", "num1"),
                       "length": ("median run length", "num1"), "success": ("success rate", "pct1")},
              notes="time to consensus, as Ashery, Aiello & Baronchelli (2025) count it: the interactions until "
                    "the last 3N all succeeded, in population rounds of N interactions (median, 10% and 90% over "
                    "the runs that reached it); run length: population rounds played; success rate: interactions "
                    "whose two names agreed"),
        Table(key="naming-winners", title="winning names across runs", frame=winners, standing=st,
              columns={"convention": ("name", "text"), "runs": ("runs", "int"), "share": ("share of runs", "pct"),
                       "ci_low": ("95% low", "pct"), "ci_high": ("95% high", "pct")},
              notes="the most used name over each run's last 3N interactions, among the runs that reached "
                    f"consensus; a name with no bias would win 1/W of them ({w_names} names were said); interval: "
                    "Clopper-Pearson"),
    ]
    curve, critical, new = minority_adoption(ev)
    if new is not None:
        tables.append(_minority_table(curve, critical, new, st))
    return SectionView(key="naming", title="Naming game", standing=st, tables=tables,
                       intro="Pairs of players name something at once; whether one name becomes the "
                             "population's convention, how fast, and which.",
                       data={"share": winner_share(ev).merge(cond, on=_keys(ev), how="left"),
                             "consensus": time_to_consensus(ev).merge(cond, on=_keys(ev), how="left"),
                             "winners": winners, "names": w_names, "minority": curve, "critical": critical,
                             "new_name": new})


def critical_sentence(curve: pd.DataFrame, critical: dict[str, float]) -> str:
    """The critical minority in words: its size, its fraction, and the sizes the interval brackets."""
    def size(x: float) -> str:
        if x != x:
            return "none of the sizes played"
        n = curve.loc[curve["committed"] == x, "fraction"]
        return f"{int(x)}" + (f" ({float(n.iloc[0]):.1%})" if len(n) else "")

    return (f"critical minority (the smallest size whose runs flip at least half the time): "
            f"{size(critical['critical'])}; by the 95% intervals between {size(critical['low'])} and "
            f"{size(critical['high'])}")


def _minority_table(curve: pd.DataFrame, critical: dict[str, float], new: str, st: Standing) -> Table:
    notes = (f"committed players always say {new}; adoption: the share of the other players' answers that were "
             f"{new} in each run's last population round; flip: a run ending with adoption >= 95%, interval "
             f"Clopper-Pearson over runs; {critical_sentence(curve, critical)}")
    return Table(key="naming-minority", title="adoption against the committed minority", frame=curve, standing=st,
                 columns={"committed": ("committed", "int"), "fraction": ("fraction", "pct1"), "runs": ("runs", "int"),
                          "mean_adoption": ("mean adoption", "pct1"), "flip_rate": ("flip chance", "pct"),
                          "ci_low": ("95% low", "pct"), "ci_high": ("95% high", "pct")},
                 notes=notes)


def sweep_view(events: pd.DataFrame) -> SectionView | None:
    """A committed-minority sweep read across its runs (None when it holds no committed players)."""
    ev = events[events["env"] == ENV] if "env" in events else events
    curve, critical, new = minority_adoption(ev)
    if new is None:
        return None
    st = standing(ev)
    return SectionView(key="naming-sweep", title="Committed minority across runs", standing=st,
                       tables=[_minority_table(curve, critical, new, st)],
                       intro=critical_sentence(curve, critical)[0].upper() + critical_sentence(curve, critical)[1:],
                       data={"minority": curve, "critical": critical, "new_name": new})


def figures(run: Run, view: SectionView) -> str:
    """The winning name's share over time, time to consensus, the winning names, and adoption of a minority's."""
    share, times, winners = view.data.get("share"), view.data.get("consensus"), view.data.get("winners")
    if share is None or share.empty:
        return ""
    out = figure(lambda: naming_plots().convention_share(share),
                 "Share of the answers in each population round (N interactions) that named the run's winning "
                 "name (the most used over its last 3N interactions); line: median over runs, band: 10-90% of "
                 "runs. A run that stopped at consensus is held at its last value.", "convention share over time")
    if times is not None and times["consensus"].any():
        out += figure(lambda: naming_plots().consensus_times(times),
                      "Population rounds until the last 3N interactions all succeeded, per run; dashed: the "
                      "median.", "time to consensus")
    if winners is not None and not winners.empty:
        w = view.data.get("names") or len(winners)
        out += figure(lambda: plots().accuracy_bars(winners, "convention", "share", "ci_low", "ci_high", chance=1 / w,
                                                    title="Winning names across runs"),
                      "Share of the runs that reached consensus won by each name; whiskers: 95% Clopper-Pearson "
                      "interval; dashed: 1/W, the share with no collective bias.", "winning names")
    if view.data.get("new_name") is not None:
        out += adoption_figure(view)
    return out


def adoption_figure(view: SectionView) -> str:
    """The flip chance and mean adoption against the committed minority's size (a run's view or `sweep_view`)."""
    curve, critical = view.data["minority"], view.data["critical"]
    return figure(lambda: naming_plots().adoption_curve(curve, critical["critical"], view.data["new_name"]),
                  "Per committed-minority size: the share of runs whose other players ended (last population "
                  "round) with at least 95% adoption of the committed name, with its 95% Clopper-Pearson band, "
                  "and their mean adoption; dotted: the critical minority, the smallest size flipping half the "
                  "runs.", "adoption against the committed minority")


COLUMNS = ("run_id", "env", "round", "agent", "partner", "policy", "action", "valid", "model")

register(Section(key="naming", title="Naming game", applies=has_env(ENV), build=build, columns=COLUMNS,
                 figures=figures))
