"""Partner adaptation: literal (prediction accuracy) and functional (reward, regret) theory of mind."""

from __future__ import annotations

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
from societas.analysis.tom_partner import rounds_table, summary


def build(run: Run) -> SectionView:
    st = agent_standing(run)
    rounds = rounds_table(run.events)
    table = summary(rounds)
    columns = {"agent": ("agent", "text"), "partner_policy": ("partner", "text"), "episodes": ("episodes", "int"),
               "accuracy": ("accuracy", "pct"), "accuracy_low": ("95% low", "pct"),
               "accuracy_high": ("95% high", "pct"), "reward": ("reward / round", "num2"),
               "total_regret": ("total regret", "num1"), "late_regret": ("late regret", "num2"),
               "js_divergence": ("JS divergence", "num3")}
    if not st.interpretable:
        table = with_verdicts(table, st)
        columns["standing"] = ("standing", "text")
    notes = ("accuracy: predictions of the partner's next move that were right (95% bootstrap interval over "
             "episodes); total regret: regret against the best response to the partner's policy, summed over an "
             "episode; late regret: its mean over the last rounds; JS divergence: predicted vs actual partner moves")
    return SectionView(key="partner", title="Partner adaptation", standing=st,
                       intro="Literal theory of mind: accuracy predicting the partner's next move. Functional: "
                             "reward per round and regret against the best response to the partner's policy.",
                       tables=[Table(key="partner", title="partner adaptation, literal vs functional theory of mind",
                                     frame=table, columns=columns, notes=notes, standing=st)],
                       data={"rounds": rounds})


def figures(run: Run, view: SectionView) -> str:
    """Regret and prediction accuracy over rounds, per player: theory of mind as it is acquired."""
    rounds = view.data.get("rounds")
    if rounds is None or rounds.empty:
        return ""
    # Regret per round by player, over every partner and episode: functional ToM as it is acquired.
    out = figure(lambda: plots().diversity_curve(rounds, "round", "regret", group="agent",
                                                 ylabel="regret vs best response", title="Regret over rounds"),
                 "Mean regret per round against the best response to the partner's policy, all partners; "
                 "bands: 95% t interval.", "regret over rounds")
    predicted = rounds.dropna(subset=["correct"]).assign(correct=lambda d: d["correct"].astype(float))
    if not predicted.empty:
        out += figure(lambda: plots().diversity_curve(predicted, "round", "correct", group="agent",
                                                      ylabel="predictions correct",
                                                      title="Prediction accuracy over rounds"),
                      "Share of correct predictions of the partner's next move per round, all partners.",
                      "prediction accuracy over rounds")
    return out


COLUMNS = ("env", "game", "round", "agent", "partner", "policy", "action", "option", "prediction",
           "prediction_valid", "reward", "valid", "model", "info")

register(Section(key="partner", title="Partner adaptation", applies=has_env("partner-adaptation"), build=build,
                 columns=COLUMNS, figures=figures))
