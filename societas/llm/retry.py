"""Retries with exponential backoff around any ChatModel, so no backend carries its own loop.

Only TransientModelError is retried; any other error passes through at once.
The jitter comes from a generator seeded by the request's cache key, so a
rerun waits alike; the waits never influence what the simulation records.
"""

from __future__ import annotations

import asyncio
import random

from societas.llm.base import ChatModel, ChatRequest, ChatResult, ModelError, TransientModelError

_ERROR_CHARS = 200


def short_error(exc: BaseException) -> str:
    """A one-line description of an error for ChatResult.errors and logs."""
    text = " ".join(str(exc).split()) or type(exc).__name__
    return text if len(text) <= _ERROR_CHARS else text[: _ERROR_CHARS - 3] + "..."


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

    def __repr__(self) -> str:
        return f"RetryingModel({self.inner!r}, max_retries={self.max_retries})"

    def delay(self, attempt: int, rng: random.Random, retry_after: float | None) -> float:
        """Seconds to wait after failed attempt `attempt` (0-based)."""
        cap = min(self.backoff_max_s, self.backoff_base_s * 2.0**attempt)
        wait = rng.uniform(0.0, cap)
        if retry_after is not None:
            wait = max(wait, min(retry_after, 2.0 * self.backoff_max_s))
        return wait

    async def complete(self, request: ChatRequest) -> ChatResult:
        errors: list[str] = []
        rng: random.Random | None = None
        attempt = 0
        while True:
            try:
                result = await self.inner.complete(request)
            except TransientModelError as exc:
                errors.append(short_error(exc))
                if attempt >= self.max_retries:
                    raise ModelError(
                        f"{self.name}: gave up after {attempt + 1} attempts; last error: {errors[-1]}"
                    ) from None
                if rng is None:
                    rng = random.Random(request.key(self.name))
                await asyncio.sleep(self.delay(attempt, rng, exc.retry_after))
                attempt += 1
                continue
            result.attempts = attempt + result.attempts
            result.errors = (*errors, *result.errors)
            return result

    async def aclose(self) -> None:
        await self.inner.aclose()
