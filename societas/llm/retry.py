"""Retries with exponential backoff around any ChatModel, so no backend carries its own loop.

Only TransientModelError is retried; any other error passes through at once.
The jitter comes from a generator seeded by the request's cache key, so a
rerun waits alike; the waits never influence what the simulation records.

A circuit breaker spans every request of one model: once requests have kept
failing for `breaker_window_s` with no success in between, every request
fails at once, so a run against an endpoint that went down stops in seconds
instead of each of its requests backing off for minutes.
"""

from __future__ import annotations

import asyncio
import random
import time

from societas.llm.base import ChatModel, ChatRequest, ChatResult, ModelError, TransientModelError, end_conversation

_ERROR_CHARS = 200


def short_error(exc: BaseException) -> str:
    """A one-line description of an error for ChatResult.errors and logs."""
    text = " ".join(str(exc).split()) or type(exc).__name__
    return text if len(text) <= _ERROR_CHARS else text[: _ERROR_CHARS - 3] + "..."


# The probe a run sends each model first: a system and a user message, as every request has.
PROBE = ChatRequest(messages=({"role": "system", "content": "This is a connection check."},
                              {"role": "user", "content": "Reply with the word OK."}), max_tokens=1)


class RetryingModel:
    """Retry `inner` on transient failures: full-jitter exponential backoff, honouring Retry-After.

    Attempt k (from 0) waits uniform(0, min(backoff_max_s, backoff_base_s * 2**k));
    a server's Retry-After raises that wait to at least its value, itself capped
    at 2 * backoff_max_s. After `max_retries` retries a ModelError carries the
    last error. A success reports every attempt and the errors met on the way.
    """

    def __init__(
        self,
        inner: ChatModel,
        *,
        max_retries: int = 6,
        backoff_base_s: float = 0.5,
        backoff_max_s: float = 30.0,
        breaker_failures: int = 8,
        breaker_window_s: float = 15.0,
    ) -> None:
        if max_retries < 0:
            raise ValueError(f"RetryingModel max_retries must be >= 0, got {max_retries}")
        if backoff_base_s < 0 or backoff_max_s < 0:
            raise ValueError("RetryingModel backoff_base_s and backoff_max_s must be >= 0")
        self.inner = inner
        self.name = inner.name
        self.max_retries = max_retries
        self.backoff_base_s = backoff_base_s
        self.backoff_max_s = backoff_max_s
        self.breaker_failures = breaker_failures
        self.breaker_window_s = breaker_window_s
        self._failing_since: float | None = None  # first failure since the last success
        self._failures = 0
        self._open: str | None = None  # the breaker's message once it has opened

    def __repr__(self) -> str:
        return f"RetryingModel({self.inner!r}, max_retries={self.max_retries})"

    def delay(self, attempt: int, rng: random.Random, retry_after: float | None) -> float:
        """Seconds to wait after failed attempt `attempt` (0-based)."""
        cap = min(self.backoff_max_s, self.backoff_base_s * 2.0**attempt)
        wait = rng.uniform(0.0, cap)
        if retry_after is not None:
            wait = max(wait, min(retry_after, 2.0 * self.backoff_max_s))
        return wait

    def _failed(self, error: str) -> None:
        """Count a failed attempt; open the breaker when failures have filled the window with no success."""
        now = time.monotonic()
        if self._failing_since is None:
            self._failing_since = now
        self._failures += 1
        span = now - self._failing_since
        if self._open is None and self._failures >= self.breaker_failures and span >= self.breaker_window_s:
            self._open = (f"{self.name}: {self._failures} failed requests over {span:.0f} s with no success; "
                          f"last error: {error}")

    async def complete(self, request: ChatRequest) -> ChatResult:
        errors: list[str] = []
        rng: random.Random | None = None
        attempt = 0
        while True:
            if self._open is not None:
                raise ModelError(self._open)
            try:
                result = await self.inner.complete(request)
            except TransientModelError as exc:
                errors.append(short_error(exc))
                self._failed(errors[-1])
                if self._open is not None:
                    raise ModelError(self._open) from None
                if attempt >= self.max_retries:
                    raise ModelError(
                        f"{self.name}: gave up after {attempt + 1} attempts; last error: {errors[-1]}"
                    ) from None
                if rng is None:
                    rng = random.Random(request.key(self.name))
                await asyncio.sleep(self.delay(attempt, rng, exc.retry_after))
                attempt += 1
                continue
            self._failing_since, self._failures = None, 0
            result.attempts = attempt + result.attempts
            result.errors = (*errors, *result.errors)
            return result

    async def probe(self, *, retries: int = 2) -> None:
        """One tiny request, past any cache, with a short retry budget: a dead or misnamed endpoint
        raises ModelError in seconds, before a run writes anything."""
        quick = RetryingModel(self.inner, max_retries=retries, backoff_base_s=min(self.backoff_base_s, 0.5),
                              backoff_max_s=min(self.backoff_max_s, 2.0))
        await quick.complete(PROBE)

    def end_conversation(self, conversation: str) -> None:
        end_conversation(self.inner, conversation)

    async def aclose(self) -> None:
        await self.inner.aclose()
