"""Build agents from policy specs: "scripted:NAME", "replay:ID" or "llm"."""

from __future__ import annotations

import numpy as np

from societas.agents.base import Agent
from societas.agents.llm_agent import LLMAgent, LLMAgentOptions
from societas.llm.base import ChatModel

POLICY_FORMS = "scripted:NAME, replay:ID or llm"


def policy_kind(policy: str) -> str:
    """The family of a policy spec: scripted, replay or llm."""
    return "llm" if policy == "llm" else policy.partition(":")[0]


def check_policy(policy: str) -> None:
    """Raise ValueError, naming what is known, if the policy spec names nothing that exists."""
    from societas.agents.replay import REPLAY_POLICIES
    from societas.agents.scripted import STRATEGIES

    kind, _, name = policy.partition(":")
    if policy == "llm":
        return
    if kind == "scripted":
        if name not in STRATEGIES:
            raise ValueError(f"unknown scripted strategy {name!r}; known: {', '.join(sorted(STRATEGIES))}")
        return
    if kind == "replay":
        if name not in REPLAY_POLICIES:
            raise ValueError(f"unknown replay policy {name!r}; known: {', '.join(sorted(REPLAY_POLICIES))}")
        return
    raise ValueError(f"policy {policy!r} is not one of {POLICY_FORMS}")


def make_agent(
    policy: str,
    *,
    name: str,
    rng: np.random.Generator,
    model: ChatModel | None = None,
    llm_options: LLMAgentOptions | None = None,
) -> Agent:
    """An agent for one seat of one episode."""
    kind, _, ident = policy.partition(":")
    if policy == "llm":
        if model is None:
            raise ValueError(f"agent {name!r} has policy llm but no model")
        return LLMAgent(name, model, rng=rng, options=llm_options)
    if kind == "scripted":
        from societas.agents.scripted import ScriptedAgent

        return ScriptedAgent(name, ident, rng)
    if kind == "replay":
        from societas.agents.replay import ReplayAgent

        return ReplayAgent(name, ident)
    raise ValueError(f"policy {policy!r} is not one of {POLICY_FORMS}")
