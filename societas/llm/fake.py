"""Deterministic responders: models that need no weights and no network.

A responder is a plain function from a ChatRequest to reply text. `FakeModel`
serves one in-process (the `fake:NAME` model spec); the fake OpenAI server in
`societas.llm.testing` serves the same responders over real HTTP.
"""

from __future__ import annotations

import hashlib
import re
import time
from collections.abc import Callable

from societas.llm.base import ChatRequest, ChatResult
from societas.types import ActionSpec

Responder = Callable[[ChatRequest], str]

_OPTION_LIST = re.compile(r"Option ([A-Z])(?:,| or)")
_OPTION_LAST = re.compile(r"or Option ([A-Z])\b")


def _digest(request: ChatRequest, salt: str = "") -> int:
    h = hashlib.blake2b(digest_size=8)
    for m in request.messages:
        h.update(m.get("content", "").encode())
        h.update(b"\x00")
    h.update(str(request.replicate if request.temperature > 0 else 0).encode())
    h.update(salt.encode())
    return int.from_bytes(h.digest(), "big")


def allowed_choices(request: ChatRequest) -> tuple[str, ...]:
    """The options a request allows: from its constraint, else read off the last prompt.

    Over HTTP without structured outputs the server only sees text; prompts that
    end in "Option X or Option Y" still tell it what is allowed.
    """
    if request.constraint is not None and request.constraint.kind == "choice":
        return request.constraint.choices
    # The latest user turn that lists options (a retry prompt may not repeat them).
    for message in reversed(request.messages):
        if message.get("role", "user") != "user":
            continue
        text = message.get("content", "")
        found = _OPTION_LIST.findall(text) + _OPTION_LAST.findall(text)
        if found:
            return tuple(dict.fromkeys(found))
    return ()


def _number_answer(spec: ActionSpec | None, fraction: float) -> str:
    if spec is None or spec.kind not in ("integer", "real"):
        return "Answer: 0"
    lo, hi = float(spec.minimum), float(spec.maximum)
    value = lo + (hi - lo) * fraction
    if spec.kind == "integer":
        return f"Answer: {round(value)}"
    return f"Answer: {value:.2f}"


def first_choice(request: ChatRequest) -> str:
    """Always the first allowed option (the cooperative one in the bundled games)."""
    choices = allowed_choices(request)
    if choices:
        return choices[0] if request.constraint else f"Option {choices[0]}"
    return _number_answer(request.constraint, 0.5)


def random_choice(request: ChatRequest) -> str:
    """A pseudo-random option drawn from a hash of the request: same request, same reply."""
    choices = allowed_choices(request)
    d = _digest(request)
    if choices:
        c = sorted(choices)[d % len(choices)]
        return c if request.constraint else f"Option {c}"
    return _number_answer(request.constraint, (d % 1001) / 1000)


def echo(request: ChatRequest) -> str:
    """The last message's text, for tests of the transport."""
    return request.messages[-1].get("content", "") if request.messages else ""


RESPONDERS: dict[str, Responder] = {
    "first": first_choice,
    "cooperate": first_choice,
    "random": random_choice,
    "echo": echo,
}


def get_responder(name: str) -> Responder:
    try:
        return RESPONDERS[name]
    except KeyError:
        raise KeyError(f"unknown fake responder {name!r}; known: {', '.join(sorted(RESPONDERS))}") from None


def approx_tokens(text: str) -> int:
    """A cheap token count for fake replies (about four characters a token)."""
    return max(1, (len(text) + 3) // 4)


class FakeModel:
    """Serves a responder in-process: zero latency, deterministic, counted."""

    def __init__(self, name: str, responder: Responder) -> None:
        self.name = name
        self.responder = responder
        self.calls = 0

    async def complete(self, request: ChatRequest) -> ChatResult:
        t0 = time.perf_counter()
        self.calls += 1
        text = self.responder(request)
        return ChatResult(
            text=text,
            model=self.name,
            prompt_tokens=sum(approx_tokens(m.get("content", "")) for m in request.messages),
            completion_tokens=approx_tokens(text),
            latency_s=time.perf_counter() - t0,
        )

    async def aclose(self) -> None:
        return None
