"""The feedback loop's constants (seats, graphs, default questions, the answer format) and parameter checks."""

from __future__ import annotations

import math
import re
from collections.abc import Sequence
from typing import Any

from societas.environments.params import check_graph_params
from societas.environments.params import check_real as _real
from societas.environments.params import fmt_number as _num

GAME = "feedback-loop"
"""The value of data["game"] in every decision."""
AI = "ai"
GRAPHS: dict[str, dict[str, Any]] = {
    "none": {},
    "complete": {},
    "ring": {},
    "erdos_renyi": {"p": 0.1},
    "watts_strogatz": {"k": 4, "p": 0.1},
}
QUESTIONS = (
    "How much should cities favour public transport over private cars?",
    "How strictly should governments regulate artificial intelligence?",
    "How much of the school day should go to practical skills rather than academic subjects?",
    "How far should working from home replace working in an office?",
    "How much should a country rely on nuclear power for its electricity?",
    "How much should social media platforms moderate what their users post?",
    "How much should rich countries spend on foreign aid?",
    "How much should cities restrict short-term holiday rentals?",
)
"""Default questions, in topic order (more topics than these are "Question k")."""
MAX_STATEMENT = 300
"""Longest statement kept (longer ones are cut)."""
NUMBER = r"[-+]?\d+(?:\.\d+)?(?:[eE][-+]?\d+)?"
STATEMENT_PATTERN = NUMBER + r" *\| *[^\n|]+"
"""The answer with statements=True: "STANCE | one sentence" (after "Answer:")."""
ANSWER_MARKER = "Answer:"
STATEMENT_DESCRIPTION = ('your stance as a number, then "|", then one sentence on one line, '
                         'e.g. "Answer: 6.5 | The readings point slightly upwards."')
"""What a statement looks like, in the words a retry prompt shows the model."""

_SPACE = re.compile(r"\s+")


def _scale(scale: Any) -> tuple[float, float]:
    if isinstance(scale, str) or not isinstance(scale, Sequence) or len(scale) != 2:
        raise ValueError(f"scale must be [low, high], got {scale!r}")
    lo, hi = (_real("scale", x, -math.inf) for x in scale)
    if not lo < hi:
        raise ValueError(f"scale must be [low, high] with low < high, got {scale!r}")
    return (lo, hi)


def _questions(questions: Any, topics: int) -> tuple[str, ...]:
    if questions is None:
        return tuple(QUESTIONS[k] if k < len(QUESTIONS) else f"Question {k + 1}." for k in range(topics))
    if isinstance(questions, str) or not isinstance(questions, Sequence) or len(questions) != topics:
        raise ValueError(f"questions must be a list of {topics} question texts (one per topic), got {questions!r}")
    out = []
    for k, q in enumerate(questions):
        if not isinstance(q, str) or not q.strip():
            raise ValueError(f"questions[{k}] must be a non-empty string, got {q!r}")
        out.append(_SPACE.sub(" ", q).strip())
    return tuple(out)


def _truth(truth: Any, topics: int, scale: tuple[float, float]) -> tuple[float, ...]:
    values = [truth] * topics if not isinstance(truth, Sequence) or isinstance(truth, str) else list(truth)
    if len(values) != topics:
        raise ValueError(f"truth must be one number or one per topic ({topics}), got {truth!r}")
    out = tuple(_real("truth", v, -math.inf) for v in values)
    lo, hi = scale
    if any(not lo <= v <= hi for v in out):
        raise ValueError(f"truth must lie on the scale [{_num(lo)}, {_num(hi)}], got {truth!r}")
    return out


def _sigmas(sigma: Any, m: int, ai_sigma: Any) -> tuple[float, ...]:
    values = [sigma] * m if not isinstance(sigma, Sequence) or isinstance(sigma, str) else list(sigma)
    if len(values) != m:
        raise ValueError(f"sigma must be one number or one per human ({m}), got {sigma!r}")
    out = []
    for v in values:
        s = _real("sigma", v, 0.0)
        if s <= 0:
            raise ValueError(f"sigma must be > 0, got {v!r}")
        out.append(s)
    if ai_sigma is None:
        out.append(math.inf)
    else:
        s = _real("ai_sigma", ai_sigma, 0.0)
        if s <= 0:
            raise ValueError(f"ai_sigma must be > 0 (or null: no evidence), got {ai_sigma!r}")
        out.append(s)
    return tuple(out)


def _graph_params(kind: str, params: Any, m: int) -> dict[str, Any]:
    return check_graph_params(params, GRAPHS[kind], graph=f"graph {kind!r}", size=m, size_name="num_humans")
