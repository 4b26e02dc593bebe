"""A fake OpenAI-compatible server, so plug-ins and backends can be tested offline.

`FakeOpenAIServer` speaks real HTTP on 127.0.0.1 (aiohttp) and answers chat
completions with a `Responder` from `societas.llm.fake`. It rebuilds the output
constraint from the request body (vLLM `structured_outputs`, or an OpenAI
`response_format` JSON schema), so responders see the allowed choices as they
would in-process. Latency and faults (429 with Retry-After, 500, hangs, broken
JSON, off-format replies) can be injected to exercise retries and parsing.

Off-format faults are a pure function of the request (a hash of its messages
and a salt), so a simulation against the server stays reproducible; HTTP faults
come from a seeded generator in arrival order.

    with FakeOpenAIServer(responder="first", latency=0.05) as srv:
        model = make_model(f"openai:fake@{srv.base_url}")

or, inside a running event loop, `async with FakeOpenAIServer(...) as srv:`.
From a shell: `python -m societas.llm.testing --port 8000 --responder first`.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import hashlib
import json
import math
import random
import re
import socket
import threading
import time
from collections import Counter, deque
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

from aiohttp import web

from societas.llm.base import ChatRequest
from societas.llm.fake import Responder, approx_tokens, get_responder, option_logprobs
from societas.llm.retry import PROBE
from societas.types import ActionSpec, InvalidAction

FaultKind = Literal["rate_limit", "server_error", "hang", "malformed", "off_format"]
Latency = float | Callable[[ChatRequest], float]

_HTTP_FAULTS: tuple[FaultKind, ...] = ("rate_limit", "server_error", "hang", "malformed")
_JSON = "application/json"


@dataclass(frozen=True, kw_only=True, slots=True)
class FaultConfig:
    """Which faults the server injects, and how often.

    `rate_limit`, `server_error`, `hang` and `malformed` are probabilities per
    chat request (their sum at most 1), drawn from `random.Random(seed)`.
    `script` forces the faults of the first requests in order (None: no fault),
    before the probabilities apply, for tests that need an exact sequence.
    `off_format` is the share of requests, chosen by a hash of their messages and
    `salt`, whose reply is replaced by `off_format_text` (which names no option).
    """

    rate_limit: float = 0.0
    server_error: float = 0.0
    hang: float = 0.0
    malformed: float = 0.0
    off_format: float = 0.0
    retry_after_s: float = 1.0
    seed: int = 0
    salt: str = ""
    off_format_text: str = "I am not sure."
    script: tuple[FaultKind | None, ...] = ()

    def __post_init__(self) -> None:
        for name in (*_HTTP_FAULTS, "off_format"):
            p = getattr(self, name)
            if not 0.0 <= p <= 1.0:
                raise ValueError(f"FaultConfig.{name} must be a probability in [0, 1], got {p}")
        total = sum(getattr(self, name) for name in _HTTP_FAULTS)
        if total > 1.0 + 1e-9:
            raise ValueError(
                f"FaultConfig: rate_limit + server_error + hang + malformed must be at most 1, got {total:g}"
            )
        if self.retry_after_s < 0:
            raise ValueError(f"FaultConfig.retry_after_s must be >= 0, got {self.retry_after_s}")
        for kind in self.script:
            if kind is not None and kind not in (*_HTTP_FAULTS, "off_format"):
                raise ValueError(
                    f"FaultConfig.script entry {kind!r} is not one of: "
                    f"{', '.join((*_HTTP_FAULTS, 'off_format'))} or None"
                )


@dataclass(slots=True)
class ServerStats:
    """What the server saw: chat requests by outcome, and the most it served at once."""

    total: int = 0
    by_kind: Counter[str] = field(default_factory=Counter)
    in_flight: int = 0
    max_in_flight: int = 0
    models_requests: int = 0
    probes: int = 0  # connection checks a run sends first; answered "OK", not counted in total


_PROBE_MESSAGES = [dict(m) for m in PROBE.messages]


def off_format_hit(messages: Sequence[Mapping[str, Any]], salt: str, probability: float) -> bool:
    """Whether a request with these messages gets an off-format reply (a pure function)."""
    if probability <= 0.0:
        return False
    h = hashlib.blake2b(digest_size=8)
    for m in messages:
        h.update(str(m.get("role", "")).encode())
        h.update(b"\x00")
        h.update(_content_text(m.get("content")).encode())
        h.update(b"\x01")
    h.update(salt.encode())
    return int.from_bytes(h.digest(), "big") / 2**64 < probability


def _content_text(content: Any) -> str:
    """Message content as text; list-of-parts content keeps its text parts."""
    if content is None:
        return ""
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        return "".join(p.get("text", "") for p in content if isinstance(p, dict))
    return str(content)


def _spec_from_schema(schema: Any) -> tuple[ActionSpec | None, bool]:
    """The ActionSpec behind a JSON schema, and whether replies wrap it as {"answer": ...}."""
    if not isinstance(schema, dict):
        return None, False
    props = schema.get("properties")
    answer = props.get("answer") if isinstance(props, dict) else None
    try:
        if isinstance(answer, dict) and set(props) == {"answer"}:
            kind = answer.get("type")
            if kind == "string" and isinstance(answer.get("enum"), list) and answer["enum"]:
                return ActionSpec.choice([str(c) for c in answer["enum"]]), True
            if kind in ("integer", "number") and "minimum" in answer and "maximum" in answer:
                make = ActionSpec.integer if kind == "integer" else ActionSpec.real
                return make(answer["minimum"], answer["maximum"]), True
            if kind == "string" and isinstance(answer.get("pattern"), str):
                return ActionSpec(kind="regex", pattern=answer["pattern"]), True
            if kind == "string":
                return ActionSpec(kind="text", max_length=int(answer.get("maxLength", 2000))), True
        return ActionSpec(kind="json", schema=schema), False
    except (ValueError, TypeError):
        return None, False


def constraint_from_body(body: Mapping[str, Any]) -> tuple[ActionSpec | None, bool]:
    """The output constraint a chat request body asks for, and whether the reply is {"answer": ...}.

    Reads vLLM `structured_outputs` (choice, regex, json) first, then an OpenAI
    `response_format` of type json_schema. Like vLLM >= 0.12, the legacy
    `guided_*` fields are ignored.
    """
    so = body.get("structured_outputs")
    if isinstance(so, dict):
        try:
            if isinstance(so.get("choice"), list) and so["choice"]:
                return ActionSpec.choice([str(c) for c in so["choice"]]), False
            if isinstance(so.get("regex"), str):
                return ActionSpec(kind="regex", pattern=so["regex"]), False
        except (ValueError, TypeError):
            return None, False
        if "json" in so:
            schema = so["json"]
            if isinstance(schema, str):
                try:
                    schema = json.loads(schema)
                except ValueError:
                    return None, False
            return _spec_from_schema(schema)
    rf = body.get("response_format")
    if isinstance(rf, dict) and rf.get("type") == "json_schema":
        js = rf.get("json_schema")
        if isinstance(js, dict):
            return _spec_from_schema(js.get("schema"))
    if isinstance(rf, dict) and rf.get("type") == "json_object" and "schema" in rf:  # llama.cpp's form
        return _spec_from_schema(rf.get("schema"))
    if isinstance(body.get("grammar"), str):  # a llama.cpp choice grammar
        from societas.llm.llamacpp import choices_of

        options = choices_of(body["grammar"])
        if options:
            return ActionSpec.choice(options), False
    return None, False


def request_from_body(body: Mapping[str, Any]) -> ChatRequest:
    """A ChatRequest equivalent to an OpenAI chat completions body (for responders).

    A `seed` in the body becomes the replicate index, so sampled replicates that
    the client tells apart by seed get different replies from hashing responders.
    """
    return _read_body(body)[0]


def _read_body(body: Mapping[str, Any]) -> tuple[ChatRequest, bool]:
    messages = tuple(
        {"role": str(m.get("role", "user")), "content": _content_text(m.get("content"))}
        for m in body.get("messages", ())
        if isinstance(m, dict)
    )
    constraint, wrapped = constraint_from_body(body)
    seed = body.get("seed")
    seed = seed if isinstance(seed, int) else None
    max_tokens = body.get("max_tokens", body.get("max_completion_tokens"))
    request = ChatRequest(
        messages=messages,
        temperature=float(body.get("temperature", 1.0) or 0.0),
        max_tokens=max_tokens if isinstance(max_tokens, int) else None,
        top_p=body.get("top_p"),
        constraint=constraint,
        replicate=seed or 0,
        seed=seed,
    )
    return request, wrapped


_ALTERNATION = re.compile(r"(?:(.*) )?\(\?:(.*)\)")


def _unescape(text: str) -> str:
    return re.sub(r"\\(.)", r"\1", text)


def _options_asked(body: Mapping[str, Any], chat: ChatRequest) -> tuple[tuple[str, ...], str]:
    """The options a constrained request allows and the words before them ("Option"), as the body says."""
    spec = chat.constraint
    if spec is not None and spec.kind == "choice":
        grammar = body.get("grammar")
        lead = ""
        if isinstance(grammar, str) and grammar.startswith('root ::= "') and '" (' in grammar:
            lead = _unescape(grammar[len('root ::= "'):grammar.index('" (')]).rstrip()
        return spec.choices, lead
    if spec is not None and spec.kind == "regex":
        m = _ALTERNATION.fullmatch(spec.pattern or "")
        if m is not None:
            return tuple(_unescape(a) for a in re.split(r"(?<!\\)\|", m.group(2))), _unescape(m.group(1) or "")
    return (), ""


def token_logprobs(body: Mapping[str, Any], chat: ChatRequest, text: str) -> list[dict[str, Any]]:
    """`logprobs.content` of a reply, as vLLM gives it for `logprobs: true, top_logprobs: K`.

    A reply that is one of the allowed options is the lead's token, then the option's, where
    the K likeliest tokens are every option (log-probabilities `fake.option_logprobs` of the
    request's messages) and one word that is none (a tenth of the mass); other replies are
    one token a word, each certain.
    """
    k = int(body.get("top_logprobs") or 0)
    options, lead = _options_asked(body, chat)
    texts = [f"{lead} {c}" if lead else c for c in options]
    if text not in texts:
        return [{"token": w, "logprob": 0.0, "top_logprobs": [{"token": w, "logprob": 0.0}][:k]}
                for w in re.findall(r"\s*\S+", text)]
    scores = option_logprobs(chat, options)
    pieces = [(f" {c}" if lead else c, lp) for c, lp in zip(options, scores, strict=True)]
    pieces.append((" maybe" if lead else "maybe", math.log(0.1)))
    pieces.sort(key=lambda p: -p[1])
    chosen = pieces[[p for p, _ in pieces].index(f" {options[texts.index(text)]}" if lead
                                                 else options[texts.index(text)])]
    out = [{"token": lead, "logprob": 0.0, "top_logprobs": [{"token": lead, "logprob": 0.0}][:k]}] if lead else []
    out.append({"token": chosen[0], "logprob": chosen[1],
                "top_logprobs": [{"token": p, "logprob": lp} for p, lp in pieces[:k]]})
    return out


def _error_body(message: str, kind: str, code: str | None = None) -> bytes:
    return json.dumps({"error": {"message": message, "type": kind, "param": None, "code": code}}).encode()


class FakeOpenAIServer:
    """A fake OpenAI-compatible server on 127.0.0.1 (see the module docstring).

    `responder` is a Responder or the name of one in `societas.llm.fake`.
    `latency` is seconds per chat request, or a function of the request.
    `owned_by` is what GET /v1/models reports ("vllm" impersonates vLLM; "me"
    llama-cpp-python's server, which also refuses a `json_schema` response_format
    with HTTP 500 as llama.cpp does).
    `record_bodies` keeps that many of the latest request bodies in `bodies`.
    `api_key`, when set, makes requests without that bearer token fail with 401.
    `host` is the address to listen on (127.0.0.1 unless a test spans machines).
    `prefix_cache` makes it report `usage.prompt_tokens_details.cached_tokens` as
    an engine's prefix cache would, at whole-message granularity: the tokens of
    the longest run of leading messages it has been sent before.
    `reasoning` makes it reply as a reasoning model does: "think" puts a
    ``<think>...</think>`` block before the content, "field" returns the thinking
    in a separate ``reasoning_content`` field as vLLM's reasoning parsers do.
    `capacity` serves at most that many chat requests at once and queues the rest,
    as an engine with that many slots does: past that knee latency rises with
    concurrency and throughput stops growing.
    """

    THINKING = "Weighing the options against what the others did."

    def _message(self, text: str) -> dict[str, Any]:
        if self._reasoning == "think":
            return {"role": "assistant", "content": f"<think>{self.THINKING}</think>\n{text}"}
        if self._reasoning == "field":
            return {"role": "assistant", "content": text, "reasoning_content": self.THINKING}
        return {"role": "assistant", "content": text}

    def __init__(
        self,
        responder: Responder | str = "first",
        *,
        latency: Latency = 0.0,
        faults: FaultConfig | None = None,
        owned_by: str = "societas-fake",
        model_names: Sequence[str] = ("fake",),
        record_bodies: int = 0,
        api_key: str | None = None,
        port: int = 0,
        host: str = "127.0.0.1",
        prefix_cache: bool = False,
        reasoning: str | None = None,
        capacity: int | None = None,
    ) -> None:
        if reasoning not in (None, "think", "field"):
            raise ValueError(f"reasoning must be None, 'think' or 'field'; got {reasoning!r}")
        self._reasoning = reasoning
        self.responder: Responder = get_responder(responder) if isinstance(responder, str) else responder
        if not callable(latency) and latency < 0:
            raise ValueError(f"FakeOpenAIServer latency must be >= 0 seconds, got {latency}")
        self.latency = latency
        self.capacity = capacity
        self._slots: asyncio.Semaphore | None = None
        self.faults = faults or FaultConfig()
        self.owned_by = owned_by
        self.model_names = tuple(model_names)
        self.api_key = api_key
        self.stats = ServerStats()
        self._bodies: deque[dict[str, Any]] = deque(maxlen=max(0, record_bodies))
        self._record = record_bodies > 0
        self._rng = random.Random(self.faults.seed)
        self._script_pos = 0
        self._port = port
        self._host = host
        self._sock: socket.socket | None = None
        self._runner: web.AppRunner | None = None
        self._closing: asyncio.Event | None = None
        self._hanging: set[asyncio.Task[Any]] = set()
        self._thread: threading.Thread | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._counter = 0
        self._prefix_cache = prefix_cache
        self._prefixes: set[int] = set()
        self._created = int(time.time())

    # -- addresses ---------------------------------------------------------

    @property
    def port(self) -> int:
        if self._sock is None:
            raise RuntimeError("FakeOpenAIServer is not running: use it with `with` or `async with`")
        return int(self._sock.getsockname()[1])

    @property
    def url(self) -> str:
        return f"http://{self._host}:{self.port}"

    @property
    def base_url(self) -> str:
        """The OpenAI base URL to give a client: http://127.0.0.1:PORT/v1."""
        return self.url + "/v1"

    @property
    def bodies(self) -> list[dict[str, Any]]:
        """The latest chat request bodies received (when `record_bodies` > 0)."""
        return list(self._bodies)

    def reset_stats(self) -> None:
        """Zero the counters (requests still in flight stay counted) and forget recorded bodies."""
        s = self.stats
        s.total, s.models_requests, s.max_in_flight = 0, 0, s.in_flight
        s.by_kind.clear()
        self._bodies.clear()

    # -- lifecycle ---------------------------------------------------------

    def _app(self) -> web.Application:
        app = web.Application(client_max_size=64 * 1024**2)
        app.router.add_post("/v1/chat/completions", self._chat)
        app.router.add_get("/v1/models", self._models)
        app.router.add_get("/health", self._health)
        app.router.add_get("/stats", self._stats)
        return app

    async def start(self) -> None:
        """Start serving in the running event loop."""
        if self._runner is not None:
            raise RuntimeError("FakeOpenAIServer is already running")
        self._closing = asyncio.Event()
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind((self._host, self._port))
        runner = web.AppRunner(self._app(), access_log=None, handle_signals=False, shutdown_timeout=1.0)
        await runner.setup()
        await web.SockSite(runner, sock, backlog=1024).start()
        self._sock, self._runner = sock, runner

    async def stop(self) -> None:
        """Stop serving; hanging requests are released first."""
        if self._runner is None:
            return
        assert self._closing is not None
        self._closing.set()
        await self._runner.cleanup()
        if self._sock is not None:
            self._sock.close()
        self._runner = None
        self._sock = None

    async def __aenter__(self) -> FakeOpenAIServer:
        await self.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.stop()

    def __enter__(self) -> FakeOpenAIServer:
        loop = asyncio.new_event_loop()
        thread = threading.Thread(target=loop.run_forever, name="fake-openai-server", daemon=True)
        thread.start()
        self._loop, self._thread = loop, thread
        try:
            asyncio.run_coroutine_threadsafe(self.start(), loop).result(timeout=30)
        except BaseException:
            self._shutdown_thread()
            raise
        return self

    def __exit__(self, *exc: object) -> None:
        if self._loop is not None:
            with contextlib.suppress(Exception):
                asyncio.run_coroutine_threadsafe(self.stop(), self._loop).result(timeout=30)
        self._shutdown_thread()

    def _shutdown_thread(self) -> None:
        loop, thread = self._loop, self._thread
        if loop is None or thread is None:
            return
        loop.call_soon_threadsafe(loop.stop)
        thread.join(timeout=30)
        loop.close()
        self._loop = self._thread = None

    # -- handlers ----------------------------------------------------------

    async def _health(self, request: web.Request) -> web.Response:
        return web.Response(status=200)

    async def _stats(self, request: web.Request) -> web.Response:
        # What a server in another process saw, for tests that count requests per server.
        s = self.stats
        body = {"total": s.total, "by_kind": dict(s.by_kind), "in_flight": s.in_flight,
                "max_in_flight": s.max_in_flight, "models_requests": s.models_requests}
        return web.Response(body=json.dumps(body).encode(), content_type=_JSON)

    async def _models(self, request: web.Request) -> web.Response:
        self.stats.models_requests += 1
        data = [
            {"id": name, "object": "model", "created": self._created, "owned_by": self.owned_by, "root": name}
            for name in self.model_names
        ]
        return web.Response(body=json.dumps({"object": "list", "data": data}).encode(), content_type=_JSON)

    def _next_fault(self, body: Mapping[str, Any]) -> FaultKind | None:
        f = self.faults
        if self._script_pos < len(f.script):
            kind = f.script[self._script_pos]
            self._script_pos += 1
            return kind
        if f.rate_limit or f.server_error or f.hang or f.malformed:
            r = self._rng.random()
            for kind in _HTTP_FAULTS:
                p = getattr(f, kind)
                if r < p:
                    return kind
                r -= p
        if off_format_hit(body.get("messages") or (), f.salt, f.off_format):
            return "off_format"
        return None

    async def _chat(self, request: web.Request) -> web.StreamResponse:
        stats = self.stats
        stats.in_flight += 1
        stats.max_in_flight = max(stats.max_in_flight, stats.in_flight)
        try:
            return await self._chat_inner(request)
        finally:
            stats.in_flight -= 1

    async def _chat_inner(self, request: web.Request) -> web.StreamResponse:
        stats = self.stats
        stats.total += 1
        if self.api_key is not None:
            got = request.headers.get("Authorization", "").removeprefix("Bearer ")
            if got != self.api_key:
                stats.by_kind["unauthorized"] += 1
                # Like the real API, the message quotes the key it was given.
                return web.Response(
                    status=401,
                    body=_error_body(f"Incorrect API key provided: {got}.", "invalid_request_error",
                                     "invalid_api_key"),
                    content_type=_JSON,
                )
        try:
            body = json.loads(await request.read())
        except ValueError:
            stats.by_kind["bad_request"] += 1
            return web.Response(status=400, body=_error_body("The body is not valid JSON.",
                                                             "invalid_request_error"), content_type=_JSON)
        problem = self._check_body(body)
        if problem is not None:
            stats.by_kind["bad_request"] += 1
            return web.Response(status=400, body=_error_body(problem, "invalid_request_error"),
                                content_type=_JSON)
        if body["messages"] == _PROBE_MESSAGES:  # a run's connection check: any live server answers it
            stats.total -= 1
            stats.probes += 1
            chat, _ = _read_body(body)
            return web.Response(status=200, body=json.dumps(self._completion(body, chat, "OK")).encode(),
                                content_type=_JSON)
        if self._record:
            self._bodies.append(body)
        rf = body.get("response_format")
        if self.owned_by in ("me", "llamacpp") and isinstance(rf, dict) and rf.get("type") == "json_schema":
            stats.by_kind["bad_request"] += 1
            return web.Response(status=500, body=_error_body(
                "1 validation error: response_format.type: Input should be 'text' or 'json_object'",
                "server_error"), content_type=_JSON)

        fault = self._next_fault(body)
        if fault == "rate_limit":
            stats.by_kind["rate_limit"] += 1
            return web.Response(
                status=429,
                body=_error_body("Rate limit reached; retry later.", "requests", "rate_limit_exceeded"),
                content_type=_JSON,
                headers={"Retry-After": f"{self.faults.retry_after_s:g}"},
            )
        if fault == "server_error":
            stats.by_kind["server_error"] += 1
            return web.Response(status=500, body=_error_body("The server had an error.", "server_error"),
                                content_type=_JSON)
        if fault == "hang":
            stats.by_kind["hang"] += 1
            assert self._closing is not None
            await self._closing.wait()
            return web.Response(status=503, body=_error_body("The server is shutting down.", "server_error"),
                                content_type=_JSON)

        chat, wrapped = _read_body(body)
        delay = self.latency(chat) if callable(self.latency) else self.latency
        if self.capacity is not None:
            if self._slots is None:
                self._slots = asyncio.Semaphore(self.capacity)
            async with self._slots:
                await asyncio.sleep(delay)
        elif delay > 0:
            await asyncio.sleep(delay)
        if fault == "off_format":
            stats.by_kind["off_format"] += 1
            text = self.faults.off_format_text
        else:
            text = self._answer(chat, wrapped)
            options, lead = _options_asked(body, chat)
            if lead and text in options:  # a grammar that writes the lead first ("Option F")
                text = f"{lead} {text}"
        self._counter += 1
        reply = self._completion(body, chat, text)
        if body.get("logprobs"):
            reply["choices"][0]["logprobs"] = {"content": token_logprobs(body, chat, text)}
        if fault == "malformed":
            stats.by_kind["malformed"] += 1
            raw = json.dumps(reply).encode()
            return web.Response(status=200, body=raw[: max(1, len(raw) // 2)], content_type=_JSON)
        if fault is None:
            stats.by_kind["ok"] += 1
        return web.Response(status=200, body=json.dumps(reply).encode(), content_type=_JSON)

    @staticmethod
    def _check_body(body: Any) -> str | None:
        if not isinstance(body, dict):
            return "The body must be a JSON object."
        if not isinstance(body.get("model"), str) or not body["model"]:
            return "'model' is a required property."
        if not isinstance(body.get("messages"), list) or not body["messages"]:
            return "'messages' must be a non-empty list."
        if body.get("stream"):
            return "Streaming is not supported by this server."
        return None

    def _answer(self, chat: ChatRequest, wrapped: bool) -> str:
        text = self.responder(chat)
        spec = chat.constraint
        if spec is not None and wrapped:
            # A JSON-schema constrained server answers {"answer": ...}; when the
            # responder's text does not parse, answer as if the format was ignored.
            try:
                return json.dumps({"answer": spec.parse(text)})
            except InvalidAction:
                return text
        return text

    def _completion(self, body: Mapping[str, Any], chat: ChatRequest, text: str) -> dict[str, Any]:
        prompt_tokens = sum(approx_tokens(m["content"]) for m in chat.messages)
        completion_tokens = approx_tokens(text)
        usage: dict[str, Any] = {
            "prompt_tokens": prompt_tokens,
            "completion_tokens": completion_tokens,
            "total_tokens": prompt_tokens + completion_tokens,
        }
        if self._prefix_cache:
            usage["prompt_tokens_details"] = {"cached_tokens": self._cached(chat)}
        return {
            "id": f"chatcmpl-fake-{self._counter}",
            "object": "chat.completion",
            "created": int(time.time()),
            "model": body["model"],
            "choices": [
                {
                    "index": 0,
                    "message": self._message(text),
                    "finish_reason": "stop",
                    "logprobs": None,
                }
            ],
            "usage": usage,
        }

    def _cached(self, chat: ChatRequest) -> int:
        """Tokens of the longest run of leading messages seen before; remembers this request's."""
        cached, tokens, h, hit = 0, 0, 0, True
        for m in chat.messages:
            h = hash((h, m.get("role"), m.get("content")))
            tokens += approx_tokens(m.get("content", ""))
            if hit and h in self._prefixes:
                cached = tokens
            else:
                hit = False
                if len(self._prefixes) >= 1_000_000:
                    self._prefixes.clear()
                self._prefixes.add(h)
        return cached


def main(argv: Sequence[str] | None = None) -> None:
    """Serve until killed, after printing the base URL on stdout."""
    parser = argparse.ArgumentParser(prog="python -m societas.llm.testing", description=__doc__.splitlines()[0])
    parser.add_argument("--host", default="127.0.0.1", help="address to listen on")
    parser.add_argument("--port", type=int, default=0, help="port to listen on (0: any free port)")
    parser.add_argument("--responder", default="first", help="a responder of societas.llm.fake")
    parser.add_argument("--latency", type=float, default=0.0, help="seconds per chat request")
    parser.add_argument("--owned-by", default="societas-fake", help='"vllm" impersonates a vLLM server')
    parser.add_argument("--model", action="append", dest="models", help="a model name to list (repeatable)")
    parser.add_argument("--rate-limit", type=float, default=0.0, help="probability of a 429")
    parser.add_argument("--retry-after", type=float, default=1.0, help="Retry-After seconds of a 429")
    parser.add_argument("--server-error", type=float, default=0.0, help="probability of a 500")
    parser.add_argument("--hang", type=float, default=0.0, help="probability of never answering")
    parser.add_argument("--malformed", type=float, default=0.0, help="probability of a broken JSON body")
    parser.add_argument("--off-format", type=float, default=0.0, help="share of off-format replies")
    parser.add_argument("--seed", type=int, default=0, help="seed of the HTTP fault generator")
    parser.add_argument("--salt", default="", help="salt of the off-format hash")
    args = parser.parse_args(argv)
    try:
        faults = FaultConfig(
            rate_limit=args.rate_limit, server_error=args.server_error, hang=args.hang,
            malformed=args.malformed, off_format=args.off_format, retry_after_s=args.retry_after,
            seed=args.seed, salt=args.salt,
        )
        server = FakeOpenAIServer(
            args.responder, latency=args.latency, faults=faults, owned_by=args.owned_by,
            model_names=tuple(args.models or ("fake",)), port=args.port, host=args.host,
        )
    except (KeyError, ValueError) as exc:
        parser.error(str(exc.args[0]) if exc.args else str(exc))

    async def serve() -> None:
        async with server:
            print(server.base_url, flush=True)
            await asyncio.Event().wait()

    with contextlib.suppress(KeyboardInterrupt):
        asyncio.run(serve())


if __name__ == "__main__":
    main()
