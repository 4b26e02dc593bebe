"""ActionSpec -> request constraints for each dialect, and JSON replies back to plain answers."""

from __future__ import annotations

import json
import re

import pytest

from societas.llm.constraints import (
    MAX_ENUMERATED_INTEGERS,
    escape_regex,
    number_regex,
    reply_text,
    request_body_extras,
)
from societas.types import ActionSpec

CHOICE = ActionSpec.choice(["J", "F"])
INTEGER = ActionSpec.integer(0, 10)
REAL = ActionSpec.real(-1.5, 250.0)
REGEX = ActionSpec(kind="regex", pattern=r"^[A-C]{2}$")
JSON_SPEC = ActionSpec(kind="json", schema={"type": "object", "properties": {"give": {"type": "integer"}},
                                            "required": ["give"]})
TEXT = ActionSpec(kind="text")
ALL = [CHOICE, INTEGER, REAL, REGEX, JSON_SPEC, TEXT]


def structured(spec: ActionSpec) -> dict:
    return request_body_extras(spec, "vllm")["extra_body"]["structured_outputs"]


def test_vllm_choice_regex_and_json() -> None:
    assert structured(CHOICE) == {"choice": ["J", "F"]}
    assert structured(REGEX) == {"regex": "(?:[A-C]{2})"}
    assert structured(JSON_SPEC) == {"json": dict(JSON_SPEC.schema)}
    assert request_body_extras(TEXT, "vllm") == {}


def test_vllm_numbers_are_regexes_that_parse() -> None:
    pattern = structured(INTEGER)["regex"]
    assert [str(v) for v in range(11) if re.fullmatch(pattern, str(v))] == [str(v) for v in range(11)]
    assert not re.fullmatch(pattern, "11") and not re.fullmatch(pattern, "-1")
    real = structured(REAL)["regex"]
    for ok in ("-1.5", "0", "249.75", "3"):
        assert re.fullmatch(real, ok), ok
    for bad in ("1e3", "1234", "abc", "1."):
        assert not re.fullmatch(real, bad), bad


def test_large_integer_range_bounds_digits() -> None:
    spec = ActionSpec.integer(0, MAX_ENUMERATED_INTEGERS * 10)
    pattern = number_regex(spec)
    assert re.fullmatch(pattern, "1999") and not re.fullmatch(pattern, "-3")
    assert not re.fullmatch(pattern, "12345")


def test_answer_marker_leaves_room_to_reason() -> None:
    spec = ActionSpec.choice(["J", "F"], answer_marker="Answer:")
    pattern = structured(spec)["regex"]
    reply = "They cooperated last round, so I will too.\nAnswer: J"
    assert re.fullmatch(pattern, reply) and spec.parse(reply) == "J"
    assert not re.fullmatch(pattern, "Answer: X")
    number = ActionSpec.integer(0, 5, answer_marker="Answer:")
    assert re.fullmatch(structured(number)["regex"], "I keep 2.\nAnswer: 3")
    # JSON after free text has no single JSON constraint: nothing is sent.
    marked_json = ActionSpec(kind="json", schema={"type": "object"}, answer_marker="Answer:")
    assert request_body_extras(marked_json, "vllm") == {}


def test_escape_regex_only_escapes_special_characters() -> None:
    assert escape_regex("Answer: a-b (x)") == r"Answer: a-b \(x\)"
    assert re.fullmatch(escape_regex("1+1=2?"), "1+1=2?")


@pytest.mark.parametrize("spec", [s for s in ALL if s.kind != "text"], ids=lambda s: s.kind)
def test_json_schema_mode_sends_the_spec_schema(spec: ActionSpec) -> None:
    extras = request_body_extras(spec, "json_schema")
    assert extras == {"response_format": {"type": "json_schema", "json_schema": {
        "name": "action", "schema": spec.json_schema(), "strict": True}}}


@pytest.mark.parametrize("spec", ALL, ids=lambda s: s.kind)
def test_none_mode_and_no_spec_send_nothing(spec: ActionSpec) -> None:
    assert request_body_extras(spec, "none") == {}
    assert request_body_extras(None, "vllm") == {}
    assert request_body_extras(None, "json_schema") == {}


def test_reply_text_unwraps_answers() -> None:
    assert reply_text('{"answer": "F"}', CHOICE, "json_schema") == "F"
    assert INTEGER.parse(reply_text('{"answer": 7}', INTEGER, "json_schema")) == 7
    assert INTEGER.parse(reply_text('{"answer": 7.0}', INTEGER, "json_schema")) == 7
    assert REAL.parse(reply_text('{"answer": 2.25}', REAL, "json_schema")) == 2.25
    obj = '{"give": 3}'
    assert JSON_SPEC.parse(reply_text(obj, JSON_SPEC, "json_schema")) == {"give": 3}
    marked = ActionSpec.choice(["J", "F"], answer_marker="Answer:")
    assert marked.parse(reply_text('{"answer": "J"}', marked, "json_schema")) == "J"


def test_reply_text_leaves_ignored_formats_alone() -> None:
    for text in ("Option J", "{not json", '["J"]', '{"choice": "J"}', ""):
        assert reply_text(text, CHOICE, "json_schema") == text
    assert reply_text('{"answer": "F"}', CHOICE, "vllm") == '{"answer": "F"}'
    assert reply_text('{"answer": "F"}', None, "json_schema") == '{"answer": "F"}'
    assert json.loads(reply_text('{"answer": "x"}', TEXT, "json_schema")) == {"answer": "x"}


def test_unknown_mode_is_an_error() -> None:
    with pytest.raises(ValueError, match="vllm, json_schema, llamacpp, none"):
        request_body_extras(CHOICE, "guided")  # type: ignore[arg-type]


@pytest.mark.parametrize("lo,hi", [(0, 10), (0, 13.5), (-2.5, 10), (0, 1), (0.5, 0.8), (-20, 40)])
def test_real_regex_admits_every_number_in_range_and_no_whole_part_beyond(lo: float, hi: float) -> None:
    from societas.llm.constraints import number_regex

    rx = number_regex(ActionSpec.real(lo, hi))
    for k in range(int(lo * 100), int(hi * 100) + 1):
        for text in {f"{k / 100:g}", f"{k / 100:.2f}"}:
            assert re.fullmatch(rx, text), (rx, text)
    top = int(hi) + 1
    for text in (str(top), f"{top}.5", str(top + 10)):
        assert not re.fullmatch(rx, text), (rx, text)
    if lo < 0:
        assert not re.fullmatch(rx, f"-{int(-lo) + 1}")
