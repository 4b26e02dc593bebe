"""The repeated matrix game: prompts, option shuffling, actions, rewards, infos, catalog."""

from __future__ import annotations

import numpy as np
import pytest

from societas.environments import catalog
from societas.environments.matrix_game import NO_ACTION, RepeatedMatrixGame
from societas.types import ActionSpec

P0, P1 = "player_0", "player_1"

PD_RULES = (
    "You are playing a game repeatedly with another player. In this game, you can choose between "
    "Option J and Option F. You will play 10 rounds in total with the same player. "
    "The rules of the game are as follows:\n"
    "If you choose Option J and the other player chooses Option J, then you win 8 points and the other "
    "player wins 8 points.\n"
    "If you choose Option J and the other player chooses Option F, then you win 0 points and the other "
    "player wins 10 points.\n"
    "If you choose Option F and the other player chooses Option J, then you win 10 points and the other "
    "player wins 0 points.\n"
    "If you choose Option F and the other player chooses Option F, then you win 5 points and the other "
    "player wins 5 points."
)


def play(env: RepeatedMatrixGame, moves: list[tuple[object, object]]) -> list[tuple]:
    return [env.step({P0: a, P1: b}) for a, b in moves]


def test_prompt_matches_the_study_for_a_known_history() -> None:
    env = RepeatedMatrixGame("prisoners_dilemma", shuffle_options=False)
    env.reset(seed=0)
    play(env, [("J", "J"), ("J", "F"), ("F", "J")])
    obs = env.decision(P0)
    assert obs.system == PD_RULES
    assert obs.round == 4
    assert obs.prompt == (
        "In round 1, you chose Option J and the other player chose Option J. "
        "Thus, you won 8 points and the other player won 8 points.\n"
        "In round 2, you chose Option J and the other player chose Option F. "
        "Thus, you won 0 points and the other player won 10 points.\n"
        "In round 3, you chose Option F and the other player chose Option J. "
        "Thus, you won 10 points and the other player won 0 points.\n"
        "You are currently playing round 4.\n"
        "Q: Which Option do you choose, Option J or Option F?\n"
        "A: Option"
    )
    # The partner's view of the same rounds, from its own side.
    other = env.decision(P1)
    assert other.system == PD_RULES
    assert other.prompt.startswith(
        "In round 1, you chose Option J and the other player chose Option J. "
        "Thus, you won 8 points and the other player won 8 points.\n"
        "In round 2, you chose Option F and the other player chose Option J. "
        "Thus, you won 10 points and the other player won 0 points.\n"
    )
    assert obs.prediction is not None
    assert obs.prediction.prompt == obs.prompt.replace(
        "Q: Which Option do you choose",
        "Q: Which Option do you predict the other player will choose",
    )
    assert obs.prediction.spec.choices == ("J", "F")


def test_first_round_and_gym_observation() -> None:
    env = RepeatedMatrixGame()
    obs, infos = env.reset(seed=3)
    assert infos == {P0: {}, P1: {}}
    d = env.decision(P0)
    assert d.prompt.startswith("You are currently playing round 1.\nQ: Which Option do you choose, Option ")
    o = obs[P0]
    assert o["prompt"] == d.system + "\n\n" + d.prompt
    assert (o["round"], o["own_last"], o["partner_last"]) == (1, NO_ACTION, NO_ACTION)
    obs, *_ = env.step({P0: 0, P1: 1})
    assert (obs[P0]["round"], obs[P0]["own_last"], obs[P0]["partner_last"]) == (2, 0, 1)
    assert (obs[P1]["own_last"], obs[P1]["partner_last"]) == (1, 0)


def test_column_player_sees_its_own_payoffs() -> None:
    # Hegemony (game 1): (row, col) points r1c1 3/4, r1c2 2/3, r2c1 4/2, r2c2 1/1.
    env = RepeatedMatrixGame("akata144:1", letters=("N", "B"))
    env.reset(seed=0)
    rules = env.decision(P1).system.splitlines()[1:]
    assert rules == [
        "If you choose Option N and the other player chooses Option N, then you win 4 points and the other "
        "player wins 3 points.",
        "If you choose Option N and the other player chooses Option B, then you win 2 points and the other "
        "player wins 4 points.",
        "If you choose Option B and the other player chooses Option N, then you win 3 points and the other "
        "player wins 2 points.",
        "If you choose Option B and the other player chooses Option B, then you win 1 points and the other "
        "player wins 1 points.",
    ]
    data = env.decision(P1).data
    assert data["payoffs"] == ((4, 2), (3, 1))
    assert data["partner_payoffs"] == ((3, 2), (4, 1))
    assert env.decision(P0).data["payoffs"] == data["partner_payoffs"]


