"""The fake OpenAI-compatible server: real HTTP, valid OpenAI JSON, constraints, faults."""

from __future__ import annotations

import json
import subprocess
import sys
import urllib.request
from collections.abc import Callable

import openai
import pytest

from societas.llm.base import ChatRequest
from societas.llm.fake import first_choice
from societas.llm.testing import (
    FakeOpenAIServer,
    FaultConfig,
    constraint_from_body,
    off_format_hit,
    request_from_body,
)
from societas.types import ActionSpec

Serve = Callable[..., FakeOpenAIServer]
PD_PROMPT = "Which option do you choose, Option J or Option F?"


def raw_client(srv: FakeOpenAIServer, transport: str) -> openai.AsyncOpenAI:
    http = openai.DefaultAioHttpClient() if transport == "aiohttp" else openai.DefaultAsyncHttpxClient()
    return openai.AsyncOpenAI(base_url=srv.base_url, api_key="EMPTY", max_retries=0, http_client=http)


@pytest.mark.parametrize("transport", ["aiohttp", "httpx"])
async def test_speaks_openai_json_to_the_real_client(serve: Serve, transport: str) -> None:
    srv = serve("first", model_names=("tiny", "tiny-2"))
    client = raw_client(srv, transport)
    try:
        reply = await client.chat.completions.create(
            model="tiny", messages=[{"role": "user", "content": PD_PROMPT}], temperature=0.0)
        assert reply.object == "chat.completion" and reply.id and reply.created > 0
        assert reply.model == "tiny"
        assert reply.choices[0].message.content == "Option J"
        assert reply.choices[0].finish_reason == "stop"
        assert reply.usage is not None
        assert reply.usage.total_tokens == reply.usage.prompt_tokens + reply.usage.completion_tokens > 0
        models = await client.models.list()
        assert [m.id for m in models.data] == ["tiny", "tiny-2"]
        assert {m.owned_by for m in models.data} == {"societas-fake"}
    finally:
        await client.close()
    assert srv.stats.total == 1 and srv.stats.by_kind["ok"] == 1 and srv.stats.models_requests == 1


def test_health_and_models_over_plain_http(serve: Serve) -> None:
    srv = serve(owned_by="vllm")
    with urllib.request.urlopen(srv.url + "/health", timeout=5) as r:
        assert r.status == 200
    with urllib.request.urlopen(srv.base_url + "/models", timeout=5) as r:
        assert json.load(r)["data"][0]["owned_by"] == "vllm"


async def test_runs_inside_the_current_loop() -> None:
    async with FakeOpenAIServer("echo") as srv:
        assert srv.base_url.startswith("http://127.0.0.1:") and srv.base_url.endswith("/v1")
        client = raw_client(srv, "aiohttp")
        try:
            reply = await client.chat.completions.create(
                model="fake", messages=[{"role": "user", "content": "hello"}])
        finally:
            await client.close()
        assert reply.choices[0].message.content == "hello"


async def test_bad_requests_get_openai_errors(serve: Serve) -> None:
    srv = serve()
    client = raw_client(srv, "aiohttp")
    try:
        with pytest.raises(openai.BadRequestError, match="messages"):
            await client.chat.completions.create(model="fake", messages=[])
    finally:
        await client.close()
    assert srv.stats.by_kind["bad_request"] == 1


def test_constraints_are_rebuilt_from_the_body() -> None:
    body = {"messages": [{"role": "user", "content": "pick"}], "structured_outputs": {"choice": ["C", "D"]}}
    spec, wrapped = constraint_from_body(body)
    assert spec == ActionSpec.choice(["C", "D"]) and not wrapped
    assert first_choice(request_from_body(body)) == "C"
    assert constraint_from_body({"structured_outputs": {"regex": "[0-9]+"}})[0].pattern == "[0-9]+"
    schema = {"type": "object", "required": ["x"]}
    assert constraint_from_body({"structured_outputs": {"json": schema}})[0].schema == schema
    for source in (ActionSpec.choice(["J", "F"]), ActionSpec.integer(0, 10), ActionSpec.real(0.0, 1.0),
                   ActionSpec(kind="regex", pattern="[ab]")):
        rf = {"type": "json_schema", "json_schema": {"name": "action", "schema": source.json_schema()}}
        spec, wrapped = constraint_from_body({"response_format": rf})
        assert wrapped and spec is not None and spec.to_dict() == source.to_dict()
    # vLLM >= 0.12 ignores the legacy fields; so does the fake server.
    assert constraint_from_body({"guided_choice": ["J", "F"]}) == (None, False)


def test_content_parts_and_seed_reach_the_responder() -> None:
    body = {"messages": [{"role": "user", "content": [{"type": "text", "text": "a"}, {"type": "text",
                                                                                   "text": "b"}]}],
            "temperature": 0.7, "seed": 12}
    req = request_from_body(body)
    assert req.messages[0]["content"] == "ab" and req.replicate == 12 and req.temperature == 0.7


