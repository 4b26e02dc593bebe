"""Repeated matrix games (and any other game): per-agent cooperation or coordination and payoffs."""

from __future__ import annotations

from societas.analysis.cooperation import agent_table, conditional_cooperation, coordination_rate, paired_rounds
from societas.analysis.load import Run
from societas.analysis.report_html import figure, plots
from societas.analysis.sections import Section, SectionView, Table, agent_standing, register, with_verdicts

MAX_AGENT_PANELS = 16
"""Up to this many agents get one cooperation panel each; more are grouped by policy kind."""


def build(run: Run) -> SectionView:
    ev = run.events
    st = agent_standing(run)
    table = agent_table(ev)
    has_coop = ev["cooperated"].notna().any()
    columns = {"agent": ("agent", "text"), "policy": ("policy", "text"), "decisions": ("decisions", "int")}
    if has_coop:
        cond = conditional_cooperation(ev)
        table = table.merge(cond[["agent", "p_c_after_c", "p_c_after_d"]], on="agent", how="left")
        columns |= {"cooperation_rate": ("cooperation", "pct"), "p_c_after_c": ("P(C | partner C)", "pct"),
                    "p_c_after_d": ("P(C | partner D)", "pct")}
        notes = ("cooperation: share of decisions choosing the cooperative option; P(C | partner C/D): "
                 "cooperation right after the partner cooperated / defected")
    elif ev["env"].eq("repeated-matrix-game").all():
        # Games without a cooperative option (Battle of the Sexes): coordination is the outcome that matters.
        coord = coordination_rate(ev)
        table = table.merge(coord[["agent", "coordination_rate"]], on="agent", how="left")
        columns |= {"coordination_rate": ("coordination", "pct")}
        notes = "coordination: share of rounds in which both players chose the same option"
    else:
        notes = ""
    columns |= {"mean_payoff": ("payoff / round", "num2"), "payoff_per_episode": ("payoff / episode", "num1"),
                "invalid_rate": ("invalid fallbacks", "pct1")}
    if not st.interpretable:
        table = with_verdicts(table, st)
        columns |= {"standing": ("standing", "text")}
    notes = (notes + "; " if notes else "") + ("payoffs in the game's points; invalid fallbacks: share of "
                                               "decisions where no reply parsed and the default was played")
    games = sorted(ev["game"].dropna().unique())
    episodes = int(ev[["phase", "episode"]].drop_duplicates().shape[0])
    what = games[0] if len(games) == 1 else f"{len(games)} games pooled"
    return SectionView(key="agents", title="Agents", standing=st,
                       intro=f"{what}: {episodes:,} episodes, {ev['agent'].nunique()} agents. Sorted by mean "
                             "payoff per round.",
                       tables=[Table(key="agents", title=f"{episodes} episodes", frame=table, columns=columns,
                                     notes=notes, standing=st)],
                       data={"has_coop": has_coop})


def figures(run: Run, view: SectionView) -> str:
    """Cooperation (or, without a cooperative option, coordination) by round, and the payoff matrix."""
    ev = run.events
    group = "agent" if ev["agent"].nunique() <= MAX_AGENT_PANELS else "policy_kind"
    per = group.replace("_", " ")
    out = ""
    if view.data.get("has_coop"):
        out += figure(lambda: plots().cooperation_by_round(ev, group=group),
                      f"Share of decisions that cooperated in each round, per {per}; "
                      "bands: 95% Wilson intervals over decisions.", "cooperation by round")
    elif (ev["env"] == "repeated-matrix-game").all():
        paired = paired_rounds(ev)
        if len(paired):
            same = paired.assign(cooperated=paired["option"] == paired["partner_option"],
                                 policy_kind=paired["agent"].map(ev.groupby("agent")["policy_kind"].first()))
            out += figure(lambda: plots().cooperation_by_round(same, group=group, title="Coordination by round",
                                                               ylabel="rounds coordinated"),
                          f"Share of rounds in which both players chose the same option, per {per}; "
                          "bands: 95% Wilson intervals over rounds.", "coordination by round")
    if (ev["env"] == "repeated-matrix-game").all():
        title = "Mean payoff per round: agent (row) against partner (column)"
        out += figure(lambda: plots().payoff_matrix(ev, title=title),
                      "Each cell: the row agent's mean payoff per round against the column partner, both seat "
                      "orders pooled. Rows and columns are sorted by overall mean payoff.", "payoff matrix")
    return out


COLUMNS = ("run_id", "env", "game", "agent", "partner", "policy", "policy_kind", "option", "cooperated", "reward",
           "valid", "model")
"""What the agents' table and its figures read (the partner's moves, payoffs, panels per policy kind)."""

register(Section(key="agents", title="Agents", applies=lambda run: True, build=build, columns=COLUMNS,
                 figures=figures))