def test_option_order_is_seeded_per_round_and_per_player() -> None:
    def orders(seed: int) -> list[tuple[tuple[str, ...], tuple[str, ...]]]:
        env = RepeatedMatrixGame(rounds=10)
        env.reset(seed=seed)
        out = []
        while env.agents:
            d0, d1 = env.decision(P0), env.decision(P1)
            first, second = d0.spec.choices
            assert d0.prompt.endswith(f"Option {first} or Option {second}?\nA: Option")
            out.append((d0.spec.choices, d1.spec.choices))
            env.step({P0: 0, P1: 0})
        return out

    first = orders(11)
    assert orders(11) == first
    assert len({o[0] for o in first}) == 2  # varies across rounds
    many = [orders(s) for s in range(20)]
    assert any(a != b for run in many for a, b in run)  # the two players are shuffled separately
    assert len({tuple(run) for run in many}) > 10
    env = RepeatedMatrixGame(shuffle_options=False)
    env.reset(seed=1)
    while env.agents:
        assert env.decision(P0).spec.choices == env.decision(P1).spec.choices == ("J", "F")
        env.step({P0: 1, P1: 1})


def test_default_action_is_option_zero_whatever_the_order() -> None:
    env = RepeatedMatrixGame(letters=("C", "D"))
    env.reset(seed=5)
    seen = set()
    while env.agents:
        spec = env.decision(P0).spec
        assert spec.kind == "choice" and spec.default == "C"
        seen.add(spec.choices)
        env.step({P0: "D", P1: "C"})
    assert seen == {("C", "D"), ("D", "C")}


def test_step_accepts_letters_ints_and_numpy_ints() -> None:
    env = RepeatedMatrixGame()
    env.reset(seed=0)
    for a, b in [("J", 1), (np.int64(1), "F"), (0, np.int64(0))]:
        _, _, _, _, infos = env.step({P0: a, P1: b})
    assert infos[P0]["action"] == "J" and infos[P1]["action"] == "J"
    assert env.decision(P0).data["own_history"] == (0, 1, 0)
    assert env.decision(P1).data["own_history"] == (1, 1, 0)


@pytest.mark.parametrize("actions", [
    {P0: "X", P1: "J"}, {P0: 2, P1: 0}, {P0: "j", P1: 0}, {P0: [0], P1: 0}, {P0: 0}, {P0: 0, P1: 1, "p2": 0},
])
def test_bad_actions_raise_with_the_reason(actions: dict) -> None:
    env = RepeatedMatrixGame()
    env.reset(seed=0)
    with pytest.raises(ValueError, match=r"player_|unknown"):
        env.step(actions)


PD_CELLS = {("J", "J"): (8, 8), ("J", "F"): (0, 10), ("F", "J"): (10, 0), ("F", "F"): (5, 5)}
BOS_CELLS = {("J", "J"): (10, 7), ("J", "F"): (0, 0), ("F", "J"): (0, 0), ("F", "F"): (7, 10)}


@pytest.mark.parametrize(
    ("game", "cells"), [("prisoners_dilemma", PD_CELLS), ("battle_of_the_sexes", BOS_CELLS)]
)
def test_rewards_per_preset(game: str, cells: dict) -> None:
    env = RepeatedMatrixGame(game, rounds=len(cells))
    env.reset(seed=0)
    for (a, b), (r0, r1) in cells.items():
        _, rewards, _, _, _ = env.step({P0: a, P1: b})
        assert rewards == {P0: r0, P1: r1}
    assert env.agents == []


def test_custom_payoffs_and_fractional_points() -> None:
    env = RepeatedMatrixGame(payoffs=[[[3, 3], [-1.5, 4]], [[4, -1.5], [0, 0]]], letters=["Share", "Keep"])
    env.reset(seed=0)
    assert "you win -1.5 points and the other player wins 4 points" in env.decision(P0).system
    _, rewards, *_ = env.step({P0: "Share", P1: "Keep"})
    assert rewards == {P0: -1.5, P1: 4.0}
    assert env.decision(P0).data["game"] == "custom"
    assert env.decision(P0).data["cooperative_option"] is None


def test_infos_report_action_option_and_cooperation() -> None:
    env = RepeatedMatrixGame()
    env.reset(seed=0)
    *_, infos = env.step({P0: "J", P1: "F"})
    assert infos == {
        P0: {"action": "J", "option": 0, "cooperated": True},
        P1: {"action": "F", "option": 1, "cooperated": False},
    }
    bos = RepeatedMatrixGame("battle_of_the_sexes")
    bos.reset(seed=0)
    *_, infos = bos.step({P0: "J", P1: "F"})
    assert infos[P0]["cooperated"] is None and infos[P1]["cooperated"] is None
    bos = RepeatedMatrixGame("battle_of_the_sexes", cooperative_option=1)
    bos.reset(seed=0)
    *_, infos = bos.step({P0: "J", P1: "F"})
    assert (infos[P0]["cooperated"], infos[P1]["cooperated"]) == (False, True)
    pd = RepeatedMatrixGame(cooperative_option=None)
    assert pd.cooperative_option is None


