"""Fixtures for the model layer: fake OpenAI-compatible servers and clients pointed at them."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable, Iterator
from typing import Any

import pytest

from societas.llm.openai_backend import OpenAIChatModel
from societas.llm.specs import ModelOptions, ModelSpec
from societas.llm.testing import FakeOpenAIServer

KEY_ENV = "SOCIETAS_TEST_API_KEY"
SECRET_KEY = "sk-test-Zq8xSECRETw4Lm2Vn7Rb"


@pytest.fixture
def serve() -> Iterator[Callable[..., FakeOpenAIServer]]:
    """Start fake servers in background threads; all of them stop after the test."""
    servers: list[FakeOpenAIServer] = []

    def start(*args: Any, **kwargs: Any) -> FakeOpenAIServer:
        srv = FakeOpenAIServer(*args, **kwargs)
        srv.__enter__()
        servers.append(srv)
        return srv

    yield start
    for srv in reversed(servers):
        srv.__exit__(None, None, None)


@pytest.fixture
def api_key(monkeypatch: pytest.MonkeyPatch) -> str:
    """A secret-looking API key in a test-only environment variable."""
    monkeypatch.setenv(KEY_ENV, SECRET_KEY)
    return SECRET_KEY


@pytest.fixture
async def client_for() -> AsyncIterator[Callable[..., OpenAIChatModel]]:
    """Build OpenAIChatModels for fake servers (short timeout, key from KEY_ENV); closed after the test."""
    models: list[OpenAIChatModel] = []

    def make(srv: FakeOpenAIServer, model: str = "fake", **options: Any) -> OpenAIChatModel:
        options.setdefault("timeout_s", 5.0)
        options.setdefault("api_key_env", KEY_ENV)
        m = OpenAIChatModel(ModelSpec(provider="openai", name=model, base_url=srv.base_url),
                            ModelOptions(**options))
        models.append(m)
        return m

    yield make
    for m in models:
        await m.aclose()
