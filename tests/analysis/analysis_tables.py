"""Tiny hand-built events frames for the metric tests, and where the study's logs live."""

from __future__ import annotations

from pathlib import Path

import pandas as pd

AKATA = Path(__file__).resolve().parents[2].parent / "shared" / "data" / "akata2023"

PD = {("C", "C"): (8.0, 8.0), ("C", "D"): (0.0, 10.0), ("D", "C"): (10.0, 0.0), ("D", "D"): (5.0, 5.0)}


def episode(a: str, b: str, moves_a: str, moves_b: str, *, ep: int, game: str = "pd",
            payoffs: dict | None = None, cooperative: bool = True, phase: int = 0) -> pd.DataFrame:
    """One two-player episode: `moves_*` are strings of C / D (option 0 / 1), seat 0 = a."""
    pay = payoffs or PD
    rows = []
    totals = [0.0, 0.0]
    for r, (ma, mb) in enumerate(zip(moves_a, moves_b), start=1):
        rewards = pay[(ma, mb)]
        for seat, (me, other, move) in enumerate(((a, b, ma), (b, a, mb))):
            totals[seat] += rewards[seat]
            rows.append({"phase": phase, "episode": ep, "round": r, "seat": seat, "agent": me, "partner": other,
                         "policy": me, "option": 0 if move == "C" else 1,
                         "cooperated": (move == "C") if cooperative else None,
                         "reward": rewards[seat], "cumulative_reward": totals[seat], "game": game,
                         "valid": True, "retries": 0})
    return pd.DataFrame(rows)


def pd_events() -> pd.DataFrame:
    """Episode 0: A (seat 0) CCDC vs B DCDD; episode 1: C (seat 0) DDC vs A CDC."""
    return pd.concat([episode("A", "B", "CCDC", "DCDD", ep=0), episode("C", "A", "DDC", "CDC", ep=1)],
                     ignore_index=True)
