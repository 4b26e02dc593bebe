"""OpenAIChatModel against the fake server: requests, constraints, detection, errors, limits, keys."""

from __future__ import annotations

import asyncio
import email.utils
import time
from collections.abc import Callable
from typing import Any

import pytest

from societas.llm.base import ChatModel, ChatRequest, ModelError, TransientModelError
from societas.llm.openai_backend import OpenAIChatModel, cached_tokens, parse_retry_after
from societas.llm.specs import ModelOptions, ModelSpec, make_model
from societas.llm.testing import FakeOpenAIServer, FaultConfig
from societas.types import ActionSpec

KEY_ENV = "SOCIETAS_TEST_API_KEY"  # the variable conftest's client_for reads
Serve = Callable[..., FakeOpenAIServer]
ClientFor = Callable[..., OpenAIChatModel]
PD_PROMPT = "Which option do you choose, Option J or Option F?"
TRANSPORTS = ["direct", "aiohttp", "httpx"]


def ask(prompt: str = PD_PROMPT, spec: ActionSpec | None = None, **kw: Any) -> ChatRequest:
    return ChatRequest(messages=({"role": "user", "content": prompt},), constraint=spec, **kw)


@pytest.mark.parametrize("transport", TRANSPORTS)
async def test_complete_on_every_transport(serve: Serve, client_for: ClientFor, transport: str) -> None:
    srv = serve("first", record_bodies=4)
    model = client_for(srv, "tiny", transport=transport)
    assert isinstance(model, ChatModel)
    result = await model.complete(ask(max_tokens=8, top_p=0.9, seed=3))
    assert result.text == "Option J"
    assert result.model == f"openai:tiny@{srv.base_url}" == model.name
    assert result.prompt_tokens > 0 and result.completion_tokens > 0 and result.latency_s > 0
    assert not result.cache_hit and result.attempts == 1
    body = srv.bodies[0]
    assert body["model"] == "tiny" and body["max_tokens"] == 8 and body["top_p"] == 0.9
    assert body["seed"] == 3 and body["temperature"] == 0.0
    assert "structured_outputs" not in body and "response_format" not in body


SPECS = {
    "choice": ActionSpec.choice(["J", "F"]),
    "integer": ActionSpec.integer(0, 10),
    "real": ActionSpec.real(0.0, 1.0),
    "regex": ActionSpec(kind="regex", pattern="[JF]"),
    "json": ActionSpec(kind="json", schema={"type": "object", "properties": {"a": {"type": "string"}},
                                            "required": ["a"], "additionalProperties": False}),
    "text": ActionSpec(kind="text"),
}


@pytest.mark.parametrize("mode", ["vllm", "json_schema", "none"])
@pytest.mark.parametrize("kind", list(SPECS))
async def test_constraints_reach_the_server(serve: Serve, client_for: ClientFor, kind: str, mode: str) -> None:
    spec = SPECS[kind]
    srv = serve("first", record_bodies=1)
    model = client_for(srv, structured_outputs=mode)
    result = await model.complete(ask(PD_PROMPT if kind == "choice" else "How much do you give?", spec))
    body = srv.bodies[0]
    if mode == "vllm" and kind != "text":
        so = body["structured_outputs"]
        expected = {"choice": {"choice": ["J", "F"]}, "regex": {"regex": "(?:[JF])"},
                    "json": {"json": spec.json_schema()}}
        if kind in expected:
            assert so == expected[kind]
        else:
            assert set(so) == {"regex"}
    else:
        assert "structured_outputs" not in body
    if mode == "json_schema" and kind != "text":
        assert body["response_format"] == {"type": "json_schema", "json_schema": {
            "name": "action", "schema": spec.json_schema(), "strict": True}}
    else:
        assert "response_format" not in body
    if kind in ("choice", "integer", "real"):
        # The responder saw the constraint (or a parseable default); the reply parses either way.
        assert spec.parse(result.text) is not None
    if kind == "choice" and mode != "none":
        assert result.text == "J"


@pytest.mark.parametrize("transport", TRANSPORTS)
@pytest.mark.parametrize(("owned_by", "mode"), [("vllm", "vllm"), ("societas-fake", "none")])
async def test_auto_detects_vllm(serve: Serve, client_for: ClientFor, owned_by: str, mode: str,
                                 transport: str) -> None:
    srv = serve("first", owned_by=owned_by, record_bodies=8)
    a, b = client_for(srv, transport=transport), client_for(srv, transport=transport)
    spec = ActionSpec.choice(["J", "F"])
    results = await asyncio.gather(*(m.complete(ask(spec=spec)) for m in (a, b, a, b)))
    assert await a.constraint_mode() == mode
    assert srv.stats.models_requests == 1  # once per endpoint, shared by both models
    assert all(("structured_outputs" in body) == (mode == "vllm") for body in srv.bodies)
    assert {r.text for r in results} == ({"J"} if mode == "vllm" else {"Option J"})


async def test_explicit_mode_skips_detection(serve: Serve, client_for: ClientFor) -> None:
    srv = serve(owned_by="vllm")
    await client_for(srv, structured_outputs="none").complete(ask(spec=ActionSpec.choice(["J", "F"])))
    assert srv.stats.models_requests == 0


@pytest.mark.parametrize("transport", TRANSPORTS)
async def test_rate_limit_is_transient_with_retry_after(serve: Serve, client_for: ClientFor, transport: str) -> None:
    srv = serve(faults=FaultConfig(script=("rate_limit",), retry_after_s=2.5))
    with pytest.raises(TransientModelError) as info:
        await client_for(srv, transport=transport).complete(ask())
    assert info.value.retry_after == 2.5 and "429" in str(info.value)


