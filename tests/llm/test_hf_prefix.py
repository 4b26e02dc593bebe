"""Prefix reuse in the in-process backend: exact, bounded, released, and still batched.

Each comparison runs the same conversations through two models built from the
same tiny random-weight checkpoint at float32, one with reuse off
(`hf_prefix_cache_mb=0`) and one with it on.
"""

from __future__ import annotations

import asyncio
from pathlib import Path

import numpy as np
import pytest

pytestmark = pytest.mark.hf
torch = pytest.importorskip("torch")
pytest.importorskip("transformers")

from societas.agents.llm_agent import LLMAgent, LLMAgentOptions  # noqa: E402
from societas.config import LLMConfig  # noqa: E402
from societas.environments.matrix_game import RepeatedMatrixGame  # noqa: E402
from societas.llm.base import ChatRequest  # noqa: E402
from societas.llm.hf import HFChatModel  # noqa: E402
from societas.llm.hf_prefix import PrefixStore, cache_argument, common_prefix  # noqa: E402
from societas.llm.specs import ModelOptions, ModelSpec, make_model  # noqa: E402
from societas.runners.local import RunContext, play_episode  # noqa: E402
from societas.societies.society import EpisodeSpec, Seat  # noqa: E402
from societas.types import Action, ActionSpec  # noqa: E402

try:
    from tests.llm.tiny_hf import build_tiny_model
except ImportError:  # tests/ is not a package: pytest put this directory on sys.path
    from tiny_hf import build_tiny_model  # type: ignore[no-redef]

SYSTEM = {"role": "system", "content": "you play a repeated game with another player each round choose Option J or F"}
LETTERS = ActionSpec.choice(["J", "F"])
WORDS = ActionSpec.choice(["cooperate", "defect", "keep"])


@pytest.fixture(scope="module")
def tiny_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    # Room for the matrix game's prompts, which this byte-level tokenizer makes long.
    return build_tiny_model(tmp_path_factory.mktemp("tiny-hf-prefix"), max_positions=2048)


def make(path: Path, mb: int, **options: object) -> HFChatModel:
    opts = ModelOptions(hf_device="cpu", hf_dtype="float32", hf_prefix_cache_mb=mb, **options)  # type: ignore[arg-type]
    return HFChatModel(ModelSpec(provider="hf", name=str(path)), opts)


def prompt(agent: int, k: int) -> str:
    """Round k's question for an agent: the history grows by a line a round, the question comes last."""
    lines = [f"in round {i} you chose Option {'JF'[(i + agent) % 2]} and your partner chose F" for i in range(1, k)]
    return "\n".join([*lines, f"round {k} answer with one letter"])


def request(agent: int, k: int, spec: ActionSpec | None, **kw: object) -> ChatRequest:
    messages = (SYSTEM, {"role": "user", "content": prompt(agent, k)})
    return ChatRequest(messages=messages, constraint=spec, conversation=f"agent-{agent}", **kw)  # type: ignore[arg-type]


async def rounds(m: HFChatModel, spec: ActionSpec | None, *, agents: int = 4, last: int = 5,
                 late: int | None = None, **kw: object) -> list[list[tuple[str, int, int]]]:
    """Every agent asks once a round, all at once; agent `late` joins only in round 3 (a mixed batch)."""
    out = []
    for k in range(1, last + 1):
        who = [a for a in range(agents) if a != late or k >= 3]
        results = await asyncio.gather(*[m.complete(request(a, k, spec, **kw)) for a in who])
        out.append([(r.text, r.prompt_tokens, r.cached_tokens) for r in results])
    return out


async def both(tiny_dir: Path, spec: ActionSpec | None, **kw: object):
    off, on = make(tiny_dir, 0), make(tiny_dir, 64)
    try:
        a = await rounds(off, spec, **kw)
        b = await rounds(on, spec, **kw)
        return off, on, a, b
    finally:
        await off.aclose()
        await on.aclose()


def test_common_prefix() -> None:
    assert common_prefix([1, 2, 3], [1, 2, 4, 5]) == 2
    assert common_prefix([1, 2], [1, 2, 3]) == 2
    assert common_prefix([], [1]) == 0
    assert common_prefix([7], [1]) == 0


