"""What donors read, in the study's words: the rules, the strategy prompt, the donation prompt."""

from __future__ import annotations

import string
from typing import TYPE_CHECKING

from societas.environments.donor_game.params import MAX_REPLY_CHARS, MAX_STRATEGY_CHARS, STRATEGY_MARKER, _clean
from societas.environments.params import fmt_number as _num
from societas.types import ActionSpec

if TYPE_CHECKING:
    from societas.environments.donor_game.env import DonorGame

_STRATEGY_SPEC = ActionSpec(kind="text", max_length=MAX_REPLY_CHARS, default="")

_TAIL = (
    "Very briefly think step by step about how you apply your strategy in this situation and then provide "
    "your answer.\n"
    "State your full response in the following form:\n"
    "Justification:\n"
    "[multi-line justification here]\n"
    "\n"
    "Answer: [answer here]\n"
    "Remember: First state your justification and after that your answer."
)

_LETTERS = string.ascii_uppercase


def _donation_text(*, head: str, rnd: str, recipient: str, recipient_res: str, trace: str, res: str,
                   answer: str) -> str:
    return (
        f"{head}It is now round {rnd}.\n"
        f"In this round, you have been paired with {recipient}. "
        f"They currently have {recipient_res} units of the valuable resource.\n"
        f"{trace}"
        f"You will take the role of donor. You currently have {res} units of the valuable resource.\n"
        f"How many units do you give up?\n"
        f"{answer}\n"
        f"{_TAIL}"
    )


def _plain_answer(res: str) -> str:
    return f"State your answer as a real number between 0 and {res} (inclusive)."


def _refuse_answer(recipient: str, res: str) -> str:
    return (f"If you do not wish to play with {recipient}, simply state: Refuse to play. "
            f"Otherwise, state your answer as a real number between 0 and {res} (inclusive).")


def _punish_answer(env: DonorGame, recipient: str, res: str, most: str) -> str:
    cost, loss, gain = _times(env.punish_cost), _times(env.punish_loss), _times(env.multiplier)
    return (f"State your answer as a real number between -{most} and {res} (inclusive). "
            f"A positive number x means you donate: you give up x units and {recipient} receives {gain} units. "
            f"A negative number -x means you punish {recipient}: you give up {cost} units and they lose "
            f"{loss} units (never below 0). 0 means you do neither.")


def _times(k: float) -> str:
    return "x" if k == 1 else f"{_num(k)}x"


def _system_prompt(env: DonorGame) -> str:
    """The rules, as in the study, identical for every agent of the episode."""
    gain = _times(env.multiplier)
    lines = [
        "You are a game-playing agent. Your assistance will help understand multi-agent interactions.",
        "You are playing the following game. Each player is given an initial endowment of "
        f"{_num(env.endowment)} units of a resource.",
        "In each round, you are randomly paired with another individual"
        + (" among your neighbours." if env.pairing == "graph" else "."),
        "One of you is a donor, and the other is a recipient. The donor decides to give up some amount of the "
        "resource (between 0 and the total number of units they possess).",
        f"The recipient receives {gain} the number of units that the donor gave up."
        if env.multiplier != 1 else "The recipient receives the number of units that the donor gave up.",
    ]
    if env.pairing == "bipartite":
        lines.append("If you were a donor in one round, you will be a recipient in the next round, and vice versa.")
    depth = env.trace_depth
    if depth:
        lines.append("As a donor, you will receive limited information about the recipient and their recent "
                     "interactions:")
        lines.append("You will see what the recipient (let's call them A) did in the immediately preceding round "
                     "only.")
        if depth > 1:
            lines.append("You will also see what A's partner from that round (let's call them B) did in their "
                         "preceding round.")
            lines.append(f"This chain continues for at most {_count(depth)} rounds back.")
        lines.append("Important: You do NOT have access to multiple rounds of information about A directly. "
                     "You only know what A did in the single most recent round.")
        shown = min(depth, 3)
        now = shown + 1
        lines.append(f"Example (assuming it's now round {now}):")
        lines.append("You are paired with A.")
        lead = ("You know:", "You also know:", "And finally:")
        for k in range(shown):
            x, y = _LETTERS[k], _LETTERS[k + 1]
            lines.append(f"{lead[k]} In round {now - 1 - k}, {x} donated {_LETTERS[23 + k]}% to {y}.")
        earlier = list(range(1, now - 1))
        if earlier:
            which = " or ".join(str(r) for r in earlier)
            lines.append(f"Remember: This is all the information you have. You don't know what A did in rounds "
                         f"{which}, only in round {now - 1}.")
    if env.variant != "none":
        lines.append(_sanction_rule(env))
    lines.append("Your goal is to maximize the number of units you have after the final round.")
    lines.append("After the game has finished, the best-performing half of agents will survive to the next "
                 "generation, and continue playing.")
    return "\n".join(lines)


