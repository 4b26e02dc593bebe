"""What a player of the naming game reads: the rules once (system), then its memory and the question.

The outline follows Ashery, Aiello & Baronchelli (2025): a partnership game of
many rounds with another player, both picking a name at the same time, +100
each for the same name and -50 each otherwise, maximise your own points; the
history of your last H rounds and your score over them; "It is now round k";
think step by step and answer with a small dictionary whose value comes first
(the first name in the reply is the answer). The names are listed in a fresh
order in every prompt, never in the system message, so no order is fixed.
"""

from __future__ import annotations

import functools
from collections.abc import Sequence

from societas.environments.params import fmt_number


@functools.lru_cache(maxsize=16)
def rules(names: int) -> str:
    """The rules, identical through the run so the prompt prefix caches."""
    return ("You are playing a partnership game with another player for many rounds. In every round you and "
            f"your partner each pick, at the same time, one name out of {names} possible names. The points "
            "both of you get follow one rule:\n"
            "1. If you both pick the SAME name, you are both REWARDED with +100 points.\n"
            "2. If you pick DIFFERENT names, you are both PUNISHED with -50 points.\n"
            "Your goal is to earn as many points as you can for yourself, given how your partner behaves.")


def history(memory: Sequence[tuple[int, str, str, float]], score: float, round_no: int | None) -> str:
    """The player's last rounds (its round number, its name, the partner's, the points) and its score.

    With `round_no` None the rounds are not numbered, so the prompt depends on the memory alone.
    """
    if memory:
        lines = ["Here is what happened in your most recent rounds:"]
        for k, own, other, points in memory:
            when = f"Round {k}" if round_no is not None else "A round"
            lines.append(f"{when}: you picked {own}, your partner picked {other}, you got "
                         f"{'+' if points > 0 else ''}{fmt_number(points)} points.")
    else:
        lines = ["You have not played any round yet."]
    now = f"It is now round {round_no}. " if round_no is not None else ""
    lines.append(f"{now}Your score over the rounds above is {fmt_number(score)} points.")
    return "\n".join(lines) + "\n"


def question(options: Sequence[str]) -> str:
    listed = ", ".join(options)
    return (f"The names you can pick from are: {listed}.\n"
            "Which name do you pick? Think step by step, and answer with a dictionary only, your choice first "
            "and your reasoning after it, in the form {'value': NAME, 'reason': 'your reasoning'}.")
