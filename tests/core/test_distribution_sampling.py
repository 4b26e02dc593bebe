"""`sampling: distribution`: one model call per distinct prompt, each agent draws its own answer."""

from __future__ import annotations

import asyncio
import math
from pathlib import Path

import numpy as np
import pytest

from societas.agents.llm_agent import LLMAgent, LLMAgentOptions
from societas.analysis import load_run
from societas.config import load_config
from societas.errors import BadInput
from societas.llm.base import ChatRequest, ChatResult
from societas.llm.cache import ResponseCache
from societas.llm.distribution import OptionDistribution
from societas.llm.fake import option_logprobs as fake_logprobs
from societas.llm.logprobs import option_logprobs
from societas.llm.specs import ModelOptions, make_model
from societas.llm.testing import FakeOpenAIServer
from societas.runners.run import run_experiment
from societas.types import ActionSpec, Observation

SPEC = ActionSpec.choice(("F", "J"))
PROMPT = "You are playing round 1.\nQ: Which Option do you choose, Option F or Option J?\nA: Option"


def _observation(prompt: str = PROMPT) -> Observation:
    return Observation(agent="player_0", round=1, system="RULES", prompt=prompt, spec=SPEC)


def _expected(prompt: str = PROMPT) -> list[float]:
    """The fake models' probabilities of F and J for the prompt, renormalised over the options."""
    request = ChatRequest(messages=({"role": "system", "content": "RULES"}, {"role": "user", "content": prompt}),
                          constraint=SPEC)
    weights = [math.exp(x) for x in fake_logprobs(request)]
    return [w / sum(weights) for w in weights]


def test_draws_follow_the_probabilities_at_the_agents_temperature() -> None:
    dist = OptionDistribution(("a", "b", "c"), (math.log(0.5), math.log(0.3), -math.inf), ChatResult("", "m"))
    assert dist.probabilities(1.0) == pytest.approx([0.625, 0.375, 0.0])
    assert dist.probabilities(0.0) == [1.0, 0.0, 0.0]
    sharp = dist.probabilities(0.5)
    assert sharp[0] == pytest.approx(0.25 / 0.34)
    assert dist.draw(0.0, 1.0) == (0, pytest.approx(0.625))
    assert dist.draw(0.7, 1.0)[0] == 1
    assert dist.draw(0.999999999, 1.0)[0] == 1  # never the option of probability 0


def test_options_are_read_off_the_token_logprobs() -> None:
    texts = ("Option F", "Option J")
    tokens = [{"token": "Option", "logprob": 0.0},
              {"token": " J", "logprob": -0.5, "top_logprobs": [
                  {"token": " J", "logprob": -0.5}, {"token": " F", "logprob": -1.5},
                  {"token": " maybe", "logprob": -2.0}, {"token": " ", "logprob": -2.2}]}]
    assert option_logprobs(tokens, texts) == pytest.approx((-1.5, -0.5))
    # An option past the listed tokens is less likely than all of them.
    assert option_logprobs([tokens[0], {**tokens[1], "top_logprobs": tokens[1]["top_logprobs"][:1]}],
                           texts) == (-math.inf, -0.5)
    # A token that opens two options cannot say how they split; a reply of another form says nothing.
    assert option_logprobs([{"token": "bl", "logprob": 0.0, "top_logprobs": [{"token": "bl", "logprob": 0.0}]}],
                           ("blue", "blush")) is None
    assert option_logprobs([{"token": "Sure", "logprob": 0.0}], texts) is None
    # Names of several tokens are told apart by their first.
    names = ("zorba", "kilo")
    assert option_logprobs([{"token": "zor", "logprob": -0.1, "top_logprobs": [
        {"token": "zor", "logprob": -0.1}, {"token": "ki", "logprob": -2.4}]}], names) == (-0.1, -2.4)


def test_the_response_cache_keeps_the_distribution(tmp_path: Path) -> None:
    cache = ResponseCache(tmp_path / "c.sqlite")
    cache.put("k", ChatResult("J", "m", option_logprobs=(-0.1, -math.inf)))
    cache.put("plain", ChatResult("J", "m"))
    assert cache.get("k").option_logprobs == (-0.1, -math.inf)
    assert cache.get("plain").option_logprobs is None
    asking = ChatRequest(messages=({"role": "user", "content": "Q"},), constraint=SPEC, option_logprobs=True)
    assert asking.key("m") != ChatRequest(messages=asking.messages, constraint=SPEC).key("m")


