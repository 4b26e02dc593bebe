"""A model's distribution over a choice's options, asked once per distinct prompt and shared.

Where a prompt depends only on a small state (the naming game's memory and
the order of the names, a 2x2 game's last moves), every agent in that state
would ask the model the same question. Under `sampling: distribution` the
model is asked once per distinct prompt for the log-probabilities of the
allowed answers (`ChatRequest.option_logprobs`); each agent then draws its own
answer from them with its own seeded generator, as Flint et al. (2025,
arXiv 2510.22422) did to reach populations of thousands,
so a population of a million costs one model call per distinct state.

`shared_distribution` keeps the distributions of a run in memory, per model
object, and lets every agent that asks for a prompt while its call is under
way wait for that one call. The response cache (when the run has one) keeps
them on disk as well, so a rerun or resume asks nothing.
"""

from __future__ import annotations

import asyncio
import bisect
import math
import weakref
from collections.abc import Hashable
from dataclasses import dataclass, field

from societas.llm.base import ChatModel, ChatRequest, ChatResult

MAX_REMEMBERED = 1_000_000
"""Distinct prompts kept per model; past that the memory starts afresh (the response cache still holds them)."""


@dataclass(slots=True)
class OptionDistribution:
    """The options' log-probabilities as the model gave them, and the call that gave them."""

    options: tuple[str, ...]
    logprobs: tuple[float, ...]
    result: ChatResult
    _cdf: dict[float, tuple[list[float], list[float]]] = field(default_factory=dict)

    def probabilities(self, temperature: float) -> list[float]:
        """softmax(logprobs / temperature) over the options; temperature 0 puts all mass on the likeliest."""
        return self._tables(temperature)[0]

    def draw(self, u: float, temperature: float) -> tuple[int, float]:
        """The option a uniform draw `u` in [0, 1) picks by inverse CDF, and its probability."""
        probs, cdf = self._tables(temperature)
        i = min(bisect.bisect_right(cdf, u * cdf[-1]), len(cdf) - 1)
        while probs[i] == 0.0:  # never an option of probability 0 (u at the very top, rounding)
            i -= 1
        return i, probs[i]

    def _tables(self, temperature: float) -> tuple[list[float], list[float]]:
        cached = self._cdf.get(temperature)
        if cached is not None:
            return cached
        lp = self.logprobs
        top = max(lp)
        if temperature <= 0:
            best = lp.index(top)  # the first of equals
            probs = [1.0 if i == best else 0.0 for i in range(len(lp))]
        else:
            weights = [math.exp((x - top) / temperature) if x != -math.inf else 0.0 for x in lp]
            total = sum(weights)
            probs = [w / total for w in weights]
        cdf, acc = [], 0.0
        for p in probs:
            acc += p
            cdf.append(acc)
        self._cdf[temperature] = (probs, cdf)
        return probs, cdf


@dataclass(slots=True)
class _Memo:
    known: dict[Hashable, OptionDistribution] = field(default_factory=dict)
    asking: dict[Hashable, asyncio.Task[OptionDistribution]] = field(default_factory=dict)


_MEMOS: weakref.WeakKeyDictionary[object, _Memo] = weakref.WeakKeyDictionary()


class NoDistribution(Exception):
    """The model's reply came without the options' log-probabilities (its backend cannot give them)."""


async def _ask(model: ChatModel, memo: _Memo, key: Hashable, request: ChatRequest) -> OptionDistribution:
    try:
        result = await model.complete(request)
        spec = request.constraint
        if result.option_logprobs is None or spec is None or len(result.option_logprobs) != len(spec.choices):
            raise NoDistribution(f"{model.name} gave no log-probabilities of the options")
        if len(memo.known) >= MAX_REMEMBERED:
            memo.known.clear()
        found = memo.known[key] = OptionDistribution(spec.choices, tuple(result.option_logprobs), result)
        return found
    finally:
        if memo.asking.get(key) is asyncio.current_task():
            del memo.asking[key]


def known_distribution(model: ChatModel, key: Hashable) -> OptionDistribution | None:
    """The distribution already given for `key` in this process, without asking (the usual case at scale)."""
    memo = _MEMOS.get(model)
    return None if memo is None else memo.known.get(key)


async def shared_distribution(model: ChatModel, key: Hashable, request: ChatRequest
                              ) -> tuple[OptionDistribution, bool]:
    """The distribution for `request` (a choice request with `option_logprobs`), and whether this
    caller's request was the one sent (False: it was known, or another caller's call gave it).

    `key` stands for the request (cheaper to hash than its canonical JSON): equal keys, equal requests.
    A failed call fails every caller waiting on it and is asked afresh by the next one; a caller
    cancelled while waiting leaves the call to the others.
    """
    memo = _MEMOS.get(model)
    if memo is None:
        memo = _MEMOS[model] = _Memo()
    known = memo.known.get(key)
    if known is not None:
        return known, False
    task = memo.asking.get(key)
    mine = task is None or task.get_loop() is not asyncio.get_running_loop()
    if mine:
        task = memo.asking[key] = asyncio.ensure_future(_ask(model, memo, key, request))
    return await asyncio.shield(task), mine
