"""The naming game: payoffs, memory and prompts, the stopping rule, the schedule of disjoint pairs,
scripted players, and events that do not depend on how many pairs or episodes run at once."""

from __future__ import annotations

import asyncio
import dataclasses
import shutil
from pathlib import Path
from typing import Any

import networkx as nx
import numpy as np
import pandas as pd
import pyarrow.parquet as pq
import pytest

from societas.agents.factory import make_agent
from societas.analysis import load_run
from societas.analysis.load import comparable
from societas.config import parse_config
from societas.environments import make
from societas.environments.naming import Inventory, Schedule, contact_graph, payoff
from societas.llm.specs import make_model
from societas.llm.testing import FakeOpenAIServer
from societas.runners.local import RunContext, play_episode
from societas.runners.run import resume_run, run_experiment
from societas.societies.society import Society
from societas.testing import check_environment
from societas.types import ActionSpec


def test_payoffs_and_inventory_rules() -> None:
    assert payoff("Q", "Q") == 100.0 and payoff("Q", "M") == -50.0
    inv = Inventory()
    rng = np.random.default_rng(0)
    first = inv.say(("Q", "M"), rng)
    assert inv.words == [first]  # invented and kept
    inv.hear("X")
    inv.hear("X")
    assert inv.words == [first, "X"]
    inv.success("X")
    assert inv.words == ["X"]


def test_contact_graphs() -> None:
    assert contact_graph(4).number_of_edges() == 6
    assert sorted(contact_graph(5, {"kind": "ring"}).neighbors(0)) == [1, 4]
    assert contact_graph(3, {"edges": [[0, 1], [1, 2]]}).number_of_edges() == 2
    star = nx.star_graph(3)  # 4 nodes, any networkx graph
    assert contact_graph(4, star).degree(0) == 3
    with pytest.raises(ValueError, match="without a neighbour: 2"):
        contact_graph(3, {"edges": [[0, 1]]})
    with pytest.raises(ValueError, match="graph kind must be one of"):
        contact_graph(4, {"kind": "torus"})
    a = contact_graph(20, {"kind": "erdos_renyi", "p": 0.5, "seed": 3})
    assert nx.utils.graphs_equal(a, contact_graph(20, {"kind": "erdos_renyi", "p": 0.5, "seed": 3}))


def test_schedule_steps_are_disjoint_and_do_not_change_the_sequence() -> None:
    g = contact_graph(6)
    big, one = Schedule(g, 3, np.random.default_rng(5)), Schedule(g, 3, np.random.default_rng(5))
    grouped = []
    while len(grouped) < 200:
        step = big.step(100)
        agents = [x for _, a, b, _, _ in step for x in (a, b)]
        assert len(agents) == len(set(agents))  # nobody twice in a step
        grouped += step
    single = [one.step(1)[0] for _ in range(len(grouped))]
    assert grouped == single
    unbuilt = Schedule(6, 3, np.random.default_rng(5))  # the complete graph without its edges: the same draws
    assert [unbuilt.step(1)[0] for _ in range(len(grouped))] == grouped
    assert [p[0] for p in grouped] == list(range(len(grouped)))
    ring = Schedule(contact_graph(6, {"kind": "ring"}), 2, np.random.default_rng(1))
    for _ in range(50):
        for _, a, b, order_a, _ in ring.step(3):
            assert (a - b) % 6 in (1, 5) and sorted(order_a) == [0, 1]


def _play_all(env: Any, answer: Any) -> list[dict[str, float]]:
    rewards = []
    while env.agents:
        acting = env.acting_agents()
        _, r, _, _, _ = env.step({a: answer(a) for a in acting})
        rewards.append({a: r[a] for a in acting})
    return rewards


