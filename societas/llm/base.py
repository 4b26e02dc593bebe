"""The model interface: one request type, one result type, one async method.

Backends (OpenAI-compatible HTTP, in-process transformers, fake responders)
implement `ChatModel.complete`; caching and retries are wrappers around it, so
no backend carries its own copy of that logic.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from json.encoder import encode_basestring
from typing import Any, Protocol, runtime_checkable

from societas.types import ActionSpec

Message = Mapping[str, str]
# Built once: json.dumps builds a new encoder on every call that passes options. Cache keys
# depend on these exact bytes.
_canonical_json = json.JSONEncoder(sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode
_message_json = json.JSONEncoder(ensure_ascii=False).encode
# Constraints by identity, encoded once: an environment hands the same ActionSpec over all episode long.
_CONSTRAINT_JSON: dict[int, tuple[ActionSpec, str]] = {}


def _plain(m: Any) -> bool:
    """A {"role": str, "content": str} message, the shape nearly every request has."""
    return type(m) is dict and len(m) == 2 and type(m.get("role")) is str and type(m.get("content")) is str


def message_json(m: Message) -> str:
    """`json.dumps(m, ensure_ascii=False)` of one message; a plain one without the encoder's machinery."""
    if _plain(m) and next(iter(m)) == "role":  # json.dumps keeps the dict's order
        return '{"role": ' + encode_basestring(m["role"]) + ', "content": ' + encode_basestring(m["content"]) + "}"
    return _message_json(m if type(m) is dict else dict(m))


def _canonical_message(m: Message) -> str:
    if _plain(m):
        return '{"content":' + encode_basestring(m["content"]) + ',"role":' + encode_basestring(m["role"]) + "}"
    return _canonical_json(m if type(m) is dict else dict(m))


def _scalar(x: Any) -> str:
    """JSON of a number, None or string as the canonical encoder writes it."""
    t = type(x)
    if x is None:
        return "null"
    if t is int:
        return int.__repr__(x)
    if t is float and x - x == 0.0:  # finite
        return float.__repr__(x)
    if t is str:
        return encode_basestring(x)
    return _canonical_json(x)


def _constraint_json(spec: ActionSpec | None) -> str:
    if spec is None:
        return "null"
    hit = _CONSTRAINT_JSON.get(id(spec))
    if hit is not None and hit[0] is spec:
        return hit[1]
    text = _canonical_json(spec.to_dict())
    if spec.schema is None:  # a JSON schema is a dict, which could change under the cached text
        if len(_CONSTRAINT_JSON) >= 256:
            _CONSTRAINT_JSON.clear()
        _CONSTRAINT_JSON[id(spec)] = (spec, text)
    return text




