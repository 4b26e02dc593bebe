"""The commons (GovSim): survival, gain, efficiency, equality and over-usage per condition."""

from __future__ import annotations

from societas.analysis.load import Run
from societas.analysis.norms.commons import ENV, commons_runs, commons_summary, harvests, stock_table
from societas.analysis.report_html import figure, plots
from societas.analysis.sections import (
    Section,
    SectionView,
    Table,
    agent_standing,
    has_env,
    register,
)


def build(run: Run) -> SectionView:
    st = agent_standing(run)
    rows = harvests(run.events)
    runs = commons_runs(rows)
    table = commons_summary(runs)
    columns = {"scenario": ("scenario", "text"), "discussion": ("town hall", "text"),
               "universalization": ("universalization", "text"), "members": ("members", "text"),
               "runs": ("runs", "int"), "survival_rate": ("survival rate", "pct1"),
               "survival_time": ("survival time", "num1"), "gain": ("gain", "num1"),
               "efficiency": ("efficiency", "pct1"), "equality": ("equality", "pct1"),
               "over_usage": ("over-usage", "pct1"), "invalid": ("invalid harvests", "pct1")}
    notes = ("as Piatti et al. (2024) define them: survival time, the last month that began with more than the "
             "collapse level; survival rate, the runs that lasted every month; gain, a member's total catch "
             "(mean over members); efficiency, the total catch against months x f(0); equality, 1 - Gini of the "
             "gains; over-usage, the (member, month) harvests above f(t)/N; means over runs; invalid harvests: replies "
             "that never parsed, played as 0")
    return SectionView(key="commons", title="Commons", standing=st,
                       intro="A shared stock harvested every month: whether the members sustain it, and how much "
                             "and how evenly they gain.",
                       tables=[Table(key="commons", title="commons outcomes per condition", frame=table,
                                     columns=columns, notes=notes, standing=st)],
                       data={"harvests": rows, "runs": runs, "stock": stock_table(rows)})


def figures(run: Run, view: SectionView) -> str:
    """The stock month by month in every run, against the collapse level."""
    stock, rows = view.data.get("stock"), view.data.get("harvests")
    if stock is None or stock.empty:
        return ""
    collapse = float(rows["collapse"].iloc[0]) if rows is not None and not rows.empty else None
    return figure(lambda: plots().stock_over_months(stock, collapse=collapse),
                  "The stock at the start of each month in every run (the last point: what the final harvest "
                  "left), coloured by the members' policies; dotted: the collapse level.", "stock over months")


COLUMNS = ("env", "agent", "policy", "valid", "model", "info")

register(Section(key="commons", title="Commons", applies=has_env(ENV), build=build, columns=COLUMNS,
                 figures=figures))
