"""The minimal naming game, simulated directly, as the baseline the paper compares with.

Each interaction a uniformly random speaker and a uniformly random other agent
(a complete graph) meet. The speaker says a random word of its inventory (a
random one of the W names when it is empty, which it then keeps). If the listener knows the word,
both keep only that word (success); otherwise the listener adds it (failure).
Committed agents always say their name and never change. The listener's answer
in the events is the speaker's word on a success and otherwise a word drawn the
same way from its own inventory (which is then, by definition, a different
one), so that success is "both said the same name" as in the paper's game.

A run stops after 3N consecutive successes or at the interaction budget. The
"swap" setup starts every non-committed agent with the established name only
and runs to its budget, as in the paper.
Everything is drawn from one generator seeded by the run's seed, so a seed
gives the same events every time.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd

from societas.environments.naming.rules import LETTERS, MATCH, MISMATCH, Inventory, pick


@dataclass(frozen=True, slots=True)
class MinimalNamingGame:
    """Parameters of one run of the minimal model.

    `committed` agents (the first ones) always say `committed_name`; with
    `swap`, every other agent starts knowing only `established`.
    """

    n_agents: int = 24
    names: Sequence[str] = LETTERS
    committed: int = 0
    committed_name: str | None = None
    swap: bool = False
    established: str | None = None
    budget: int = 100_000
    stop_after_rounds: int = 3

    def __post_init__(self) -> None:
        if len(self.names) < 2:
            raise ValueError("a naming game needs at least two names")
        if self.n_agents < 2:
            raise ValueError("a naming game needs at least two agents")
        if not 0 <= self.committed <= self.n_agents:
            raise ValueError("committed must lie between 0 and n_agents")
        if self.committed and self.committed_name not in self.names:
            raise ValueError("committed_name must be one of the names")
        if self.swap and self.established not in self.names:
            raise ValueError("the swap setup needs an established name among the names")


def simulate(game: MinimalNamingGame, seed: int, episode: int = 0) -> pd.DataFrame:
    """One run as an events frame (phase, episode, round, seat, agent, action,
    reward, policy), one round per interaction; +100 each on a match, -50 otherwise."""
    rng = np.random.default_rng(seed)
    n, names = game.n_agents, list(game.names)
    agents = [f"agent_{i}" for i in range(n)]
    start = [game.established] if game.swap else []
    inventories = [Inventory([game.committed_name] if i < game.committed else start) for i in range(n)]
    streak, window = 0, game.stop_after_rounds * n
    rows_agent: list[int] = []
    rows_action: list[str] = []
    rows_reward: list[float] = []
    for _ in range(game.budget):
        speaker = int(rng.integers(n))
        listener = int(rng.integers(n - 1))
        listener += listener >= speaker
        word = inventories[speaker].say(names, rng)  # a speaker with nothing to say invents the word and keeps it
        heard = inventories[listener]
        if word in heard.words:
            answer = word
            for who in (speaker, listener):
                if who >= game.committed:
                    inventories[who].success(word)
            streak += 1
        else:
            answer = pick(heard.words or names, rng)
            while answer == word:  # an empty inventory's random pick may coincide
                answer = pick(names, rng)
            if listener >= game.committed:
                heard.hear(word)
            streak = 0
        reward = MATCH if answer == word else MISMATCH
        rows_agent += [speaker, listener]
        rows_action += [word, answer]
        rows_reward += [reward, reward]
        if streak >= window and not game.swap:
            break
    count = len(rows_agent) // 2
    return pd.DataFrame({
        "phase": "play", "episode": episode,
        "round": np.repeat(np.arange(count), 2), "seat": np.tile([0, 1], count),
        "agent": [agents[i] for i in rows_agent], "action": rows_action, "reward": rows_reward,
        "policy": ["committed" if i < game.committed else "minimal" for i in rows_agent],
    })
