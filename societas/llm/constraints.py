"""ActionSpec -> output constraints an OpenAI-compatible endpoint understands, and back.

Two dialects exist. vLLM reads `structured_outputs` from the request body
(`choice`, `regex` or `json`; the legacy `guided_*` fields are ignored by
vLLM >= 0.12). OpenAI reads `response_format` with a JSON schema, so the reply
is a JSON object that `reply_text` turns back into the plain answer that
`ActionSpec.parse` reads. Whatever the endpoint does, the agent still parses
and validates the reply itself; a constraint only makes invalid replies rare.

llama.cpp honours neither: it gets a GBNF grammar or a `json_object` schema
(`societas.llm.llamacpp`).

Numbers under vLLM are constrained with a regex rather than a JSON schema, so
the reply stays plain text and a spec with an `answer_marker` keeps room for
reasoning before the marker; `societas.number_regex` says how a range is written.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from typing import Any, Literal

from societas.number_regex import MAX_ENUMERATED_INTEGERS, REAL_DECIMALS, range_regex
from societas.types import ActionSpec

__all__ = ["MAX_ENUMERATED_INTEGERS", "REAL_DECIMALS", "answer_lead", "escape_regex", "number_regex",
           "reply_text", "request_body_extras"]

ConstraintMode = Literal["vllm", "json_schema", "llamacpp", "none"]

# Characters with a meaning in regex syntax. Escaping only these (unlike
# re.escape, which also escapes spaces and hyphens) keeps the patterns within
# the plain dialect that vLLM's grammar backends accept.
_REGEX_SPECIAL = set(".^$*+?{}[]\\|()")
# Anything, newlines included: the room a model gets to reason before its marker.
_ANY_PREFIX = r"[\s\S]*"


def escape_regex(text: str) -> str:
    """Escape `text` for a regex literal using only backslashes before special characters."""
    return "".join("\\" + c if c in _REGEX_SPECIAL else c for c in text)


def _strip_anchors(pattern: str) -> str:
    # ActionSpec.validate uses fullmatch, so ^ and $ add nothing; inside a longer
    # pattern they would make it unmatchable.
    if pattern.startswith("^"):
        pattern = pattern[1:]
    if pattern.endswith("$") and not pattern.endswith("\\$"):
        pattern = pattern[:-1]
    return pattern


def number_regex(spec: ActionSpec) -> str:
    """A regex for the numbers an integer or real spec accepts (see the module docstring)."""
    if spec.kind not in ("integer", "real") or spec.minimum is None or spec.maximum is None:
        raise ValueError(f"number_regex needs an integer or real ActionSpec, got kind={spec.kind!r}")
    return range_regex(spec.minimum, spec.maximum, integer=spec.kind == "integer")


_LEAD_MAX = 40


def answer_lead(messages: Sequence[Mapping[str, str]]) -> str:
    """The words the last prompt puts before the answer ("...\nA: Option" -> "Option"), or "".

    A model continues such a prompt by writing those words first ("Option J"), so every
    engine constrains and scores the answer in that form: the choice is then what
    the model would write, not a bare letter at a position it would never write one.
    """
    if not messages or messages[-1].get("role", "user") != "user":
        return ""
    text = messages[-1].get("content", "")
    cut = text.rfind("A:")
    if cut < 0 or (cut > 0 and text[cut - 1] != "\n"):
        return ""
    lead = text[cut + 2 :].strip()
    return lead if 0 < len(lead) <= _LEAD_MAX and "\n" not in lead else ""


def _with_marker(spec: ActionSpec, answer: str) -> str:
    if spec.answer_marker is None:
        return answer
    return _ANY_PREFIX + escape_regex(spec.answer_marker) + " ?" + answer


def _vllm(spec: ActionSpec, lead: str = "") -> dict[str, Any]:
    if spec.kind == "choice":
        if spec.answer_marker is None and lead:
            return {"regex": escape_regex(lead) + " (?:" + "|".join(escape_regex(c) for c in spec.choices) + ")"}
        if spec.answer_marker is None:
            return {"choice": list(spec.choices)}
        options = "(?:" + "|".join(escape_regex(c) for c in spec.choices) + ")"
        return {"regex": _with_marker(spec, options)}
    if spec.kind in ("integer", "real"):
        return {"regex": _with_marker(spec, number_regex(spec))}
    if spec.kind == "regex":
        return {"regex": _with_marker(spec, "(?:" + _strip_anchors(spec.pattern or "") + ")")}
    if spec.kind == "json" and spec.answer_marker is None:
        # With a marker the reply is text, then JSON: no single JSON constraint fits.
        return {"json": spec.json_schema()}
    return {}


def request_body_extras(spec: ActionSpec | None, mode: ConstraintMode, lead: str = "",
                        max_tokens: int | None = None) -> dict[str, Any]:
    """Keyword arguments for `chat.completions.create` that constrain the reply to `spec`.

    vllm -> `extra_body={"structured_outputs": {...}}`; json_schema ->
    `response_format` with `spec.json_schema()`; llamacpp -> a `grammar` or a
    `json_object` response_format; none, a text spec, or no spec -> {}.
    `lead` (see `answer_lead`) is written before a choice under vllm and llamacpp; under
    llamacpp the request's `max_tokens` bounds the text before an answer marker.
    """
    if spec is None or mode == "none" or spec.kind == "text":
        return {}
    if mode == "vllm":
        structured = _vllm(spec, lead)
        return {"extra_body": {"structured_outputs": structured}} if structured else {}
    if mode == "llamacpp":
        from societas.llm.llamacpp import body_extras

        extras = body_extras(spec, lead, max_tokens)
        out: dict[str, Any] = {}
        if "response_format" in extras:
            out["response_format"] = extras.pop("response_format")
        if extras:
            out["extra_body"] = extras
        return out
    if mode == "json_schema":
        return {
            "response_format": {
                "type": "json_schema",
                "json_schema": {"name": "action", "schema": spec.json_schema(), "strict": True},
            }
        }
    raise ValueError(f"constraint mode must be one of vllm, json_schema, llamacpp, none; got {mode!r}")


def _scalar_text(value: Any) -> str:
    if isinstance(value, str):
        return value
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return json.dumps(value, ensure_ascii=False)


def reply_text(text: str, spec: ActionSpec | None, mode: ConstraintMode) -> str:
    """The plain answer behind a reply to a `json_schema` constrained request.

    The reply `{"answer": X}` becomes `X` (after the spec's `answer_marker`, when it
    has one), so `ActionSpec.parse` reads it like any other reply. A reply that is
    not such an object (the endpoint ignored the format) is returned unchanged.
    """
    if mode not in ("json_schema", "llamacpp") or spec is None or spec.kind == "text":
        return text
    if mode == "llamacpp":
        from societas.llm.llamacpp import grammar

        if grammar(spec) is not None:  # a grammar keeps the reply plain text
            return text
    stripped = text.strip()
    if not stripped.startswith("{"):
        return text
    try:
        value = json.loads(stripped)
    except ValueError:
        return text
    if not isinstance(value, dict):
        return text
    if spec.kind == "json":
        answer = stripped
    elif "answer" in value:
        answer = _scalar_text(value["answer"])
    else:
        return text
    return answer if spec.answer_marker is None else f"{spec.answer_marker} {answer}"