def kv(n: int) -> tuple[tuple[torch.Tensor, ...], tuple[torch.Tensor, ...]]:
    """Keys and values of n tokens for a 2-layer model with 1 head of width 4 (32 bytes a token a layer each)."""
    return tuple(torch.zeros(1, n, 4) for _ in range(2)), tuple(torch.zeros(1, n, 4) for _ in range(2))


def test_store_matches_token_ids_and_keeps_the_last_token_to_compute() -> None:
    store = PrefixStore(10_000)
    assert store.match("a", [1, 2, 3]) == (None, 0)  # nothing held yet
    assert store.put("a", [1, 2, 3, 4], *kv(4))
    entry, reuse = store.match("a", [1, 2, 3, 9, 9])
    assert entry is not None and reuse == 3
    assert store.stats.truncated == 1  # the held prompt is not a prefix of the new one: reuse stops at 3
    assert store.match("a", [1, 2, 3, 4])[1] == 3  # the same prompt: its last token is computed again
    assert store.match("a", [1, 2, 3, 4, 5, 6])[1] == 4  # the held prompt is a prefix: all of it reused
    assert store.match("a", [1, 2, 3, 4, 5, 6], 2)[1] == 2  # a caller's limit
    assert store.match("a", [5, 6]) == (None, 0)
    assert store.stats.missed == 1
    assert store.match(None, [1, 2]) == (None, 0)
    assert store.match("b", [1, 2]) == (None, 0)


def test_store_is_bounded_and_keeps_what_it_holds_when_full() -> None:
    per_token = 2 * 2 * 4 * 4  # layers x (keys, values) x width x float32 bytes
    store = PrefixStore(10 * per_token)
    assert store.put("a", list(range(6)), *kv(6))
    assert not store.put("b", list(range(5)), *kv(5))  # no room: a new conversation is not admitted
    assert store.stats.refused == 1 and len(store) == 1
    assert store.put("a", list(range(10)), *kv(10))  # a held conversation grows into its own room
    assert store.bytes_held == 10 * per_token
    assert not store.put("a", list(range(11)), *kv(11))  # too big: the shorter entry stays and still matches
    assert store.match("a", list(range(12)))[1] == 10
    assert store.release("a") and not store.release("a")
    assert store.bytes_held == 0 and len(store) == 0
    assert PrefixStore(0).match("a", [1, 2]) == (None, 0)
    store.put("c", [1], *kv(1))
    store.clear()
    assert store.bytes_held == 0 and len(store) == 0


async def test_letter_choices_equal_with_and_without_reuse(tiny_dir: Path) -> None:
    off, on, a, b = await both(tiny_dir, LETTERS, late=2)
    assert [[t for t, _, _ in r] for r in a] == [[t for t, _, _ in r] for r in b]
    assert [[p for _, p, _ in r] for r in a] == [[p for _, p, _ in r] for r in b]
    assert all(c == 0 for r in a for _, _, c in r)
    assert all(c == 0 for _, _, c in b[0])  # round 1: nothing held yet
    for k in range(1, 5):
        for agent, (_, p, c) in zip([x for x in range(4) if x != 2 or k + 1 >= 3], b[k], strict=True):
            if agent == 2 and k == 2:
                assert c == 0  # joined this round
            else:
                assert 0 < c < p  # the history so far was reused, the new line and question computed
    stats = on.prefix.stats
    assert stats.computed_tokens + stats.reused_tokens == sum(p for r in b for _, p, _ in r)
    # Batching kept: each round's requests were scored together, the round with a newcomer too.
    assert on.score_passes == off.score_passes < sum(len(r) for r in b)


async def test_log_probs_equal_within_float_noise(tiny_dir: Path) -> None:
    off, on = make(tiny_dir, 0), make(tiny_dir, 64)
    try:
        for spec in (LETTERS, WORDS):
            for k in range(1, 5):
                reqs = [request(a, k, spec) for a in range(3)]
                for r in reqs:
                    want = off.option_logprobs(r)
                    got = on.option_logprobs(r)
                    assert got == pytest.approx(want, abs=1e-4)
        assert on.prefix.stats.reused_tokens > 0
    finally:
        await off.aclose()
        await on.aclose()


async def test_multi_token_choices_equal_with_and_without_reuse(tiny_dir: Path) -> None:
    _, _, a, b = await both(tiny_dir, WORDS, late=1)
    assert a == [[(t, p, 0) for t, p, _ in r] for r in b]
    assert any(c > 0 for r in b[1:] for _, _, c in r)


