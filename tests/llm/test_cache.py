"""ResponseCache and CachedModel: hits, misses, replicates, other processes, no secrets on disk."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest

from societas.llm.base import ChatRequest, ChatResult, ModelError
from societas.llm.cache import CachedModel, ResponseCache
from societas.llm.fake import FakeModel, first_choice
from societas.llm.openai_backend import OpenAIChatModel
from societas.llm.retry import RetryingModel
from societas.llm.testing import FakeOpenAIServer

Serve = Callable[..., FakeOpenAIServer]
ClientFor = Callable[..., OpenAIChatModel]


def ask(temperature: float = 0.0, replicate: int = 0, prompt: str = "Option J or Option F?") -> ChatRequest:
    return ChatRequest(messages=({"role": "user", "content": prompt},), temperature=temperature,
                       replicate=replicate)


async def test_miss_then_hit(tmp_path: Path) -> None:
    inner = FakeModel("fake:first", first_choice)
    model = CachedModel(inner, ResponseCache(tmp_path / "cache.sqlite"))
    miss = await model.complete(ask())
    hit = await model.complete(ask())
    assert not miss.cache_hit and hit.cache_hit and inner.calls == 1
    assert (hit.text, hit.model, hit.prompt_tokens, hit.completion_tokens) == (
        miss.text, miss.model, miss.prompt_tokens, miss.completion_tokens)
    assert hit.latency_s >= 0.0 and model.name == "fake:first"
    await model.complete(ask(prompt="Option C or Option D?"))
    assert inner.calls == 2 and len(model.cache) == 2
    await model.aclose()


@pytest.mark.parametrize(("temperature", "calls"), [(0.0, 1), (0.7, 3)])
async def test_replicates_count_only_when_sampling(tmp_path: Path, temperature: float, calls: int) -> None:
    inner = FakeModel("fake:first", first_choice)
    model = CachedModel(inner, ResponseCache(tmp_path / "cache.sqlite"))
    for replicate in (0, 1, 2, 1):
        await model.complete(ask(temperature, replicate))
    assert inner.calls == calls


class Failing:
    name = "failing"

    def __init__(self) -> None:
        self.calls = 0

    async def complete(self, request: ChatRequest) -> ChatResult:
        self.calls += 1
        raise ModelError("gave up")

    async def aclose(self) -> None:
        return None


async def test_failures_are_not_cached(tmp_path: Path) -> None:
    inner = Failing()
    model = CachedModel(inner, ResponseCache(tmp_path / "cache.sqlite"))
    for _ in range(2):
        with pytest.raises(ModelError):
            await model.complete(ask())
    assert inner.calls == 2 and len(model.cache) == 0


def test_first_reply_stays(tmp_path: Path) -> None:
    cache = ResponseCache(tmp_path / "cache.sqlite")
    cache.put("k", ChatResult(text="first", model="m", prompt_tokens=3, completion_tokens=1))
    cache.put("k", ChatResult(text="second", model="m"))
    got = cache.get("k")
    assert got is not None and got.text == "first" and got.cache_hit and got.prompt_tokens == 3
    assert cache.get("missing") is None and "k" in cache


def test_another_process_reads_and_writes_the_cache(tmp_path: Path) -> None:
    path = tmp_path / "nested" / "cache.sqlite"
    cache = ResponseCache(path)
    key = ask().key("fake:first")
    cache.put(key, ChatResult(text="Option J", model="fake:first", prompt_tokens=5, completion_tokens=2))
    script = (
        "import sys\n"
        "from societas.llm.base import ChatResult\n"
        "from societas.llm.cache import ResponseCache\n"
        "c = ResponseCache(sys.argv[1])\n"
        "hit = c.get(sys.argv[2])\n"
        "c.put('from-child', ChatResult(text='child', model='m'))\n"
        "print(hit.text, hit.prompt_tokens, hit.completion_tokens)\n"
    )
    out = subprocess.run([sys.executable, "-c", script, str(path), key], capture_output=True, text=True,
                         timeout=60, check=True)
    assert out.stdout.split() == ["Option", "J", "5", "2"]
    child = cache.get("from-child")  # still open here: the child's write is visible
    assert child is not None and child.text == "child"


async def test_no_secret_reaches_the_cache_files(serve: Serve, client_for: ClientFor, api_key: str,
                                                 tmp_path: Path) -> None:
    good = serve(api_key=api_key)
    bad = serve(api_key="something-else")
    cache = ResponseCache(tmp_path / "cache.sqlite")
    model = CachedModel(RetryingModel(client_for(good), max_retries=1, backoff_base_s=0.001), cache)
    result = await model.complete(ask())
    assert result.text == "Option J" and api_key not in repr(result)
    failing = CachedModel(RetryingModel(client_for(bad), max_retries=1, backoff_base_s=0.001), cache)
    with pytest.raises(ModelError) as info:
        await failing.complete(ask(prompt="another prompt"))
    assert api_key not in str(info.value)
    files = list(tmp_path.glob("cache.sqlite*"))
    assert files and all(api_key.encode() not in f.read_bytes() for f in files)


def test_replies_put_together_are_written_together_after_the_loops_pass(tmp_path: Path) -> None:
    import asyncio
    import sqlite3

    path = tmp_path / "cache.sqlite"
    cache = ResponseCache(path)

    def stored() -> int:
        other = sqlite3.connect(path)
        try:
            return int(other.execute("SELECT COUNT(*) FROM responses").fetchone()[0])
        finally:
            other.close()

    async def main() -> tuple[int, str | None, int]:
        for i in range(5):
            cache.put_soon(f"k{i}", ChatResult(text=str(i), model="m", prompt_tokens=i))
        before = stored()
        hit = cache.get("k3")
        await asyncio.sleep(0)  # the pass that put them ends; the next one writes them
        await asyncio.sleep(0)
        return before, None if hit is None else hit.text, stored()

    assert asyncio.run(main()) == (0, "3", 5)
    cache.put_soon("late", ChatResult(text="x", model="m"))  # outside a loop: at once
    assert "late" in cache and len(cache) == 6
    cache.close()


_MESSAGES = ({"role": "system", "content": "Rules é \"q\" \n\t \u2028 \x01 ✓"},
             {"role": "user", "content": "Which? J or F"})


def test_cache_keys_are_the_bytes_they_always_were() -> None:
    # Keys of replies cached by earlier versions: a changed key would replay nothing.
    from societas.types import ActionSpec

    sampled = ChatRequest(messages=_MESSAGES, temperature=0.7, replicate=5, max_tokens=16, top_p=0.9, seed=3,
                          constraint=ActionSpec.choice(["J", "F"]), extra={"b": 1, "a": [1.5]})
    assert sampled.key("openai:x@http://h/v1") == "f91f4d736394049950fb9cc3bdf9376311a461f9f8c77123e97f73d00461e9f4"
    plain = ChatRequest(messages=_MESSAGES)
    assert plain.key("m") == "aa1ea8fe01e80396a46533f0537e5f311e766538632a4ed9044d5b92323d3622"


@pytest.mark.parametrize("request_", [
    ChatRequest(messages=_MESSAGES, temperature=1, top_p=float("nan")),
    ChatRequest(messages=_MESSAGES, temperature=True, max_tokens=2**70),
    ChatRequest(messages=({"role": "user", "content": "x", "name": "n"}, {"content": "y", "role": "user"})),
    ChatRequest(messages=_MESSAGES, constraint=None, seed=-1, extra={"z": {"y": None}}),
    ChatRequest(messages=_MESSAGES, policy="reasoning=two_turn", option_logprobs=True),
])
def test_canonical_json_is_the_sorted_compact_dump(request_: ChatRequest) -> None:
    import json

    from societas.llm.base import message_json
    from societas.types import ActionSpec

    expect = json.dumps(request_.canonical_dict("m"), sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    assert request_.canonical("m") == expect
    for m in request_.messages:
        assert message_json(m) == json.dumps(m, ensure_ascii=False)
    schema = ChatRequest(messages=_MESSAGES, constraint=ActionSpec(kind="json", schema={"type": "object"}))
    assert schema.canonical("m") == json.dumps(schema.canonical_dict("m"), sort_keys=True, separators=(",", ":"),
                                               ensure_ascii=False)
