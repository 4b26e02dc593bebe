"""Deterministic responders: models that need no weights and no network.

A responder is a plain function from a ChatRequest to reply text. `FakeModel`
serves one in-process (the `fake:NAME` model spec); the fake OpenAI server in
`societas.llm.testing` serves the same responders over real HTTP.
"""

from __future__ import annotations

import hashlib
import json
import math
import re
import re._constants as _C
import re._parser as _sre
import time
from collections.abc import Callable
from typing import Any

import numpy as np

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


def _number(spec: ActionSpec, fraction: float) -> str:
    """A number at `fraction` of the spec's range, written so that it parses back inside the range."""
    lo, hi = float(spec.minimum), float(spec.maximum)
    value = lo + (hi - lo) * fraction
    if spec.kind == "integer":
        return str(min(max(round(value), math.ceil(lo)), math.floor(hi)))
    text = f"{value:.2f}"
    return text if lo <= float(text) <= hi else repr(value)


_WORDS = ("the", "readings", "point", "up", "evidence", "is", "mixed", "I", "agree", "with", "most", "others",
          "so", "my", "view", "stays", "near", "average", "but", "lean", "a", "little", "higher", "lower")
_READABLE = "abcdefghijklmnopqrstuvwxyz"


def _from_pattern(pattern: str, rng: np.random.Generator | None) -> str:
    """A string the regular expression matches: random with `rng`, else the simplest (first branch, fewest
    repeats, first character); short repeats, and a few words where a wide class asks for free text.

    Walks Python's own parse of the pattern; what it cannot write (lookarounds,
    back references) is left out, and the caller checks the full match.
    """
    return "".join(_walk(_sre.parse(pattern), rng))


def _walk(items: Any, rng: np.random.Generator | None) -> list[str]:
    out: list[str] = []
    for op, arg in items:
        if op is _C.LITERAL:
            out.append(chr(arg))
        elif op is _C.ANY:
            out.append(_READABLE[0 if rng is None else int(rng.integers(len(_READABLE)))])
        elif op is _C.IN:
            out.append(_one_of(arg, rng))
        elif op is _C.BRANCH:
            out += _walk(arg[1][0 if rng is None else int(rng.integers(len(arg[1])))], rng)
        elif op is _C.SUBPATTERN:
            out += _walk(arg[-1], rng)
        elif op in (_C.MAX_REPEAT, _C.MIN_REPEAT, getattr(_C, "POSSESSIVE_REPEAT", None)):
            low, high, body = arg
            wide = len(body) == 1 and body[0][0] is _C.IN and _is_wide(body[0][1])
            if wide:  # free text ("[^\n|]+"): a few words
                words = ("I agree with the others" if rng is None else
                         " ".join(str(w) for w in rng.choice(_WORDS, int(rng.integers(3, 9)))))
                text = words[0].upper() + words[1:] + "."
                if all(_matches_class(body[0][1], ch) for ch in text) and low <= len(text) <= high:
                    out.append(text)
                    continue
            # Optional parts now and then (an exponent is rare in a stance), a few digits at most.
            if rng is None:
                count = low
            elif (low, high) == (0, 1):
                count = int(rng.random() < 0.3)
            else:
                count = low + int(rng.integers(0, 2 if high > low else 1))
            for _ in range(min(count, high)):
                out += _walk(body, rng)
    return out


def _matches_class(items: Any, ch: str) -> bool:
    negate = bool(items) and items[0][0] is _C.NEGATE
    hit = False
    for op, arg in items[1:] if negate else items:
        if op is _C.LITERAL:
            hit |= ord(ch) == arg
        elif op is _C.RANGE:
            hit |= arg[0] <= ord(ch) <= arg[1]
        elif op is _C.CATEGORY:
            hit |= re.fullmatch(_CATEGORIES.get(arg, r"(?!)"), ch) is not None
    return hit != negate


_CATEGORIES = {_C.CATEGORY_DIGIT: r"\d", _C.CATEGORY_WORD: r"\w", _C.CATEGORY_SPACE: r"\s",
               _C.CATEGORY_NOT_DIGIT: r"\D", _C.CATEGORY_NOT_WORD: r"\W", _C.CATEGORY_NOT_SPACE: r"\S"}


