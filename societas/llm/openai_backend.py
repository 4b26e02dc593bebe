"""Any OpenAI-compatible chat endpoint (OpenAI, vLLM, Ollama, llama.cpp) as a ChatModel.

One request per `complete`, no retries of its own (RetryingModel does that):
failures are mapped onto TransientModelError (worth retrying) or ModelError.
Requests in flight are bounded per endpoint, across every model using it, so
many agents sharing one server queue on the client instead of flooding it.
The API key is read from the environment and never appears in results or
error messages.

Transports (`ModelOptions.transport`): `direct` (the default) sends the JSON
body and reads the reply itself, a fraction of the client CPU per call of the
OpenAI SDK, whose request machinery costs more than the HTTP exchange (see
benchmarks/client.py): over the lean HTTP/1.1 client of `societas.llm.http1`
to a plain `http://` server with no proxy in the way, over aiohttp otherwise; `aiohttp` and `httpx` go through the
SDK's `AsyncOpenAI.post` on that HTTP client. All three send the same body
and report errors alike.
"""

from __future__ import annotations

import asyncio
import email.utils
import json
import os
import re
import time
import urllib.request
import weakref
from collections.abc import Awaitable, Callable
from typing import Any
from urllib.parse import urlparse

import aiohttp
import openai

from societas.llm.base import ChatRequest, ChatResult, ModelError, TransientModelError, message_json
from societas.llm.constraints import ConstraintMode, answer_lead, reply_text, request_body_extras
from societas.llm.http1 import Http1Pool
from societas.llm.limiter import AdaptiveGate, AdaptiveLimit
from societas.llm.llamacpp import is_llamacpp_owner, llamacpp_slots, sampling_fields
from societas.llm.logprobs import TOP_LOGPROBS, option_logprobs, option_texts
from societas.llm.retry import PROBE
from societas.llm.specs import ModelOptions, ModelSpec

OPENAI_BASE_URL = "https://api.openai.com/v1"
PLACEHOLDER_KEY = "EMPTY"  # local servers accept any key, but the client must send one
_ERROR_CHARS = 300
# Secret-looking tokens (OpenAI echoes a masked key in 401 messages).
# A 5xx that is the server validating the request (pydantic's words), not the server failing.
_VALIDATION = re.compile(r"validation error|Input should be")
_SECRET = re.compile(r"\b(?:sk|rk|pk)-[A-Za-z0-9_\-*.]{4,}")

# Per event loop: one in-flight gate per base URL. Keyed weakly by loop so finished
# loops take theirs along (as _LoopMemo's values are).
_GATES: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, dict[str, AdaptiveGate]] = (
    weakref.WeakKeyDictionary()
)


class _LoopMemo:
    """A value per event loop and base URL, made once by whichever task asks first."""

    def __init__(self) -> None:
        self._values: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, dict[str, Any]] = (
            weakref.WeakKeyDictionary()
        )
        self._locks: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, dict[str, asyncio.Lock]] = (
            weakref.WeakKeyDictionary()
        )

    async def get(self, key: str, make: Callable[[], Awaitable[Any]]) -> Any:
        loop = asyncio.get_running_loop()
        known = self._values.setdefault(loop, {})
        if key in known:
            return known[key]
        async with self._locks.setdefault(loop, {}).setdefault(key, asyncio.Lock()):
            if key not in known:
                known[key] = await make()
        return known[key]


# The structured-output dialect detected for each base URL, and who owns each model its
# GET /models lists (None: it lists none).
_DETECTED = _LoopMemo()
_OWNERS = _LoopMemo()


