"""The shared vocabulary of societas: what an agent sees, may do, and did.

This module imports nothing from the rest of the package, so environments,
agents, model backends and analysis can all speak the same types without
depending on each other.
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Literal

ActionKind = Literal["choice", "integer", "real", "regex", "json", "text"]

FALLBACK_LIMIT = 0.20
"""Above this share of invalid fallbacks (the default played because no reply parsed, or a person did not
answer in time) among an agent's decisions, findings about that agent are not interpretable; the run
summary and every analysis say so."""

_NUMBER = re.compile(r"[-+]?(?:\d+(?:\.\d*)?|\.\d+)(?:[eE][-+]?\d+)?")
# Reasoning models write their thinking first; an unclosed block (cut off by max_tokens, or a
# template that opened it in the prompt) runs to its closing tag or is all thinking.
_THINK = re.compile(r"<think>.*?(?:</think>|\Z)", re.DOTALL)


def split_reasoning(text: str) -> tuple[str, str]:
    """A reply's visible answer and its ``<think>`` reasoning, the answer without the blocks.

    A reply that starts inside a block (the chat template opened ``<think>`` in the prompt, so
    only ``</think>`` appears) counts everything before the first closing tag as reasoning.
    """
    if "</think>" in text and "<think>" not in text.split("</think>", 1)[0]:
        head, text = text.split("</think>", 1)
        reasoning = [head.strip()]
    else:
        reasoning = []
    reasoning += [m.group()[len("<think>"):].removesuffix("</think>").strip() for m in _THINK.finditer(text)]
    answer = _THINK.sub("", text)
    return answer.strip(), "\n\n".join(r for r in reasoning if r)


class InvalidAction(ValueError):
    """A reply that does not satisfy its ActionSpec; the message is shown to the model."""


@dataclass(frozen=True, kw_only=True, slots=True)
class ActionSpec:
    """What an agent may answer, declared by the environment.

    The LLM layer turns it into constrained decoding where the backend allows,
    and `parse` always validates the reply on the client side.

    kind: choice (one of `choices`), integer / real (in [minimum, maximum]),
    regex (full match of `pattern`), json (an object matching `schema`'s
    required keys), text (any non-empty string up to `max_length`).
    `default` is played when every attempt failed and is recorded as invalid.
    `answer_marker`, when set, means the answer is read after the last
    occurrence of that marker (e.g. "Answer:"), so the model may reason first.
    `description` says in words what a regex answer looks like (e.g. 'a stance,
    "|", then one sentence'): a model told why its reply failed is shown these
    words, never the raw pattern.
    `first_match`, for a choice, reads the first option the reply names as the
    answer (a reply that states its choice first and explains after, where the
    explanation may name other options).
    `max_tokens`, when set, is the longest reply worth asking for, in tokens: a reply
    longer than the answer's form allows can never be used, so the model is asked
    for no more (the run's `llm.max_tokens` still applies when it is lower).
    """

    kind: ActionKind
    choices: tuple[str, ...] = ()
    minimum: float | None = None
    maximum: float | None = None
    pattern: str | None = None
    schema: Mapping[str, Any] | None = None
    max_length: int = 2000
    default: Any = None
    answer_marker: str | None = None
    description: str | None = None
    first_match: bool = False
    max_tokens: int | None = None

    def __post_init__(self) -> None:
        if self.max_tokens is not None and self.max_tokens < 1:
            raise ValueError(f"ActionSpec.max_tokens must be at least 1, got {self.max_tokens}")
        if self.kind == "choice":
            if len(self.choices) < 1:
                raise ValueError("ActionSpec(kind='choice') needs at least one entry in choices")
            if len(set(self.choices)) != len(self.choices):
                raise ValueError(f"ActionSpec.choices has duplicates: {self.choices!r}")
            if self.default is not None and self.default not in self.choices:
                raise ValueError(
                    f"ActionSpec.default {self.default!r} is not one of choices {self.choices!r}"
                )
        elif self.kind in ("integer", "real"):
            if self.minimum is None or self.maximum is None:
                raise ValueError(f"ActionSpec(kind={self.kind!r}) needs minimum and maximum")
            if self.minimum > self.maximum:
                raise ValueError(
                    f"ActionSpec.minimum {self.minimum} is greater than maximum {self.maximum}"
                )
        elif self.kind == "regex":
            if not self.pattern:
                raise ValueError("ActionSpec(kind='regex') needs a pattern")
            re.compile(self.pattern)
        elif self.kind == "json":
            if not isinstance(self.schema, Mapping):
                raise ValueError("ActionSpec(kind='json') needs a JSON schema mapping")
        elif self.kind != "text":
            raise ValueError(
                f"ActionSpec.kind must be one of choice, integer, real, regex, json, text; got {self.kind!r}"
            )

    # Constructors read better at call sites than keyword soup.
    @classmethod
    def choice(cls, choices: tuple[str, ...] | list[str], *, default: Any = None, **kw: Any) -> ActionSpec:
        choices = tuple(choices)
        return cls(kind="choice", choices=choices, default=choices[0] if default is None else default, **kw)

    @classmethod
    def integer(cls, minimum: int, maximum: int, *, default: int | None = None, **kw: Any) -> ActionSpec:
        return cls(kind="integer", minimum=minimum, maximum=maximum,
                   default=minimum if default is None else default, **kw)

    @classmethod
    def real(cls, minimum: float, maximum: float, *, default: float | None = None, **kw: Any) -> ActionSpec:
        return cls(kind="real", minimum=minimum, maximum=maximum,
                   default=minimum if default is None else default, **kw)

    def _answer_text(self, text: str) -> str:
        if "think>" in text:
            text = split_reasoning(text)[0]
        return self._after_marker(text)

    def _after_marker(self, text: str) -> str:
        if self.answer_marker is not None:
            idx = text.rfind(self.answer_marker)
            if idx < 0:
                raise InvalidAction(f'No "{self.answer_marker}" found: end with "{self.answer_marker} <answer>".')
            text = text[idx + len(self.answer_marker):]
        return text.strip()

    def parse(self, text: str) -> Any:
        """Read a model reply into a valid action value, or raise InvalidAction saying why."""
        return self._parse_raw(self._answer_text(text))

    def parse_answer(self, answer: str) -> Any:
        """`parse` for a reply's visible answer, its think blocks already split off (`split_reasoning`)."""
        return self._parse_raw(self._after_marker(answer))

    def _parse_raw(self, raw: str) -> Any:
        if self.kind == "choice":
            return self._parse_choice(raw)
        if self.kind in ("integer", "real"):
            m = _NUMBER.search(raw.replace(",", ""))
            if m is None:
                raise InvalidAction(f"No number found; answer with a number between {self._bounds()}.")
            return self.validate(float(m.group()))
        if self.kind == "regex":
            return self.validate(raw)
        if self.kind == "json":
            start, end = raw.find("{"), raw.rfind("}")
            if start < 0 or end < start:
                raise InvalidAction("No JSON object found; answer with one JSON object.")
            try:
                value = json.loads(raw[start:end + 1])
            except json.JSONDecodeError as exc:
                raise InvalidAction(f"The JSON object does not parse: {exc.msg}.") from None
            return self.validate(value)
        return self.validate(raw)

    def _parse_choice(self, raw: str) -> str:
        # Exact answer first ("J", "Option J"), then a unique whole-word mention.
        cleaned = raw.strip().strip(".,;:!\"'`*()[] \n\t")
        for prefix in ("Option ", "option "):
            if cleaned.startswith(prefix):
                cleaned = cleaned[len(prefix):].strip(".,;:!\"'`*()[] ")
        if cleaned in self.choices:
            return cleaned
        if self.first_match:
            hits = [(m.start(), c) for c in self.choices
                    if (m := re.search(rf"(?<![\w]){re.escape(c)}(?![\w])", raw)) is not None]
            if hits:
                return min(hits)[1]
        found = [c for c in self.choices if re.search(rf"(?<![\w]){re.escape(c)}(?![\w])", raw)]
        if len(found) == 1:
            return found[0]
        listed = ", ".join(self.choices)
        if not found:
            raise InvalidAction(f"The answer names none of the options; answer with exactly one of: {listed}.")
        raise InvalidAction(f"The answer names several options; answer with exactly one of: {listed}.")

    def _bounds(self) -> str:
        return f"{_fmt(self.minimum)} and {_fmt(self.maximum)}"

    def validate(self, value: Any) -> Any:
        """Check an already-structured value (from a scripted policy or a parser)."""
        if self.kind == "choice":
            if value not in self.choices:
                raise InvalidAction(f"{value!r} is not one of: {', '.join(self.choices)}.")
            return value
        if self.kind in ("integer", "real"):
            try:
                number = float(value)
            except (TypeError, ValueError):
                raise InvalidAction(f"{value!r} is not a number.") from None
            if not math.isfinite(number) or not (self.minimum <= number <= self.maximum):
                raise InvalidAction(f"{_fmt(number)} is out of range; answer between {self._bounds()}.")
            if self.kind == "integer":
                if number != int(number):
                    raise InvalidAction(f"{_fmt(number)} is not a whole number.")
                return int(number)
            return number
        if self.kind == "regex":
            if not isinstance(value, str) or re.fullmatch(self.pattern, value) is None:
                raise InvalidAction(f"The answer must be {self.description}." if self.description else
                                    "The answer is not in the form the question asks for; answer exactly as "
                                    "the question says.")
            return value
        if self.kind == "json":
            if not isinstance(value, dict):
                raise InvalidAction("The answer must be a JSON object.")
            missing = [k for k in self.schema.get("required", ()) if k not in value]
            if missing:
                raise InvalidAction(f"The JSON object lacks the keys: {', '.join(missing)}.")
            return value
        if not isinstance(value, str) or not value.strip():
            raise InvalidAction("The answer is empty.")
        if len(value) > self.max_length:
            raise InvalidAction(f"The answer is longer than {self.max_length} characters.")
        return value

    def json_schema(self) -> dict[str, Any]:
        """The reply as a JSON schema, for providers that constrain output with one."""
        if self.kind == "choice":
            return {"type": "object", "properties": {"answer": {"type": "string", "enum": list(self.choices)}},
                    "required": ["answer"], "additionalProperties": False}
        if self.kind in ("integer", "real"):
            t = "integer" if self.kind == "integer" else "number"
            return {"type": "object",
                    "properties": {"answer": {"type": t, "minimum": self.minimum, "maximum": self.maximum}},
                    "required": ["answer"], "additionalProperties": False}
        if self.kind == "regex":
            return {"type": "object", "properties": {"answer": {"type": "string", "pattern": self.pattern}},
                    "required": ["answer"], "additionalProperties": False}
        if self.kind == "json":
            return dict(self.schema)
        return {"type": "object", "properties": {"answer": {"type": "string", "maxLength": self.max_length}},
                "required": ["answer"], "additionalProperties": False}

    def to_dict(self) -> dict[str, Any]:
        """A canonical, JSON-serialisable form (cache keys, logs)."""
        out: dict[str, Any] = {"kind": self.kind}
        for name in ("choices", "minimum", "maximum", "pattern", "schema", "answer_marker"):
            v = getattr(self, name)
            if v not in (None, ()):
                out[name] = list(v) if isinstance(v, tuple) else v
        if self.first_match:
            out["first_match"] = True
        return out


def _fmt(x: float | None) -> str:
    return "None" if x is None else (str(int(x)) if float(x).is_integer() else f"{x:g}")


@dataclass(frozen=True, kw_only=True, slots=True)
class Question:
    """A prompt with its expected answer, e.g. "predict your partner's next move"."""

    prompt: str
    spec: ActionSpec


@dataclass(frozen=True, kw_only=True, slots=True)
class Observation:
    """One decision an agent must take.

    `system` holds the static rules (identical across the episode, so prompt
    prefixes cache), `prompt` the history and question. `data` carries the same
    situation as structured fields for scripted and replay policies.
    `prediction`, when the environment offers it, asks the agent to predict its
    partner's next move first (the social-chain-of-thought prompt).
    """

    agent: str
    round: int
    system: str
    prompt: str
    spec: ActionSpec
    data: Mapping[str, Any] = field(default_factory=dict)
    prediction: Question | None = None


@dataclass(frozen=True, kw_only=True, slots=True)
class LLMCall:
    """One request to a model, as recorded in the run's llm_calls table."""

    model: str
    messages: tuple[Mapping[str, str], ...]
    params: Mapping[str, Any]
    reply: str | None
    error: str | None
    latency_s: float
    prompt_tokens: int
    completion_tokens: int
    cache_hit: bool
    attempt: int
    purpose: str = "action"
    cached_tokens: int = 0
    # The model's thinking: a reasoning parser's field, else the reply's <think> blocks.
    reasoning: str = ""


@dataclass(frozen=True, kw_only=True, slots=True)
class Action:
    """What an agent did, with the provenance the event log records.

    `valid` is False when every attempt failed and `value` is the environment's
    default action; `retries` counts the extra attempts a reply needed (a
    prediction's included). `prediction_valid` is None when no prediction was
    asked, False when every attempt at it failed (then `prediction` is None).
    """

    value: Any
    policy: str
    model: str | None = None
    valid: bool = True
    retries: int = 0
    prediction: Any = None
    prediction_valid: bool | None = None
    latency_s: float = 0.0
    prompt_tokens: int = 0
    completion_tokens: int = 0
    cache_hit: bool = False
    calls: tuple[LLMCall, ...] = ()
    # The probability of `value` under the distribution it was drawn from (`sampling: distribution`), else None.
    sampled_p: float | None = None