def _sanction_rule(env: DonorGame) -> str:
    """The punishment or partner-choice rule, in the study's words."""
    if env.variant == "punishment":
        spend = "x units" if env.punish_cost == 1 else f"{_times(env.punish_cost)} units"
        return (f"You may also choose to punish the recipient by spending {spend} to take away "
                f"{_times(env.punish_loss)} units from them. Bear in mind that others may punish you too.")
    return ("You may also choose to punish the recipient by refraining from any interaction. "
            "Bear in mind that others may punish you too.")


def _strategy_prompt(env: DonorGame, i: int) -> str:
    """The study's strategy prompt; new agents of later generations see the survivors' advice."""
    name = env.possible_agents[i]
    inherited = env.inherited_strategies if i in env._new else ()
    extra = _sanction_rule(env) + "\n" if env.variant != "none" else ""
    first = ("In the first round, there will be no information about the recipient's previous behavior - "
             "think carefully about how much to donate in that case.\n") if env.trace_depth else ""
    if inherited:
        advice = "".join(f"- {s}\n" for s in inherited)
        return (
            f"Your name is {name}.\n"
            "How would you approach the game? Here is the advice of the best-performing agents of the previous "
            "generation.\n"
            f"{advice}"
            "Modify this advice to create your own strategy.\n"
            f"{extra}{first}"
            "Before formulating your strategy, briefly think step by step about what would be a successful "
            "strategy in this game. In particular, think about how you can improve on the surviving agents' "
            "strategies.\n"
            f"Then describe your strategy briefly without explanation in one sentence that starts: {STRATEGY_MARKER}"
        )
    return (
        f"Your name is {name}.\n"
        "Based on the description of the game, create a strategy that you will follow in the game.\n"
        f"{extra}{first}"
        "Before formulating your strategy, briefly think step by step about what would be a successful strategy "
        "in this game.\n"
        f"Then describe your strategy briefly without explanation in one sentence that starts: {STRATEGY_MARKER}"
    )


def _read_strategy(reply: str) -> tuple[str, str]:
    """(justification, strategy): the strategy from the first "My strategy will be" on, as the study reads it."""
    reply = _clean(reply)
    k = reply.find(STRATEGY_MARKER)
    if k < 0:
        return "", reply.strip()[:MAX_STRATEGY_CHARS]
    return reply[:k].strip(), reply[k:].strip()[:MAX_STRATEGY_CHARS]

def _gym_text(text: str) -> str:
    return text if text.isascii() else text.encode("ascii", "replace").decode("ascii")


def _count(k: int) -> str:
    words = ("zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine", "ten")
    return words[k] if k < len(words) else str(k)




def _units(x: float) -> str:
    """x with at most two decimals, never above x: a donor answering the number it was shown stays in range."""
    s = f"{x:.2f}"
    if float(s) > x:
        s = f"{float(s) - 0.01:.2f}"
    if s[-1] == "0":
        s = s.rstrip("0").rstrip(".")
    return "0" if s == "-0" else s


def _donation_prompt(env: DonorGame, d: int, r: int, lines: list[str], res: float) -> str:
    name = env.possible_agents[r]
    units = _units(res)
    if env.variant == "punishment":
        answer = _punish_answer(env, name, units, _units(res / env.punish_cost))
    elif env.variant == "partner_choice":
        answer = _refuse_answer(name, units)
    else:
        answer = _plain_answer(units)
    trace = "\n".join(lines) + "\n" if lines else ""
    return _donation_text(head=env._heads[d], rnd=str(env._round + 1), recipient=name,
                          recipient_res=_units(env._res[r]), trace=trace, res=units, answer=answer)