def test_rewards_memory_and_prompt_text() -> None:
    env = make("naming-game", num_agents=2, names=["Q", "M"], memory=2, rounds=10)
    env.reset(seed=0)
    assert env.acting_agents() in (["player_0", "player_1"], ["player_1", "player_0"])
    _, r, _, _, infos = env.step({"player_0": "Q", "player_1": "M"})
    assert r == {"player_0": -50.0, "player_1": -50.0}
    assert infos["player_0"]["record"]["heard"] == "M" and not infos["player_0"]["record"]["success"]
    _, r, _, _, _ = env.step({"player_0": "M", "player_1": "M"})
    assert r == {"player_0": 100.0, "player_1": 100.0}
    env.step({"player_0": 0, "player_1": 0})  # an index into the names is Q
    obs = env.decision("player_0")
    assert obs.prompt.startswith(
        "Here is what happened in your most recent rounds:\n"
        "Round 2: you picked M, your partner picked M, you got +100 points.\n"
        "Round 3: you picked Q, your partner picked Q, you got +100 points.\n"
        "It is now round 4. Your score over the rounds above is 200 points.\n"
        "The names you can pick from are: ")
    assert obs.round == 3 and obs.data["memory"] == ((2, "M", "M", 100.0), (3, "Q", "Q", 100.0))
    assert "Q" not in obs.system and "+100 points" in obs.system and "-50 points" in obs.system
    assert set(obs.spec.choices) == {"Q", "M"} and obs.spec.first_match
    assert obs.spec.parse("{'value': 'M', 'reason': 'Q lost last time'}") == "M"


def test_option_order_is_shuffled_per_prompt_and_seeded() -> None:
    def orders(seed: int) -> list[tuple[str, ...]]:
        env = make("naming-game", num_agents=4, rounds=5)
        env.reset(seed=seed)
        out = []
        while env.agents:
            acting = env.acting_agents()
            out += [env.decision(a).data["options"] for a in acting]
            env.step(dict.fromkeys(acting, "Q"))
        return out

    a = orders(1)
    assert a == orders(1) and a != orders(2)
    assert len(set(a)) > len(a) // 2  # fresh orders, not one per agent


def test_stops_at_exactly_3n_consecutive_successes() -> None:
    env = make("naming-game", num_agents=4, names=["Q", "M"], rounds=50)
    env.reset(seed=3)
    steps = _play_all(env, lambda a: "Q")
    assert env.played == 12 and env.consensus_at == 11  # 3N = 12 successes, not one more
    assert sum(len(s) for s in steps) == 24 and env.agents == []
    assert env.episode_summary()["player_0"]["consensus"] is True


def test_budget_truncates_and_prefill_plays_it_whole() -> None:
    env = make("naming-game", num_agents=4, rounds=3)
    env.reset(seed=0)
    _play_all(env, lambda a: "Q" if a < "player_2" else "M")
    assert env.played == 12 and env.consensus_at is None
    swap = make("naming-game", num_agents=4, names=["Q", "M"], rounds=10, prefill="Q")
    swap.reset(seed=0)
    first = swap.decision(swap.acting_agents()[0])
    assert first.data["memory"] == tuple((k, "Q", "Q", 100.0) for k in range(1, 6)) and first.data["round"] == 6
    assert "Your score over the rounds above is 500 points" in first.prompt
    _play_all(swap, lambda a: "Q")
    assert swap.played == 40 and swap.consensus_at == 11  # consensus long before, the budget played out


def test_bad_parameters_name_themselves() -> None:
    with pytest.raises(ValueError, match="names must be distinct"):
        make("naming-game", names=["Q", "Q"])
    with pytest.raises(ValueError, match="prefill must be one of the names"):
        make("naming-game", prefill="Z")
    with pytest.raises(ValueError, match="without a neighbour"):
        make("naming-game", num_agents=3, graph={"edges": [[0, 1]]})
    env = make("naming-game", num_agents=2)
    env.reset(seed=0)
    with pytest.raises(ValueError, match="one of the names"):
        env.step({"player_0": "Z", "player_1": "Q"})


