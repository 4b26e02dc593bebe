"""The donor game's constants and the checks of its parameters (they raise ValueError naming the field)."""

from __future__ import annotations

import string
from collections.abc import Iterable, Mapping, Sequence
from typing import TYPE_CHECKING, Any

from societas.environments.params import check_graph_params
from societas.number_regex import range_regex

if TYPE_CHECKING:
    from societas.environments.donor_game.env import DonorGame

GAME = "donor-game"
"""The value of data["game"] in every decision."""
PAIRINGS = ("bipartite", "random", "graph")
VARIANTS = ("none", "punishment", "partner_choice")
GRAPH_KINDS: dict[str, dict[str, Any]] = {
    "ring": {},
    "erdos_renyi": {"p": None},  # None: about six neighbours each, 6 / (num_agents - 1)
    "watts_strogatz": {"k": 4, "p": 0.1},
}
REFUSE = "refuse"
"""The canonical refusal in the partner-choice variant (the prompt says "Refuse to play")."""
REFUSE_PATTERN = r"(?:[Rr]efuse(?: to play)?|[0-9]+(?:\.[0-9]+)?)\.?"
"""A partner-choice answer in any amount; a decision's own pattern bounds it (`refuse_pattern`)."""


def refuse_pattern(resources: float) -> str:
    """A partner-choice answer: a refusal, or an amount from 0 to the donor's `resources`, so an
    amount beyond them is retried as a real range's is, not clipped in silence."""
    return r"(?:[Rr]efuse(?: to play)?|" + range_regex(0.0, resources) + r")\.?"
STRATEGY_MARKER = "My strategy will be"
MAX_STRATEGY_CHARS = 2000
"""Longest strategy kept (longer ones are cut): every donation prompt repeats it."""
MAX_REPLY_CHARS = 8000
"""The strategy reply may reason first, so it may be much longer than the strategy."""
CHARSET = string.printable
"""Characters of the gym observation's prompt; other characters show as "?" there only."""

ROLE_STRATEGY, ROLE_DONOR, ROLE_WAIT = 0, 1, 2
"""The gym observation's "role": writes a strategy, donates, or waits this step."""

_CONTROL = dict.fromkeys(c for c in range(32) if chr(c) not in "\t\n\r")
_CONTROL[127] = None


def _clean(text: str) -> str:
    """Drop control characters (never meaningful in a strategy; they would break the Text space)."""
    return text.translate(_CONTROL)


def _check_graph(env: DonorGame, params: Mapping[str, Any] | None) -> dict[str, Any]:
    if params and isinstance(params, Mapping) and env.pairing != "graph":
        raise ValueError(f"graph_params only apply to pairing='graph' (pairing is {env.pairing!r})")
    return check_graph_params(params, GRAPH_KINDS[env.graph_kind], graph=f"graph_kind {env.graph_kind!r}",
                              size=env._n if env.pairing == "graph" else None, size_name="num_agents",
                              p_may_be_none=True)


def _check_ids(env: DonorGame, name: str, ids: Iterable[Any]) -> list[int]:
    out = []
    for a in ids:
        i = env._index.get(a) if isinstance(a, str) else None
        if i is None:
            raise ValueError(f"{name}: unknown agent {a!r}; agents are agent_0 .. agent_{env._n - 1}")
        out.append(i)
    return out


def _check_inherited(env: DonorGame, texts: Any) -> tuple[str, ...]:
    if isinstance(texts, str) or not isinstance(texts, Sequence):
        raise ValueError(f"inherited_strategies must be a list of strategy texts, got {texts!r}")
    out = []
    for k, t in enumerate(texts):
        if not isinstance(t, str):
            raise ValueError(f"inherited_strategies[{k}] must be a string, got {t!r}")
        t = _clean(t)
        if len(t) > MAX_STRATEGY_CHARS:
            raise ValueError(f"inherited_strategies[{k}] is longer than {MAX_STRATEGY_CHARS} characters")
        if t:
            out.append(t)
    return tuple(out)


def _check_strategies(env: DonorGame, given: Any) -> dict[int, str]:
    if given is None:
        return {}
    if not isinstance(given, Mapping):
        raise ValueError(f"strategies must map agent ids to strategy texts, got {given!r}")
    idx = _check_ids(env, "strategies", given)
    out = {}
    for i, (a, t) in zip(idx, given.items()):
        if not isinstance(t, str):
            raise ValueError(f"strategies[{a!r}] must be a string, got {t!r}")
        t = _clean(t)
        if len(t) > MAX_STRATEGY_CHARS:
            raise ValueError(f"strategies[{a!r}] is longer than {MAX_STRATEGY_CHARS} characters")
        out[i] = t
    return out


def _check_new(env: DonorGame, new: Any) -> tuple[str, ...]:
    if new is None:
        return ()
    if isinstance(new, str) or not isinstance(new, (Sequence, set, frozenset)):
        raise ValueError(f"new_agents must be a list of agent ids, got {new!r}")
    idx = _check_ids(env, "new_agents", new)
    both = sorted(set(idx) & set(env._given))
    if both:
        names = ", ".join(env.possible_agents[i] for i in both)
        raise ValueError(f"new_agents and strategies overlap ({names}): a new agent writes its own strategy")
    return tuple(env.possible_agents[i] for i in sorted(set(idx)))
