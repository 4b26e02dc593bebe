"""The grammars sent to llama.cpp parse in llama.cpp's own grammar parser (with the real model's vocabulary)."""

from __future__ import annotations

from pathlib import Path

import pytest

from societas.environments.feedback_loop import ANSWER_MARKER, STATEMENT_PATTERN
from societas.llm.llamacpp import grammar
from societas.types import ActionSpec

pytestmark = pytest.mark.live

SPECS = [
    ActionSpec(kind="regex", pattern=STATEMENT_PATTERN, answer_marker=ANSWER_MARKER),
    ActionSpec.real(0.0, 10.0, answer_marker=ANSWER_MARKER),
    ActionSpec.choice(["J", "F"], answer_marker=ANSWER_MARKER),
    ActionSpec.integer(-5000, 5000),
    ActionSpec.choice(["red", "green", "blue", "yellow"]),
]


def test_grammars_parse_in_llamacpp(smollm2: Path) -> None:
    llama_cpp = pytest.importorskip("llama_cpp")
    llm = llama_cpp.Llama(model_path=str(smollm2), vocab_only=True, verbose=False)
    vocab = llama_cpp.llama_model_get_vocab(llm._model.model)

    def parses(text: str) -> bool:
        sampler = llama_cpp.llama_sampler_init_grammar(vocab, text.encode(), b"root")
        if not sampler:
            return False
        llama_cpp.llama_sampler_free(sampler)
        return True

    assert not parses("root ::= (\n")  # the check can fail
    for spec in SPECS:
        for max_tokens in (None, 8, 200, 100_000):  # no bound, no room, a bound, the cap
            text = grammar(spec, "Option" if spec.kind == "choice" else "", max_tokens)
            assert text is not None and parses(text), text
