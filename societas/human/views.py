"""What a person's page shows for a decision: the agent's own text, and tables where the game has them.

A person sees exactly what an agent sees (the rules, the history, the
question, the allowed answers). Where the observation's structured data
describes a 2x2 game (options, payoff matrices, both players' past moves),
the same facts are also laid out as a payoff table and a history table, which
a person reads at a glance.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from societas.types import Observation


def _num(x: Any) -> Any:
    return int(x) if isinstance(x, float) and x.is_integer() else x


def split_question(prompt: str) -> tuple[str, str]:
    """(history, question) of a prompt: the question is the last 'Q: ...' (its 'A:' cue dropped)."""
    idx = prompt.rfind("Q:")
    if idx < 0:
        head, _, last = prompt.rstrip().rpartition("\n")
        return head.strip(), last.strip()
    question = prompt[idx + 2:]
    cue = question.rfind("\nA:")
    if cue >= 0:
        question = question[:cue]
    return prompt[:idx].strip(), question.strip()


def _matrix_game(data: Mapping[str, Any]) -> bool:
    return all(k in data for k in ("options", "payoffs", "partner_payoffs", "own_history", "partner_history"))


def _history_rows(data: Mapping[str, Any], own: list[int], partner: list[int]) -> list[dict[str, Any]]:
    letters, mine, theirs = data["options"], data["payoffs"], data["partner_payoffs"]
    return [{"round": r + 1, "you": letters[a], "partner": letters[b], "your_points": _num(float(mine[a][b])),
             "partner_points": _num(float(theirs[b][a]))} for r, (a, b) in enumerate(zip(own, partner))]


def _matrix(data: Mapping[str, Any]) -> dict[str, Any]:
    letters, mine, theirs = data["options"], data["payoffs"], data["partner_payoffs"]
    return {"options": list(letters),
            "cells": [[[_num(float(mine[i][j])), _num(float(theirs[j][i]))] for j in (0, 1)] for i in (0, 1)]}


def decision_view(obs: Observation) -> dict[str, Any]:
    """The page's fields for one decision (JSON-serialisable)."""
    history, question = split_question(obs.prompt)
    data = obs.data
    view: dict[str, Any] = {"round": obs.round, "rounds": data.get("rounds"), "rules": obs.system,
                            "history": history, "question": question, "prompt": obs.prompt}
    if _matrix_game(data):
        rows = _history_rows(data, list(data["own_history"]), list(data["partner_history"]))
        view["matrix"] = _matrix(data)
        view["history_rows"] = rows
        view["score"] = {"you": _num(float(sum(r["your_points"] for r in rows))),
                         "partner": _num(float(sum(r["partner_points"] for r in rows)))}
    return view


def result_view(last: Observation | None, final: Any, total_reward: float) -> dict[str, Any]:
    """The page's summary of a finished episode: the whole history where the game gives it, and the total.

    `last` is the seat's last decision, `final` the environment's last observation
    of the seat (a matrix game's holds the last round's moves as `own_last` / `partner_last`).
    """
    out: dict[str, Any] = {"total": _num(float(total_reward))}
    if last is not None and _matrix_game(last.data) and isinstance(final, Mapping) and "own_last" in final:
        data = last.data
        own = [*data["own_history"], int(final["own_last"])]
        partner = [*data["partner_history"], int(final["partner_last"])]
        rows = _history_rows(data, own, partner)
        out["history_rows"] = rows
        out["partner_total"] = _num(float(sum(r["partner_points"] for r in rows)))
    elif isinstance(final, Mapping) and isinstance(final.get("prompt"), str):
        out["text"] = final["prompt"]
    return out
