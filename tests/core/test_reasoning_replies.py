"""Replies from reasoning models: think blocks never reach the parser."""

import pytest

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