@pytest.mark.parametrize("owned_by", ["vllm", "me"])
def test_many_agents_awaiting_one_prompt_cause_one_call(owned_by: str) -> None:
    n = 2000

    async def play() -> list:
        async with FakeOpenAIServer("first", owned_by=owned_by, latency=0.05, record_bodies=2) as server:
            model = make_model(f"openai:fake@{server.base_url}", ModelOptions())
            options = LLMAgentOptions(sampling="distribution", temperature=1.0)
            agents = [LLMAgent(f"a{i}", model, rng=np.random.default_rng(i), options=options) for i in range(n)]
            actions = await asyncio.gather(*(a.act(_observation()) for a in agents))
            await model.aclose()
            assert server.stats.total == 1
            body = server.bodies[0]
            assert body["logprobs"] is True and body["top_logprobs"] == 20 and body["temperature"] == 0.0
        return actions

    actions = asyncio.run(play())
    callers = [a for a in actions if a.calls]
    assert len(callers) == 1 and callers[0].calls[0].purpose == "distribution"
    assert callers[0].calls[0].params["option_logprobs"] is True
    assert all(a.valid and a.prompt_tokens == 0 for a in actions)
    p = _expected()
    share = sum(a.value == "F" for a in actions) / n
    assert share == pytest.approx(p[0], abs=0.05)  # 2000 draws: the sd of the share is ~0.011
    assert {a.value: a.sampled_p for a in actions} == pytest.approx({"F": p[0], "J": p[1]})


async def test_the_agents_own_generators_decide_and_temperature_zero_takes_the_likeliest() -> None:
    from societas.llm.fake import FakeModel, first_choice

    model = FakeModel("fake:first", first_choice)
    options = LLMAgentOptions(sampling="distribution", temperature=1.0)
    one = [await LLMAgent("a", model, rng=np.random.default_rng(s), options=options).act(_observation())
           for s in range(40)]
    two = [await LLMAgent("a", model, rng=np.random.default_rng(s), options=options).act(_observation())
           for s in range(40)]
    assert [a.value for a in one] == [a.value for a in two] and len({a.value for a in one}) == 2
    assert model.calls == 1  # one distinct prompt for the whole process's use of this model
    greedy = await LLMAgent("g", model, rng=np.random.default_rng(0),
                            options=LLMAgentOptions(sampling="distribution")).act(_observation())
    assert greedy.value == SPEC.choices[int(np.argmax(_expected()))] and greedy.sampled_p == 1.0
    # Questions that are not a choice are asked as usual.
    number = Observation(agent="p", round=1, system="RULES", prompt="How many? ", spec=ActionSpec.integer(0, 9))
    counted = model.calls
    action = await LLMAgent("n", model, rng=np.random.default_rng(0), options=options).act(number)
    assert action.sampled_p is None and model.calls == counted + 1


def _pd(model: str, out: Path, **llm: object):
    cfg = load_config("pd_tournament", model=model, output_dir=str(out))
    return cfg.model_copy(update={
        "population": [a for a in cfg.population if a.name in ("llm", "gpt4", "tit_for_tat")],
        "llm": cfg.llm.model_copy(update={"sampling": "distribution", "temperature": 1.0, **llm}),
    })