@pytest.mark.parametrize("params", [
    {}, {"names": ["Alice", "Bob"], "graph": {"kind": "ring"}, "num_agents": 6},
    {"prefill": "M", "num_agents": 5, "rounds": 4}, {"memory": 0, "num_agents": 3, "max_pairs": 1}])
def test_conformance(params: dict) -> None:
    check_environment("naming-game", **params)


def _choose(policy: str, data: dict, rng_seed: int = 0, **params: Any) -> str:
    agent = make_agent(policy, name="a", rng=np.random.default_rng(rng_seed), params=params)
    spec = ActionSpec.choice(data["names"])
    from societas.types import Observation

    obs = Observation(agent="a", round=0, system="", prompt="", spec=spec, data={"game": "naming", **data})
    return asyncio.run(agent.act(obs)).value


def test_scripted_players() -> None:
    names = ("Q", "M", "X")
    seen = {"names": names, "memory": ((1, "Q", "M", -50.0), (2, "Q", "X", -50.0), (3, "M", "X", -50.0))}
    assert _choose("scripted:best_response", seen) == "X"  # partners said X twice
    assert _choose("scripted:committed", seen, name="M") == "M"
    # The minimal player reads its inventory from its memory: a prefilled success knows only that name.
    assert {_choose("scripted:minimal", {"names": names, "memory": ((1, "Q", "Q", 100.0),)}, s)
            for s in range(20)} == {"Q"}
    # After failures it knows its own and the partners' names and says one of them.
    said = {_choose("scripted:minimal", {"names": names, "memory": ((1, "Q", "M", -50.0),)}, s) for s in range(40)}
    assert said == {"Q", "M"}
    with pytest.raises(ValueError, match="needs the name it says"):
        make_agent("scripted:committed", name="a", rng=np.random.default_rng(0))


def _config(tmp: Path, members: list[dict], **params: Any) -> dict:
    n = sum(m.get("count", 1) for m in members)
    return {"name": "naming-test", "seed": 4, "output_dir": str(tmp),
            "environment": {"id": "naming-game", "params": {"num_agents": n, **params}},
            "population": members, "matchmaking": {"kind": "population", "repetitions": 3},
            "llm": {"temperature": 0.5}}


def _events(cfg: dict) -> pd.DataFrame:
    rd, _ = run_experiment(parse_config(cfg), progress=False)
    return comparable(load_run(rd.path).events)


def _one_by_one(cfg: dict, models: dict | None = None) -> pd.DataFrame:
    """The config's episodes played with one pair per step (the same worlds, so the same seeds)."""
    config = parse_config(cfg)
    ctx = RunContext(run_id="x", seed=config.seed, llm=config.llm, models=models or {})

    async def play() -> list[pd.DataFrame]:
        out = []
        for spec in Society(config).phase(0):
            one = dataclasses.replace(spec, env_params={**spec.env_params, "max_pairs": 1})
            played = await play_episode(one, ctx)
            out.append(pd.DataFrame(played.events))
        return out

    frames = asyncio.run(play())
    ev = pd.concat(frames, ignore_index=True).sort_values(["phase", "episode", "round", "seat"], kind="stable")
    return ev


def _same(serial: pd.DataFrame, events: pd.DataFrame) -> None:
    cols = ["episode", "round", "seat", "agent", "partner", "policy", "action", "valid", "reward",
            "cumulative_reward", "info"]
    pd.testing.assert_frame_equal(serial[cols].reset_index(drop=True), events[cols].reset_index(drop=True),
                                  check_dtype=False)


MIXED = [{"name": "committed", "policy": "scripted:committed", "count": 2, "params": {"name": "M"}},
         {"name": "minimal", "policy": "scripted:minimal", "count": 4},
         {"name": "best", "policy": "scripted:best_response", "count": 4}]


