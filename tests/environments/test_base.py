"""read_number: the one reading of numeric actions that the donor game and the feedback loop share."""

from __future__ import annotations

import math

import numpy as np
import pytest

from societas.environments import make
from societas.environments.base import read_number


@pytest.mark.parametrize(("value", "number"), [
    (3, 3.0), (2.5, 2.5), (np.float32(1.5), 1.5), (np.int64(-4), -4.0),
    ("7", 7.0), (" 6.5 ", 6.5), ("5.", 5.0), ("  -2.25. ", -2.25), ("1e3", 1000.0), ("inf", math.inf),
])
def test_numbers_and_numeric_strings_are_read(value: object, number: float) -> None:
    assert read_number("agent_0", value) == number


@pytest.mark.parametrize(("value", "message"), [
    (True, "invalid action True for agent_0: expected a number$"),
    (np.bool_(False), "expected a number$"),
    (None, "invalid action None for agent_0: expected a number$"),
    ([1.0], "expected a number$"),
    (float("nan"), "expected a number, got NaN"),
    ("nan", "expected a number, got NaN"),
    ("six", "invalid action 'six' for agent_0: expected a number or 'refuse'$"),
    ("", "expected a number or 'refuse'$"),
])
def test_anything_else_raises_naming_the_agent(value: object, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        read_number("agent_0", value, expected="a number or 'refuse'")


def test_both_games_refuse_the_same_values_in_the_same_words() -> None:
    donor = make("donor-game", num_agents=2, rounds=1, strategy_step=False)
    loop = make("feedback-loop", num_humans=1, rounds=1)
    for value in (True, None, float("nan"), object()):
        donor.reset(seed=0)
        loop.reset(seed=0)
        d = donor.acting_agents()[0]
        with pytest.raises(ValueError) as from_donor:
            donor.step({d: value})
        with pytest.raises(ValueError) as from_loop:
            loop.step({a: value for a in loop.acting_agents()})
        assert str(from_donor.value).replace(d, "X") == str(from_loop.value).replace("human_0", "X")
