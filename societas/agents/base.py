"""The agent interface: given an Observation, return an Action."""

from __future__ import annotations

from typing import Protocol, runtime_checkable

from societas.types import Action, Observation


@runtime_checkable
class Agent(Protocol):
    """One seat's decision maker for one episode.

    `policy` is the spec it was built from ("scripted:tit_for_tat",
    "replay:akata2023/pd_gpt4", "llm"); `kind` its family ("scripted",
    "replay", "llm"); `model` the model spec for language-model agents.
    Agents are built per episode, so per-episode state lives on the instance.
    """

    name: str
    policy: str
    kind: str
    model: str | None

    async def act(self, observation: Observation) -> Action: ...
