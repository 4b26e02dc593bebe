"""Repeated matrix games (and any other game): per-agent cooperation or coordination and payoffs."""

from __future__ import annotations

from societas.analysis.cooperation import agent_table, conditional_cooperation, coordination_rate
from societas.analysis.load import Run
from societas.analysis.sections import Section, SectionView, Table, agent_standing, register, with_verdicts


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


COLUMNS = ("run_id", "env", "game", "agent", "partner", "policy", "policy_kind", "option", "cooperated", "reward",
           "valid", "model")
"""What the agents' table and its figures read (the partner's moves, payoffs, panels per policy kind)."""

register(Section(key="agents", title="Agents", applies=lambda run: True, build=build, columns=COLUMNS))
