"""The naming game's events against a record made before its engine was narrowed to the acting pairs.

`naming_events.json.gz` holds the events, episodes rows and model calls of
small seeded runs (scripted players with a prefilled memory, language-model
players under `sampling: distribution` on a ring, and under `sampling: reply`)
as the engine gave them when every step built rewards, infos and observations
for the whole population. The engine now touches only the pairs that act; the
runs must come out the same, byte for byte. `python
tests/environments/test_naming_events.py PATH` writes the record afresh.
"""

from __future__ import annotations

import gzip
import hashlib
import json
import sys
import tempfile
from pathlib import Path
from typing import Any

import pytest

from societas.analysis import load_run
from societas.analysis.load import comparable
from societas.config import parse_config
from societas.runners import local
from societas.runners.run import run_experiment

RECORD = Path(__file__).parent / "data" / "naming_events.json.gz"

CONFIGS: dict[str, dict[str, Any]] = {
    "scripted": {"params": {"num_agents": 10, "names": ["Q", "M", "X"], "memory": 3, "rounds": 6, "prefill": "Q"},
                 "population": [
                     {"name": "committed", "policy": "scripted:committed", "count": 2, "params": {"name": "M"}},
                     {"name": "minimal", "policy": "scripted:minimal", "count": 4},
                     {"name": "best", "policy": "scripted:best_response", "count": 4}], "llm": {}},
    "distribution": {"params": {"num_agents": 9, "names": ["F", "J"], "memory": 2, "rounds": 5, "show_rounds": False,
                                "graph": {"kind": "ring"}},
                     "population": [{"name": "minimal", "policy": "scripted:minimal", "count": 2},
                                    {"name": "player", "policy": "llm", "count": 7}],
                     "llm": {"sampling": "distribution", "temperature": 1.0, "cache": False}},
    "reply": {"params": {"num_agents": 6, "memory": 2, "rounds": 4},
              "population": [{"name": "player", "policy": "llm", "count": 6}],
              "llm": {"temperature": 0.5, "cache": False}},
}


def _rows(frame: Any) -> list[dict[str, Any]]:
    return json.loads(frame.to_json(orient="records"))


def played(name: str, **runner: Any) -> dict[str, list[dict[str, Any]]]:
    """One config's events, episodes rows and model calls (messages by digest), as JSON values."""
    c = CONFIGS[name]
    with tempfile.TemporaryDirectory() as d:
        cfg = parse_config({"name": f"naming-{name}", "seed": 11, "output_dir": d, "model": "fake:random",
                            "environment": {"id": "naming-game", "params": c["params"]},
                            "population": c["population"], "llm": c["llm"], "runner": runner,
                            "matchmaking": {"kind": "population", "repetitions": 2}}, source="naming events")
        rd, _ = run_experiment(cfg, progress=False)
        run = load_run(rd.path)
    calls = run.llm_calls.reindex(columns=["episode", "round", "seat", "messages", "reply"])
    calls["messages"] = [hashlib.blake2b(m.encode(), digest_size=8).hexdigest() for m in calls["messages"]]
    episodes = run.episodes[["episode", "seat", "agent", "policy", "total_reward", "decisions", "summary"]]
    return {"events": _rows(comparable(run.events)), "episodes": _rows(episodes), "calls": _rows(calls)}


@pytest.mark.parametrize(("name", "chunk"), [(name, None) for name in sorted(CONFIGS)] + [("scripted", 7)])
def test_events_are_those_recorded(name: str, chunk: int | None, monkeypatch: pytest.MonkeyPatch) -> None:
    if chunk is not None:  # an episode's rows turned into Arrow tables every few rows, as a large one's are
        monkeypatch.setattr(local, "_EVENT_CHUNK", chunk)
    with gzip.open(RECORD, "rt") as f:
        recorded = json.load(f)[name]
    now = played(name)
    if name == "distribution":
        # A shared call is recorded under whichever decision sent it, and which episode of those in
        # flight gets to a prompt first is timing (as with any server); the prompts asked and their
        # replies are the run's.
        for played_calls in (now, recorded):
            played_calls["calls"] = sorted(played_calls["calls"], key=lambda c: (c["messages"], c["reply"]))
            for c in played_calls["calls"]:
                del c["episode"], c["round"], c["seat"]
    for table in ("events", "episodes", "calls"):
        assert len(now[table]) == len(recorded[table]), table
        for i, (a, b) in enumerate(zip(now[table], recorded[table], strict=True)):
            assert a == b, f"{table} row {i}"


if __name__ == "__main__":
    with gzip.open(sys.argv[1], "wt") as out:
        json.dump({k: played(k) for k in CONFIGS}, out)
