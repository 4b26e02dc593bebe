"""Constrained generation for the `hf:` backend: numbers, patterns and JSON held by a grammar.

A choice is scored (societas.llm.hf_scoring); every other constrained answer is generated
under a token mask that llguidance computes from a grammar of the replies `ActionSpec.parse`
accepts, so `hf:` holds a number range or a pattern as vLLM and llama.cpp do. The grammar is
the one llama.cpp gets, written as a regex: with an `answer_marker`, at most `free_chars`
characters of free text (room to reason, bounded so the marker comes before max_tokens cuts
the reply off), then the marker, then the answer. A pattern llguidance cannot read (Python-only
regex syntax) is generated unconstrained, as under llama.cpp; the reply is parsed either way.

The mask costs a few microseconds per row and step while the free text allows every token
(it is then left unapplied), and one masked fill while the answer is being written.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import llguidance
import llguidance.hf
import numpy as np
import torch
from transformers import LogitsProcessor

from societas.llm.constraints import _strip_anchors, escape_regex, number_regex
from societas.llm.llamacpp import free_chars
from societas.types import ActionSpec


def answer_grammar(spec: ActionSpec | None, max_tokens: int | None) -> str | None:
    """The llguidance grammar for a generated answer to `spec`, or None when none applies.

    Choices are scored, not generated; text is free; JSON after a marker has no single grammar.
    """
    if spec is None or spec.kind in ("choice", "text"):
        return None
    if spec.kind == "json":
        return None if spec.answer_marker is not None else llguidance.LLMatcher.grammar_from_json_schema(
            dict(spec.schema or {}))
    if spec.kind in ("integer", "real"):
        if spec.minimum is None or spec.maximum is None:
            return None
        answer = number_regex(spec)
    elif spec.kind == "regex" and spec.pattern:
        answer = "(?:" + _strip_anchors(spec.pattern) + ")"
    else:
        return None
    if spec.answer_marker is not None:
        n = free_chars(spec, max_tokens)
        free = r"[\s\S]{0," + str(n) + "}" if n else ""
        answer = free + escape_regex(spec.answer_marker) + " ?" + answer
    return llguidance.LLMatcher.grammar_from_regex(answer)


class GrammarTokenizer:
    """llguidance's view of a model's vocabulary, built once per loaded model (about 0.5 s)."""

    def __init__(self, tokenizer: Any, vocab_size: int, eos_ids: Sequence[int]) -> None:
        self.vocab_size = vocab_size
        self.lltok = llguidance.hf.from_tokenizer(tokenizer, n_vocab=vocab_size,
                                                  eos_token=list(eos_ids) or None)

    def matcher(self, grammar: str) -> llguidance.LLMatcher | None:
        """A fresh matcher for one reply, or None when llguidance cannot read the grammar."""
        m = llguidance.LLMatcher(self.lltok, grammar, log_level=0)
        return None if m.is_error() else m


class GrammarMask(LogitsProcessor):
    """Masks each constrained row's scores to the tokens its grammar allows next.

    Runs before the row sampler, so greedy and sampled rows alike pick only allowed tokens.
    A row's matcher consumes the token generated at the previous step; a row that ended
    (its end-of-reply token, or the padding generate writes after it) is left alone.
    """

    def __init__(self, *, prompt_width: int, matchers: list[llguidance.LLMatcher | None],
                 eos_ids: Sequence[int], vocab_size: int) -> None:
        self.prompt_width = prompt_width
        self.matchers = matchers
        self.rows = [i for i, m in enumerate(matchers) if m is not None]
        self.eos = set(eos_ids)
        self.vocab_size = vocab_size
        self.done = [m is None for m in matchers]

    def __call__(self, input_ids: torch.LongTensor, scores: torch.Tensor) -> torch.Tensor:
        step = input_ids.shape[1] - self.prompt_width
        last = input_ids[:, -1].tolist() if step > 0 else None
        width = scores.shape[-1]
        masked: list[int] = []
        masks: list[np.ndarray] = []
        for i in self.rows:
            if self.done[i]:
                continue
            m = self.matchers[i]
            assert m is not None
            if last is not None:
                token = last[i]
                if token in self.eos or not m.consume_token(token):
                    self.done[i] = True
                    continue
            # A matcher at the grammar's end (is_stopped) allows only the end of the reply.
            bits = np.frombuffer(m.compute_bitmask(), dtype=np.uint8)
            allowed = np.unpackbits(bits, bitorder="little")[: min(width, self.vocab_size)].astype(bool)
            if allowed.all() and allowed.shape[0] == width:
                continue  # free text allows every token: nothing to mask
            if allowed.shape[0] < width:  # logits past the grammar's vocabulary are never allowed
                allowed = np.pad(allowed, (0, width - allowed.shape[0]))
            masked.append(i)
            masks.append(allowed)
        if masked:
            rows = torch.tensor(masked, device=scores.device)
            keep = torch.from_numpy(np.stack(masks)).to(scores.device)
            scores[rows] = scores[rows].masked_fill(~keep, -math.inf)
        return scores
