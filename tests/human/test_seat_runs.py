"""Runs with `policy: human` seats, played over HTTP by scripts: what is recorded is what was clicked."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pandas as pd
import pytest
from seat_helpers import by_round, pd_config, run_with_seats
from typer.testing import CliRunner

from societas.agents.factory import make_agent
from societas.agents.replay import REPLAY_POLICIES
from societas.analysis import load_run
from societas.cli import app
from societas.config import ConfigError, parse_config
from societas.human.testing import SKIP

pytest.importorskip("fastapi")
pytest.importorskip("uvicorn")

CLICKS = {"person-1": ["J", "F", "J", "J"], "person-2": ["F", "J", SKIP, "F"]}
# Long enough that a script's answer on a loaded machine is never late, short enough to wait out once.
IDLE_S = 2.0
LETTER = {0: "J", 1: "F"}


def _events(run_dir: Path) -> pd.DataFrame:
    ev = load_run(run_dir).events
    return ev.sort_values(["episode", "round", "seat"]).reset_index(drop=True)


def test_decisions_are_recorded_as_clicked_and_an_idle_seat_gets_the_default(tmp_path: Path) -> None:
    cfg = pd_config(tmp_path, timeout_s=IDLE_S)
    run_dir, logs = run_with_seats(cfg, {name: by_round(moves) for name, moves in CLICKS.items()})
    ev = _events(run_dir)
    people = ev[ev["policy"] == "human"]
    assert len(people) == 8 and set(people["policy_kind"]) == {"human"} and people["model"].isna().all()
    for name, moves in CLICKS.items():
        mine = people[people["agent"] == name].sort_values("round")
        assert [a.round for a in logs[name]] == [1, 2, 3, 4]  # every question was shown to the page
        expected = [m if m is not SKIP else "J" for m in moves]  # the default is canonical option 0, J
        assert mine["action"].tolist() == expected
        assert mine["valid"].tolist() == [m is not SKIP for m in moves]
        assert (mine["latency_s"] > 0).all() and (mine["retries"] == 0).all()
        skipped = mine[~mine["valid"]]
        assert (skipped["latency_s"] >= 0.9 * IDLE_S).all()  # answered by the clock, after the timeout
        # GPT-4 answered from its recorded table, given what the person played before
        gpt = ev[(ev["episode"] == mine["episode"].iloc[0]) & (ev["agent"] == "gpt4")].sort_values("round")
        history = [0 if a == "J" else 1 for a in mine["action"]]
        table = REPLAY_POLICIES["akata2023/pd_gpt4"]
        assert gpt["action"].tolist() == [LETTER[table.move(history[:r])] for r in range(4)]
    summary = load_run(run_dir).summary
    assert summary["agents"]["person-2"]["invalid"] == 1
    assert summary["non_language_model_agents"]["person-1"] == "human"


def test_the_page_shows_the_history_the_events_record(tmp_path: Path) -> None:
    seen: list[dict[str, Any]] = []

    def choose(q: dict[str, Any]) -> str:
        seen.append(q)
        return "FJJF"[q["round"] - 1]

    run_dir, _ = run_with_seats(pd_config(tmp_path, count=1), {"person": choose})
    ev = _events(run_dir)
    me = ev[ev["agent"] == "person"].sort_values("round")
    them = ev[ev["agent"] == "gpt4"].sort_values("round")
    last = seen[-1]
    assert last["round"] == 4 and last["rounds"] == 4
    assert [r["you"] for r in last["history_rows"]] == me["action"].tolist()[:3]
    assert [r["partner"] for r in last["history_rows"]] == them["action"].tolist()[:3]
    assert [r["your_points"] for r in last["history_rows"]] == me["reward"].tolist()[:3]
    assert last["score"]["you"] == me["reward"].iloc[:3].sum()
    # the page carries the agent's own text: rules, history and the question with its options
    assert last["rules"].startswith("You are playing a game repeatedly with another player.")
    assert "In round 3, you chose Option" in last["history"] and "You are currently playing round 4." in last["history"]
    assert last["question"].startswith("Which Option do you choose, Option")
    assert sorted(last["answer"]["choices"]) == ["F", "J"]
    assert last["matrix"]["cells"][0][1] == [0, 10]  # J against F: 0 for you, 10 for them


def test_same_clicks_give_the_same_events(tmp_path: Path) -> None:
    frames = []
    for i in range(2):
        run_dir, _ = run_with_seats(pd_config(tmp_path / str(i), timeout_s=IDLE_S),
                                    {name: by_round(moves) for name, moves in CLICKS.items()})
        frames.append(_events(run_dir).drop(columns=["run_id", "latency_s"]))
    pd.testing.assert_frame_equal(frames[0], frames[1])


def test_two_people_can_play_each_other(tmp_path: Path) -> None:
    data = pd_config(tmp_path).model_dump(mode="json")
    data["population"] = [{"name": "ann", "policy": "human"}, {"name": "bob", "policy": "human"}]
    data["matchmaking"] = {"kind": "round_robin", "self_play": False, "both_orders": False}
    cfg = parse_config(data)
    run_dir, _ = run_with_seats(cfg, {"ann": by_round(list("JJFJ")), "bob": by_round(list("FJJJ"))})
    ev = _events(run_dir)
    assert ev[ev["agent"] == "ann"]["action"].tolist() == list("JJFJ")
    assert ev[ev["agent"] == "bob"]["action"].tolist() == list("FJJJ")
    assert ev[ev["agent"] == "ann"]["reward"].tolist() == [0.0, 8.0, 10.0, 8.0]


def test_human_seats_are_refused_on_ray_and_with_bad_params(tmp_path: Path) -> None:
    data = pd_config(tmp_path).model_dump(mode="json")
    with pytest.raises(ConfigError, match=r"runner\.kind: policy human plays on the local runner only"):
        parse_config({**data, "runner": {"kind": "ray", "shards": 2}})
    bad = {**data, "population": [{**data["population"][0], "params": {"timeout": 3}}, data["population"][1]]}
    with pytest.raises(ConfigError, match=r"population\[0\]\.params\.timeout: unknown key"):
        parse_config(bad)
    with pytest.raises(ValueError, match="served by `societas run`"):
        import numpy as np

        make_agent("human", name="p", rng=np.random.default_rng(0))
    got = CliRunner().invoke(app, ["run", "akata_human", "--runner", "ray", "--out", str(tmp_path / "x")])
    assert got.exit_code == 2, got.output
    lines = got.output.strip().splitlines()
    assert len(lines) == 1 and "policy human plays on the local runner only" in lines[0]
    assert not (tmp_path / "x").exists()
