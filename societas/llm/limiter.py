"""In-flight limits per endpoint that adapt to what the endpoint sustains.

A fixed number of requests in flight is wrong for nearly every server: it floods a
laptop's llama.cpp (each extra request only queues, and waits count against the
timeout) and starves a GPU's vLLM (which batches more the more it is sent).
`AdaptiveLimit` finds the number instead, AIMD on latency, as TCP Vegas and
Netflix's concurrency limiters do: while requests come back about as fast as
the fastest seen lately, the limit grows (doubling per round trip until the first
sign of overload, then by one per round trip); when the latency of the last
round trip (a moving average over about as many replies as the limit) climbs
past `tolerance` times that floor (requests queue in the server), or a request fails
transiently (429, 5xx, timeout), the limit shrinks by `backoff`, at most once per
round trip. Past the knee, where the server's throughput stops growing, latency
grows with every extra request, so the limit settles just past the knee. The
average, not each reply, is judged: on a shared machine single replies are
often slow for reasons that more or fewer requests would not change, and
cutting on each of them held the limit far below what the server sustained.

Latency is timed in the client, so it holds the client's own delays too: a
reply that came back while the event loop was busy with other work waits for
the loop before anyone sees it. A busy client (a thousand agents on one core)
would read that wait as the server queueing and cut the limit, starving a
server that had room. `LoopLag` measures the wait (how late a timer due every
few milliseconds runs) and the queueing test takes it off each latency; the
floor is kept from the raw latencies, so a generous correction can delay a cut
but never make every request look slow.

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
        self._floor = float("inf")       # lowest round-trip average in the current window
        self._floor_prev = float("inf")  # ... and in the window before it
        self._floor_since = clock()
        self._last_cut = float("-inf")
        self._average: float | None = None  # moving average of latency over about one round trip
        self._recent = 0.0  # ... and of latency less the loop's lag
        self.cuts = 0

    @property
    def limit(self) -> int:
        return int(self._limit)

    def floor(self) -> float:
        """The lowest round-trip average latency of the last one or two windows: what requests take unloaded.

        An average, not the luckiest single reply: on a shared machine replies vary for reasons
        that have nothing to do with how many are in flight, and the average is what gets judged.
        """
        return min(self._floor, self._floor_prev)

    def try_acquire(self) -> bool:
        if self.in_flight < self.limit:
            self.in_flight += 1
            if self.in_flight < self.limit:
                self._starved = False  # room to spare: more would not have been sent
            return True
        self._starved = True  # a request waited for the limit
        return False

    def release(self, latency: float | None, *, overloaded: bool = False, lag: float = 0.0) -> None:
        """One request finished after `latency` seconds (None: it failed without a time).

        `lag` is how long the client's event loop was late at the time, taken off
        `latency` before it is judged.
        """
        busy = self._starved or self.in_flight >= self.limit
        self.in_flight -= 1
        if not self.adaptive:
            return
        now = self._clock()
        if now - self._floor_since >= self.floor_window_s:
            # A fresh floor now and then, so a server that got slower for good is not taken
            # for a queueing one forever.
            self._floor_prev, self._floor, self._floor_since = self._floor, float("inf"), now
        queueing = False
        if latency is not None and not overloaded:
            # Averages over about one round trip (the limit's worth of replies): the raw one sets
            # the floor, the one less the loop's lag is judged against it.
            weight = 1.0 / max(1.0, self._limit)
            if self._average is None:
                self._average, self._recent = latency, latency - lag
            else:
                self._average += weight * (latency - self._average)
                self._recent += weight * (latency - lag - self._recent)
            self._floor = min(self._floor, self._average)
            queueing = self._recent > self.tolerance * self.floor()
        floor = self.floor()
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


class LoopLag:
    """How late the running event loop is: a timer due every `interval_s` notes how late it ran.

    It ticks only while `busy()` says requests are in flight, so an idle client costs nothing.
    """

    def __init__(self, busy: Callable[[], bool], *, interval_s: float = 0.005) -> None:
        self.interval_s = interval_s
        self.lag = 0.0  # lateness of the latest tick, in seconds
        self._busy = busy
        self._handle: asyncio.TimerHandle | None = None

    def start(self) -> None:
        """Tick from now on (no-op while ticking)."""
        if self._handle is None:
            loop = asyncio.get_running_loop()
            due = loop.time() + self.interval_s
            self._handle = loop.call_at(due, self._tick, loop, due)

    def _tick(self, loop: asyncio.AbstractEventLoop, due: float) -> None:
        now = loop.time()
        self.lag = max(0.0, now - due)
        if self._busy():
            self._handle = loop.call_at(now + self.interval_s, self._tick, loop, now + self.interval_s)
        else:
            self._handle, self.lag = None, 0.0


class AdaptiveGate:
    """An `AdaptiveLimit` as an asyncio gate: `await gate.acquire()`, then `gate.release(latency)`.

    Latencies are judged less the event loop's current lag (`LoopLag`).
    """

    def __init__(self, limit: AdaptiveLimit) -> None:
        self.limit = limit
        self._waiters: deque[asyncio.Future[None]] = deque()
        self.loop_lag = LoopLag(lambda: self.limit.in_flight > 0 or bool(self._waiters))

    async def acquire(self) -> None:
        if self.limit.adaptive:
            self.loop_lag.start()
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
            elif fut in self._waiters:  # a release meanwhile may have dropped it already
                self._waiters.remove(fut)
            raise

    def release(self, latency: float | None, *, overloaded: bool = False) -> None:
        self.limit.release(latency, overloaded=overloaded, lag=self.loop_lag.lag)
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
