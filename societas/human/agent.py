"""A seat whose decisions come from a person in a browser (`policy: human`)."""

from __future__ import annotations

from typing import Any

from societas.agents.base import EpisodeEnd
from societas.human.hub import EpisodeKey, SeatHub
from societas.human.params import HumanParams
from societas.human.views import decision_view, result_view
from societas.types import Action, ActionSpec, Observation


class HumanAgent:
    """Puts each decision on the member's page and waits for the person's answer.

    Recorded like any decision: policy `human`, the person's latency (from the
    moment the question was shown), `valid` False when the seat stayed idle
    past its timeout and the environment's default was played, and `retries`
    counting answers the question refused (a number out of range).
    """

    kind = "human"
    policy = "human"
    model: str | None = None

    def __init__(self, name: str, hub: SeatHub, episode: EpisodeKey, params: HumanParams | None = None) -> None:
        self.name = name
        self._hub = hub
        self._episode = episode
        self._params = params or HumanParams()
        self._last: Observation | None = None

    async def act(self, observation: Observation) -> Action:
        answer = await self._hub.ask(self.name, self._episode, observation.spec, decision_view(observation))
        self._last = observation
        return Action(value=answer.value, policy=self.policy, valid=not answer.timed_out,
                      retries=answer.rejected, latency_s=answer.latency_s)

    async def finish(self, end: EpisodeEnd) -> dict[str, Any] | None:
        """Show the episode's result, ask the debrief questions, and free the seat for its next episode."""
        result = result_view(self._last, end.observation, end.total_reward)
        answers: dict[str, Any] = {}
        try:
            for q in self._params.debrief:
                view = {"question": q.text, "result": result}
                answer = await self._hub.ask(self.name, self._episode, ActionSpec.choice(q.choices), view,
                                             kind="debrief")
                answers[q.key] = None if answer.timed_out else answer.value
        finally:
            self._hub.episode_done(self.name, self._episode, result)
        return {"debrief": answers} if self._params.debrief else None
