"""Theory of mind: observer accuracy by question category (battery), and actors by swap condition (gridworld)."""

from __future__ import annotations

import json

import pandas as pd

from societas.analysis.load import Run
from societas.analysis.report_html import figure, plots
from societas.analysis.sections import (
    Section,
    SectionView,
    Table,
    agent_standing,
    has_env,
    register,
    with_verdicts,
)
from societas.analysis.tom import accuracy, false_belief_gap, question_table


def observers(run: Run) -> SectionView:
    st = agent_standing(run)
    q = question_table(run.events)
    if q.empty:
        return SectionView(key="tom", title="Theory of mind", tables=[], standing=st,
                           intro="No answered question on disk.")
    acc, gap = accuracy(q), false_belief_gap(q)
    acc_cols = {"agent": ("observer", "text"), "category": ("category", "text"), "n": ("questions", "int"),
                "accuracy": ("accuracy", "pct"), "ci_low": ("95% low", "pct"), "ci_high": ("95% high", "pct")}
    gap_cols = {"agent": ("observer", "text"), "n_false": ("false-belief items", "int"),
                "false_belief_accuracy": ("accuracy (false)", "pct"), "n_true": ("true-belief items", "int"),
                "true_belief_accuracy": ("accuracy (true)", "pct"), "gap": ("gap", "num2")}
    if not st.interpretable:
        acc, gap = with_verdicts(acc, st), with_verdicts(gap, st)
        acc_cols["standing"] = gap_cols["standing"] = ("standing", "text")
    return SectionView(key="tom", title="Theory of mind", standing=st, data={"questions": q, "accuracy": acc},
                       tables=[Table(key="accuracy", title="observer accuracy by question category", frame=acc,
                                     columns=acc_cols, standing=st,
                                     notes="accuracy: share of questions answered as the belief oracle does; "
                                           "95% bootstrap interval over questions"),
                               Table(key="false_belief", title="false-belief vs true-belief items", frame=gap,
                                     columns=gap_cols, standing=st,
                                     notes="gap: accuracy on true-belief items minus accuracy on false-belief items")])


def actors(run: Run) -> SectionView:
    st = agent_standing(run)
    facts = pd.DataFrame([json.loads(x) if x else {} for x in run.episodes["summary"]])
    facts["agent"] = run.episodes["agent"].to_numpy()
    table = facts.groupby(["agent", "swap"], sort=True).agg(
        episodes=("steps", "size"), steps=("steps", "mean"), reached_goal=("reached_goal", "mean"),
        false_belief_at_end=("false_belief_at_end", "mean")).reset_index()
    columns = {"agent": ("actor", "text"), "swap": ("swap", "text"), "episodes": ("episodes", "int"),
               "steps": ("mean steps", "num1"), "reached_goal": ("reached goal", "pct"),
               "false_belief_at_end": ("false belief at end", "pct")}
    if not st.interpretable:
        table = with_verdicts(table, st)
        columns["standing"] = ("standing", "text")
    return SectionView(key="actors", title="Actors", standing=st,
                       tables=[Table(key="actors", title="actors by swap condition", frame=table, columns=columns,
                                     standing=st)])


def observer_figures(run: Run, view: SectionView) -> str:
    """The observers' accuracy per question category, with its intervals."""
    acc = view.data.get("accuracy")
    if acc is None or acc.empty:
        return ""
    frame = acc.assign(label=acc["agent"] + ": " + acc["category"].str.replace("_", " "))
    return figure(lambda: plots().accuracy_bars(frame, "label", "accuracy", "ci_low", "ci_high",
                                                title="Observer accuracy by question category"),
                  "Share of questions answered as the belief oracle does; whiskers: 95% bootstrap interval.",
                  "accuracy by category")


OBSERVER_COLUMNS = ("env", "round", "agent", "policy", "action", "valid", "model", "info")
ACTOR_COLUMNS = ("env", "agent", "valid", "model")

register(Section(key="tom", title="Theory of mind", applies=has_env("tom-observer"), build=observers,
                 columns=OBSERVER_COLUMNS, figures=observer_figures))
register(Section(key="actors", title="Actors", applies=has_env("tom-gridworld"), build=actors,
                 columns=ACTOR_COLUMNS))