@pytest.mark.parametrize("transport", TRANSPORTS)
@pytest.mark.parametrize("fault", ["server_error", "malformed", "hang"])
async def test_server_failures_are_transient(serve: Serve, client_for: ClientFor, fault: str,
                                             transport: str) -> None:
    srv = serve(faults=FaultConfig(script=(fault,)))
    model = client_for(srv, timeout_s=0.3, transport=transport)
    with pytest.raises(TransientModelError):
        await model.complete(ask())
    assert srv.stats.by_kind[fault] == 1
    assert (await model.complete(ask())).text == "Option J"  # the next request is fine


@pytest.mark.parametrize("transport", TRANSPORTS)
async def test_client_errors_are_not_transient(serve: Serve, client_for: ClientFor, transport: str) -> None:
    srv = serve()
    with pytest.raises(ModelError) as info:
        await client_for(srv, transport=transport).complete(ChatRequest(messages=()))
    assert not isinstance(info.value, TransientModelError) and "400" in str(info.value)


@pytest.mark.parametrize("transport", TRANSPORTS)
async def test_connection_refused_is_transient(client_for: ClientFor, transport: str) -> None:
    with FakeOpenAIServer() as srv:
        model = client_for(srv, structured_outputs="none", transport=transport)
    with pytest.raises(TransientModelError, match="connection"):
        await model.complete(ask())


async def test_in_flight_limit_is_shared_per_endpoint(serve: Serve, client_for: ClientFor) -> None:
    srv = serve(latency=0.05)
    a, b = client_for(srv, max_in_flight=4), client_for(srv, max_in_flight=4)
    results = await asyncio.gather(*(m.complete(ask(f"{i}: Option J or Option F?"))
                                     for i in range(10) for m in (a, b)))
    assert len(results) == 20 and srv.stats.total == 20
    assert 1 <= srv.stats.max_in_flight <= 4


@pytest.mark.parametrize("transport", TRANSPORTS)
async def test_key_never_leaks(serve: Serve, client_for: ClientFor, api_key: str, transport: str) -> None:
    good = serve(api_key=api_key)
    result = await client_for(good, transport=transport).complete(ask())
    assert api_key not in repr(result) and result.text == "Option J"
    bad = serve(api_key="a-different-key")  # the 401 message quotes the key it got
    model = client_for(bad, transport=transport)
    with pytest.raises(ModelError) as info:
        await model.complete(ask())
    assert "401" in str(info.value) and api_key not in str(info.value)
    assert api_key not in repr(info.value.args) and info.value.__cause__ is None
    assert api_key not in repr(model)


async def test_key_without_a_prefix_is_scrubbed(serve: Serve, client_for: ClientFor,
                                                monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(KEY_ENV, "plainsecretvalue0123")
    model = client_for(serve(api_key="expected"))
    with pytest.raises(ModelError) as info:
        await model.complete(ask())
    assert "plainsecretvalue0123" not in str(info.value)


def test_openai_without_key_names_the_variable(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(KEY_ENV, raising=False)
    with pytest.raises(ModelError, match=KEY_ENV):
        OpenAIChatModel(ModelSpec(provider="openai", name="gpt-4o-mini"), ModelOptions(api_key_env=KEY_ENV))


async def test_make_model_wraps_the_backend(serve: Serve, tmp_path: Any) -> None:
    srv = serve(faults=FaultConfig(script=("server_error",)))
    model = make_model(f"openai:fake@{srv.base_url}",
                       ModelOptions(api_key_env=KEY_ENV, backoff_base_s=0.01, cache_path=tmp_path / "c.sqlite"))
    try:
        first = await model.complete(ask())
        again = await model.complete(ask())
    finally:
        await model.aclose()
    assert first.text == again.text == "Option J"
    assert first.attempts == 2 and len(first.errors) == 1 and again.cache_hit
    assert srv.stats.total == 2


def test_parse_retry_after() -> None:
    assert parse_retry_after({"retry-after": "3"}) == 3.0
    assert parse_retry_after({"retry-after": "0.5", "retry-after-ms": "250"}) == 0.25
    assert parse_retry_after({}) is None and parse_retry_after(None) is None
    assert parse_retry_after({"retry-after": "soon"}) is None
    date = email.utils.formatdate(time.time() + 30, usegmt=True)
    assert 20 < parse_retry_after({"retry-after": date}) <= 31


@pytest.mark.parametrize("transport", TRANSPORTS)
async def test_engine_cached_tokens_are_read(serve: Serve, client_for: ClientFor, transport: str) -> None:
    srv = serve("first", prefix_cache=True)
    model = client_for(srv, "tiny", transport=transport)
    system = {"role": "system", "content": "The rules of the game, the same in every call. " * 8}
    first = await model.complete(ChatRequest(messages=(system, {"role": "user", "content": "Round 1?"})))
    second = await model.complete(ChatRequest(messages=(system, {"role": "user", "content": "Round 2?"})))
    assert first.cached_tokens == 0
    assert 0 < second.cached_tokens < second.prompt_tokens


def test_cached_tokens_from_each_dialect() -> None:
    assert cached_tokens({"usage": {"prompt_tokens": 9, "prompt_tokens_details": {"cached_tokens": 4}}}) == 4
    assert cached_tokens({"usage": {"prompt_tokens": 9}, "timings": {"cache_n": 7, "prompt_n": 2}}) == 7
    assert cached_tokens({"usage": {"prompt_tokens": 9, "prompt_tokens_details": None}}) == 0
    assert cached_tokens({}) == 0
