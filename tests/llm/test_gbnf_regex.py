"""Regex answers as llama.cpp grammars: what the translation writes, and what it refuses."""

from __future__ import annotations

import pytest

from societas.llm.gbnf_regex import Unsupported, regex_to_gbnf
from societas.llm.llamacpp import body_extras, grammar
from societas.types import ActionSpec

STANCE = r"[-+]?\d+(?:\.\d+)?(?:[eE][-+]?\d+)? *\| *[^\n|]+"


@pytest.mark.parametrize(("pattern", "gbnf"), [
    (STANCE, r'[-+]? [0-9]+ ("." [0-9]+)? ([eE] [-+]? [0-9]+)? " "* "|" " "* [^\n|]+'),
    (r"^(yes|no)$", '("y" "e" "s" | "n" "o")'),
    (r"[A-Z]{2,3}-\d{2}", r'([A-Z] [A-Z] [A-Z]?) "-" ([0-9] [0-9])'),
    (r"a{2,}b.", '("a" "a" "a"*) "b" [^\\n]'),
    (r'say "\\"', '"s" "a" "y" " " "\\"" "\\\\" "\\""'),
    (r"[\w\-.]+", r"[A-Za-z0-9_\x2D.]+"),
])
def test_translation(pattern: str, gbnf: str) -> None:
    assert regex_to_gbnf(pattern) == gbnf


@pytest.mark.parametrize("pattern", [r"(?=a)b", r"(a)\1", r"a*?", r"(?P<x>a)", r"(ab", r"a{3,2}", r"\bword"])
def test_unsupported_patterns_are_refused(pattern: str) -> None:
    with pytest.raises(Unsupported):
        regex_to_gbnf(pattern)


def test_a_pattern_after_a_marker_is_a_grammar_and_an_untranslatable_one_is_sent_free() -> None:
    spec = ActionSpec(kind="regex", pattern=STANCE, answer_marker="Answer:")
    assert body_extras(spec) == {"grammar": grammar(spec)}
    assert grammar(spec).startswith('root ::= free "Answer:" " "? answer\nanswer ::= [-+]? [0-9]+')
    # Before, such a spec went out as a json_object schema that llama-cpp-python cannot convert: any JSON came back.
    assert body_extras(ActionSpec(kind="regex", pattern=r"(?=x)x", answer_marker="Answer:")) == {}
    bare = ActionSpec(kind="regex", pattern=r"(?=x)x")
    assert body_extras(bare)["response_format"]["type"] == "json_object"


def test_grammars_parse_in_llama_cpp() -> None:
    llama_grammar = pytest.importorskip("llama_cpp.llama_grammar")
    for pattern in (STANCE, r"^(yes|no)$", r"[A-Z]{2,3}-\d{2}", r"[\w\-.]+"):
        text = grammar(ActionSpec(kind="regex", pattern=pattern, answer_marker="Answer:"))
        llama_grammar.LlamaGrammar.from_string(text, verbose=False)


def test_a_long_repeat_keeps_its_bounds() -> None:
    # A town-hall utterance allows 300 characters of words: written out, that is 300 copies of
    # the class; it raised Unsupported, and the reply went out held only to "some JSON".
    assert regex_to_gbnf(r"[a-z ]{1,300}") == "([a-z ]){1,300}"
    assert regex_to_gbnf(r"x{100,}") == '("x"){100,}' and regex_to_gbnf(r"x{70}") == '("x"){70}'
    assert regex_to_gbnf(r"x{1,3}") == '("x" "x"? "x"?)'