def test_episode_truncates_after_the_rounds() -> None:
    env = RepeatedMatrixGame(rounds=3)
    env.reset(seed=0)
    assert env.render() is None
    for k in range(3):
        assert env.agents == [P0, P1]
        obs, _, terms, truncs, _ = env.step({P0: 0, P1: 0})
        assert terms == {P0: False, P1: False}
        assert truncs == {P0: k == 2, P1: k == 2}
    assert env.agents == []
    assert set(obs) == {P0, P1} and obs[P0]["round"] == 4
    assert env.render() == (
        "Round 3: player_0 chose Option J and player_1 chose Option J; "
        "player_0 won 8 points and player_1 won 8 points."
    )
    with pytest.raises(RuntimeError, match="reset"):
        env.step({P0: 0, P1: 0})
    with pytest.raises(RuntimeError, match="reset"):
        env.decision(P0)
    env.reset()
    assert env.agents == [P0, P1] and env.render() is None
    env.close()


def test_decision_data() -> None:
    env = RepeatedMatrixGame("prisoners_dilemma", rounds=5)
    env.reset(seed=0)
    play(env, [("J", "F"), ("F", "F")])
    d = env.decision(P1)
    assert d.agent == P1 and d.round == 3
    assert isinstance(d.spec, ActionSpec) and set(d.spec.choices) == {"J", "F"}
    assert d.data == {
        "game": "prisoners_dilemma",
        "seat": 1,
        "options": ("J", "F"),
        "own_history": (1, 1),
        "partner_history": (0, 1),
        "own_rewards": (10, 5),
        "partner_rewards": (0, 5),
        "payoffs": ((8, 0), (10, 5)),
        "partner_payoffs": ((8, 0), (10, 5)),
        "rounds": 5,
        "cooperative_option": 0,
    }
    with pytest.raises(ValueError, match="unknown agent"):
        env.decision("player_2")


def test_random_letters_come_from_the_seed() -> None:
    def letters(seed: int) -> tuple[str, str]:
        env = RepeatedMatrixGame("akata144:10", random_letters=True)
        env.reset(seed=seed)
        return env.options

    draws = [letters(s) for s in range(30)]
    assert draws == [letters(s) for s in range(30)]
    assert all(a != b and a.isupper() and b.isupper() and len(a) == len(b) == 1 for a, b in draws)
    assert len(set(draws)) > 20
    env = RepeatedMatrixGame(random_letters=True)
    env.reset(seed=4)
    a, b = env.options
    d = env.decision(P0)
    assert set(d.spec.choices) == {a, b} and d.data["options"] == (a, b)
    assert f"choose between Option {a} and Option {b}." in d.system
    *_, infos = env.step({P0: a, P1: b})
    assert (infos[P0]["option"], infos[P1]["option"]) == (0, 1)
    with pytest.raises(ValueError):
        env.step({P0: "J" if "J" not in (a, b) else "Q" if "Q" not in (a, b) else "Z", P1: 0})


def test_reset_with_a_seed_replays_the_episode() -> None:
    def transcript(env: RepeatedMatrixGame, seed: int | None) -> list[str]:
        env.reset(seed=seed)
        out = []
        while env.agents:
            d = env.decision(P0)
            out.append(d.prompt)
            env.step({P0: d.spec.choices[0], P1: env.decision(P1).spec.choices[1]})
        return out

    env = RepeatedMatrixGame("akata144:42", random_letters=True)
    first = transcript(env, 9)
    assert transcript(env, 9) == first
    assert transcript(RepeatedMatrixGame("akata144:42", random_letters=True), 9) == first
    assert transcript(env, None) != first  # no seed continues the stream


def test_catalog() -> None:
    games = catalog.akata144()
    assert len(games) == 144 and [g.number for g in games] == list(range(1, 145))
    hegemony = games[0]
    assert (hegemony.name, hegemony.family, hegemony.row, hegemony.col) == ("Hegemony", "Unfair", 1, 1)
    assert games[0].payoffs == (((3, 4), (2, 3)), ((4, 2), (1, 1)))
    assert {g.family for g in games} == {
        "Win-win", "Biased", "Unfair", "Cyclic", "Second Best", "Tragic", "PD Family",
    }
    assert all(g.max_payoff == 4 for g in games)
    assert len({(g.row, g.col) for g in games}) == 144
    assert catalog.get_game(1) is games[0] and catalog.lookup("akata144:144") is games[143]
    assert games[5].normalised_score(20, rounds=10) == 0.5
    pd = catalog.PRESETS["prisoners_dilemma"]
    assert pd.cooperative_option == 0 and pd.max_payoff == 10 and pd.normalised_score(80) == 0.8
    for bad in (0, 145, "1", True):
        with pytest.raises(ValueError, match="1 to 144"):
            catalog.get_game(bad)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="akata144:N"):
        catalog.lookup("akata144:x")
    env = RepeatedMatrixGame(catalog.get_game(7))
    env.reset(seed=0)
    assert env.decision(P0).data["game"] == "akata144:7"