def _is_wide(items: Any) -> bool:
    """A class of most printable characters (negated, or words): free text, not a digit or a letter set."""
    return (bool(items) and items[0][0] is _C.NEGATE) or any(
        op is _C.CATEGORY and arg in (_C.CATEGORY_WORD, _C.CATEGORY_NOT_DIGIT, _C.CATEGORY_NOT_SPACE)
        for op, arg in items)


def _one_of(items: Any, rng: np.random.Generator | None) -> str:
    pool = [ch for ch in "0123456789" + _READABLE.upper() + _READABLE + " .,-+" if _matches_class(items, ch)]
    if not pool:
        return ""
    return pool[0] if rng is None else pool[int(rng.integers(len(pool)))]


_STARTS = re.compile(r"starts(?: with)?:?\s*\"?([A-Z][^\"\n.]{2,60}?)\"?\s*(?:[.\n]|$)")


def _free_text(request: ChatRequest, rng: np.random.Generator | None) -> str:
    """A sentence; one that starts as the prompt asks ("... one sentence that starts: My strategy will be")."""
    share = 50 if rng is None else int(rng.integers(0, 11)) * 10
    lead = None
    for message in reversed(request.messages):
        if message.get("role", "user") == "user":
            found = _STARTS.findall(message.get("content", ""))
            if found:
                lead = found[-1].strip()
                break
    if lead is None:
        return f"I keep {share}% and give the rest."
    return f"{lead} to donate {share}% of my resources to every recipient."


def reply_for(request: ChatRequest, rng: np.random.Generator | None) -> str:
    """A valid reply to the request's constraint: random with `rng`, else the first or middle answer.

    Choices, integer and real ranges, regular expressions (a string the pattern
    matches, else the environment's default) and free text; behind the answer
    marker when the spec has one.
    """
    spec = request.constraint
    if spec is None or spec.kind == "choice":
        choices = allowed_choices(request)
        if not choices:
            return "Answer: 0"
        pick = choices[0] if rng is None else sorted(choices)[int(rng.integers(len(choices)))]
        answer = pick if spec is not None else f"Option {pick}"
    elif spec.kind in ("integer", "real"):
        answer = _number(spec, 0.5 if rng is None else float(rng.random()))
    elif spec.kind == "regex":
        # `first` answers the environment's own default where it is valid, else the simplest match.
        answer = str(spec.default) if spec.default is not None else ""
        if rng is not None or re.fullmatch(spec.pattern, answer) is None:
            for _ in range(8 if rng is not None else 1):
                text = _from_pattern(spec.pattern, rng).strip()
                if re.fullmatch(spec.pattern, text):
                    answer = text
                    break
    elif spec.kind == "text":
        answer = _free_text(request, rng)
    else:  # json: the required keys, with nulls
        answer = json.dumps({k: None for k in (spec.schema or {}).get("required", ())})
    return f"{spec.answer_marker} {answer}" if spec is not None and spec.answer_marker else answer


def first_choice(request: ChatRequest) -> str:
    """Always the first allowed option (the cooperative one in the bundled games), the middle of a range."""
    return reply_for(request, None)


def random_choice(request: ChatRequest) -> str:
    """A valid reply drawn with a generator seeded by a hash of the request: same request, same reply."""
    return reply_for(request, np.random.default_rng(_digest(request)))


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


def option_logprobs(request: ChatRequest, choices: tuple[str, ...] | None = None) -> tuple[float, ...]:
    """A fake model's log-probabilities of a choice request's options: a Dirichlet(1) draw seeded by
    the messages alone, so every backend serving fakes (in-process, the fake server) gives the same.

    They sum to log(0.9): a tenth of the mass is on words that are no option, as with a real model.
    """
    h = hashlib.blake2b(digest_size=8)
    for m in request.messages:
        h.update(m.get("content", "").encode())
        h.update(b"\x00")
    weights = np.random.default_rng(int.from_bytes(h.digest(), "big")).dirichlet(
        np.ones(len(allowed_choices(request) if choices is None else choices)))
    return tuple(float(x) for x in np.log(0.9 * weights))


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
        spec = request.constraint
        scores = (option_logprobs(request) if request.option_logprobs and spec is not None
                  and spec.kind == "choice" else None)
        return ChatResult(
            text=text,
            model=self.name,
            prompt_tokens=sum(approx_tokens(m.get("content", "")) for m in request.messages),
            completion_tokens=approx_tokens(text),
            latency_s=time.perf_counter() - t0,
            option_logprobs=scores,
        )

    async def aclose(self) -> None:
        return None
