"""`llm.reasoning: two_turn`: a free turn to reason in, then the constrained answer, in every mode."""

from __future__ import annotations

import asyncio
from pathlib import Path

import numpy as np
import pytest

from societas.agents.llm_agent import FINAL_PROMPT, THINK_PROMPT, LLMAgent, LLMAgentOptions
from societas.analysis import load_run
from societas.analysis.cost import usage_table
from societas.analysis.transcript import transcript, transcript_text
from societas.analysis.transcript_html import transcript_html
from societas.config import ConfigError, load_config
from societas.llm.base import ChatRequest, ChatResult
from societas.llm.cache import CachedModel, ResponseCache
from societas.llm.fake import FakeModel
from societas.llm.testing import FakeOpenAIServer
from societas.runners.run import run_experiment
from societas.types import ActionSpec, Observation

SPEC = ActionSpec.choice(("F", "J"))
PROMPT = "You are playing round 1.\nQ: Which Option do you choose, Option F or Option J?\nA: Option"


def _observation() -> Observation:
    return Observation(agent="player_0", round=1, system="RULES", prompt=PROMPT, spec=SPEC)


class _Scripted:
    """Replies in order, recording each request; a reasoning field on the first when given."""

    name = "fake:scripted"

    def __init__(self, replies: list[str], reasoning: str = "") -> None:
        self.replies, self.reasoning, self.seen = replies, reasoning, []

    async def complete(self, request: ChatRequest) -> ChatResult:
        self.seen.append(request)
        text = self.replies[min(len(self.seen) - 1, len(self.replies) - 1)]
        return ChatResult(text=text, model=self.name, prompt_tokens=10, completion_tokens=5, latency_s=0.01,
                          reasoning=self.reasoning if len(self.seen) == 1 else "")

    async def aclose(self) -> None:
        return None


async def test_two_turn_reasons_freely_then_answers_under_the_constraint() -> None:
    model = _Scripted(["<think>F pays more once, J builds trust.</think>I lean to J.", "J"])
    options = LLMAgentOptions(reasoning="two_turn", max_tokens=8, reasoning_max_tokens=300)
    agent = LLMAgent("a", model, rng=np.random.default_rng(0), options=options)
    action = await agent.act(_observation())
    first, second = model.seen
    assert first.constraint is None and second.constraint is SPEC
    assert (first.max_tokens, second.max_tokens) == (300, 8)
    # The reasoning turn asks the question without the answer's start; the final prompt ends in it.
    assert first.messages[-1]["content"].endswith(f"Option F or Option J?\n\n{THINK_PROMPT}")
    assert second.messages[-1] == {"role": "user", "content": f"{FINAL_PROMPT}\nA: Option"}
    # The model's thinking joins the conversation in words (templates drop think blocks of past turns).
    assert second.messages[-2] == {"role": "assistant", "content": "F pays more once, J builds trust.\n\nI lean to J."}
    assert [c.purpose for c in action.calls] == ["reasoning", "action"]
    assert action.calls[0].reasoning == "F pays more once, J builds trust." and action.calls[1].reasoning == ""
    assert (action.value, action.valid, action.retries) == ("J", True, 0)
    # The decision's cost is both calls'.
    assert (action.prompt_tokens, action.completion_tokens) == (20, 10)
    assert action.latency_s == pytest.approx(0.02)
    assert first.policy == second.policy == "reasoning=two_turn"
    assert action.calls[0].params["policy"] == "reasoning=two_turn"


async def test_a_reasoning_field_is_kept_and_an_answer_turn_retries_as_usual() -> None:
    model = _Scripted(["I would cooperate.", "<think>J.</think>maybe", "J"], reasoning="They cooperated last time.")
    agent = LLMAgent("a", model, rng=np.random.default_rng(0), options=LLMAgentOptions(reasoning="two_turn"))
    action = await agent.act(_observation())
    assert model.seen[1].messages[-2]["content"] == "They cooperated last time.\n\nI would cooperate."
    assert [(c.purpose, c.attempt) for c in action.calls] == [("reasoning", 0), ("action", 0), ("action", 1)]
    assert action.calls[1].reasoning == "J." and action.calls[1].error is not None
    assert (action.value, action.retries) == ("J", 1)


async def test_none_asks_once_and_parses_think_replies() -> None:
    model = _Scripted(["<think>Option F is greedy.</think>J"])
    agent = LLMAgent("a", model, rng=np.random.default_rng(0))
    action = await agent.act(_observation())
    assert len(model.seen) == 1 and model.seen[0].policy == ""
    assert action.value == "J" and action.calls[0].reasoning == "Option F is greedy."
    assert "policy" not in action.calls[0].params


def test_the_option_is_in_the_cache_key_and_only_there(tmp_path: Path) -> None:
    plain = ChatRequest(messages=({"role": "user", "content": "Q"},))
    tagged = ChatRequest(messages=plain.messages, policy="reasoning=two_turn")
    assert plain.key("m") != tagged.key("m")
    assert plain.sampling() == tagged.sampling()  # nothing of it is sent to the provider
    assert '"policy"' not in plain.canonical("m")  # keys of requests without one are unchanged
    inner = FakeModel("fake:first", lambda r: "J")
    model = CachedModel(inner, ResponseCache(tmp_path / "c.sqlite"))

    async def ask(request: ChatRequest) -> ChatResult:
        return await model.complete(request)

    assert not asyncio.run(ask(plain)).cache_hit
    assert not asyncio.run(ask(tagged)).cache_hit and inner.calls == 2
    assert asyncio.run(ask(tagged)).cache_hit and inner.calls == 2


