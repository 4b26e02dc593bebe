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


def test_a_noisy_server_without_a_knee_is_not_taken_for_a_queueing_one() -> None:
    # One reply in ten three times slower (a shared machine): no more requests would change that.
    import random

    clock = [0.0]
    rng = random.Random(0)
    limit = AdaptiveLimit(minimum=4, maximum=256, clock=lambda: clock[0])
    for _ in range(300):
        n = 0
        while limit.try_acquire():
            n += 1
        latencies = [0.05 * (3.0 if rng.random() < 0.1 else 1.0) for _ in range(n)]
        clock[0] += max(latencies)
        for latency in latencies:
            limit.release(latency)
    assert limit.limit == 256 and limit.cuts == 0


def test_the_client_loops_own_lag_is_not_taken_for_queueing() -> None:
    clock = [0.0]
    limit = AdaptiveLimit(minimum=4, maximum=64, initial=32, clock=lambda: clock[0])
    for _ in range(32):
        limit.try_acquire()
    limit.release(0.05)  # the floor
    for _ in range(31):
        clock[0] += 0.01
        limit.release(0.3, lag=0.25)  # the reply waited 250 ms for a busy loop
    assert limit.cuts == 0
    for _ in range(32):
        limit.try_acquire()
    for _ in range(32):
        clock[0] += 0.01
        limit.release(0.3)  # the same latency with no lag: the server queues
    assert limit.cuts > 0


def test_loop_lag_sees_a_blocked_loop() -> None:
    import time

    from societas.llm.limiter import LoopLag

    async def main() -> tuple[float, float]:
        busy = [True]
        lag = LoopLag(lambda: busy[0], interval_s=0.005)
        lag.start()
        await asyncio.sleep(0.03)
        quiet = lag.lag
        time.sleep(0.08)  # the loop is busy elsewhere; the tick due meanwhile runs after it
        await asyncio.sleep(0)
        await asyncio.sleep(0)  # resumed after that tick
        blocked = lag.lag
        busy[0] = False
        await asyncio.sleep(0.02)
        return quiet, blocked

    quiet, blocked = asyncio.run(main())
    assert blocked >= 0.07  # the 80 ms block less the 5 ms interval, however loaded the machine
    assert quiet >= 0.0


def test_the_connection_check_does_not_set_the_latency_floor() -> None:
    # The fake server answers the check at once and everything else after 50 ms, as a real
    # server answers a one-token question faster than a study's requests.
    with FakeOpenAIServer(latency=0.05) as srv:
        model = make_model(f"openai:fake@{srv.base_url}", ModelOptions(structured_outputs="none"))

        async def main() -> float:
            await model.probe()  # type: ignore[attr-defined]
            await asyncio.gather(*(model.complete(ChatRequest(messages=({"role": "user", "content": f"q{i}"},)))
                                   for i in range(8)))
            floor = endpoint_gate(srv.base_url, 512).limit.floor()
            await model.aclose()
            return floor

        floor = asyncio.run(main())
    assert floor >= 0.04, floor


def test_a_waiter_cancelled_as_a_slot_frees_leaves_with_its_cancellation() -> None:
    from societas.llm.limiter import AdaptiveGate

    async def main() -> tuple[str, int]:
        gate = AdaptiveGate(AdaptiveLimit(minimum=1, maximum=1, adaptive=False))
        await gate.acquire()
        waiter = asyncio.ensure_future(gate.acquire())
        await asyncio.sleep(0)  # it waits for the slot
        waiter.cancel()
        gate.release(0.01)  # before the waiter runs again: the release drops its cancelled place
        try:
            await waiter
        except asyncio.CancelledError:
            outcome = "cancelled"
        except Exception as exc:
            outcome = type(exc).__name__
        return outcome, gate.limit.in_flight

    assert asyncio.run(main()) == ("cancelled", 0)
