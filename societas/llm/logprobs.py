"""Options' log-probabilities read off an OpenAI-compatible reply's token logprobs (vLLM, llama.cpp).

Asked with `logprobs: true, top_logprobs: K` under a choice constraint, the
reply is one option as the model writes it ("Option F" after a prompt ending in
"A: Option"). The options share their first characters ("Option "); at the
first token past them the engine lists its K likeliest tokens with their
log-probabilities (vLLM by default before any processing: the model's own; the
constraint only picked which one was written). Each listed token that starts
exactly one option's text gives that option its probability; an option not
listed gets -inf (less likely than the K-th token); a listed token that
stays within the shared part (a lone space) decides nothing and is left out.
When the reply does not have the expected form, or one listed token starts
several options (so the split between them is unknown), there is no
distribution to give: None.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any

from societas.types import ActionSpec

TOP_LOGPROBS = 20
"""Alternatives asked per token: OpenAI's maximum and vLLM's default limit (`--max-logprobs`)."""


def option_texts(spec: ActionSpec, lead: str = "") -> tuple[str, ...]:
    """Each option as a constrained reply writes it: after the question's `lead` ("Option F"), else bare."""
    return tuple(f"{lead} {c}" if lead else c for c in spec.choices)


def _common_prefix(texts: Sequence[str]) -> str:
    first, last = min(texts), max(texts)
    n = 0
    while n < min(len(first), len(last)) and first[n] == last[n]:
        n += 1
    return first[:n]


def _matches(candidate: str, text: str) -> bool:
    return text.startswith(candidate) or (candidate.startswith(text) and not candidate[len(text):].strip())


def option_logprobs(tokens: Sequence[Mapping[str, Any]], texts: Sequence[str]) -> tuple[float, ...] | None:
    """Log-probability of each option text from a reply's `logprobs.content` (see the module docstring)."""
    if len(texts) < 2:
        return (0.0,) * len(texts) if texts else None
    shared = _common_prefix(texts)
    written = ""
    for token in tokens:
        piece = token.get("token")
        if not isinstance(piece, str):
            return None
        if len(written) + len(piece) <= len(shared):
            written += piece
            if not shared.startswith(written):
                return None
            continue
        if not shared.startswith(written):
            return None
        found: list[list[float]] = [[] for _ in texts]
        listed = token.get("top_logprobs") or [token]
        for alt in listed:
            text, lp = alt.get("token"), alt.get("logprob")
            if not isinstance(text, str) or not isinstance(lp, (int, float)):
                continue
            if len(written) + len(text) <= len(shared):
                continue  # stays within what the options share (" " after "Option"): it decides nothing
            which = [i for i, t in enumerate(texts) if _matches(written + text, t)]
            if len(which) > 1:
                return None  # one token opens several options: their split is not in this reply
            if which:
                found[which[0]].append(float(lp))
        if not any(found):
            return None
        # One token per option keeps its number exactly; several (" F", " F.") add up.
        return tuple(-math.inf if not lps else lps[0] if len(lps) == 1 else math.log(sum(map(math.exp, lps)))
                     for lps in found)
    return None