def _pd(model: str, out: Path, reasoning: str, **llm: object):
    cfg = load_config("pd_tournament", model=model, output_dir=str(out))
    return cfg.model_copy(update={
        "population": [a for a in cfg.population if a.name in ("llm", "gpt4")],
        "llm": cfg.llm.model_copy(update={"reasoning": reasoning, **llm}),
    })


@pytest.mark.parametrize("owned_by", ["societas-fake", "vllm"])
@pytest.mark.parametrize("thinking", ["think", "field"])
@pytest.mark.parametrize("reasoning", ["none", "two_turn"])
def test_every_mode_over_a_socket(tmp_path: Path, reasoning: str, thinking: str, owned_by: str) -> None:
    with FakeOpenAIServer("first", reasoning=thinking, owned_by=owned_by, record_bodies=4) as server:
        rd, _ = run_experiment(_pd(f"openai:fake@{server.base_url}", tmp_path, reasoning, cache=False),
                               progress=False)
        served = server.stats.by_kind["ok"]
        bodies = server.bodies
    run = load_run(rd.path)
    calls, events = run.llm_calls, run.events
    llm_events = events[events["agent"] == "llm"]
    assert llm_events["valid"].all() and (llm_events["retries"] == 0).all()
    assert calls["error"].isna().all() and (calls["reasoning"] == FakeOpenAIServer.THINKING).all()
    per_decision = 2 if reasoning == "two_turn" else 1
    assert len(calls) == per_decision * len(llm_events) == served
    purposes = calls["purpose"].value_counts().to_dict()
    assert purposes == ({"reasoning": len(llm_events), "action": len(llm_events)} if reasoning == "two_turn"
                        else {"action": len(llm_events)})
    # Counted in the usage table and in each decision's totals.
    assert usage_table(calls)["calls"].sum() == len(calls)
    per_event = calls.groupby(["episode", "round", "seat"])["prompt_tokens"].sum()
    assert llm_events.set_index(["episode", "round", "seat"])["prompt_tokens"].sort_index().tolist() == \
        per_event.sort_index().tolist()
    if reasoning == "two_turn":
        free = [b for b in bodies if THINK_PROMPT in b["messages"][-1]["content"]]
        # Unconstrained, and free of the answer's length limit (pd_tournament sets max_tokens: 8).
        assert free and all("structured_outputs" not in b and "max_tokens" not in b for b in free)
        if owned_by == "vllm":  # the answer turn is constrained as the question's answer starts
            assert any(b.get("structured_outputs") == {"regex": "Option (?:F|J)"} for b in bodies)
    t = transcript(rd.path, agent="llm")
    assert (t["reasoning"] == FakeOpenAIServer.THINKING).all()
    text = transcript_text(t)
    assert "[thinking]" in text and FakeOpenAIServer.THINKING in text
    assert ("reasoning question" in text) == (reasoning == "two_turn")
    assert text.count("=> action:") == len(llm_events) and "=> reasoning" not in text
    html = transcript_html(t)
    assert 'class="msg thinking"' in html and FakeOpenAIServer.THINKING in html
    assert ("reasoning turn" in html) == (reasoning == "two_turn")


def test_fake_models_reason_too_and_reruns_replay_from_the_cache(tmp_path: Path) -> None:
    rd, _ = run_experiment(_pd("fake:random", tmp_path / "a", "two_turn"), progress=False)
    calls = load_run(rd.path).llm_calls
    assert set(calls["purpose"]) == {"reasoning", "action"} and calls["error"].isna().all()
    cache = tmp_path / "cache.sqlite"
    with FakeOpenAIServer("random") as server:
        spec = f"openai:fake@{server.base_url}"
        first, _ = run_experiment(_pd(spec, tmp_path / "b", "two_turn", cache=str(cache)), progress=False)
        asked = server.stats.total
        again, _ = run_experiment(_pd(spec, tmp_path / "c", "two_turn", cache=str(cache)), progress=False)
        assert server.stats.total == asked  # every call of both turns replayed
        # Another option finds none of these replies: it hits only prompts it asked itself before.
        other, _ = run_experiment(_pd(spec, tmp_path / "d", "none", cache=str(cache)), progress=False)
    a, b = load_run(first.path), load_run(again.path)
    assert b.llm_calls["cache_hit"].all()
    assert a.events["action"].tolist() == b.events["action"].tolist()
    calls = load_run(other.path).llm_calls
    repeated = calls["messages"].duplicated(keep=False)
    assert not calls["cache_hit"].all() and not (calls["cache_hit"] & ~repeated).any()


def test_the_option_is_checked_and_a_member_may_set_its_own(tmp_path: Path) -> None:
    cfg = load_config("pd_tournament", model="fake:first", output_dir=str(tmp_path))
    with pytest.raises((ConfigError, ValueError)):
        cfg.model_validate({**cfg.model_dump(), "llm": {"reasoning": "think_hard"}})
    population = [a.model_copy(update={"reasoning": "two_turn"}) if a.name == "llm" else a
                  for a in cfg.population if a.name in ("llm", "llm-scot", "gpt4")]
    rd, _ = run_experiment(cfg.model_copy(update={"population": population}), progress=False)
    calls = load_run(rd.path).llm_calls
    assert set(calls.loc[calls["agent"] == "llm", "purpose"]) == {"reasoning", "action"}
    assert set(calls.loc[calls["agent"] == "llm-scot", "purpose"]) == {"prediction", "action"}