@pytest.mark.parametrize("temperature", [0.0, 0.8])
async def test_generated_text_equal_with_and_without_reuse(tiny_dir: Path, temperature: float) -> None:
    off, on, a, b = await both(tiny_dir, None, late=3, max_tokens=10, temperature=temperature, seed=5)
    assert [[t for t, _, _ in r] for r in a] == [[t for t, _, _ in r] for r in b]
    assert any(c > 0 for r in b[1:] for _, _, c in r)
    assert on.generate_calls == off.generate_calls == 5  # one generate call a round


async def test_a_reply_is_kept_with_keys_and_values_equal_to_a_fresh_pass(tiny_dir: Path) -> None:
    from transformers import DynamicCache

    on = make(tiny_dir, 64)
    try:
        reqs = [request(a, 2, None, max_tokens=6 + 3 * a) for a in range(3)]  # replies of different lengths
        results = await asyncio.gather(*[on.complete(r) for r in reqs])
        for r, res in zip(reqs, results, strict=True):
            entry = on.prefix._entries[r.conversation or ""]
            prompt = on.prompt_ids(r.messages)
            assert entry.ids[: len(prompt)] == prompt and len(entry.ids) > len(prompt)
            reply = on.tokenizer.decode(entry.ids[len(prompt) :], skip_special_tokens=True).strip()
            assert res.text.startswith(reply)
            with torch.inference_mode():
                cache = DynamicCache(config=on.model.config)
                on.model(torch.tensor([entry.ids]), **{cache_argument(on.model): cache})
            for layer, (k, v) in enumerate(zip(entry.keys, entry.values, strict=True)):
                assert torch.allclose(k, cache.layers[layer].keys[0], atol=1e-4)
                assert torch.allclose(v, cache.layers[layer].values[0], atol=1e-4)
    finally:
        await on.aclose()


async def test_a_prompt_that_is_not_an_extension_reuses_up_to_where_it_differs(tiny_dir: Path) -> None:
    off, on = make(tiny_dir, 0), make(tiny_dir, 64)
    try:
        first = request(0, 4, LETTERS)
        edited = ChatRequest(messages=(SYSTEM, {"role": "user", "content": prompt(1, 4)}), constraint=LETTERS,
                             conversation="agent-0")  # same conversation, its history rewritten
        await on.complete(first)
        got = await on.complete(edited)
        want = await off.complete(edited)
        assert got.text == want.text and got.prompt_tokens == want.prompt_tokens
        held = len(on.prompt_ids(first.messages))
        assert 0 < got.cached_tokens < held
        assert on.prefix.stats.truncated == 1
    finally:
        await off.aclose()
        await on.aclose()


async def test_a_full_store_answers_alike_and_stays_within_its_bound(tiny_dir: Path) -> None:
    on = make(tiny_dir, 64)
    on.prefix = PrefixStore(60_000)  # room for about two of these conversations (512 bytes a token)
    off = make(tiny_dir, 0)
    try:
        a = await rounds(off, LETTERS, agents=6)
        b = await rounds(on, LETTERS, agents=6)
        assert [[t for t, _, _ in r] for r in a] == [[t for t, _, _ in r] for r in b]
        assert on.prefix.bytes_held <= 60_000
        assert on.prefix.stats.refused > 0
        assert any(c > 0 for r in b[1:] for _, _, c in r)
    finally:
        await off.aclose()
        await on.aclose()


async def test_reuse_off_holds_nothing(tiny_dir: Path) -> None:
    off = make(tiny_dir, 0)
    try:
        await rounds(off, LETTERS, last=2)
        assert len(off.prefix) == 0 and off.prefix.stats.lookups == 0
    finally:
        await off.aclose()


async def test_closing_the_model_frees_what_it_holds(tiny_dir: Path) -> None:
    on = make(tiny_dir, 64)
    await rounds(on, LETTERS, last=2)
    assert len(on.prefix) == 4 and on.prefix.bytes_held > 0
    await on.aclose()
    assert len(on.prefix) == 0 and on.prefix.bytes_held == 0


