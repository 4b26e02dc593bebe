"""Agents: the Agent protocol, language-model, scripted and replay agents, and the extension points.

Plug-ins add scripted strategies with `register_strategy` and whole policy
kinds ("KIND:NAME") with `register_policy`; see `societas.agents.registry`.
"""

from societas.agents.registry import (
    AgentFactory,
    PolicyKind,
    policy_kinds,
    register_policy,
    register_strategy,
    unregister_policy,
)

__all__ = ["AgentFactory", "PolicyKind", "policy_kinds", "register_policy", "register_strategy", "unregister_policy"]
