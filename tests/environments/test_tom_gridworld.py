"""The theory-of-mind gridworld: worlds, the belief oracle on hand-built Sally-Anne episodes, rendering."""

from __future__ import annotations

import asyncio

import numpy as np
import pytest

from societas.agents.factory import make_agent
from societas.environments import make
from societas.environments.tom_gridworld import (
    COLOURS,
    TomGridworld,
    TomObserver,
    _connected,
    random_walls,
    visible_cells,
)

# Actor top left sees red beside it; going down it loses red from view (radius 1) and meets blue.
SALLY = [
    "#########",
    "#AR.....#",
    "#.......#",
    "#.......#",
    "#......G#",
    "#B.....Y#",
    "#########",
]
PREFS = {"red": 0.2, "green": 0.4, "blue": 0.3, "yellow": 0.1}


def _episode(swap: str) -> TomGridworld:
    env = TomGridworld(layout=SALLY, radius=1, swap=swap, swap_step=2, preferences=PREFS)
    env.reset(seed=0)
    for _ in range(3):
        env.step({"actor": "down"})
    return env


def test_random_walls_keep_the_grid_connected() -> None:
    for seed in range(5):
        walls = random_walls(11, 0.3, np.random.default_rng(seed))
        assert walls[0].all() and walls[-1].all() and walls[:, 0].all() and walls[:, -1].all()
        assert _connected(~walls) and walls[1:-1, 1:-1].sum() > 0


def test_field_of_view_is_a_square() -> None:
    assert len(visible_cells((5, 5), (11, 11), 2)) == 25 and len(visible_cells((0, 0), (11, 11), 1)) == 4


def test_oracle_in_sally_anne_keeps_the_stale_belief() -> None:
    env = _episode("unseen")
    o, w = env.oracle, env.world
    assert o.goal == "green"
    assert o.beliefs(0)["objects"]["red"] == [1, 2] and o.beliefs(0)["seen_now"] == ["red"]
    assert o.beliefs(1)["objects"]["red"] == [1, 2]
    assert w.swapped == 2 and w.moved == "red" and w.objects["red"] != (1, 2)
    assert o.beliefs(2)["objects"]["red"] == [1, 2]  # moved out of view: the belief is stale
    assert o.beliefs(3)["objects"]["red"] == [1, 2] and o.beliefs(3)["objects"]["blue"] == [5, 1]
    assert o.beliefs(3)["objects"]["green"] is None and o.beliefs(3)["position"] == [4, 1]
    assert env.episode_summary()["actor"]["false_belief_at_end"] is True


def test_oracle_in_the_true_belief_control_follows_the_move() -> None:
    env = _episode("seen")
    o, w = env.oracle, env.world
    assert w.swapped == 3 and w.moved == "blue"  # first object in view from step 2 on
    assert o.beliefs(3)["objects"]["blue"] == list(w.objects["blue"]) != [5, 1]
    assert o.beliefs(3)["objects"]["red"] == [1, 2] == list(w.objects["red"])
    assert env.episode_summary()["actor"]["false_belief_at_end"] is False


def test_oracle_without_a_swap_matches_the_world_where_seen() -> None:
    env = _episode("none")
    w = env.world
    assert w.swapped is None
    for step in range(4):
        for c, p in env.oracle.beliefs(step)["objects"].items():
            assert p is None or p == list(w.objects[c])


def test_revisiting_the_old_place_clears_the_stale_belief() -> None:
    env = _episode("unseen")
    for _ in range(3):
        env.step({"actor": "up"})
    assert env.oracle.beliefs(6)["objects"]["red"] in (None, list(env.world.objects["red"]))


def test_episode_ends_on_consuming_an_object() -> None:
    env = TomGridworld(layout=SALLY, radius=1, preferences=PREFS)
    env.reset(seed=0)
    _, rewards, terms, _, infos = env.step({"actor": "right"})
    assert terms["actor"] and env.agents == [] and rewards["actor"] == pytest.approx(0.2)
    assert infos["actor"]["record"]["consumed"] == "red"


@pytest.mark.parametrize("strategy", ["random_actor", "algorithmic_actor", "goal_directed"])
def test_scripted_actors_play(strategy: str) -> None:
    env = make("tom-gridworld")
    env.reset(seed=3)
    agent = make_agent(f"scripted:{strategy}", name="a", rng=np.random.default_rng(0))
    while env.agents:
        action = asyncio.run(agent.act(env.decision("actor")))
        env.step({"actor": action.value})
    summary = env.episode_summary()["actor"]
    if strategy != "random_actor":  # the planners always find an object (the goal unless others block it)
        assert summary["consumed"] is not None and summary["steps"] < 50


def test_decision_prompt_shows_the_remembered_map_and_goal() -> None:
    env = TomGridworld(layout=SALLY, radius=1, preferences=PREFS)
    env.reset(seed=0)
    obs = env.decision("actor")
    assert "A R" not in obs.prompt and "#AR?" in obs.prompt and "green object" in obs.prompt
    assert obs.spec.choices == ("stay", "up", "down", "left", "right")
    assert obs.data["mind"]["objects"]["red"] == [1, 2]


def test_rgb_render_and_trajectory_png(tmp_path: object) -> None:
    import matplotlib.pyplot as plt

    env = make("tom-gridworld", render_mode="rgb_array", swap="unseen")
    env.reset(seed=3)
    agent = make_agent("scripted:algorithmic_actor", name="a", rng=np.random.default_rng(0))
    while env.agents:
        env.step({"actor": asyncio.run(agent.act(env.decision("actor"))).value})
    img = env.render()
    assert img.shape == (11 * 24, 11 * 24, 3) and img.dtype == np.uint8
    plt.imsave("/tmp/tom-trajectory.png", img)
    text = TomGridworld(swap="none", render_mode="ansi")
    text.reset(seed=1)
    assert "Start" in text.render()


def test_observer_battery_scores() -> None:
    env = TomObserver(swap="unseen")
    belief = reality = total = fb = 0
    for seed in range(6):
        env.reset(seed=seed)
        for q in env.questions:
            total += 1
            belief += q["gold"] == q["gold"]
            reality += q["reality"] == q["gold"]
            fb += q["false_belief"]
            assert q["gold"] in q["choices"] and q["reality"] in q["choices"]
        assert {q["category"] for q in env.questions} == {
            "perception", "first_order_belief", "knowledge", "short_term_intention", "long_term_intention",
            "desire", "reality_check"}
    assert reality == total - fb and 0 < fb < total


def test_observer_sally_anne_item() -> None:
    # The swap moved an object the actor saw; its first-order belief gold is the old place.
    for seed in range(10):
        env = TomObserver(swap="unseen", cut=None)
        env.reset(seed=seed)
        w = env.current
        if w.moved is None or env.at <= w.swapped:
            continue
        item = next(q for q in env.questions if q["category"] == "first_order_belief" and q["colour"] == w.moved)
        if item["gold"] != "unknown":
            assert item["false_belief"] and item["reality"] != item["gold"]
            return
    pytest.fail("no Sally-Anne item in 10 seeds")


def test_bad_parameters_raise() -> None:
    with pytest.raises(ValueError, match="swap"):
        TomGridworld(swap="maybe")
    with pytest.raises(ValueError, match="layout"):
        TomGridworld(layout=["###", "#A#", "###"])
    with pytest.raises(ValueError, match="actor"):
        TomObserver(actor="random_actor")
    assert len(COLOURS) == 4
