"""What one act of a scripted and a replay agent costs, in microseconds.

The figure depends on the machine and its load, so it is measured here and not
asserted in the test suite. Both agents answer from a lookup (a strategy's rule,
a recorded table); a few microseconds an act is the expected order.

Usage: python benchmarks/act_cost.py [--n 10000]
"""

from __future__ import annotations

import argparse
import asyncio
import time
from typing import Any

import numpy as np

from societas.agents.base import Agent
from societas.agents.replay import ReplayAgent
from societas.agents.scripted import ScriptedAgent
from societas.types import ActionSpec, Observation


def observation(game: str, own: tuple[int, ...], partner: tuple[int, ...], seat: int = 0) -> Observation:
    """The repeated matrix game's observation after the moves `own` and `partner` (0 = J, 1 = F)."""
    payoffs = ((8, 0), (10, 5)) if game == "prisoners_dilemma" else ((10, 0), (0, 7))
    data: dict[str, Any] = {
        "game": game, "seat": seat, "options": ("J", "F"), "own_history": own, "partner_history": partner,
        "own_rewards": tuple(payoffs[i][j] for i, j in zip(own, partner, strict=True)), "payoffs": payoffs,
        "partner_payoffs": tuple(zip(*payoffs, strict=True)), "rounds": 10,
        "cooperative_option": 0 if game == "prisoners_dilemma" else None,
    }
    return Observation(agent=f"player_{seat}", round=len(own) + 1, system="rules", prompt="Which option?",
                       spec=ActionSpec.choice(("F", "J")), data=data)


async def per_act_us(agent: Agent, obs: Observation, n: int) -> float:
    await agent.act(obs)  # a replay agent loads its table on the first act
    start = time.perf_counter()
    for _ in range(n):
        await agent.act(obs)
    return (time.perf_counter() - start) / n * 1e6


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=10_000, help="acts timed per agent")
    n = parser.parse_args().n
    cases = [
        ("scripted:win_stay_lose_shift", ScriptedAgent("a", "win_stay_lose_shift", np.random.default_rng(0)),
         observation("prisoners_dilemma", (0, 1), (1, 1))),
        ("replay:akata2023/bos_gpt4", ReplayAgent("a", "akata2023/bos_gpt4"),
         observation("battle_of_the_sexes", (0,) * 6, (0, 1, 1, 0, 0, 1), seat=1)),
    ]
    for name, agent, obs in cases:
        print(f"{name}: {asyncio.run(per_act_us(agent, obs, n)):.1f} µs per act")


if __name__ == "__main__":
    main()
