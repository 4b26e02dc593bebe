"""A run with a person stopped by Ctrl-C between games and resumed: the same clicks give the events of
a run that never stopped; the resumed run serves a new link and asks only what is left."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

import pandas as pd
import pytest
import yaml

from societas.analysis import load_run
from societas.human.testing import SKIP, play_seat

pytest.importorskip("fastapi")

REPO = Path(__file__).resolve().parents[2]
CONFIG = {
    "name": "seat-resume", "seed": 2,
    "environment": {"id": "repeated-matrix-game", "params": {"rounds": 3},
                    "vary": {"game": ["prisoners_dilemma", "battle_of_the_sexes"]}},
    "population": [{"name": "person", "policy": "human"}, {"name": "gpt4", "policy": "replay:akata2023/gpt4"}],
    "matchmaking": {"kind": "assigned", "assign": {"person": ["gpt4"]}},
    "runner": {"flush_every_s": 0.01},
}
MOVES = {"pd": "JFF", "bos": "FJF"}


def _game(q: dict[str, Any]) -> str:
    return "pd" if q["matrix"]["cells"][0][0] == [8, 8] else "bos"  # J/J pays the person 8 in the PD, 7 in BoS


def _cli(*args: str) -> subprocess.Popen[str]:
    env = dict(os.environ, PYTHONPATH=os.pathsep.join(filter(None, [str(REPO), os.environ.get("PYTHONPATH")])))
    return subprocess.Popen([sys.executable, "-m", "societas.cli", *args, "--quiet"], stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT, text=True, env=env)


def _url(proc: subprocess.Popen[str]) -> str:
    assert proc.stdout is not None
    for line in proc.stdout:
        m = re.fullmatch(r"seat person: (\S+)\n", line)
        if m:
            return m.group(1)
    raise AssertionError(f"no seat link (exit {proc.wait()})")


def _choose(stop_at: str | None, reached: threading.Event) -> Any:
    def choose(q: dict[str, Any]) -> Any:
        game = _game(q)
        if game == stop_at:
            reached.set()
            return SKIP
        return MOVES[game][q["round"] - 1]

    return choose


def _events(run_dir: Path) -> pd.DataFrame:
    return load_run(run_dir).events.drop(columns=["run_id", "latency_s"])


def test_a_resumed_run_with_a_person_gives_the_uninterrupted_events(tmp_path: Path) -> None:
    config = tmp_path / "resume.yaml"
    config.write_text(yaml.safe_dump(CONFIG))
    # the reference: both games in one go
    whole = _cli("run", str(config), "--out", str(tmp_path / "whole"))
    play_seat(_url(whole), _choose(None, threading.Event()), timeout_s=120)
    out = whole.communicate(timeout=60)[0]
    assert whole.returncode == 0, out
    reference = Path(re.search(r"run directory: (\S+)", out).group(1))
    # stopped by Ctrl-C once the first game is over and the second has asked its first question
    first = _cli("run", str(config), "--out", str(tmp_path / "split"))
    reached = threading.Event()
    player = threading.Thread(target=play_seat, args=(_url(first), _choose("bos", reached)), kwargs={"timeout_s": 60})
    player.start()
    assert reached.wait(60)
    deadline = time.monotonic() + 60
    while not list((tmp_path / "split").glob("*/events/part-*.parquet")):  # the first game is on disk
        assert time.monotonic() < deadline, "the first game was never written"
        time.sleep(0.05)
    first.send_signal(signal.SIGINT)
    out = first.communicate(timeout=60)[0]
    player.join(60)
    assert first.returncode == 130, out
    run_dir = Path(re.search(r"societas resume (\S+?)`", out).group(1))
    assert load_run(run_dir).events["game"].unique().tolist() == ["prisoners_dilemma"]
    # the resume serves a new link and asks only the second game
    again = _cli("resume", str(run_dir))
    log = play_seat(_url(again), _choose("pd", threading.Event()), timeout_s=120)
    out = again.communicate(timeout=60)[0]
    assert again.returncode == 0, out
    assert [a.round for a in log] == [1, 2, 3] and not any(a.skipped for a in log)
    pd.testing.assert_frame_equal(_events(run_dir), _events(reference))
