"""LLMAgent: parse, retry with the error shown, fall back, social chain of thought."""

from __future__ import annotations

import numpy as np
import pytest

from societas.agents.llm_agent import LLMAgent, LLMAgentOptions
from societas.llm.base import ChatRequest, ModelError
from societas.llm.fake import FakeModel
from societas.types import ActionSpec, Observation, Question

SPEC = ActionSpec.choice(("J", "F"))


def obs(prediction: bool = False) -> Observation:
    return Observation(
        agent="player_0", round=1, system="RULES", prompt="Q: Which Option? A: Option", spec=SPEC,
        prediction=Question(prompt="Q: Predict? A: Option", spec=SPEC) if prediction else None,
    )


def scripted(replies: list[str]):
    seen: list[ChatRequest] = []

    def responder(request: ChatRequest) -> str:
        seen.append(request)
        return replies[min(len(seen) - 1, len(replies) - 1)]

    return responder, seen


async def test_valid_first_try() -> None:
    responder, seen = scripted(["F"])
    agent = LLMAgent("a", FakeModel("fake:x", responder), rng=np.random.default_rng(0),
                     options=LLMAgentOptions(persona="You are careful."))
    action = await agent.act(obs())
    assert (action.value, action.valid, action.retries, len(action.calls)) == ("F", True, 0, 1)
    msgs = seen[0].messages
    assert msgs[0] == {"role": "system", "content": "RULES\n\nYou are careful."}
    assert msgs[1]["content"] == "Q: Which Option? A: Option"
    assert seen[0].constraint is SPEC


async def test_retry_shows_the_error_then_succeeds() -> None:
    responder, seen = scripted(["I am not sure.", "J"])
    agent = LLMAgent("a", FakeModel("fake:x", responder), rng=np.random.default_rng(0))
    action = await agent.act(obs())
    assert (action.value, action.valid, action.retries) == ("J", True, 1)
    retry = seen[1].messages
    assert retry[-2] == {"role": "assistant", "content": "I am not sure."}
    assert "names none of the options" in retry[-1]["content"]
    assert [c.error is None for c in action.calls] == [False, True]


async def test_fallback_after_max_attempts_is_recorded_invalid() -> None:
    responder, seen = scripted(["maybe"])
    agent = LLMAgent("a", FakeModel("fake:x", responder), rng=np.random.default_rng(0),
                     options=LLMAgentOptions(max_attempts=4))
    action = await agent.act(obs())
    assert (action.value, action.valid, action.retries, len(seen)) == ("J", False, 3, 4)


async def test_endpoint_failure_raises_and_is_never_a_move() -> None:
    class Down:
        name = "down"

        async def complete(self, request: ChatRequest):
            raise ModelError("503 after 6 retries")

        async def aclose(self) -> None: ...

    with pytest.raises(ModelError, match="503 after 6 retries"):
        await LLMAgent("a", Down(), rng=np.random.default_rng(0)).act(obs())


async def test_social_chain_of_thought_asks_prediction_first() -> None:
    responder, seen = scripted(["F", "J"])
    agent = LLMAgent("a", FakeModel("fake:x", responder), rng=np.random.default_rng(0),
                     options=LLMAgentOptions(social_chain_of_thought=True))
    action = await agent.act(obs(prediction=True))
    assert (action.prediction, action.value) == ("F", "J")
    assert [c.purpose for c in action.calls] == ["prediction", "action"]
    assert [m["content"] for m in seen[1].messages] == ["RULES", "Q: Predict? A: Option", "F",
                                                        "Q: Which Option? A: Option"]


async def test_failed_prediction_never_enters_the_conversation_and_counts() -> None:
    # Three unusable predictions, then the action: the default prediction must not appear as
    # the model's words, the prediction is recorded missing and invalid, its retries counted.
    responder, seen = scripted(["no idea", "still no idea", "hmm", "J"])
    agent = LLMAgent("a", FakeModel("fake:x", responder), rng=np.random.default_rng(0),
                     options=LLMAgentOptions(social_chain_of_thought=True))
    action = await agent.act(obs(prediction=True))
    assert (action.prediction, action.prediction_valid, action.value, action.valid) == (None, False, "J", True)
    assert action.retries == 2
    assert [m["content"] for m in seen[3].messages] == ["RULES", "Q: Which Option? A: Option"]
    assert [c.purpose for c in action.calls] == ["prediction"] * 3 + ["action"]


async def test_valid_prediction_counts_its_retries() -> None:
    responder, _ = scripted(["no idea", "F", "J"])
    agent = LLMAgent("a", FakeModel("fake:x", responder), rng=np.random.default_rng(0),
                     options=LLMAgentOptions(social_chain_of_thought=True))
    action = await agent.act(obs(prediction=True))
    assert (action.prediction, action.prediction_valid, action.retries) == ("F", True, 1)


async def test_replicates_vary_only_when_sampling() -> None:
    responder, seen = scripted(["J"])
    cold = LLMAgent("a", FakeModel("fake:x", responder), rng=np.random.default_rng(0))
    await cold.act(obs())
    hot = LLMAgent("a", FakeModel("fake:x", responder), rng=np.random.default_rng(0),
                   options=LLMAgentOptions(temperature=1.0))
    await hot.act(obs())
    await hot.act(obs())
    assert seen[0].replicate == 0
    assert seen[1].replicate != seen[2].replicate