@dataclass(frozen=True, kw_only=True, slots=True)
class ChatRequest:
    """A chat completion request, independent of any provider.

    `replicate` distinguishes otherwise identical requests sampled at
    temperature > 0, so that a cache does not collapse their variance; it is
    drawn from the agent's seeded generator, so a rerun asks for the same
    replicates and replays them. `policy` names what else about the asking
    shapes the reply (an agent option such as `reasoning=two_turn`): it joins
    the cache key, never the request a provider is sent. `option_logprobs`
    asks for the log-probability of each of a choice constraint's options
    (`ChatResult.option_logprobs`), where the backend gives them.
    """

    messages: tuple[Message, ...]
    temperature: float = 0.0
    max_tokens: int | None = None
    top_p: float | None = None
    constraint: ActionSpec | None = None
    replicate: int = 0
    seed: int | None = None
    extra: Mapping[str, Any] = field(default_factory=dict)
    policy: str = ""
    # The conversation this request continues (one agent in one episode), for backends that keep
    # per-conversation state, such as hf:'s prefix reuse. It never shapes the reply, so it stays out
    # of the cache key and of equality.
    conversation: str | None = field(default=None, compare=False)
    option_logprobs: bool = False

    def canonical(self, model: str) -> str:
        """Canonical JSON of everything that determines the reply (the cache key's input).

        The bytes of `json.dumps` with sorted keys and no spaces of `canonical_dict`,
        built piece by piece (a request's messages and constraint are most of it and
        take the fast paths). An empty `policy` is left out, so the keys of requests
        without one are those of before it existed.
        """
        extra = "{}" if not self.extra else _canonical_json(dict(self.extra))
        return "".join((
            '{"constraint":', _constraint_json(self.constraint), ',"extra":', extra,
            ',"max_tokens":', _scalar(self.max_tokens),
            ',"messages":[', ",".join(map(_canonical_message, self.messages)),
            '],"model":', encode_basestring(model),
            ',"option_logprobs":true' if self.option_logprobs else "",
            ',"policy":' + _scalar(self.policy) if self.policy else "",
            ',"replicate":', _scalar(self.replicate if self.temperature > 0 else 0),
            ',"seed":', _scalar(self.seed), ',"temperature":', _scalar(self.temperature),
            ',"top_p":', _scalar(self.top_p), "}",
        ))

    def canonical_dict(self, model: str) -> dict[str, Any]:
        """What the cache key covers, as a dict (`canonical` is its canonical JSON)."""
        return {
            **({"policy": self.policy} if self.policy else {}),
            **({"option_logprobs": True} if self.option_logprobs else {}),
            "model": model,
            "messages": [m if type(m) is dict else dict(m) for m in self.messages],
            "temperature": self.temperature,
            "max_tokens": self.max_tokens,
            "top_p": self.top_p,
            "constraint": None if self.constraint is None else self.constraint.to_dict(),
            "replicate": self.replicate if self.temperature > 0 else 0,
            "seed": self.seed,
            "extra": dict(self.extra),
        }

    def key(self, model: str) -> str:
        return hashlib.sha256(self.canonical(model).encode()).hexdigest()

    def sampling(self) -> dict[str, Any]:
        """The sampling fields a provider is sent, named as the OpenAI API names them (unset ones left out)."""
        out: dict[str, Any] = {"temperature": self.temperature}
        if self.max_tokens is not None:
            out["max_tokens"] = self.max_tokens
        if self.top_p is not None:
            out["top_p"] = self.top_p
        if self.seed is not None:
            out["seed"] = self.seed
        return out

    def params(self) -> dict[str, Any]:
        """Sampling parameters as recorded in the llm_calls table."""
        out = self.sampling()
        if self.temperature > 0:
            out["replicate"] = self.replicate
        if self.constraint is not None:
            out["constraint"] = self.constraint.to_dict()
        if self.policy:
            out["policy"] = self.policy
        if self.option_logprobs:
            out["option_logprobs"] = True
        return out


@dataclass(slots=True)
class ChatResult:
    """A model's reply with the cost of getting it."""

    text: str
    model: str
    prompt_tokens: int = 0
    completion_tokens: int = 0
    latency_s: float = 0.0
    cache_hit: bool = False
    # Prompt tokens the engine served from its prefix cache, as it reported them (0 when it did not).
    cached_tokens: int = 0
    # A reasoning parser's separate thinking (vLLM's `reasoning_content`); "" when none came apart.
    reasoning: str = ""
    # Log-probability of each option of a choice constraint, in its order (-inf: below what the engine
    # listed); None when not asked for or not given.
    option_logprobs: tuple[float, ...] | None = None
    attempts: int = 1
    errors: tuple[str, ...] = ()


class ModelError(RuntimeError):
    """A request that failed for good (after any retries)."""


class TransientModelError(ModelError):
    """A failure worth retrying (429, 5xx, timeout, broken connection).

    `retry_after` carries the server's Retry-After in seconds, when it sent one.
    """

    def __init__(self, message: str, *, retry_after: float | None = None) -> None:
        super().__init__(message)
        self.retry_after = retry_after


def end_conversation(model: ChatModel, conversation: str) -> None:
    """Tell a model, through its wrappers, that a conversation is over, so it can free what it kept for it.

    Models without per-conversation state need not implement `end_conversation`; this does nothing then.
    """
    end = getattr(model, "end_conversation", None)
    if end is not None:
        end(conversation)


@runtime_checkable
class ChatModel(Protocol):
    """Anything that answers chat requests. `name` is the model spec it was made from."""

    name: str

    async def complete(self, request: ChatRequest) -> ChatResult: ...

    async def aclose(self) -> None: ...
