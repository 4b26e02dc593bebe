"""RetryingModel: backoff on transient failures, Retry-After, giving up, attempts recorded."""

from __future__ import annotations

import random
import time
from collections.abc import Callable

import pytest

from societas.llm.base import ChatRequest, ChatResult, ModelError, TransientModelError
from societas.llm.openai_backend import OpenAIChatModel
from societas.llm.retry import RetryingModel
from societas.llm.testing import FakeOpenAIServer, FaultConfig

Serve = Callable[..., FakeOpenAIServer]
ClientFor = Callable[..., OpenAIChatModel]
REQUEST = ChatRequest(messages=({"role": "user", "content": "Option J or Option F?"},))


class Flaky:
    """Fails with the given errors in turn, then answers."""

    def __init__(self, errors: list[Exception]) -> None:
        self.name = "flaky"
        self.errors = list(errors)
        self.calls = 0
        self.closed = False

    async def complete(self, request: ChatRequest) -> ChatResult:
        self.calls += 1
        if self.errors:
            raise self.errors.pop(0)
        return ChatResult(text="J", model=self.name)

    async def aclose(self) -> None:
        self.closed = True


async def test_retries_transient_errors_and_reports_them() -> None:
    inner = Flaky([TransientModelError("503 busy"), TransientModelError("timeout")])
    model = RetryingModel(inner, max_retries=3, backoff_base_s=0.001, backoff_max_s=0.01)
    result = await model.complete(REQUEST)
    assert result.text == "J" and result.attempts == 3 and inner.calls == 3
    assert result.errors == ("503 busy", "timeout")
    assert model.name == "flaky"
    await model.aclose()
    assert inner.closed


async def test_gives_up_with_the_last_error() -> None:
    inner = Flaky([TransientModelError(f"failure {i}") for i in range(5)])
    model = RetryingModel(inner, max_retries=2, backoff_base_s=0.001, backoff_max_s=0.01)
    with pytest.raises(ModelError, match=r"after 3 attempts.*failure 2") as info:
        await model.complete(REQUEST)
    assert not isinstance(info.value, TransientModelError) and inner.calls == 3


async def test_permanent_errors_are_not_retried() -> None:
    inner = Flaky([ModelError("400 bad request")])
    with pytest.raises(ModelError, match="400"):
        await RetryingModel(inner, max_retries=5, backoff_base_s=0.001).complete(REQUEST)
    assert inner.calls == 1


async def test_honours_retry_after() -> None:
    inner = Flaky([TransientModelError("429", retry_after=0.2)])
    model = RetryingModel(inner, max_retries=1, backoff_base_s=0.0, backoff_max_s=1.0)
    t0 = time.perf_counter()
    assert (await model.complete(REQUEST)).attempts == 2
    assert time.perf_counter() - t0 >= 0.2


def test_backoff_is_full_jitter_capped_and_reproducible() -> None:
    model = RetryingModel(Flaky([]), max_retries=9, backoff_base_s=0.5, backoff_max_s=4.0)
    a = [model.delay(k, random.Random("key"), None) for k in range(8)]
    assert a == [model.delay(k, random.Random("key"), None) for k in range(8)]
    assert all(0.0 <= d <= min(4.0, 0.5 * 2**k) for k, d in enumerate(a))
    assert model.delay(0, random.Random(1), retry_after=3.0) >= 3.0
    assert model.delay(0, random.Random(1), retry_after=100.0) <= 8.0  # capped at 2 * backoff_max_s


def test_rejects_negative_settings() -> None:
    with pytest.raises(ValueError, match="max_retries"):
        RetryingModel(Flaky([]), max_retries=-1)


async def test_rate_limit_from_the_server_is_retried(serve: Serve, client_for: ClientFor) -> None:
    srv = serve(faults=FaultConfig(script=("rate_limit",), retry_after_s=0.3))
    model = RetryingModel(client_for(srv), max_retries=2, backoff_base_s=0.001, backoff_max_s=1.0)
    t0 = time.perf_counter()
    result = await model.complete(REQUEST)
    assert time.perf_counter() - t0 >= 0.3
    assert result.text == "Option J" and result.attempts == 2 and "429" in result.errors[0]
    assert srv.stats.by_kind == {"rate_limit": 1, "ok": 1}


async def test_server_errors_hangs_and_broken_json_are_retried(serve: Serve, client_for: ClientFor) -> None:
    srv = serve(faults=FaultConfig(script=("server_error", "hang", "malformed")))
    model = RetryingModel(client_for(srv, timeout_s=0.3), max_retries=3, backoff_base_s=0.001)
    result = await model.complete(REQUEST)
    assert result.text == "Option J" and result.attempts == 4 and len(result.errors) == 3
    assert srv.stats.by_kind == {"server_error": 1, "hang": 1, "malformed": 1, "ok": 1}


async def test_gives_up_against_a_failing_server(serve: Serve, client_for: ClientFor) -> None:
    srv = serve(faults=FaultConfig(server_error=1.0))
    model = RetryingModel(client_for(srv), max_retries=2, backoff_base_s=0.001)
    with pytest.raises(ModelError, match="gave up after 3 attempts"):
        await model.complete(REQUEST)
    assert srv.stats.total == 3
