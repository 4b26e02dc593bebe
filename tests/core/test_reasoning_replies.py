"""Replies from reasoning models: think blocks never reach the parser."""

from pathlib import Path

import pytest

from societas.analysis import load_run
from societas.config import load_config
from societas.llm.testing import FakeOpenAIServer
from societas.runners.run import run_experiment
from societas.types import ActionSpec, InvalidAction, split_reasoning


def test_split_reasoning_reads_blocks_and_a_template_opened_block() -> None:
    assert split_reasoning("<think>A is safer.</think>\nAnswer: A") == ("Answer: A", "A is safer.")
    assert split_reasoning("B beats A here.</think>Answer: B") == ("Answer: B", "B beats A here.")
    assert split_reasoning("plain Answer: A") == ("plain Answer: A", "")
    # Cut off while thinking: all of it is reasoning, there is no answer.
    assert split_reasoning("<think>maybe A, maybe B") == ("", "maybe A, maybe B")


@pytest.mark.parametrize("spec, reply, expected", [
    (ActionSpec.choice(["J", "F"]), "<think>F means defect. I pick J? Option F</think>J", "J"),
    (ActionSpec.choice(["J", "F"], answer_marker="Answer:"),
     "<think>Answer: F would be greedy.</think>Answer: J", "J"),
    (ActionSpec.integer(0, 10), "<think>3 or 7?</think> 5", 5),
    (ActionSpec.choice(["J", "F"]), "J and F are close.</think>F", "F"),
])
def test_think_blocks_are_stripped_before_parsing(spec: ActionSpec, reply: str, expected: object) -> None:
    assert spec.parse(reply) == expected


def test_an_answer_only_inside_the_thinking_is_no_answer() -> None:
    with pytest.raises(InvalidAction):
        ActionSpec.choice(["J", "F"], answer_marker="Answer:").parse("<think>Answer: J</think>")


@pytest.mark.parametrize("reasoning", ["think", "field"])
def test_reasoning_replies_parse_and_their_thinking_is_kept(tmp_path: Path, reasoning: str) -> None:
    with FakeOpenAIServer("first", reasoning=reasoning) as server:
        cfg = load_config("pd_tournament", model=f"openai:fake@{server.base_url}", output_dir=str(tmp_path))
        cfg = cfg.model_copy(update={"population": [a for a in cfg.population if a.name in ("llm", "gpt4")]})
        rd, _ = run_experiment(cfg, progress=False)
    run = load_run(rd.path)
    calls = run.llm_calls
    assert len(calls) > 0 and calls["error"].isna().all()
    assert (calls["reasoning"] == FakeOpenAIServer.THINKING).all()
    # The reply column keeps what the model wrote; the think block is in it only when it was in the content.
    assert calls["reply"].str.contains("<think>").all() == (reasoning == "think")
