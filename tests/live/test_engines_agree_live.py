"""hf: and llama.cpp's server on the same GGUF at temperature 0: the same greedy reply."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from societas.llm.base import ChatRequest
from societas.llm.specs import make_model

pytestmark = pytest.mark.live

# Greedy decoding repeats "3. 3"; llama-cpp-python's server penalised repeated tokens by 1.1 unless
# a request said otherwise, and wrote "3. 4" (its default repeat_penalty; hf: has none).
COUNT = ChatRequest(messages=({"role": "user", "content": "Count from 1 to 20, separated by commas."},),
                    temperature=0.0, max_tokens=24)


async def _reply(spec: str, request: ChatRequest) -> str:
    model = make_model(spec)
    try:
        return (await model.complete(request)).text.strip()
    finally:
        await model.aclose()


def test_greedy_reply_is_the_same_on_both_engines(smollm2: Path) -> None:
    pytest.importorskip("llama_cpp")
    hf = asyncio.run(_reply(f"hf:{smollm2}", COUNT))
    llama = asyncio.run(_reply(f"llamacpp:{smollm2}", COUNT))
    assert "3. 3" in hf
    assert llama == hf
