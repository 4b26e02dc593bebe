"""What the three peer measurements share: the workloads, the score check, the JSON record.

Standard library only: each framework imports this file from its own virtual
environment.

Workloads (iterated Prisoner's Dilemma, 10 rounds; the same in every framework):

- `2`: two players, one pair;
- `8`: eight players in four fixed disjoint pairs (players 0-1, 2-3, 4-5, 6-7),
  every player moves once per round, 8 decisions a round;
- `1000`: a society of 1,000 agents in 500 fixed disjoint pairs, each pair
  playing 10 rounds: 10,000 decisions.

A framework may repeat a workload (`games`) to time more than a few
milliseconds; decisions per second are over all repetitions.
"""

from __future__ import annotations

import datetime as _dt
import hashlib
import json
import os
import platform
import resource
import sys
from collections.abc import Mapping, Sequence
from typing import Any

ROUNDS = 10
WORKLOADS = {"2": 2, "8": 8, "1000": 1000}

COOPERATE, DEFECT = "C", "D"


def pairs(players: int) -> list[tuple[int, int]]:
    """Fixed disjoint pairs (0, 1), (2, 3), ... of a workload's players."""
    if players % 2:
        raise ValueError(f"players must be even, got {players}")
    return [(i, i + 1) for i in range(0, players, 2)]


def pick(text: str) -> str:
    """A deterministic pseudo-random move read off a hash of the text the player was shown."""
    digest = hashlib.blake2b(text.encode(), digest_size=8).digest()
    return COOPERATE if digest[0] & 1 == 0 else DEFECT


def rss_mib() -> float:
    """Peak resident set size of this process so far, in MiB (Linux reports KiB)."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def recompute(moves: Mapping[tuple[int, int], Sequence[str]], payoff: Mapping[tuple[str, str], tuple[float, float]]
              ) -> dict[int, float]:
    """Totals per player from the moves given: moves[(a, b)] = [(move of a, move of b), ...] per round."""
    totals: dict[int, float] = {}
    for (a, b), rounds in moves.items():
        for ma, mb in rounds:
            ra, rb = payoff[(ma, mb)]
            totals[a] = totals.get(a, 0.0) + ra
            totals[b] = totals.get(b, 0.0) + rb
    return totals


def score_check(expected: Mapping[Any, float], reported: Mapping[Any, float], *,
                misattributed: int = 0, checked_moves: int = 0, note: str = "") -> dict[str, Any]:
    """Compare the framework's final scores with those recomputed from the moves given."""
    wrong = sorted(str(k) for k in expected if abs(expected[k] - reported.get(k, float("nan"))) > 1e-9
                   or reported.get(k) is None)
    return {
        "players_checked": len(expected),
        "players_misscored": len(wrong),
        "examples": wrong[:5],
        "moves_checked": checked_moves,
        "moves_misattributed": misattributed,
        "ok": not wrong and not misattributed,
        "note": note,
    }


def conditions() -> dict[str, Any]:
    return {
        "python": platform.python_version(),
        "machine": f"{platform.machine()}, {os.cpu_count()} cores, {platform.system()} {platform.release()}",
        "date": _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"),
        "load_avg_1min": os.getloadavg()[0],
        "executable": sys.executable,
    }


def emit(record: dict[str, Any], out: str | None) -> None:
    """Print the record as one JSON line and, if asked, write it to `out`."""
    record = {**record, "conditions": conditions()}
    if record.get("wall_s"):
        record["decisions_per_s"] = record["decisions"] / record["wall_s"]
    if record.get("cpu_s"):
        record["decisions_per_cpu_s"] = record["decisions"] / record["cpu_s"]
    if record.get("decisions"):
        record["calls_per_decision"] = record["model_calls"] / record["decisions"]
    text = json.dumps(record, sort_keys=True)
    print(text)
    if out:
        with open(out, "w") as fh:
            fh.write(text + "\n")
