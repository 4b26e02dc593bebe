"""Build agents from policy specs: "scripted:NAME", "replay:ID", "llm" or "human".

Scripted strategies come in families, one module each: index-based strategies
for 2x2 games (`scripted.py`), and parameterised families listed in
`_FAMILIES` (donor game, feedback loop, theory-of-mind gridworld, partner
adaptation, commons, naming game). A name is looked up in each family in turn.
Plug-ins add strategies and whole policy kinds ("KIND:NAME") through
`registry.py`; they are looked up only when a name is not built in.
"""

from __future__ import annotations

import functools
import importlib
from collections.abc import Mapping
from types import ModuleType
from typing import Any

import numpy as np

from societas.agents import registry
from societas.agents.base import Agent
from societas.agents.llm_agent import LLMAgent, LLMAgentOptions
from societas.llm.base import ChatModel

POLICY_FORMS = "scripted:NAME, replay:ID, llm or human"


def policy_kind(policy: str) -> str:
    """The family of a policy spec: scripted, replay, llm, human, or a plug-in's KIND."""
    return policy if policy in ("llm", "human") else policy.partition(":")[0]


# Parameterised strategy families besides the 2x2-game strategies of scripted.py:
# (module, registry of strategies, agent class, describing function).
_FAMILIES = (
    ("societas.agents.donor", "DONOR_STRATEGIES", "DonorAgent", "describe_donor_strategies"),
    ("societas.agents.belief", "BELIEF_STRATEGIES", "BeliefAgent", "describe_belief_strategies"),
    ("societas.agents.tom", "TOM_STRATEGIES", "TomAgent", "describe_tom_strategies"),
    ("societas.agents.partners", "PARTNER_STRATEGIES", "PartnerAgent", "describe_partner_strategies"),
    ("societas.agents.commons", "COMMONS_STRATEGIES", "CommonsAgent", "describe_commons_strategies"),
    ("societas.agents.naming", "NAMING_STRATEGIES", "NamingAgent", "describe_naming_strategies"),
)


@functools.cache
def _families() -> list[tuple[ModuleType, str, str, str]]:
    """The families' modules, imported once (agents are built per seat, a million in a population)."""
    return [(importlib.import_module(m), table, cls, describe) for m, table, cls, describe in _FAMILIES]


def scripted_strategy_names() -> set[str]:
    """Every name `scripted:NAME` accepts, across the strategy families."""
    from societas.agents.scripted import STRATEGIES

    names = set(STRATEGIES)
    for module, table, _, _ in _families():
        names |= set(getattr(module, table))
    return names


def _is_scripted_strategy(name: str) -> bool:
    """`scripted_strategy_names()` without building the set: a config checks every member's policy."""
    from societas.agents.scripted import STRATEGIES

    return name in STRATEGIES or any(name in getattr(module, table) for module, table, _, _ in _families())


def describe_scripted_strategies() -> dict[str, str]:
    """Name -> one-line description of every scripted strategy, family by family (for `societas list`)."""
    from societas.agents.scripted import describe_strategies

    out = describe_strategies()
    for module, _, _, describe in _families():
        out.update(getattr(module, describe)())
    return out


def check_policy(policy: str) -> None:
    """Raise ValueError, naming what is known, if the policy spec names nothing that exists."""
    from societas.agents.replay import replay_ids

    kind, _, name = policy.partition(":")
    if policy in ("llm", "human"):
        return
    if kind == "scripted":
        if _is_scripted_strategy(name):
            return
        known = scripted_strategy_names()
        if name not in known:
            registry.load_plugins()  # an installed plug-in may add it
            known = scripted_strategy_names()
        if name not in known:
            raise ValueError(f"unknown scripted strategy {name!r}; known: {', '.join(sorted(known))}"
                             f"{registry.failure_note()}")
        return
    if kind == "replay":
        if name not in replay_ids():
            raise ValueError(f"unknown replay policy {name!r}; known: {', '.join(replay_ids())}")
        return
    plugin_kind = registry.find_policy(kind) if name else None
    if plugin_kind is not None:
        plugin_kind.check(name)
        return
    raise ValueError(f"policy {policy!r} is not one of {registry.policy_forms()}{registry.failure_note()}")


def make_agent(
    policy: str,
    *,
    name: str,
    rng: np.random.Generator,
    model: ChatModel | None = None,
    llm_options: LLMAgentOptions | None = None,
    params: Mapping[str, Any] | None = None,
) -> Agent:
    """An agent for one seat of one episode; `params` parameterise a scripted strategy."""
    kind, _, ident = policy.partition(":")
    if policy == "llm":
        if model is None:
            raise ValueError(f"agent {name!r} has policy llm but no model")
        return LLMAgent(name, model, rng=rng, options=llm_options)
    if policy == "human":
        # A person's seat needs the run's seat server, which the local runner holds (RunContext.humans).
        raise ValueError(f"agent {name!r} has policy human: its seat is served by `societas run` "
                         "(the local runner), not built on its own")
    if kind == "scripted":
        from societas.agents.scripted import STRATEGIES, ScriptedAgent

        if ident not in STRATEGIES:
            registry.load_plugins()  # once per process: plug-ins may add strategies
        if ident in STRATEGIES:
            if params:
                raise ValueError(f"scripted:{ident} takes no parameters; got {', '.join(sorted(params))}")
            return ScriptedAgent(name, ident, rng)
        for module, table, cls, _ in _families():
            if ident in getattr(module, table):
                return getattr(module, cls)(name, ident, rng, params or {})
        raise ValueError(f"unknown scripted strategy {ident!r}")
    if kind == "replay":
        from societas.agents.replay import ReplayAgent

        return ReplayAgent(name, ident)
    plugin_kind = registry.find_policy(kind) if ident else None
    if plugin_kind is not None:
        return plugin_kind.factory(ident, name=name, rng=rng, model=model, llm_options=llm_options,
                                   params=params or {})
    raise ValueError(f"policy {policy!r} is not one of {registry.policy_forms()}")
