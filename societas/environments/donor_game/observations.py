"""The gym side of the donor game: every agent's observation, and the bound on its prompt's length."""

from __future__ import annotations

import math
import sys
from collections.abc import Iterable
from typing import TYPE_CHECKING, Any

import numpy as np

from societas.environments.donor_game.params import MAX_STRATEGY_CHARS, ROLE_DONOR, ROLE_STRATEGY, ROLE_WAIT
from societas.environments.donor_game.prompts import (
    _donation_text,
    _gym_text,
    _plain_answer,
    _punish_answer,
    _refuse_answer,
    _units,
)

if TYPE_CHECKING:
    from societas.environments.donor_game.env import DonorGame

_FLOAT_MAX = sys.float_info.max


def _observe_all(env: DonorGame, agents: Iterable[str] | None = None) -> dict[str, dict[str, Any]]:
    agents = env.agents if agents is None else agents
    ids = env.possible_agents
    rnd = env.games * env.rounds + 1 if env._phase == "over" else (
        0 if env._phase == "strategy" else env._step_round())
    if env._phase == "strategy":
        wait = _gym_text(f"{env._system}\n\nOther agents are writing their strategies.")
    elif env._phase == "over":
        wait = _gym_text(f"{env._system}\n\nThe generation is over.")
    else:
        wait = _gym_text(f"{env._system}\n\nRound {env._round + 1} of game {env._game + 1}: "
                         "you are not a donor this round.")
    zero, none = np.array(0.0), np.array(-1.0)
    res = env._res
    index = env._index
    obs = {
        a: {"prompt": wait, "role": ROLE_WAIT, "round": rnd, "resources": np.array(res[index[a]]),
            "recipient_resources": zero, "recipient_reputation": none}
        for a in agents
    }
    if env._phase == "strategy":
        for i in env._writers:
            o = obs.get(ids[i])
            if o is not None:
                o["prompt"] = _gym_text(f"{env._system}\n\n{env._strategy_prompts[i]}")
                o["role"] = ROLE_STRATEGY
    elif env._phase == "donation":
        for d in env._donors:
            o = obs.get(ids[d])
            if o is None:
                continue
            p = env._pending.get(d) or env._prepare(d)
            rep = env._rep[p.recipient]
            o["prompt"] = _gym_text(f"{env._system}\n\n{p.prompt}")
            o["role"] = ROLE_DONOR
            o["recipient_resources"] = np.array(res[p.recipient])
            o["recipient_reputation"] = none if rep is None else np.array(rep)
    return obs


def _max_prompt_length(env: DonorGame) -> int:
    """An upper bound on the gym observation's prompt length, for the Text space."""
    name = "x" * max(len(a) for a in env.possible_agents)
    # Total resources at most multiply by `multiplier` a round, so no agent holds more than this.
    digits = math.log10(env._n * env.endowment) + env.rounds * math.log10(max(env.multiplier, 1.0))
    bound = _FLOAT_MAX if digits > 300 else 10.0 ** digits
    number = "9" * (max(len(_units(bound)), len(_units(min(bound / env.punish_cost, _FLOAT_MAX)))) + 1)
    rnd = "9" * len(str(env.rounds))
    lines = [
        f"In round {rnd}, {name} donated 100.00% of their resources to {name}.",
        f"In round {rnd}, {name} punished {name} by spending {number} units to take away "
        f"{number} units from their resources.",
        f"In round {rnd}, {name} refused to play with {name}.",
        f"{name} did not have any previous interactions.",
    ]
    line = max(lines, key=len)
    longest = max([MAX_STRATEGY_CHARS, *(len(s) for s in env._given.values())])
    head = f"Your name is {name}.\nAs you will recall, here is the strategy you decided to follow: " \
           f"{'s' * longest}\nThis is generation {env.generation}. "
    if env.variant == "punishment":
        answer = _punish_answer(env, name, number, number)
    elif env.variant == "partner_choice":
        answer = _refuse_answer(name, number)
    else:
        answer = _plain_answer(number)
    donation = _donation_text(head=head, rnd=rnd, recipient=name, recipient_res=number,
                              trace=(line + "\n") * env.trace_depth, res=number, answer=answer)
    waiting = f"Round {rnd} of game {env.games}: you are not a donor this round."
    user = max([len(donation), len(waiting), *(len(p) for p in env._strategy_prompts.values())])
    return len(env._system) + 2 + user
