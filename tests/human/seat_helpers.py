"""Run a config with human seats in a thread and play its seats from scripts over HTTP."""

from __future__ import annotations

import threading
from collections.abc import Mapping
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

from societas.config import ExperimentConfig, parse_config
from societas.human.testing import Answered, Chooser, play_seat
from societas.runners.run import run_experiment


def pd_config(out: Path, *, rounds: int = 4, timeout_s: float = 30.0, count: int = 2,
              **extra: Any) -> ExperimentConfig:
    """`count` people, each playing one Prisoner's Dilemma against replayed GPT-4."""
    data = {
        "name": "seats", "seed": 3, "output_dir": str(out),
        "environment": {"id": "repeated-matrix-game", "params": {"game": "prisoners_dilemma", "rounds": rounds}},
        "population": [{"name": "person", "policy": "human", "count": count},
                       {"name": "gpt4", "policy": "replay:akata2023/pd_gpt4"}],
        "matchmaking": {"kind": "assigned", "assign": {"person": ["gpt4"]}},
        "human": {"timeout_s": timeout_s},
        **extra,
    }
    return parse_config(data)


def run_with_seats(cfg: ExperimentConfig, choosers: Mapping[str, Chooser]) -> tuple[Path, dict[str, list[Answered]]]:
    """Play `cfg`, each seat named in `choosers` answered by its function; the run directory and what each saw."""
    urls: dict[str, str] = {}
    ready = threading.Event()
    result: dict[str, Any] = {}

    def announce(found: Mapping[str, str]) -> None:
        urls.update(found)
        ready.set()

    def play() -> None:
        try:
            result["rd"], result["summary"] = run_experiment(cfg, progress=False, on_seats=announce)
        except BaseException as exc:
            result["error"] = exc
            ready.set()

    runner = threading.Thread(target=play, daemon=True)
    runner.start()
    assert ready.wait(60), "the seats were never served"
    if "error" in result:
        raise result["error"]
    with ThreadPoolExecutor(max_workers=len(choosers)) as pool:
        futures = {name: pool.submit(play_seat, urls[name], choose, timeout_s=120) for name, choose in choosers.items()}
        logs = {name: f.result() for name, f in futures.items()}
    runner.join(60)
    assert not runner.is_alive(), "the run did not finish once its seats were done"
    if "error" in result:
        raise result["error"]
    return result["rd"].path, logs


def by_round(moves: list[Any]) -> Chooser:
    """A chooser that plays moves[round - 1] (a letter, or SKIP) and answers any debrief with its first choice."""

    def choose(q: Mapping[str, Any]) -> Any:
        if q["kind"] == "debrief":
            return q["answer"]["choices"][0]
        return moves[q["round"] - 1]

    return choose
