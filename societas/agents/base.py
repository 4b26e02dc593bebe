"""The agent interface: given an Observation, return an Action."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Protocol, runtime_checkable

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


@dataclass(frozen=True, kw_only=True, slots=True)
class EpisodeEnd:
    """How an episode ended for one seat, handed to agents that define `finish`.

    An agent may define `async def finish(self, end: EpisodeEnd) -> Mapping[str, Any] | None`:
    the runner awaits it once the episode is over (a person's page shows the
    result and asks its debrief questions there), and what it returns is merged
    into the seat's `summary` in the episodes table.
    """

    total_reward: float
    decisions: int
    observation: Any = None
    """The environment's last observation of the seat (PettingZoo's, as `step` returned it)."""