def test_scripted_events_do_not_depend_on_pairs_per_step_or_episodes_in_flight(tmp_path: Path) -> None:
    params = {"names": ["Q", "M"], "prefill": "Q", "rounds": 20}
    many = _events(_config(tmp_path / "a", MIXED, **params))
    one = _events({**_config(tmp_path / "b", MIXED, **params), "runner": {"max_concurrent_episodes": 1}})
    pd.testing.assert_frame_equal(many, one)
    _same(_one_by_one(_config(tmp_path / "c", MIXED, **params)), many)
    # max_pairs is declared timing only: set in a config, it leaves the seeds and so the events as they were.
    pd.testing.assert_frame_equal(_events(_config(tmp_path / "d", MIXED, **params, max_pairs=1)), many)
    assert len(many) == 3 * 20 * 10 * 2
    committed = many[many["policy"] == "scripted:committed"]
    assert (committed["action"] == "M").all() and many["round"].max() == 199
    assert set(many.groupby(["episode", "round"]).size()) == {2}
    assert (many["partner"] != many["agent"]).all()


def test_language_model_players_over_http_same_events_one_pair_at_a_time_and_after_resume(tmp_path: Path) -> None:
    members = [{"name": "committed", "policy": "scripted:committed", "params": {"name": "Q"}},
               {"name": "player", "policy": "llm", "count": 5}]
    with FakeOpenAIServer("random", owned_by="vllm") as server:  # the names sent as vLLM structured outputs
        model = f"openai:fake@{server.base_url}"
        base = {**_config(tmp_path / "a", members, rounds=4), "model": model,
                "runner": {"flush_every_rows": 1}}
        rd, summary = run_experiment(parse_config(base), progress=False)
        run = load_run(rd.path)
        lm = run.events[run.events["policy"] == "llm"]
        assert summary["invalid_actions"] == 0 and len(lm) > 0 and lm["valid"].all()
        prompts = run.llm_calls["messages"]
        assert prompts.str.contains("It is now round").all() and prompts.str.contains("'value'").all()
        uncached = {**base, "llm": {"temperature": 0.5, "cache": False}}
        _same(_one_by_one(uncached, {model: make_model(model)}), run.events)
        copy = tmp_path / "copy" / rd.path.name
        shutil.copytree(rd.path, copy)
        removed = 0
        for folder in ("events", "episodes", "llm_calls"):
            for part in (copy / folder).glob("part-*.parquet"):
                episodes = pq.read_table(part, columns=["episode"]).column("episode").to_pylist()
                if episodes and min(episodes) >= 1:
                    part.unlink()
                    removed += 1
        assert removed >= 3
        (copy / "summary.json").unlink()
        resume_run(copy, progress=False)
    pd.testing.assert_frame_equal(comparable(load_run(copy).events), comparable(run.events))


def test_step_acting_reports_the_pairs_alone_and_step_adds_the_rest() -> None:
    narrow, full = make("naming-game", num_agents=500, rounds=2), make("naming-game", num_agents=500, rounds=2)
    narrow.reset(seed=9)
    full.reset(seed=9)
    steps = 0
    while narrow.agents:
        acting = narrow.acting_agents()
        assert acting == full.acting_agents() and len(acting) < len(narrow.agents)
        answers = {a: ("Q", "M")[int(a.rpartition("_")[2]) % 2] for a in acting}
        rewards, infos = narrow.step_acting(answers)
        assert list(rewards) == list(infos) == acting  # nothing of the other live agents
        live = list(full.agents)
        obs, all_rewards, terms, truncs, all_infos = full.step(answers)
        assert list(all_rewards) == list(all_infos) == list(obs) == list(terms) == list(truncs) == live
        assert {a: all_rewards[a] for a in acting} == rewards and {a: all_infos[a] for a in acting} == infos
        assert all(all_rewards[a] == 0.0 and all_infos[a] == {} for a in live if a not in rewards)
        assert all(np.array_equal(obs[a]["memory"], narrow.observe(a)["memory"]) for a in live)
        steps += 1
    assert full.agents == [] and narrow.played == full.played == 1000 and steps > 10
    assert narrow.episode_summary() == full.episode_summary()
