"""The adaptive in-flight limit: its logic on a fake clock, and against a server with a knee."""

from __future__ import annotations

import asyncio

from societas.llm.base import ChatRequest
from societas.llm.limiter import AdaptiveLimit
from societas.llm.openai_backend import endpoint_gate
from societas.llm.specs import ModelOptions, make_model
from societas.llm.testing import FakeOpenAIServer


def _simulate(limit: AdaptiveLimit, clock: list[float], *, knee: int, base: float, rounds: int) -> list[int]:
    """A server with `knee` slots: a round trip fills the limit; latency grows with queueing past the knee."""
    seen = []
    for _ in range(rounds):
        n = 0
        while limit.try_acquire():
            n += 1
        latency = base * max(1.0, n / knee)
        clock[0] += latency
        for _ in range(n):
            limit.release(latency)
        seen.append(limit.limit)
    return seen


def test_limit_settles_near_the_knee() -> None:
    clock = [0.0]
    limit = AdaptiveLimit(minimum=2, maximum=1000, clock=lambda: clock[0])
    seen = _simulate(limit, clock, knee=40, base=0.05, rounds=400)
    tail = seen[-200:]
    assert limit.cuts > 0
    assert 40 * 0.7 <= min(tail) and max(tail) <= 40 * 2.1


def test_limit_grows_to_its_bound_when_nothing_queues() -> None:
    clock = [0.0]
    limit = AdaptiveLimit(minimum=1, maximum=64, clock=lambda: clock[0])
    _simulate(limit, clock, knee=10_000, base=0.05, rounds=50)
    assert limit.limit == 64 and limit.cuts == 0


def test_failures_back_off_to_the_minimum_and_fixed_does_not_move() -> None:
    clock = [0.0]
    limit = AdaptiveLimit(minimum=3, maximum=64, initial=64, clock=lambda: clock[0])
    for _ in range(30):
        assert limit.try_acquire()
        clock[0] += 1.0
        limit.release(None, overloaded=True)
    assert limit.limit == 3
    fixed = AdaptiveLimit(minimum=3, maximum=64, adaptive=False, clock=lambda: clock[0])
    assert fixed.limit == 64
    fixed.try_acquire()
    fixed.release(None, overloaded=True)
    assert fixed.limit == 64


def test_client_settles_near_a_server_knee() -> None:
    with FakeOpenAIServer(latency=0.02, capacity=16) as srv:
        model = make_model(f"openai:fake@{srv.base_url}",
                           ModelOptions(max_in_flight=400, min_in_flight=2, structured_outputs="none"))

        async def main() -> int:
            async def one() -> None:
                await model.complete(ChatRequest(messages=({"role": "user", "content": "hi"},)))
            await asyncio.gather(*(one() for _ in range(1500)))
            limit = endpoint_gate(srv.base_url, 400).limit
            await model.aclose()
            return limit.limit

        final = asyncio.run(main())
    assert 8 <= final <= 64, final