def endpoint_gate(base_url: str, max_in_flight: int, *, min_in_flight: int = 1,
                  adaptive: bool = True) -> AdaptiveGate:
    """The in-flight limit shared by every model on `base_url` in this event loop.

    The first model to ask for an endpoint's gate fixes its bounds.
    """
    loop = asyncio.get_running_loop()
    per_loop = _GATES.setdefault(loop, {})
    gate = per_loop.get(base_url)
    if gate is None:
        lo = min(min_in_flight, max_in_flight)
        gate = per_loop[base_url] = AdaptiveGate(AdaptiveLimit(minimum=lo, maximum=max_in_flight,
                                                               adaptive=adaptive))
    return gate


def in_flight_capacity() -> int | None:
    """The requests the endpoints of this event loop take at once now (None: none asked yet)."""
    per_loop = _GATES.get(asyncio.get_running_loop())
    if not per_loop:
        return None
    return sum(g.limit.limit for g in per_loop.values())


def is_openai_url(base_url: str) -> bool:
    return (urlparse(base_url).hostname or "").lower() == "api.openai.com"


def parse_retry_after(headers: Any) -> float | None:
    """Seconds to wait from `retry-after-ms` or `Retry-After` (seconds or an HTTP date)."""
    if headers is None:
        return None
    ms = headers.get("retry-after-ms")
    if ms is not None:
        try:
            return max(0.0, float(ms) / 1000.0)
        except ValueError:
            pass
    value = headers.get("retry-after")
    if value is None:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    return max(0.0, when.timestamp() - time.time())


def cached_tokens(reply: dict[str, Any]) -> int:
    """Prompt tokens the engine says it served from its prefix cache.

    OpenAI and vLLM report `usage.prompt_tokens_details.cached_tokens`;
    llama.cpp's own server reports `timings.cache_n`. 0 when neither is there.
    """
    usage = reply.get("usage")
    details = usage.get("prompt_tokens_details") if isinstance(usage, dict) else None
    if isinstance(details, dict) and isinstance(details.get("cached_tokens"), int):
        return details["cached_tokens"]
    timings = reply.get("timings")
    if isinstance(timings, dict) and isinstance(timings.get("cache_n"), int):
        return timings["cache_n"]
    return 0


def encode_body(body: dict[str, Any]) -> bytes:
    """The JSON bytes of a request body: its messages through the fast path, the rest as json.dumps writes it."""
    messages = body.get("messages")
    if not isinstance(messages, list):
        return json.dumps(body, ensure_ascii=False).encode()
    rest = json.dumps({k: v for k, v in body.items() if k != "messages"}, ensure_ascii=False)
    head = '{"messages": [' + ", ".join(map(message_json, messages)) + "]"
    return (head + (", " + rest[1:] if rest != "{}" else "}")).encode()


def _env_proxy(url: str) -> str | None:
    """The proxy the environment names for `url` (HTTP_PROXY / HTTPS_PROXY, less NO_PROXY hosts)."""
    parts = urlparse(url)
    if urllib.request.proxy_bypass(parts.hostname or ""):
        return None
    return urllib.request.getproxies().get(parts.scheme)


def _root_cause(exc: BaseException) -> BaseException:
    seen = {id(exc)}
    while True:
        nxt = exc.__cause__ or exc.__context__
        if nxt is None or id(nxt) in seen:
            return exc
        seen.add(id(nxt))
        exc = nxt


