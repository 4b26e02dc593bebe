"""`hf:` holds generated number, pattern and JSON answers to their grammar (llguidance), on a
tiny random-weight model whose unconstrained replies never say "Answer:"."""

from __future__ import annotations

import asyncio
import json
import re
from pathlib import Path

import pytest

pytestmark = pytest.mark.hf
torch = pytest.importorskip("torch")
pytest.importorskip("transformers")
pytest.importorskip("llguidance")

from societas.llm.base import ChatRequest  # noqa: E402
from societas.llm.hf import HFChatModel  # noqa: E402
from societas.llm.hf_constrain import answer_grammar  # noqa: E402
from societas.llm.specs import ModelOptions, ModelSpec  # noqa: E402
from societas.types import ActionSpec, InvalidAction  # noqa: E402

try:
    from tests.llm.tiny_hf import build_tiny_model
except ImportError:  # tests/ is not a package: pytest put this directory on sys.path
    from tiny_hf import build_tiny_model  # type: ignore[no-redef]

PROMPTS = [f"round {i}: how many points do you give to the other player? Answer with a number." for i in range(4)]


@pytest.fixture(scope="module")
def tiny_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return build_tiny_model(tmp_path_factory.mktemp("tiny-hf-grammar"))


def make(path: Path, **options: object) -> HFChatModel:
    return HFChatModel(ModelSpec(provider="hf", name=str(path)), ModelOptions(hf_device="cpu", **options))  # type: ignore[arg-type]


def req(text: str, spec: ActionSpec | None, **kw: object) -> ChatRequest:
    return ChatRequest(messages=({"role": "user", "content": text},), constraint=spec, **kw)  # type: ignore[arg-type]


async def replies(path: Path, spec: ActionSpec | None, *, prompts: list[str] = PROMPTS,
                  **options: object) -> list[str]:
    model = make(path, **options)
    try:
        results = await asyncio.gather(*(model.complete(req(p, spec, max_tokens=48)) for p in prompts))
    finally:
        await model.aclose()
    return [r.text for r in results]


def parsed(spec: ActionSpec, texts: list[str]) -> list[object]:
    out: list[object] = []
    for t in texts:
        try:
            out.append(spec.parse(t))
        except InvalidAction:
            out.append(None)
    return out


def test_choices_and_free_text_get_no_grammar() -> None:
    assert answer_grammar(ActionSpec.choice(("J", "F")), None) is None
    assert answer_grammar(ActionSpec(kind="text"), None) is None
    assert answer_grammar(None, None) is None
    assert answer_grammar(ActionSpec(kind="json", answer_marker="Answer:", schema={"type": "object"}), None) is None
    assert answer_grammar(ActionSpec.integer(0, 10, answer_marker="Answer:"), 64) is not None


async def test_number_after_a_marker_is_always_valid(tiny_dir: Path) -> None:
    spec = ActionSpec.integer(0, 10, answer_marker="Answer:")
    free = parsed(spec, await replies(tiny_dir, spec, structured_outputs="none"))
    held = await replies(tiny_dir, spec)
    assert free.count(None) == len(PROMPTS)  # the random model never writes the marker on its own
    values = parsed(spec, held)
    assert None not in values, held
    assert all(0 <= v <= 10 for v in values)  # type: ignore[operator]
    assert all(t.rfind("Answer:") >= 0 for t in held)


async def test_real_range_holds_whole_parts(tiny_dir: Path) -> None:
    spec = ActionSpec.real(0.0, 1.0, answer_marker="Answer:")
    values = parsed(spec, await replies(tiny_dir, spec))
    assert None not in values and all(0.0 <= v <= 1.0 for v in values)  # type: ignore[operator]


async def test_pattern_without_marker(tiny_dir: Path) -> None:
    spec = ActionSpec(kind="regex", pattern=r"(?:none|[0-9]{1,3}) \| [a-z ]{1,20}")
    texts = await replies(tiny_dir, spec)
    assert all(re.fullmatch(spec.pattern or "", t) for t in texts), texts


async def test_json_schema_answer(tiny_dir: Path) -> None:
    schema = {"type": "object", "properties": {"give": {"type": "integer", "minimum": 0, "maximum": 5}},
              "required": ["give"], "additionalProperties": False}
    spec = ActionSpec(kind="json", schema=schema)
    texts = await replies(tiny_dir, spec, prompts=PROMPTS[:3])
    for t in texts:
        assert 0 <= json.loads(t)["give"] <= 5


async def test_sampled_replies_stay_in_the_grammar(tiny_dir: Path) -> None:
    spec = ActionSpec.integer(0, 10, answer_marker="Answer:")
    model = make(tiny_dir)
    try:
        results = await asyncio.gather(*(model.complete(req(PROMPTS[0], spec, max_tokens=48, temperature=1.0,
                                                            replicate=k)) for k in range(4)))
    finally:
        await model.aclose()
    assert None not in parsed(spec, [r.text for r in results])


async def test_a_constrained_row_leaves_its_batch_mates_alone(tiny_dir: Path) -> None:
    spec = ActionSpec.integer(0, 10, answer_marker="Answer:")
    model = make(tiny_dir)
    try:
        alone = await model.complete(req(PROMPTS[1], None, max_tokens=24))
        together = await asyncio.gather(model.complete(req(PROMPTS[0], spec, max_tokens=48)),
                                        model.complete(req(PROMPTS[1], None, max_tokens=24)))
    finally:
        await model.aclose()
    assert together[1].text == alone.text
    assert spec.parse(together[0].text) is not None


async def test_a_pattern_llguidance_cannot_read_is_generated_free(tiny_dir: Path) -> None:
    spec = ActionSpec(kind="regex", pattern=r"(?=J)J")  # a lookahead: Python reads it, llguidance does not
    model = make(tiny_dir)
    try:
        result = await model.complete(req(PROMPTS[0], spec, max_tokens=8))
        assert model._grammar is not None and model._grammar.matcher(answer_grammar(spec, 8) or "") is None
    finally:
        await model.aclose()
    assert result.completion_tokens > 0  # replied, unconstrained, instead of failing the batch


def test_grammar_replies_have_their_own_cache_key() -> None:
    from societas.llm.specs import cache_salt

    spec = ModelSpec(provider="hf", name="/models/x")
    assert cache_salt(spec, ModelOptions()) != cache_salt(spec, ModelOptions(structured_outputs="none"))
    assert cache_salt(spec, ModelOptions(structured_outputs="none")) == ""