async def test_json_schema_replies_are_wrapped(serve: Serve) -> None:
    srv = serve("first")
    client = raw_client(srv, "aiohttp")
    spec = ActionSpec.integer(0, 10)
    try:
        reply = await client.chat.completions.create(
            model="fake", messages=[{"role": "user", "content": "How much?"}],
            response_format={"type": "json_schema",
                             "json_schema": {"name": "action", "schema": spec.json_schema(), "strict": True}})
    finally:
        await client.close()
    assert json.loads(reply.choices[0].message.content) == {"answer": 5}


def test_off_format_is_a_function_of_the_request() -> None:
    msgs = [{"role": "user", "content": f"round {i}"} for i in range(400)]
    hits = [off_format_hit([m], "s", 0.25) for m in msgs]
    assert hits == [off_format_hit([m], "s", 0.25) for m in msgs]
    assert 40 < sum(hits) < 160
    assert hits != [off_format_hit([m], "other salt", 0.25) for m in msgs]
    assert not any(off_format_hit([m], "s", 0.0) for m in msgs)
    assert all(off_format_hit([m], "s", 1.0) for m in msgs)


async def test_off_format_replies_are_deterministic_over_http(serve: Serve) -> None:
    prompts = [f"Round {i}. Option J or Option F?" for i in range(30)]

    async def replies(srv: FakeOpenAIServer) -> list[str]:
        client = raw_client(srv, "aiohttp")
        try:
            out = []
            for p in reversed(prompts) if srv.faults.seed else prompts:
                r = await client.chat.completions.create(model="fake",
                                                         messages=[{"role": "user", "content": p}])
                out.append(r.choices[0].message.content)
            return out[::-1] if srv.faults.seed else out
        finally:
            await client.close()

    # Same salt, different arrival order and HTTP-fault seed: the same replies go off format.
    a = await replies(serve(faults=FaultConfig(off_format=0.5, salt="x", seed=0)))
    b = await replies(serve(faults=FaultConfig(off_format=0.5, salt="x", seed=1)))
    assert a == b
    assert "I am not sure." in a and "Option J" in a


async def test_http_faults_follow_the_seed(serve: Serve) -> None:
    async def kinds(seed: int) -> list[int]:
        srv = serve(faults=FaultConfig(rate_limit=0.3, server_error=0.3, seed=seed))
        client = raw_client(srv, "aiohttp")
        out = []
        try:
            for _ in range(20):
                try:
                    await client.chat.completions.create(model="fake",
                                                         messages=[{"role": "user", "content": "x"}])
                    out.append(200)
                except openai.APIStatusError as exc:
                    out.append(exc.status_code)
        finally:
            await client.close()
        return out

    first, again = await kinds(3), await kinds(3)
    assert first == again and {200, 429, 500} <= set(first)


def test_fault_config_is_validated() -> None:
    with pytest.raises(ValueError, match="at most 1"):
        FaultConfig(rate_limit=0.6, server_error=0.6)
    with pytest.raises(ValueError, match="probability"):
        FaultConfig(hang=-0.1)
    with pytest.raises(ValueError, match="script entry"):
        FaultConfig(script=("boom",))  # type: ignore[arg-type]


def test_records_bounded_bodies(serve: Serve) -> None:
    srv = serve(record_bodies=2)
    for i in range(3):
        req = urllib.request.Request(srv.base_url + "/chat/completions", method="POST",
                                     data=json.dumps({"model": "fake", "messages": [
                                         {"role": "user", "content": str(i)}]}).encode(),
                                     headers={"Content-Type": "application/json"})
        with urllib.request.urlopen(req, timeout=5) as r:
            assert json.load(r)["choices"][0]["message"]["content"]
    assert [b["messages"][0]["content"] for b in srv.bodies] == ["1", "2"]
    srv.reset_stats()
    assert srv.stats.total == 0 and srv.bodies == []


def test_runs_as_a_separate_process() -> None:
    proc = subprocess.Popen(
        [sys.executable, "-m", "societas.llm.testing", "--port", "0", "--responder", "first",
         "--latency", "0.01", "--owned-by", "vllm"],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        assert proc.stdout is not None
        base_url = proc.stdout.readline().strip()
        assert base_url.startswith("http://127.0.0.1:") and base_url.endswith("/v1")
        req = urllib.request.Request(base_url + "/chat/completions", method="POST",
                                     data=json.dumps({"model": "fake", "messages": [
                                         {"role": "user", "content": PD_PROMPT}]}).encode(),
                                     headers={"Content-Type": "application/json"})
        with urllib.request.urlopen(req, timeout=5) as r:
            assert json.load(r)["choices"][0]["message"]["content"] == "Option J"
    finally:
        proc.terminate()
        proc.wait(timeout=10)


def test_unknown_responder_is_named() -> None:
    with pytest.raises(KeyError, match="unknown fake responder 'nope'"):
        FakeOpenAIServer("nope")


def test_latency_may_depend_on_the_request() -> None:
    seen: list[ChatRequest] = []

    def latency(req: ChatRequest) -> float:
        seen.append(req)
        return 0.0

    with FakeOpenAIServer(latency=latency) as srv:
        req = urllib.request.Request(srv.base_url + "/chat/completions", method="POST",
                                     data=json.dumps({"model": "fake", "messages": [
                                         {"role": "user", "content": "hi"}]}).encode())
        with urllib.request.urlopen(req, timeout=5):
            pass
    assert seen and seen[0].messages[0]["content"] == "hi"
