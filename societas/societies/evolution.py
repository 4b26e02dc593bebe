"""Cultural evolution: generations of a population that plays, is selected, and reproduces.

Each phase is one generation. Every society (independent copies side by side,
each with its own lineage) plays one episode with its whole population seated;
then the best (or random, or most reputable) members survive and the vacated
seats are filled by newcomers who inherit from the survivors: language-model
newcomers are shown the survivors' strategies when they write their own
(Vallinder & Hughes 2024); scripted newcomers copy a survivor's parameters,
optionally mutated.

The next generation is computed from the phase's episodes table alone, with a
generator seeded by (run seed, generation, society), so a resumed run rebuilds
exactly the same societies.

The environment must accept the parameters `generation`, `strategies`
(agent id -> kept strategy text), `new_agents` and `inherited_strategies`, and
report each agent's `strategy` (and `reputation`, for reputation selection) in
`episode_summary()`; the donor game does.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, replace
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa

from societas.config import ExperimentConfig, member_names
from societas.environments import make as make_env
from societas.societies.society import EpisodeSpec, Seat, _seat

LINEAGE_SCHEMA = pa.schema([
    ("phase", pa.int32()),
    ("society", pa.int32()),
    ("seat", pa.int32()),
    ("agent", pa.string()),
    ("policy", pa.string()),
    ("params", pa.string()),
    ("strategy", pa.string()),
    ("born", pa.int32()),
    ("parents", pa.string()),
    ("total_reward", pa.float64()),
    ("survived", pa.bool_()),
])


@dataclass(frozen=True, kw_only=True, slots=True)
class Member:
    """A seat's occupant in one generation, with where it came from."""

    seat: Seat
    strategy: str | None = None
    born: int = 0
    parents: tuple[str, ...] = ()


def _mutate(seat: Seat, rng: np.random.Generator, scale: float) -> dict[str, Any]:
    if scale <= 0 or not seat.policy.startswith("scripted:"):
        return dict(seat.params)
    from societas.agents.donor import DONOR_STRATEGIES, mutate

    name = seat.policy.partition(":")[2]
    if name not in DONOR_STRATEGIES:
        return dict(seat.params)
    return dict(mutate(name, seat.params, rng, scale))


class EvolvingSociety:
    """Generations of `society.societies` independent populations."""

    def __init__(self, config: ExperimentConfig) -> None:
        self.config = config
        self.settings = config.society
        seats = [_seat(a, n, config.model) for a in config.active_population() for n in member_names(a)]
        if len(seats) < 2:
            raise ValueError("an evolving society needs at least two members")
        self.env_params = dict(config.environment.params)
        probe = make_env(config.environment.id, **self.env_params)
        self.agent_ids = list(probe.possible_agents)
        probe.close()
        if len(self.agent_ids) != len(seats):
            raise ValueError(f"{config.environment.id} seats {len(self.agent_ids)} agents but the population "
                             f"has {len(seats)} members; set the environment's num_agents to match")
        self.members: dict[str, Seat] = {s.name: s for s in seats}
        self.populations: list[list[Member]] = [
            [Member(seat=s) for s in seats] for _ in range(self.settings.societies)]
        self.inherited: list[list[str]] = [[] for _ in range(self.settings.societies)]

    @property
    def num_phases(self) -> int:
        return self.settings.generations

    def models(self) -> list[str]:
        return sorted({m.seat.model for pop in self.populations for m in pop if m.seat.model})

    def phase(self, phase: int) -> list[EpisodeSpec]:
        episodes = []
        for s, population in enumerate(self.populations):
            ids = self.agent_ids
            params = dict(
                self.env_params,
                generation=phase + 1,  # generations are numbered from 1 in prompts, as in the paper
                strategies={ids[i]: m.strategy for i, m in enumerate(population) if m.strategy is not None},
                new_agents=[ids[i] for i, m in enumerate(population) if m.strategy is None],
                inherited_strategies=list(self.inherited[s]),
            )
            episodes.append(EpisodeSpec(phase=phase, index=s, env_id=self.config.environment.id,
                                        env_params=params, seats=tuple(m.seat for m in population),
                                        world=("generation", phase, "society", s)))
        return episodes

    def _rng(self, phase: int, society: int) -> np.random.Generator:
        # A spawn key of another length than the episodes' and agents' keys.
        return np.random.default_rng(np.random.SeedSequence(self.config.seed, spawn_key=(phase, society, 0, 0)))

    def _survivors(self, rows: pd.DataFrame, rng: np.random.Generator) -> list[int]:
        n = len(rows)
        keep = max(1, round(n * self.settings.survivor_fraction))
        order = rng.permutation(n)  # random tie-breaking, drawn whatever the rule
        if self.settings.selection == "random":
            return sorted(order[:keep].tolist())
        if self.settings.selection == "reputation":
            score = np.array([json.loads(x or "{}").get("reputation") or 0.0 for x in rows["summary"]])
        else:
            score = rows["total_reward"].to_numpy(dtype=float)
        ranked = sorted(order.tolist(), key=lambda i: -score[i])  # stable: ties keep the random order
        return sorted(ranked[:keep])

    def update(self, phase: int, episodes: pd.DataFrame) -> pa.Table:
        """Select survivors of each society and seat newcomers; return this generation's lineage."""
        lineage: list[dict[str, Any]] = []
        for s, population in enumerate(self.populations):
            rows = episodes[episodes["episode"] == s].sort_values("seat").reset_index(drop=True)
            if len(rows) != len(population):
                raise RuntimeError(f"generation {phase}, society {s}: {len(rows)} seats on disk, "
                                   f"{len(population)} expected")
            rng = self._rng(phase, s)
            survivors = self._survivors(rows, rng)
            summaries = [json.loads(x) if x else {} for x in rows["summary"]]
            strategies = [m.strategy or summaries[i].get("strategy") for i, m in enumerate(population)]
            for i, m in enumerate(population):
                lineage.append({
                    "phase": phase, "society": s, "seat": i, "agent": m.seat.name, "policy": m.seat.policy,
                    "params": json.dumps(m.seat.params, sort_keys=True), "strategy": strategies[i],
                    "born": m.born, "parents": ",".join(m.parents),
                    "total_reward": float(rows.loc[i, "total_reward"]), "survived": i in survivors,
                })
            kept = {i: replace(population[i], strategy=strategies[i]) for i in survivors}
            next_population: list[Member] = []
            for i in range(len(population)):
                if i in kept:
                    next_population.append(kept[i])
                    continue
                parent = population[survivors[int(rng.integers(len(survivors)))]]
                seat = replace(parent.seat, name=f"g{phase + 1}-s{i}",
                               params=_mutate(parent.seat, rng, self.settings.mutation))
                parents = (tuple(population[j].seat.name for j in survivors) if seat.policy == "llm"
                           else (parent.seat.name,))
                next_population.append(Member(seat=seat, born=phase + 1, parents=parents))
            self.populations[s] = next_population
            texts = [strategies[i] for i in survivors if strategies[i]]
            cap = self.settings.max_inherited_strategies
            if len(texts) > cap:
                texts = [texts[i] for i in sorted(rng.choice(len(texts), cap, replace=False).tolist())]
            self.inherited[s] = texts
        return pa.Table.from_pylist(lineage, schema=LINEAGE_SCHEMA)
