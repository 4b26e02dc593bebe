"""What the commons tells its members: the static rules (system), the memory, and each step's question."""

from __future__ import annotations

import functools
from typing import TYPE_CHECKING

from societas.environments.commons.rules import sustainable_total
from societas.environments.commons.scenarios import Scenario
from societas.environments.params import fmt_number

if TYPE_CHECKING:
    from societas.environments.commons.env import Commons


@functools.lru_cache(maxsize=64)
def rules(scenario: Scenario, members: int, months: int, capacity: int, collapse: int, *,
          newcomer: bool = False) -> str:
    """The rules, identical through the run so the prompt prefix caches."""
    s = scenario
    text = (f"You are {s.role}, one of {members} who share {s.resource}. {s.intro}\n"
            f"The shared resource holds at most {capacity} {s.unit}. Every month, for {months} months, each "
            f"of you says at the same time how many {s.unit} to {s.verb}. If together you ask for more than "
            "there is, the units left are handed out one at a time to people picked at random among those "
            "who asked for more. After everyone has taken their share, what is left doubles for the next "
            f"month, but never beyond {capacity}. If fewer than {collapse} {s.unit} remain after a month, "
            "the resource is ruined and nobody can earn from it again.")
    if newcomer:
        text += ("\nYou have just arrived in this community, and you care above all about how much you "
                 "earn yourself.")
    return text


def memory(env: Commons, me: int) -> str:
    """The member's record: its past catches, every month's total, and the limits the town hall agreed."""
    u = env.scenario.unit
    lines = []
    for month, (stock, got) in enumerate(zip(env.stocks, env.catches, strict=True), start=1):
        lines.append(f"Month {month}: there were {stock} {u}; you took {got[me]} and everyone together "
                     f"took {sum(got)}.")
    for month, limit in env.agreements:
        lines.append(f"At the town hall after month {month} you all agreed that each person takes at most "
                     f"{limit} {u}.")
    return "\n".join(lines) + ("\n" if lines else "")


def harvest_question(env: Commons) -> str:
    u, verb = env.scenario.unit, env.scenario.verb
    text = f"It is month {env.month} of {env.months}. The resource holds {env.stock} {u} now."
    if env.universalization:
        text += (f" If every one of you took more than {fmt_number(sustainable_total(env.stock) / env.n)}, "
                 "the resource would shrink next month.")
    return (text + f"\nHow many {u} do you {verb} this month? Think it over if you wish, then end with "
            f'"Answer: N" where N is a whole number from 0 to {env.stock}.')


def town_hall(env: Commons, me: int) -> str:
    """The mayor's report of every catch, what was said so far, and the member's turn to speak."""
    u = env.scenario.unit
    got = env.catches[-1]
    report = ", ".join(f"{'you' if i == me else f'member {i + 1}'} took {g}" for i, g in enumerate(got))
    said = [f"{'You' if who == me else f'Member {who + 1}'} proposed "
            f"{'no limit' if p is None else f'at most {p} each'}: {words or '(nothing said)'}"
            for who, p, words in env._spoken]
    heard = ("\n" + "\n".join(said)) if said else ""
    return (f"Town hall after month {env.month}. The mayor reports this month's catches: {report}. "
            f"The resource now holds {env.stock} {u}.{heard}\n"
            "It is your turn to speak. Propose a limit on how much each person takes next month, or none, "
            'and say one sentence to the others, in the form "LIMIT | sentence", for example '
            '"10 | Let us each keep to ten." or "none | I will decide for myself."')
