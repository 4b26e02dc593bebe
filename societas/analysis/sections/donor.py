"""The donor game with cultural evolution: resources, donations, reciprocity and policies per generation."""

from __future__ import annotations

import pandas as pd

from societas.analysis.donor import across_societies, generation_table, strategy_shares
from societas.analysis.load import Run
from societas.analysis.report_html import figure, html_table, integer, num, pct, plots
from societas.analysis.sections import Section, SectionView, Table, agent_standing, fmt, has_env, register

RESOURCES_FLOOR = 0.0
"""Final resources cannot go below 0, so their interval is cut there (the same in analyze, report, figures)."""


def build(run: Run) -> SectionView:
    st = agent_standing(run)
    table = generation_table(run.events, run.episodes)
    tables: list[Table] = []
    societies = int(table["society"].nunique()) if not table.empty else 0
    if not table.empty:
        res = across_societies(table, "resources", floor=RESOURCES_FLOOR).set_index("generation")
        means = table.groupby("generation").mean(numeric_only=True).drop(columns="society")
        shown = pd.DataFrame({"generation": means.index, "resources": means["resources"].to_numpy(),
                              "ci_low": res["ci_low"].reindex(means.index).to_numpy(),
                              "ci_high": res["ci_high"].reindex(means.index).to_numpy()})
        columns = {"generation": ("generation", "int")}
        if societies > 1:  # one cell, "mean [low, high]", written the same in analyze and the report
            shown["resources_ci"] = [f"{fmt('num1', m)} [{fmt('num1', lo)}, {fmt('num1', hi)}]" for m, lo, hi
                                     in zip(shown["resources"], shown["ci_low"], shown["ci_high"], strict=True)]
            columns["resources_ci"] = ("resources (95% CI)", "text")
        else:
            columns["resources"] = ("resources", "num1")
        labels = {"donated_fraction": ("donated", "pct"), "cooperation_rate": ("cooperation", "pct"),
                  "reciprocity": ("reciprocity", "num2"), "punishment_rate": ("punished", "pct"),
                  "refusal_rate": ("refused", "pct"), "strategy_diversity": ("diversity", "num2"),
                  "invalid_rate": ("invalid fallbacks", "pct1")}
        for col, label in labels.items():
            values = means[col]
            if col in ("punishment_rate", "refusal_rate") and not (values.fillna(0) > 0).any():
                continue  # the variant has no punishment / partner refusal
            shown[col] = values.to_numpy()
            columns[col] = label
        notes = ("resources: mean final resources per game (units)"
                 + ("; 95% CI: t interval of the mean across societies, cut at 0" if societies > 1 else "")
                 + "; donated: mean share of the donor's resources given; cooperation: share of donations above "
                 "0; reciprocity: correlation of the recipient's reputation with the share donated; diversity: "
                 "distinct strategies per member; invalid fallbacks: share of decisions where no reply parsed")
        tables.append(Table(key="generations", title=f"donor game, {societies} societies, means per generation",
                            frame=shown, columns=columns, notes=notes, standing=st))
    if not run.lineage.empty and run.lineage["policy"].nunique() > 1:
        shares = strategy_shares(run.lineage)
        tables.append(Table(key="policy_shares", title="share of the population by policy", frame=shares,
                            columns={"generation": ("generation", "int")}
                            | {c: (c, "pct") for c in shares.columns if c != "generation"}))
    intro = (f"{societies} {'society' if societies == 1 else 'independent societies'}, {len(tables[0].frame)} "
             "generations; means over societies per generation." if tables and societies else
             "No finished generation on disk.")
    return SectionView(key="generations", title="Generations", tables=tables, standing=st, intro=intro,
                       data={"table": table, "societies": societies})


def figures(run: Run, view: SectionView) -> str:
    """Resources and cooperation by generation, then the policies: how each fared, and their shares over time."""
    table, societies = view.data.get("table"), view.data.get("societies", 0)
    if table is None or table.empty:
        return ""
    out = figure(lambda: plots().resources_by_generation(table, ylabel="final resources per game (units)"),
                 "Mean final resources per game in each generation"
                 + ("; thin lines: single societies; band: 95% t interval across societies (cut at 0)."
                    if societies > 1 else "."), "resources by generation")
    out += figure(lambda: plots().resources_by_generation(table, metric="cooperation_rate",
                                                          ylabel="donations above 0",
                                                          title="Cooperation by generation", share=True),
                  "Share of donation decisions giving more than 0"
                  + ("; thin lines: single societies; band: 95% t interval." if societies > 1 else "."),
                  "cooperation by generation")
    if not run.lineage.empty:
        out += _policies(run)
    return out


def _policies(run: Run) -> str:
    lin = run.lineage
    out = "<h3>Policies</h3>"
    by_policy = lin.groupby("policy").agg(members=("agent", "size"), survived=("survived", "mean"),
                                          total_reward=("total_reward", "mean")).reset_index()
    out += html_table(by_policy.sort_values("members", ascending=False),
                      formats={"members": integer, "survived": pct, "total_reward": num(1)},
                      columns={"members": "member-generations", "survived": "survived selection",
                               "total_reward": "mean total payoff"}, what="policies")
    if lin["policy"].nunique() > 1:
        out += figure(lambda: plots().strategy_shares(strategy_shares(lin)),
                      "Share of each policy in the population per generation, all societies together.",
                      "policy shares by generation")
    return out


COLUMNS = ("env", "round", "agent", "partner", "policy", "value", "valid", "retries", "model", "info")

register(Section(key="generations", title="Generations", applies=has_env("donor-game"), build=build,
                 columns=COLUMNS, figures=figures))
