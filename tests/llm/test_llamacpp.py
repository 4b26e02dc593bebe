"""llama.cpp as an engine: detection behind openai:NAME@URL, the constraints it honours, grammars."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from pathlib import Path

import pytest

from societas.environments.feedback_loop import ANSWER_MARKER, STATEMENT_PATTERN
from societas.llm.base import ChatRequest, ModelError
from societas.llm.constraints import answer_lead, request_body_extras
from societas.llm.llamacpp import ANSWER_ROOM, MAX_FREE_CHARS, choices_of, free_chars, grammar
from societas.llm.openai_backend import OpenAIChatModel
from societas.llm.specs import ModelOptions, make_model
from societas.llm.testing import FakeOpenAIServer
from societas.types import ActionSpec

Serve = Callable[..., FakeOpenAIServer]
ClientFor = Callable[..., OpenAIChatModel]
PD = "Q: Which Option do you choose, Option J or Option F? A: Option"


def ask(spec: ActionSpec, prompt: str = PD) -> ChatRequest:
    return ChatRequest(messages=({"role": "system", "content": "Rules."}, {"role": "user", "content": prompt}),
                       constraint=spec)


@pytest.mark.parametrize("owned_by", ["me", "llamacpp"])
async def test_auto_detects_llamacpp_and_sends_a_grammar(serve: Serve, client_for: ClientFor,
                                                          owned_by: str) -> None:
    srv = serve("first", owned_by=owned_by, record_bodies=4)
    model = client_for(srv)
    result = await model.complete(ask(ActionSpec.choice(["J", "F"])))
    assert await model.constraint_mode() == "llamacpp"
    body = srv.bodies[0]
    assert body["grammar"] == 'root ::= "J" | "F"\n'
    assert body["cache_prompt"] is True
    assert "structured_outputs" not in body and "response_format" not in body
    assert result.text == "J"  # the fake server read the grammar's options


@pytest.mark.parametrize(("spec", "field"), [
    (ActionSpec.integer(0, 10), "grammar"),
    (ActionSpec.real(0.0, 1.0), "grammar"),
    (ActionSpec(kind="regex", pattern="[JF]"), "grammar"),
    (ActionSpec(kind="json", schema={"type": "object", "properties": {"x": {"type": "integer"}}}), "response_format"),
])
async def test_each_kind_gets_a_form_llamacpp_honours(serve: Serve, client_for: ClientFor, spec: ActionSpec,
                                                      field: str) -> None:
    srv = serve("first", owned_by="me", record_bodies=1)
    result = await client_for(srv).complete(ask(spec, "How much?"))
    body = srv.bodies[0]
    assert field in body
    if field == "response_format":
        assert body["response_format"] == {"type": "json_object", "schema": spec.json_schema()}
    assert body.get("response_format", {}).get("type") != "json_schema"
    if field == "grammar" and spec.kind != "regex":  # the fake server holds replies to number grammars only
        spec.parse(result.text)


async def test_requests_turn_off_the_servers_own_sampler_stages(serve: Serve, client_for: ClientFor) -> None:
    # llama-cpp-python's server penalises repeated tokens by 1.1 unless told otherwise: at temperature 0
    # its replies then differ from plain greedy decoding (hf:). Top-k and min-p cut sampled distributions.
    srv = serve("first", owned_by="me", record_bodies=2)
    model = client_for(srv)
    await model.complete(ask(ActionSpec.choice(["J", "F"])))
    await model.complete(ChatRequest(messages=({"role": "user", "content": "Go on."},), temperature=0.7, top_p=0.9))
    greedy, sampled = srv.bodies
    assert {k: greedy[k] for k in ("repeat_penalty", "top_k", "min_p", "top_p")} == {
        "repeat_penalty": 1.0, "top_k": 0, "min_p": 0.0, "top_p": 1.0}
    assert sampled["top_p"] == 0.9 and sampled["temperature"] == 0.7 and sampled["repeat_penalty"] == 1.0
    other = serve("first", owned_by="vllm", record_bodies=1)
    await client_for(other).complete(ask(ActionSpec.choice(["J", "F"])))
    assert not {"repeat_penalty", "top_k", "min_p"} & set(other.bodies[0])  # vLLM adds no such stages


@pytest.mark.parametrize(("owned_by", "served_at_once"), [("me", 1), ("llamacpp", 4)])
async def test_a_server_is_sent_no_more_requests_than_it_serves_at_once(
        serve: Serve, client_for: ClientFor, owned_by: str, served_at_once: int) -> None:
    # llama-cpp-python's server ("me") serves one request at a time and queues the rest. Sent four
    # at once, the fourth waits three replies in its queue, its timeout running, and a server that
    # is only busy times out as one that failed. Sent one at a time, every request has its timeout
    # for its own reply; llama-server ("llamacpp") serves four (its default slots) and is sent four.
    srv = serve("first", owned_by=owned_by, capacity=served_at_once, latency=0.4)
    model = client_for(srv, structured_outputs="llamacpp", timeout_s=1.1)
    results = await asyncio.gather(*(model.complete(ask(ActionSpec.choice(["J", "F"]))) for _ in range(8)))
    assert [r.text for r in results] == ["J"] * 8
    assert srv.stats.max_in_flight == served_at_once


async def test_refused_request_is_not_retried(serve: Serve, client_for: ClientFor) -> None:
    # json_schema forced onto llama.cpp: a 500 that validates the request; asking again cannot help.
    srv = serve("first", owned_by="me")
    model = client_for(srv, structured_outputs="json_schema")
    with pytest.raises(ModelError, match="Input should be") as info:
        await model.complete(ask(ActionSpec.choice(["J", "F"])))
    assert type(info.value) is ModelError


def test_grammars() -> None:
    assert grammar(ActionSpec.choice(['say "hi"', "b\\c"])) == 'root ::= "say \\"hi\\"" | "b\\\\c"\n'
    assert choices_of(grammar(ActionSpec.choice(['say "hi"', "b\\c"])) or "") == ['say "hi"', "b\\c"]
    marked = grammar(ActionSpec.choice(["J", "F"], answer_marker="Answer:"))
    assert marked is not None and marked.startswith('root ::= free "Answer:" " "? answer\n')
    assert grammar(ActionSpec.integer(1, 3)) == 'root ::= "1" | "2" | "3"\n'
    assert grammar(ActionSpec.integer(-5000, 5000)) == 'root ::= "-"? [0-9] [0-9]? [0-9]? [0-9]?\n'
    assert grammar(ActionSpec(kind="text")) is None
    assert request_body_extras(ActionSpec.choice(["J", "F"]), "llamacpp") == {
        "extra_body": {"grammar": 'root ::= "J" | "F"\n'}}


STATEMENT = ActionSpec(kind="regex", pattern=STATEMENT_PATTERN, answer_marker=ANSWER_MARKER)


def _rules(text: str) -> dict[str, str]:
    return dict(line.split(" ::= ", 1) for line in text.splitlines())


def _free_bound(text: str) -> int:
    free = _rules(text)["free"]
    assert free.startswith("[^\\x00]{0,") and free.endswith("}"), free  # a bounded run of any characters
    return int(free[len("[^\\x00]{0,"):-1])


@pytest.mark.parametrize("spec", [STATEMENT, ActionSpec.real(0.0, 10.0, answer_marker=ANSWER_MARKER),
                                  ActionSpec.choice(["J", "F"], answer_marker="Answer:")])
def test_text_before_a_marker_is_bounded_by_max_tokens(spec: ActionSpec) -> None:
    # A small model asked to reason, then "Answer: ...", reasons until max_tokens and never writes
    # the marker unless the grammar ends the free text in time: at most one character per token.
    text = grammar(spec, max_tokens=200)
    assert text is not None and text.startswith(f'root ::= free "{ANSWER_MARKER}" " "? answer\n')
    n = _free_bound(text)
    assert n == free_chars(spec, 200) and 100 < n <= 200 - len(ANSWER_MARKER) - 1 - ANSWER_ROOM
    assert _free_bound(grammar(spec) or "") == free_chars(spec, None) > n  # no max_tokens: hf:'s default
    assert _free_bound(grammar(spec, max_tokens=100_000) or "") == MAX_FREE_CHARS  # what llama.cpp parses
    assert grammar(spec, max_tokens=ANSWER_ROOM) == grammar(spec, max_tokens=1) \
        and "free" not in (grammar(spec, max_tokens=1) or "")  # no room: the marker comes first


async def test_the_request_s_max_tokens_reaches_the_grammar(serve: Serve, client_for: ClientFor) -> None:
    srv = serve("first", owned_by="me", record_bodies=2)
    model = client_for(srv)
    for max_tokens in (200, 120):
        await model.complete(ChatRequest(messages=({"role": "user", "content": "Your stance?"},),
                                         constraint=STATEMENT, max_tokens=max_tokens))
    assert [_free_bound(b["grammar"]) for b in srv.bodies] == [free_chars(STATEMENT, 200), free_chars(STATEMENT, 120)]
    assert request_body_extras(STATEMENT, "llamacpp", max_tokens=200) == {
        "extra_body": {"grammar": grammar(STATEMENT, max_tokens=200)}}


async def test_cache_key_holds_the_constraint_mode(serve: Serve, tmp_path: Path) -> None:
    # The same request, unconstrained then constrained, on one cache: the second is asked, not replayed.
    srv = serve("first", owned_by="vllm")
    spec = ActionSpec.choice(["J", "F"])
    texts = []
    for mode in ("none", "vllm", "none"):
        model = make_model(f"openai:fake@{srv.base_url}",
                           ModelOptions(structured_outputs=mode, cache_path=tmp_path / "c.sqlite"))
        result = await model.complete(ask(spec))
        texts.append((result.text, result.cache_hit))
        await model.aclose()
    assert texts == [("Option J", False), ("J", False), ("Option J", True)]


def test_the_answer_is_constrained_in_the_form_the_prompt_implies() -> None:
    # "...\nA: Option" makes a model write "Option J": vLLM and llama.cpp constrain that form.
    messages = ({"role": "user", "content": "Which do you choose, Option J or Option F?\nA: Option"},)
    assert answer_lead(messages) == "Option"
    assert answer_lead(({"role": "user", "content": "Which?"},)) == ""
    assert answer_lead(({"role": "user", "content": "A: Option"}, {"role": "assistant", "content": "x"})) == ""
    spec = ActionSpec.choice(["J", "F"])
    assert request_body_extras(spec, "vllm", "Option") == {
        "extra_body": {"structured_outputs": {"regex": "Option (?:J|F)"}}}
    text = grammar(spec, "Option")
    assert text == 'root ::= "Option " ("J" | "F")\n'
    assert choices_of(text) == ["J", "F"]
    assert spec.parse("Option F") == "F"


async def test_managed_llamacpp_spec_starts_supervises_and_stops(tmp_path: Path) -> None:
    # The fake server stands in for llama.cpp's (it answers /health and lists its model as owned by "me").
    from societas.llm.servers import ServerOptions

    gguf = tmp_path / "model.gguf"
    gguf.write_bytes(b"GGUF")
    command = "{python} -m societas.llm.testing --host {host} --port {port} --owned-by me"
    model = make_model(f"llamacpp:{gguf}", ModelOptions(servers=ServerOptions(
        command=command, log_dir=str(tmp_path / "logs"), startup_timeout_s=60)))
    try:
        result = await model.complete(ask(ActionSpec.choice(["J", "F"])))
        assert result.text == "J"
        replica = model.inner.manager.replicas[0]  # type: ignore[attr-defined]
        assert replica.state == "ready"
    finally:
        await model.aclose()
    assert replica.state == "stopped"


async def test_a_managed_server_is_given_time_for_a_slow_reply(tmp_path: Path) -> None:
    # The server a llamacpp: spec starts runs one request at a time on this machine's CPU: a reply
    # slower than llm.timeout_s is its pace, not a failure (the supervisor finds a dead server).
    from societas.llm.servers import ServerOptions

    gguf = tmp_path / "model.gguf"
    gguf.write_bytes(b"GGUF")
    command = "{python} -m societas.llm.testing --host {host} --port {port} --owned-by me --latency 1.5"
    model = make_model(f"llamacpp:{gguf}", ModelOptions(timeout_s=0.5, max_retries=0, servers=ServerOptions(
        command=command, log_dir=str(tmp_path / "logs"), startup_timeout_s=60)))
    try:
        assert (await model.complete(ask(ActionSpec.choice(["J", "F"])))).text == "J"
    finally:
        await model.aclose()


def test_llamacpp_spec_needs_a_gguf_file(tmp_path: Path) -> None:
    from societas.errors import BadInput

    with pytest.raises(BadInput, match="no GGUF file"):
        make_model(f"llamacpp:{tmp_path / 'missing.gguf'}")