def test_a_run_records_the_draws_and_one_call_per_distinct_prompt(tmp_path: Path) -> None:
    rd, _ = run_experiment(_pd("fake:random", tmp_path / "fake"), progress=False)
    base = load_run(rd.path)
    ev = base.events[base.events["policy"] == "llm"]
    calls = base.llm_calls
    assert ev["sampled_p"].between(0, 1, inclusive="right").all() and ev["valid"].all()
    assert base.events.loc[base.events["policy"] != "llm", "sampled_p"].isna().all()
    assert set(calls["purpose"]) == {"distribution"} and not calls["messages"].duplicated().any()
    assert 0 < len(calls) <= len(ev)
    cache = tmp_path / "cache.sqlite"
    for owned_by in ("vllm", "me"):
        with FakeOpenAIServer("first", owned_by=owned_by) as server:
            spec = f"openai:fake@{server.base_url}"
            first, _ = run_experiment(_pd(spec, tmp_path / owned_by, cache=str(cache.with_suffix(f".{owned_by}"))),
                                      progress=False)
            asked = server.stats.total
            again, _ = run_experiment(_pd(spec, tmp_path / f"{owned_by}-again",
                                          cache=str(cache.with_suffix(f".{owned_by}"))), progress=False)
            assert asked == len(calls) and server.stats.total == asked  # the rerun asked nothing
        for path in (first.path, again.path):
            run = load_run(path)
            # The same draws from the same distributions, in-process or over HTTP, asked or replayed.
            assert run.events["action"].tolist() == base.events["action"].tolist()
            assert run.events["sampled_p"].fillna(-1).tolist() == pytest.approx(
                base.events["sampled_p"].fillna(-1).tolist())
        assert load_run(again.path).llm_calls["cache_hit"].all()


def test_a_backend_without_logprobs_is_refused(tmp_path: Path) -> None:
    with FakeOpenAIServer("first") as server:  # no constraint dialect: the reply's form is unknown
        with pytest.raises(BadInput, match="log-probabilities"):
            run_experiment(_pd(f"openai:fake@{server.base_url}", tmp_path, cache=False), progress=False)


def test_hf_models_give_their_option_scores(tmp_path: Path) -> None:
    pytest.importorskip("torch")
    pytest.importorskip("transformers")
    try:
        from tests.llm.tiny_hf import build_tiny_model
    except ImportError:
        import sys

        sys.path.insert(0, str(Path(__file__).parents[1] / "llm"))
        from tiny_hf import build_tiny_model
    from societas.llm.hf import HFChatModel
    from societas.llm.specs import ModelSpec

    model = HFChatModel(ModelSpec(provider="hf", name=str(build_tiny_model(tmp_path / "tiny"))),
                        ModelOptions(hf_device="cpu"))
    request = ChatRequest(messages=({"role": "system", "content": "RULES"}, {"role": "user", "content": PROMPT}),
                          constraint=SPEC, temperature=1.0, option_logprobs=True)

    async def ask() -> tuple[ChatResult, list[float]]:
        try:
            return await model.complete(request), model.option_logprobs(request)
        finally:
            await model.aclose()

    result, reference = asyncio.run(ask())
    assert result.option_logprobs == pytest.approx(tuple(reference), abs=1e-5)
    assert len(result.option_logprobs) == 2 and all(x <= 0 for x in result.option_logprobs)


def _naming(out: Path, n: int, **llm: object):
    from societas.config import parse_config

    return parse_config({
        "name": "naming-llm", "seed": 0, "output_dir": str(out), "model": "fake:random",
        "environment": {"id": "naming-game", "params": {"num_agents": n, "names": ["F", "J"], "memory": 3,
                                                        "rounds": 6, "show_rounds": False}},
        "population": [{"name": "player", "policy": "llm", "count": n}],
        "llm": {"sampling": "distribution", "temperature": 1.0, **llm},
        "matchmaking": {"kind": "population"},
    }, source="test")


def test_a_naming_game_of_language_model_agents_asks_once_per_state(tmp_path: Path) -> None:
    n = 300
    rd, _ = run_experiment(_naming(tmp_path / "a", n), progress=False)
    run = load_run(rd.path)
    ev, calls = run.events, run.llm_calls
    assert len(ev) == 2 * 6 * n and ev["sampled_p"].notna().all()
    # A prompt is the memory (3 interactions of 4 outcomes, or fewer) and the order of 2 names.
    states = 2 * sum(4**k for k in range(4))
    assert not calls["messages"].duplicated().any() and len(calls) <= states < len(ev) // 10
    assert not calls["messages"].str.contains("round [0-9]", regex=True).any()  # no round numbers
    again, _ = run_experiment(_naming(tmp_path / "b", n), progress=False)
    assert load_run(again.path).events["action"].tolist() == ev["action"].tolist()