async def test_an_agents_episode_end_reaches_the_backend_through_its_wrappers(tiny_dir: Path) -> None:
    model = make_model(f"hf:{tiny_dir}", ModelOptions(hf_device="cpu", hf_dtype="float32"))
    inner = model.inner  # type: ignore[attr-defined]
    assert isinstance(inner, HFChatModel)
    env = RepeatedMatrixGame("prisoners_dilemma", rounds=2)
    env.reset(seed=0)
    agents = [LLMAgent(f"p{i}", model, rng=np.random.default_rng(i)) for i in range(2)]
    assert agents[0].conversation != agents[1].conversation
    try:
        while env.agents:
            obs = [env.decision(a) for a in env.agents]
            acts = await asyncio.gather(*[ag.act(o) for ag, o in zip(agents, obs, strict=True)])
            env.step({a: act.value for a, act in zip(env.agents, acts, strict=True)})
        assert len(inner.prefix) == 2
        assert acts[0].calls[0].cached_tokens > 0
        agents[0].end_episode()
        assert len(inner.prefix) == 1
        agents[1].end_episode()
        assert len(inner.prefix) == 0 and inner.prefix.bytes_held == 0
    finally:
        await model.aclose()


async def pd_with_agents(model: HFChatModel, options: LLMAgentOptions, rounds: int) -> list[Action]:
    env = RepeatedMatrixGame("prisoners_dilemma", rounds=rounds)
    env.reset(seed=0)
    agents = [LLMAgent(f"p{i}", model, rng=np.random.default_rng(i), options=options) for i in range(2)]
    played = []
    while env.agents:
        obs = [env.decision(a) for a in env.agents]
        acts = await asyncio.gather(*[ag.act(o) for ag, o in zip(agents, obs, strict=True)])
        env.step({a: act.value for a, act in zip(env.agents, acts, strict=True)})
        played += acts
    return played


async def test_reasoning_turns_answer_alike_and_reuse_the_turn_before(tiny_dir: Path) -> None:
    options = LLMAgentOptions(reasoning="two_turn", reasoning_max_tokens=8, max_tokens=4)
    off, on = make(tiny_dir, 0), make(tiny_dir, 64)
    try:
        a = await pd_with_agents(off, options, 2)
        b = await pd_with_agents(on, options, 2)
        assert [(x.value, [c.reply for c in x.calls]) for x in a] == [(x.value, [c.reply for c in x.calls]) for x in b]
        for act in b:
            think, answer = act.calls[0], act.calls[1]
            assert think.purpose == "reasoning"
            assert answer.cached_tokens >= think.prompt_tokens  # the turn before, at least, was reused
    finally:
        await off.aclose()
        await on.aclose()


async def test_an_episode_releases_its_agents_prefixes_and_records_cached_tokens(tiny_dir: Path) -> None:
    spec_name = f"hf:{tiny_dir}"
    model = make_model(spec_name, ModelOptions(hf_device="cpu", hf_dtype="float32"))
    ctx = RunContext(run_id="t", seed=0, llm=LLMConfig(), models={spec_name: model})
    seats = (Seat(name="a", policy="llm", model=spec_name), Seat(name="b", policy="llm", model=spec_name))
    episode = EpisodeSpec(phase=0, index=0, env_id="repeated-matrix-game",
                          env_params={"game": "prisoners_dilemma", "rounds": 3}, seats=seats)
    try:
        out = await play_episode(episode, ctx)
        inner = model.inner  # type: ignore[attr-defined]
        assert len(inner.prefix) == 0 and inner.prefix.bytes_held == 0
        calls = list(zip(out.calls["round"], out.calls["cached_tokens"], out.calls["prompt_tokens"], strict=True))
        first = min(r for r, _, _ in calls)
        assert len(calls) == 6
        assert all(c == 0 for r, c, _ in calls if r == first)  # the first round computes everything
        assert all(0 < c < p for r, c, p in calls if r != first)  # later ones reuse the history so far
    finally:
        await model.aclose()


def test_the_conversation_key_does_not_shape_the_cache_key_or_equality() -> None:
    a = ChatRequest(messages=(SYSTEM,), conversation="x#1")
    b = ChatRequest(messages=(SYSTEM,), conversation="y#2")
    assert a.key("m") == b.key("m") == ChatRequest(messages=(SYSTEM,)).key("m")
    assert a == b
