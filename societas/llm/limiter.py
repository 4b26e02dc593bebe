"""In-flight limits per endpoint that adapt to what the endpoint sustains.

A fixed number of requests in flight is wrong for nearly every server: it floods a
laptop's llama.cpp (each extra request only queues, and waits count against the
timeout) and starves a GPU's vLLM (which batches more the more it is sent).
`AdaptiveLimit` finds the number instead, AIMD on latency, as TCP Vegas and
Netflix's concurrency limiters do: while requests come back about as fast as
the fastest ever seen, the limit grows (doubling per round trip until the first
sign of overload, then by one per round trip); when latency climbs past
`tolerance` times that floor (requests queue in the server), or a request fails
transiently (429, 5xx, timeout), the limit shrinks by `backoff`, at most once per
round trip. Past the knee, where the server's throughput stops growing, latency
grows with every extra request, so the limit settles just past the knee.

Only timing moves: which requests run, and what they answer, never depends on
the limit.
"""

from __future__ import annotations

import asyncio
import time
from collections import deque
from collections.abc import Callable

Clock = Callable[[], float]


class AdaptiveLimit:
    """How many requests may be in flight now, updated from each finished request.

    `minimum` and `maximum` bound the limit; `adaptive=False` fixes it at `maximum`.
    `clock` is injectable so the logic is testable without waiting.
    """

    def __init__(self, *, minimum: int = 1, maximum: int = 64, initial: int | None = None,
                 adaptive: bool = True, tolerance: float = 2.0, backoff: float = 0.75,
                 floor_window_s: float = 30.0, clock: Clock = time.monotonic) -> None:
        if not 1 <= minimum <= maximum:
            raise ValueError(f"in-flight bounds need 1 <= minimum <= maximum, got {minimum} and {maximum}")
        self.minimum, self.maximum, self.adaptive = minimum, maximum, adaptive
        self.tolerance, self.backoff, self.floor_window_s = tolerance, backoff, floor_window_s
        self._clock = clock
        start = maximum if not adaptive else (minimum if initial is None else initial)
        self._limit = float(min(maximum, max(minimum, start)))
        self.in_flight = 0
        self._starved = False
        self.slow_start = adaptive
        self._floor = float("inf")       # fastest latency in the current window
        self._floor_prev = float("inf")  # ... and in the window before it
        self._floor_since = clock()
        self._last_cut = float("-inf")
        self.cuts = 0

    @property
    def limit(self) -> int:
        return int(self._limit)

    def floor(self) -> float:
        """The fastest latency of the last one or two windows: what an unloaded request takes."""
        return min(self._floor, self._floor_prev)

    def try_acquire(self) -> bool:
        if self.in_flight < self.limit:
            self.in_flight += 1
            if self.in_flight < self.limit:
                self._starved = False  # room to spare: more would not have been sent
            return True
        self._starved = True  # a request waited for the limit
        return False

    def release(self, latency: float | None, *, overloaded: bool = False) -> None:
        """One request finished after `latency` seconds (None: it failed without a time)."""
        busy = self._starved or self.in_flight >= self.limit
        self.in_flight -= 1
        if not self.adaptive:
            return
        now = self._clock()
        if now - self._floor_since >= self.floor_window_s:
            # A fresh floor now and then, so a server that got slower for good is not taken
            # for a queueing one forever.
            self._floor_prev, self._floor, self._floor_since = self._floor, float("inf"), now
        if latency is not None and not overloaded:
            self._floor = min(self._floor, latency)
        floor = self.floor()
        queueing = latency is not None and latency > self.tolerance * floor
        if overloaded or queueing:
            # Once per round trip: the requests already in flight were sent at the old limit.
            if now - self._last_cut >= (floor if floor != float("inf") else 0.0):
                self._limit = max(float(self.minimum), self._limit * self.backoff)
                self._last_cut = now
                self.slow_start = False
                self.cuts += 1
        elif busy:
            # Only a limit that was reached says anything about whether more would help.
            step = 1.0 if self.slow_start else 1.0 / self._limit
            self._limit = min(float(self.maximum), self._limit + step)


class AdaptiveGate:
    """An `AdaptiveLimit` as an asyncio gate: `async with gate.slot() as slot`, then `slot.done(...)`."""

    def __init__(self, limit: AdaptiveLimit) -> None:
        self.limit = limit
        self._waiters: deque[asyncio.Future[None]] = deque()

    async def acquire(self) -> None:
        if not self._waiters and self.limit.try_acquire():
            return
        fut: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._waiters.append(fut)
        try:
            await fut
        except BaseException:
            if fut.done() and not fut.cancelled():
                self.limit.in_flight -= 1  # the slot came as it was cancelled: hand it on
                self._wake()
            else:
                self._waiters.remove(fut)
            raise

    def release(self, latency: float | None, *, overloaded: bool = False) -> None:
        self.limit.release(latency, overloaded=overloaded)
        self._wake()

    def _wake(self) -> None:
        while self._waiters and self.limit.try_acquire():
            fut = self._waiters.popleft()
            if fut.done():
                self.limit.in_flight -= 1
                continue
            fut.set_result(None)

    @property
    def waiting(self) -> int:
        return len(self._waiters)
