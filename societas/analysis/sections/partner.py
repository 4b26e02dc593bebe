"""Partner adaptation: literal (prediction accuracy) and functional (reward, regret) theory of mind."""

from __future__ import annotations

from societas.analysis.load import Run
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


COLUMNS = ("env", "game", "round", "agent", "partner", "policy", "action", "option", "prediction",
           "prediction_valid", "reward", "valid", "model", "info")

register(Section(key="partner", title="Partner adaptation", applies=has_env("partner-adaptation"), build=build,
                 columns=COLUMNS))
