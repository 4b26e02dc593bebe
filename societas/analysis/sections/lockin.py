"""The feedback loop (lock-in): the humans' spread of stances over time, and which runs locked in."""

from __future__ import annotations

import pandas as pd

from societas.analysis.load import Run
from societas.analysis.lockin import DEFAULT_THRESHOLD, analyze_run, decisions, diversity_over_time
from societas.analysis.report_html import figure, plots
from societas.analysis.sections import Section, SectionView, Table, agent_standing, has_env, register


def build(run: Run) -> SectionView:
    st = agent_standing(run)
    rounds, lock, params = analyze_run(run.events, run.episodes)
    tables: list[Table] = []
    if lock.empty:
        return SectionView(key="lockin", title="Diversity and lock-in", tables=[], standing=st,
                           intro="No finished episode on disk.")
    # A lock-in found in fallbacks is the default stance repeated, not a belief converging: say so in the cell.
    caveat = "" if st.interpretable else " (not interpretable)"
    over = diversity_over_time(rounds, params)
    rho = {s: float("nan") if v is None else float(v) for s, v in zip(params["setting"], params["spectral_radius"])}
    frame = over.reset_index().rename(columns={c: f"r{c}" for c in over.columns})
    frame.columns.name = None
    frame.insert(1, "rho", frame["setting"].map(rho))
    tables.append(Table(key="spread", title="feedback loop, stance spread / reading spread by round (mean over "
                        "episodes and questions)", frame=frame,
                        columns={"setting": ("setting", "text"), "rho": ("rho(W)", "num3")}
                        | {c: (c, "g2") for c in frame.columns if c.startswith("r") and c[1:].isdigit()},
                        standing=st))
    by_setting = lock.groupby("setting", sort=False).agg(
        episodes=("episode", "nunique"), locked_in=("locked_in", "mean"), lockin_round=("lockin_round", "median"),
        final_spread=("final_relative_diversity", "mean"),
        consensus_error=("final_consensus_error", "mean")).reset_index()
    if caveat:
        by_setting["locked_in"] = [f"{x:.0%}{caveat}" for x in by_setting["locked_in"]]
    tables.append(Table(key="by_setting", title="per setting: share of runs that locked in", frame=by_setting,
                        columns={"setting": ("setting", "text"), "episodes": ("episodes", "int"),
                                 "locked_in": ("locked in", "text" if caveat else "pct"),
                                 "lockin_round": ("from round (median)", "num0"),
                                 "final_spread": ("final relative spread", "g2"),
                                 "consensus_error": ("consensus error", "num2")},
                        notes="locked in: the humans' spread of stances, relative to the spread of their evidence, "
                              f"fell below {DEFAULT_THRESHOLD:g} and stayed there to the end; consensus error: "
                              "distance of the mean stance from the truth", standing=st))
    detail = lock.assign(question=lock["topic"] + 1,
                         locked=[("yes" if x else "no") + caveat for x in lock["locked_in"]],
                         at=pd.to_numeric(lock["lockin_round"], errors="coerce"))
    tables.append(Table(key="lockin", title=f"lock-in: relative spread below {DEFAULT_THRESHOLD:g} to the end of "
                        "the run", frame=detail,
                        columns={"setting": ("setting", "text"), "episode": ("episode", "int"),
                                 "question": ("question", "int"), "locked": ("locked in", "text"),
                                 "at": ("from round", "num0"), "final_relative_diversity": ("final spread", "g2"),
                                 "final_consensus_error": ("consensus error", "num2")}, standing=st))
    return SectionView(key="lockin", title="Diversity and lock-in", tables=tables, standing=st,
                       data={"rounds": rounds, "params": params, "lock": lock})


def figures(run: Run, view: SectionView) -> str:
    """The spread of stances over time per setting, and one run's stances round by round."""
    rounds, params = view.data.get("rounds"), view.data.get("params")
    if rounds is None or params is None or params.empty:
        return ""
    merged = rounds.merge(params[["phase", "episode", "setting"]], on=["phase", "episode"], how="left")
    out = figure(lambda: plots().diversity_curve(merged, "round", "relative_diversity", group="setting",
                                                 ylabel="relative spread of stances", title="Diversity over time"),
                 "Spread of the humans' stances relative to the spread of their evidence, per setting; "
                 "bands: 95% t interval over runs.", "diversity over time")
    humans = decisions(run.events)
    humans = humans[humans["role"] == "human"]
    last = params.iloc[-1]
    one = humans[(humans["phase"] == last["phase"]) & (humans["episode"] == last["episode"])]
    if not one.empty:
        out += figure(lambda: plots().belief_distribution(one, time="round", value="stance",
                                                          value_range=tuple(last["scale"]),
                                                          title=f"Stances over time: {last['setting']}"),
                      "Share of humans per stance bin in each round of one run (the last setting), mean "
                      "overlaid.", "belief distribution over time")
    return out


COLUMNS = ("env", "round", "agent", "policy", "action", "value", "valid", "model", "info")

register(Section(key="lockin", title="Diversity and lock-in", applies=has_env("feedback-loop"), build=build,
                 columns=COLUMNS, figures=figures))
