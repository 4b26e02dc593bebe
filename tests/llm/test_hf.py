"""The in-process transformers backend on a tiny random-weight model built on the fly."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

pytestmark = pytest.mark.hf
torch = pytest.importorskip("torch")
transformers = pytest.importorskip("transformers")

from societas.errors import BadInput  # noqa: E402
from societas.llm.base import ChatRequest, ModelError  # noqa: E402
from societas.llm.hf import (  # noqa: E402
    HFChatModel,
    _pick_option,
    plain_chat_prompt,
    resolve_device,
    resolve_dtype,
)
from societas.llm.specs import ModelOptions, ModelSpec  # noqa: E402
from societas.types import ActionSpec  # noqa: E402

try:
    from tests.llm.tiny_hf import build_tiny_model
except ImportError:  # tests/ is not a package: pytest put this directory on sys.path
    from tiny_hf import build_tiny_model  # type: ignore[no-redef]

SYSTEM = "You play a repeated game with another player."
CHOICES = ("J", "F", "cooperate", "defect")


@pytest.fixture(scope="module")
def tiny_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return build_tiny_model(tmp_path_factory.mktemp("tiny-hf"))


@pytest.fixture(scope="module")
def tiny_dir_plain(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return build_tiny_model(tmp_path_factory.mktemp("tiny-hf-plain"), chat_template=False)


def make(path: Path, **options: object) -> HFChatModel:
    opts = ModelOptions(hf_device="cpu", **options)  # type: ignore[arg-type]
    return HFChatModel(ModelSpec(provider="hf", name=str(path)), opts)


@pytest.fixture
async def model(tiny_dir: Path):
    m = make(tiny_dir)
    yield m
    await m.aclose()


def req(text: str, **kw: object) -> ChatRequest:
    messages = ({"role": "system", "content": SYSTEM}, {"role": "user", "content": text})
    return ChatRequest(messages=messages, **kw)  # type: ignore[arg-type]


def reference_logprobs(path: Path, request: ChatRequest, options: tuple[str, ...]) -> list[float]:
    """Sum of option-token log-probs, one unpadded forward pass per option, straight from transformers."""
    tok = transformers.AutoTokenizer.from_pretrained(path)
    lm = transformers.AutoModelForCausalLM.from_pretrained(path, dtype=torch.float32).eval()
    text = tok.apply_chat_template(
        [dict(m) for m in request.messages], tokenize=False, add_generation_prompt=True
    )
    prompt = tok(text, add_special_tokens=False)["input_ids"]
    out = []
    for option in options:
        cont = tok(option, add_special_tokens=False)["input_ids"]
        with torch.no_grad():
            logits = lm(torch.tensor([prompt + cont])).logits[0]
        logprobs = torch.log_softmax(logits.float(), dim=-1)
        out.append(sum(float(logprobs[len(prompt) - 1 + j, t]) for j, t in enumerate(cont)))
    return out


async def test_free_text_returns_text_and_token_counts(model: HFChatModel) -> None:
    result = await model.complete(req("Choose Option J or Option F.", max_tokens=12))
    assert isinstance(result.text, str)
    assert result.model == f"hf:{model.path}"
    assert result.prompt_tokens > 5
    assert 1 <= result.completion_tokens <= 12
    assert result.latency_s > 0


async def test_greedy_is_deterministic_and_independent_of_batch(model: HFChatModel) -> None:
    prompts = [f"Round {i}: your partner chose F. Choose Option J or Option F." for i in range(5)]
    alone = [(await model.complete(req(p, max_tokens=16))).text for p in prompts]
    again = [(await model.complete(req(p, max_tokens=16))).text for p in prompts]
    batched = await asyncio.gather(*(model.complete(req(p, max_tokens=16)) for p in prompts))
    assert alone == again
    assert [r.text for r in batched] == alone
    assert len(set(alone)) > 1


async def test_sampling_is_reproducible_per_replicate(tiny_dir: Path, model: HFChatModel) -> None:
    def sampled(k: int) -> ChatRequest:
        return req("Predict your partner's next move.", max_tokens=10, temperature=1.0, replicate=k)

    first = [(await model.complete(sampled(k))).text for k in range(4)]
    other = make(tiny_dir)
    try:
        # A fresh model, all replicates in one batch: the same draws.
        second = await asyncio.gather(*(other.complete(sampled(k)) for k in range(4)))
    finally:
        await other.aclose()
    assert [r.text for r in second] == first
    assert len(set(first)) > 1
    greedy = (await model.complete(req("Predict your partner's next move.", max_tokens=10))).text
    assert any(t != greedy for t in first)


async def test_top_p_and_seed_change_the_draws(model: HFChatModel) -> None:
    base = dict(max_tokens=10, temperature=1.0, replicate=3)
    plain = (await model.complete(req("Share or keep?", **base))).text
    seeded = [(await model.complete(req("Share or keep?", seed=s, **base))).text for s in range(3)]
    assert len({plain, *seeded}) > 1
    narrow = await model.complete(req("Share or keep?", top_p=1e-6, **base))
    greedy = await model.complete(req("Share or keep?", max_tokens=10))
    assert narrow.text == greedy.text  # top_p this small keeps only the most likely token


async def test_choice_is_the_argmax_of_option_logprobs(tiny_dir: Path, model: HFChatModel) -> None:
    spec = ActionSpec.choice(CHOICES)
    prompts = [f"Round {i}: choose J, F, cooperate or defect." for i in range(6)]
    results = await asyncio.gather(*(model.complete(req(p, constraint=spec)) for p in prompts))
    assert model.generate_calls == 0  # scored, never generated
    answers = []
    for p, result in zip(prompts, results, strict=True):
        assert spec.parse(result.text) == result.text
        scores = reference_logprobs(tiny_dir, req(p), CHOICES)
        best = max(scores)
        assert scores[CHOICES.index(result.text)] == pytest.approx(best, abs=1e-4)
        runner_up = sorted(scores)[-2]
        if best - runner_up > 1e-4:
            assert result.text == CHOICES[scores.index(best)]
        assert result.completion_tokens >= 1
        answers.append(result.text)
    assert model.score_passes <= 2  # 24 option sequences in chunks of hf_batch_size=16


async def test_one_token_options_are_scored_in_one_pass_per_chunk(tiny_dir: Path, model: HFChatModel) -> None:
    letters = ("J", "F")
    assert all(len(model.continuation_ids(c)) == 1 for c in letters)
    spec = ActionSpec.choice(letters)
    prompts = [f"Round {i}: choose J or F." for i in range(20)]
    results = await asyncio.gather(*(model.complete(req(p, constraint=spec)) for p in prompts))
    assert model.score_passes == 2  # 20 prompts, one row each, in chunks of hf_batch_size=16
    for p, result in zip(prompts, results, strict=True):
        scores = reference_logprobs(tiny_dir, req(p), letters)
        assert scores[letters.index(result.text)] == pytest.approx(max(scores), abs=1e-4)


def test_choice_ties_go_to_the_first_option() -> None:
    greedy = req("Pick.")
    assert _pick_option([-1.0, -0.5, -0.5], greedy) == 1
    assert _pick_option([-0.5, -0.5], greedy) == 0
    hot = req("Pick.", temperature=1.0, top_p=0.5)
    assert _pick_option([-0.1, -9.0, -9.0], hot) == 0  # top_p drops the unlikely options


async def test_choice_keeps_the_answer_marker(model: HFChatModel) -> None:
    single = await model.complete(req("Pick.", constraint=ActionSpec.choice(("F",))))
    assert single.text == "F"
    marked = ActionSpec.choice(("J", "F"), answer_marker="Answer:")
    result = await model.complete(req("Pick one, then write Answer: X.", constraint=marked))
    assert marked.parse(result.text) in ("J", "F")
    assert result.text.startswith("Answer: ")


async def test_choice_at_temperature_is_reproducible(model: HFChatModel) -> None:
    spec = ActionSpec.choice(CHOICES)
    draws = [
        (await model.complete(req("Choose.", constraint=spec, temperature=5.0, replicate=k))).text
        for k in range(12)
    ]
    again = await asyncio.gather(
        *(model.complete(req("Choose.", constraint=spec, temperature=5.0, replicate=k)) for k in range(12))
    )
    assert [r.text for r in again] == draws
    assert set(draws) <= set(CHOICES)
    assert len(set(draws)) > 1  # a hot temperature spreads the draws over the options


async def test_concurrent_calls_are_batched(model: HFChatModel) -> None:
    calls = [model.complete(req(f"Round {i}.", max_tokens=6)) for i in range(8)]
    results = await asyncio.gather(*calls)
    assert len(results) == 8
    assert model.generate_calls < 8
    assert model.batches_run < 8


async def test_batch_size_bounds_each_batch(tiny_dir: Path) -> None:
    m = make(tiny_dir, hf_batch_size=3)
    try:
        spec = ActionSpec.choice(("J", "F"))
        mixed = [req(f"Round {i}.", max_tokens=4 + i) for i in range(5)]
        mixed += [req(f"Round {i}.", constraint=spec) for i in range(3)]
        batched = await asyncio.gather(*(m.complete(r) for r in mixed))
        assert 3 <= m.batches_run <= 4
        alone = [await m.complete(r) for r in mixed]
        assert [r.text for r in batched] == [r.text for r in alone]
        assert all(r.completion_tokens <= 4 + i for i, r in enumerate(batched[:5]))
    finally:
        await m.aclose()


async def test_event_loop_keeps_running_while_the_model_works(model: HFChatModel) -> None:
    ticks = 0

    async def ticker() -> None:
        nonlocal ticks
        while True:
            ticks += 1
            await asyncio.sleep(0.001)

    task = asyncio.create_task(ticker())
    try:
        await model.complete(req("Load and answer.", max_tokens=32))  # includes loading the weights
    finally:
        task.cancel()
    assert ticks >= 3


async def test_plain_prompt_without_chat_template(tiny_dir_plain: Path) -> None:
    m = make(tiny_dir_plain)
    try:
        messages = ({"role": "system", "content": "rules"}, {"role": "user", "content": "hi"})
        assert m.format_prompt(messages) == "system: rules\nuser: hi\nassistant:"
        assert plain_chat_prompt(messages) == "system: rules\nuser: hi\nassistant:"
        text = await m.complete(ChatRequest(messages=messages, max_tokens=5))
        choice = await m.complete(ChatRequest(messages=messages, constraint=ActionSpec.choice(("J", "F"))))
        assert isinstance(text.text, str) and text.completion_tokens <= 5
        assert choice.text in ("J", "F")
    finally:
        await m.aclose()


async def test_missing_model_directory_is_a_clear_error(tmp_path: Path) -> None:
    m = make(tmp_path / "nowhere")
    try:
        with pytest.raises(BadInput, match="nowhere"):
            await m.complete(req("hi"))
    finally:
        await m.aclose()


async def test_replies_stop_at_the_context_length(model: HFChatModel) -> None:
    model.load()
    limit = model.model.config.max_position_embeddings
    base = len(model.prompt_ids(req("").messages))
    near = req("J" * (limit - base - 3), max_tokens=20)  # "J" is one token with no merges
    assert len(model.prompt_ids(near.messages)) == limit - 3
    too_long = req("J" * limit, max_tokens=20)
    fits, fails = await asyncio.gather(model.complete(near), model.complete(too_long), return_exceptions=True)
    assert not isinstance(fits, BaseException) and fits.completion_tokens <= 3
    assert isinstance(fails, ModelError) and "at most" in str(fails)


async def test_closed_model_refuses_requests(tiny_dir: Path) -> None:
    m = make(tiny_dir)
    await m.complete(req("hi", max_tokens=2))
    await m.aclose()
    with pytest.raises(ModelError, match="closed"):
        await m.complete(req("hi", max_tokens=2))


def test_one_model_serves_successive_event_loops(tiny_dir: Path) -> None:
    m = make(tiny_dir)
    first = asyncio.run(m.complete(req("hi", max_tokens=4)))
    second = asyncio.run(m.complete(req("hi", max_tokens=4)))
    assert first.text == second.text
    asyncio.run(m.aclose())


def test_device_and_dtype_selection(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    assert resolve_device("auto") == "cuda"
    monkeypatch.setattr(torch.cuda, "is_bf16_supported", lambda *a, **k: True)
    assert resolve_dtype("auto", "cuda") == torch.bfloat16
    monkeypatch.setattr(torch.cuda, "is_bf16_supported", lambda *a, **k: False)
    assert resolve_dtype("auto", "cuda:1") == torch.float16
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    assert resolve_device("auto") == "cpu"
    assert resolve_device("cuda:1") == "cuda:1"
    assert resolve_dtype("auto", "cpu") == torch.float32
    assert resolve_dtype("bf16", "cpu") == torch.bfloat16
    with pytest.raises(ValueError, match="hf_dtype"):
        resolve_dtype("float8", "cpu")


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")
async def test_gpu_matches_cpu(tiny_dir: Path) -> None:
    cpu = make(tiny_dir)
    options = ModelOptions(hf_device="auto", hf_dtype="float32")
    gpu = HFChatModel(ModelSpec(provider="hf", name=str(tiny_dir)), options)
    try:
        assert gpu.device == "cuda"
        spec = ActionSpec.choice(CHOICES)
        prompts = [f"Round {i}: choose." for i in range(4)]
        on_cpu = [(await cpu.complete(req(p, constraint=spec))).text for p in prompts]
        on_gpu = await asyncio.gather(*(gpu.complete(req(p, constraint=spec)) for p in prompts))
        assert [r.text for r in on_gpu] == on_cpu
        text = await gpu.complete(req("Hello.", max_tokens=8, temperature=0.7, replicate=1))
        assert 1 <= text.completion_tokens <= 8
        assert next(gpu.model.parameters()).device.type == "cuda"
    finally:
        await cpu.aclose()
        await gpu.aclose()


async def test_hf_specs_dispatch_to_this_backend(tiny_dir: Path) -> None:
    from societas.llm import specs

    spec = specs.parse_model_spec("hf:" + str(tiny_dir))
    m = specs._BACKENDS["hf"](spec, ModelOptions(hf_device="cpu"))
    try:
        assert isinstance(m, HFChatModel) and m.name == f"hf:{tiny_dir}"
        assert (await m.complete(req("Choose.", constraint=ActionSpec.choice(("J", "F"))))).text in ("J", "F")
    finally:
        await m.aclose()


async def test_make_model_serves_hf_specs(tiny_dir: Path) -> None:
    # make_model wraps backends with retries and a cache; runs once those modules exist.
    pytest.importorskip("societas.llm.retry")
    pytest.importorskip("societas.llm.cache")
    from societas.llm.specs import make_model

    m = make_model("hf:" + str(tiny_dir), ModelOptions(hf_device="cpu"))
    try:
        assert m.name == f"hf:{tiny_dir}"
        result = await m.complete(req("Choose.", constraint=ActionSpec.choice(("J", "F"))))
        assert result.text in ("J", "F")
        assert result.model == f"hf:{tiny_dir}"
    finally:
        await m.aclose()