class OpenAIChatModel:
    """A chat model behind an OpenAI-compatible HTTP API (aiohttp directly, or the `openai` async client).

    `structured_outputs="auto"` asks the endpoint once (GET /models): a model
    owned by "vllm" means vLLM `structured_outputs`; owned by "llamacpp" or "me"
    (llama.cpp's servers) a GBNF grammar, `cache_prompt`, and at most as many
    requests in flight as the server has slots (`llamacpp_slots`: more would only
    wait out their timeouts in its queue); api.openai.com means a
    JSON schema `response_format`; anything else gets no constraint.
    """

    def __init__(self, spec: ModelSpec, options: ModelOptions) -> None:
        self.spec = spec
        self.options = options
        self.name = str(spec)
        self.base_url = (spec.base_url or OPENAI_BASE_URL).rstrip("/")
        key = os.environ.get(options.api_key_env)
        if not key:
            if is_openai_url(self.base_url):
                raise ModelError(
                    f"model {self.name}: no API key; set the environment variable {options.api_key_env}"
                )
            key = PLACEHOLDER_KEY
        self._key = key
        self._client: openai.AsyncOpenAI | None = None
        self._client_loop: asyncio.AbstractEventLoop | None = None
        self._session: aiohttp.ClientSession | None = None
        self._session_loop: asyncio.AbstractEventLoop | None = None
        self._proxy: str | None = None
        self._pool: Http1Pool | None = None
        self._pool_loop: asyncio.AbstractEventLoop | None = None
        self._url = self.base_url + "/chat/completions"
        self._headers = {"Authorization": f"Bearer {key}", "Content-Type": "application/json",
                         "Accept": "application/json"}
        for env, header in (("OPENAI_ORG_ID", "OpenAI-Organization"), ("OPENAI_PROJECT_ID", "OpenAI-Project")):
            if os.environ.get(env) and is_openai_url(self.base_url):
                self._headers[header] = os.environ[env]

    def __repr__(self) -> str:
        return f"OpenAIChatModel({self.name!r})"

    # -- client --------------------------------------------------------------

    def _make_client(self) -> openai.AsyncOpenAI:
        # Keep a connection alive for every request that may be in flight, so a
        # busy endpoint does not reconnect; the SDK's Limits class has moved
        # between HTTP packages across its versions, so take it from its default.
        n = self.options.max_in_flight
        limits_type = type(openai.DEFAULT_CONNECTION_LIMITS)
        limits = limits_type(max_connections=max(1000, n), max_keepalive_connections=max(100, n))
        http_client: Any
        if self.options.transport in ("aiohttp", "direct"):
            http_client = openai.DefaultAioHttpClient(limits=limits, timeout=self.options.timeout_s)
        else:
            http_client = openai.DefaultAsyncHttpxClient(limits=limits, timeout=self.options.timeout_s)
        return openai.AsyncOpenAI(
            api_key=self._key,
            base_url=self.base_url,
            timeout=self.options.timeout_s,
            max_retries=0,
            http_client=http_client,
        )

    def _client_for_loop(self) -> openai.AsyncOpenAI:
        # A client's connections belong to the loop that opened them.
        loop = asyncio.get_running_loop()
        if self._client is None or self._client_loop is not loop:
            self._client = self._make_client()
            self._client_loop = loop
        return self._client

    def _session_for_loop(self) -> aiohttp.ClientSession:
        loop = asyncio.get_running_loop()
        if self._session is None or self._session_loop is not loop:
            n = self.options.max_in_flight
            self._session = aiohttp.ClientSession(
                connector=aiohttp.TCPConnector(limit=max(1000, n)),
                timeout=aiohttp.ClientTimeout(total=self.options.timeout_s),
            )
            self._session_loop = loop
            # The environment's proxy (HTTP(S)_PROXY, NO_PROXY), as the SDK honours it; looked up
            # once, because aiohttp's trust_env asks a thread for it on every request.
            self._proxy = _env_proxy(self._url)
        return self._session

    def _pool_for_loop(self) -> Http1Pool | None:
        """The lean HTTP/1.1 pool for this loop, or None where aiohttp is needed (https, a proxy)."""
        loop = asyncio.get_running_loop()
        if self._pool is None or self._pool_loop is not loop:
            parts = urlparse(self.base_url)
            if parts.scheme != "http" or not parts.hostname or _env_proxy(self._url) is not None:
                return None
            self._pool = Http1Pool(parts.hostname, parts.port or 80, headers=self._headers,
                                   timeout_s=self.options.timeout_s)
            self._pool_loop = loop
            self._path = parts.path.rstrip("/")
        return self._pool

    async def aclose(self) -> None:
        pool, self._pool = self._pool, None
        if pool is not None:
            pool.close()
        client, self._client = self._client, None
        if client is not None:
            await client.close()
        session, self._session = self._session, None
        if session is not None and not session.closed:
            await session.close()

    # -- errors --------------------------------------------------------------

    def _scrub(self, text: str) -> str:
        if self._key and self._key != PLACEHOLDER_KEY:
            text = text.replace(self._key, "***")
        text = _SECRET.sub("***", text)
        return text if len(text) <= _ERROR_CHARS else text[: _ERROR_CHARS - 3] + "..."

    def _map_error(self, exc: BaseException) -> ModelError:
        where = self.name
        if isinstance(exc, openai.RateLimitError):
            retry_after = parse_retry_after(exc.response.headers)
            return TransientModelError(
                self._scrub(f"429 rate limited by {where}: {exc.message}"), retry_after=retry_after
            )
        if isinstance(exc, openai.APIStatusError):
            msg = self._scrub(f"{exc.status_code} from {where}: {exc.message}")
            if exc.status_code >= 500 or exc.status_code == 408:
                return TransientModelError(msg, retry_after=parse_retry_after(exc.response.headers))
            return ModelError(msg)
        if isinstance(exc, openai.APIConnectionError):
            # The aiohttp transport reports a refused connection as a timeout:
            # name what happened from the innermost cause.
            root = _root_cause(exc)
            if isinstance(root, ConnectionError) or not isinstance(exc, openai.APITimeoutError):
                return TransientModelError(f"connection error to {where} ({type(root).__name__})")
            return TransientModelError(f"timeout after {self.options.timeout_s:g}s from {where}")
        if isinstance(exc, (ValueError, openai.APIResponseValidationError)):
            return TransientModelError(f"reply from {where} is not valid JSON: {type(exc).__name__}")
        return ModelError(self._scrub(f"{type(exc).__name__} from {where}: {exc}"))

    # -- structured outputs ----------------------------------------------------

    async def constraint_mode(self) -> ConstraintMode:
        """The structured-output dialect for this endpoint (detected once per loop when auto)."""
        mode = self.options.structured_outputs
        if mode != "auto":
            return mode
        return await _DETECTED.get(self.base_url, self._detect)

    async def _detect(self) -> ConstraintMode:
        fallback: ConstraintMode = "json_schema" if is_openai_url(self.base_url) else "none"
        owners = await self.owners()
        if owners is not None and "vllm" in owners:
            return "vllm"
        return "llamacpp" if is_llamacpp_owner(owners) else fallback

    async def owners(self) -> list[Any] | None:
        """Who owns each model the endpoint lists (GET /models, asked once per loop); None: it lists none."""
        return await _OWNERS.get(self.base_url, self._list_owners)

    async def _list_owners(self) -> list[Any] | None:
        if self.options.transport == "direct":
            return await self._owners_direct()
        try:
            page = await self._client_for_loop().models.list()
        except openai.APIStatusError as exc:
            if exc.status_code >= 500 or exc.status_code in (408, 429):
                raise self._map_error(exc) from None
            return None  # the endpoint does not list models
        except Exception as exc:
            raise self._map_error(exc) from None
        return [getattr(m, "owned_by", None) for m in page.data]

    async def _in_flight(self, mode: ConstraintMode) -> int:
        """Requests to send at once: at most what a llama.cpp server serves at once (`llamacpp_slots`).

        More would wait in the server's queue, their timeouts running, so a one-slot server
        that is merely busy would look like one failing.
        """
        n = self.options.max_in_flight
        if mode != "llamacpp":
            return n
        return min(n, llamacpp_slots(await self.owners()))

    # -- the call ----------------------------------------------------------------

    def _body(self, request: ChatRequest, mode: ConstraintMode) -> dict[str, Any]:
        """The JSON body of a chat completions request, built directly.

        Passing a plain body to the SDK's `post` skips `chat.completions.create`'s
        per-request walk of its typed parameter definitions, which costs more
        client CPU than the HTTP exchange itself; the bytes sent are the same.
        """
        body: dict[str, Any] = {
            "model": self.spec.name,
            "messages": [m if type(m) is dict else dict(m) for m in request.messages],
            **request.sampling(),
        }
        if request.constraint is not None:
            extras = request_body_extras(request.constraint, mode, answer_lead(request.messages),
                                         request.max_tokens)
            if "response_format" in extras:
                body["response_format"] = extras["response_format"]
            body.update(extras.get("extra_body", {}))
        if mode == "llamacpp":
            body["cache_prompt"] = True  # keep the prompt's KV cache in its slot for the next request
            body.update(sampling_fields(request.top_p))  # no sampler stages the request did not ask for
        if request.option_logprobs:
            body["logprobs"] = True
            body["top_logprobs"] = TOP_LOGPROBS
        if request.extra:
            body.update(request.extra)
        return body

    async def _send_direct(self, method: str, path: str, body: dict[str, Any] | None = None
                           ) -> tuple[int, Any, str, bytes]:
        """One request without the SDK: status, headers, content type and body of the reply."""
        data = None if body is None else encode_body(body)
        pool = self._pool_for_loop()
        if pool is not None:
            try:
                status, headers, raw = await pool.request(method, self._path + path, data)
            except asyncio.TimeoutError:
                raise TransientModelError(
                    f"timeout after {self.options.timeout_s:g}s from {self.name}") from None
            except OSError as exc:  # HttpError included
                raise TransientModelError(f"connection error to {self.name} ({type(exc).__name__})") from None
            content_type = headers.get("content-type", "").split(";", 1)[0].strip().lower()
            return status, headers, content_type, raw
        session = self._session_for_loop()
        try:
            async with session.request(method, self.base_url + path, data=data, headers=self._headers,
                                       proxy=self._proxy) as resp:
                return resp.status, resp.headers, resp.content_type, await resp.read()
        except asyncio.TimeoutError:
            raise TransientModelError(f"timeout after {self.options.timeout_s:g}s from {self.name}") from None
        except (aiohttp.ClientError, OSError) as exc:
            raise TransientModelError(
                f"connection error to {self.name} ({type(_root_cause(exc)).__name__})") from None

    def _status_error(self, status: int, headers: Any, raw: bytes) -> ModelError:
        """An error reply as the SDK path reports it: 429, 5xx and 408 transient, with Retry-After."""
        try:
            detail = json.loads(raw)
            message = detail["error"]["message"] if isinstance(detail.get("error"), dict) else detail
        except (ValueError, TypeError, KeyError, AttributeError):
            message = raw.decode(errors="replace")
        where = self.name
        if status == 429:
            return TransientModelError(self._scrub(f"429 rate limited by {where}: Error code: 429 - {message}"),
                                       retry_after=parse_retry_after(headers))
        msg = self._scrub(f"{status} from {where}: Error code: {status} - {message}")
        if status >= 500 and _VALIDATION.search(str(message)):
            # The server refused the request itself (llama.cpp answers a request field it does not
            # know with 500): asking again gets the same answer.
            return ModelError(msg)
        if status >= 500 or status == 408:
            return TransientModelError(msg, retry_after=parse_retry_after(headers))
        return ModelError(msg)

    async def _post_direct(self, body: dict[str, Any]) -> Any:
        """POST a chat completion with aiohttp alone; the decoded reply (text if not labelled JSON)."""
        status, headers, content_type, raw = await self._send_direct("POST", "/chat/completions", body)
        if status >= 400:
            raise self._status_error(status, headers, raw)
        if not content_type.endswith("json"):
            return raw.decode(errors="replace")
        try:
            return json.loads(raw)
        except ValueError:
            raise TransientModelError(f"reply from {self.name} is not valid JSON: JSONDecodeError") from None

    async def _owners_direct(self) -> list[Any] | None:
        """Who owns each model GET /models lists (None: the endpoint lists none), with aiohttp alone."""
        status, headers, _, raw = await self._send_direct("GET", "/models")
        if status >= 500 or status in (408, 429):
            raise self._status_error(status, headers, raw)
        if status >= 400:
            return None
        try:
            page = json.loads(raw)
        except ValueError:
            raise TransientModelError(f"reply from {self.name} is not valid JSON: JSONDecodeError") from None
        data = page.get("data") if isinstance(page, dict) else None
        return [m.get("owned_by") for m in data if isinstance(m, dict)] if isinstance(data, list) else []

    async def complete(self, request: ChatRequest) -> ChatResult:
        client = None if self.options.transport == "direct" else self._client_for_loop()
        mode = await self.constraint_mode()
        body = self._body(request, mode)
        in_flight = self.options.max_in_flight if mode != "llamacpp" else await self._in_flight(mode)
        opts = self.options
        gate = endpoint_gate(self.base_url, in_flight, min_in_flight=opts.min_in_flight,
                             adaptive=opts.adaptive_in_flight)
        await gate.acquire()
        latency: float | None = None
        overloaded = False
        try:
            t0 = time.perf_counter()
            if client is None:
                data = await self._post_direct(body)
            else:
                try:
                    # cast_to=object: the decoded JSON as is, without building the SDK's models.
                    data = await client.post("/chat/completions", body=body, cast_to=object)
                except Exception as exc:
                    raise self._map_error(exc) from None
            latency = time.perf_counter() - t0
        except TransientModelError:
            overloaded = True  # 429, 5xx, timeout: the endpoint has more than it can take
            raise
        finally:
            # The connection check is tiny and some servers answer it at once: its time says
            # nothing about how long the study's requests take, so it does not set the floor.
            gate.release(None if request is PROBE else latency, overloaded=overloaded)
        if not isinstance(data, dict) or not isinstance(data.get("choices"), list):
            # The SDK hands back raw text when the reply is not labelled JSON.
            raise TransientModelError(f"reply from {self.name} is not a chat completion")
        choices = data["choices"]
        if not choices:
            raise TransientModelError(f"reply from {self.name} has no choices")
        message = choices[0].get("message") if isinstance(choices[0], dict) else None
        if not isinstance(message, dict):
            raise TransientModelError(f"reply from {self.name} has no message")
        content = message.get("content")
        text = content if content is not None else (message.get("refusal") or "")
        usage = data.get("usage")
        if not isinstance(usage, dict):
            usage = {}
        scores = None
        if request.option_logprobs:
            scores = self._option_logprobs(request, mode, choices[0].get("logprobs"))
        return ChatResult(
            text=reply_text(str(text), request.constraint, mode),
            model=self.name,
            prompt_tokens=usage.get("prompt_tokens") or 0,
            completion_tokens=usage.get("completion_tokens") or 0,
            latency_s=latency,
            cached_tokens=cached_tokens(data),
            reasoning=str(message.get("reasoning_content") or message.get("reasoning") or ""),
            option_logprobs=scores,
        )

    @staticmethod
    def _option_logprobs(request: ChatRequest, mode: ConstraintMode, logprobs: Any) -> tuple[float, ...] | None:
        """The options' log-probabilities from the reply's token logprobs, where the reply's form is known:
        a choice written as plain text under a vLLM or llama.cpp constraint (see societas.llm.logprobs)."""
        spec = request.constraint
        if (spec is None or spec.kind != "choice" or spec.answer_marker is not None
                or mode not in ("vllm", "llamacpp") or not isinstance(logprobs, dict)
                or not isinstance(logprobs.get("content"), list)):
            return None
        return option_logprobs(logprobs["content"], option_texts(spec, answer_lead(request.messages)))
