"""A society: a population, who meets whom, and the phases of episodes it plays.

A phase is a list of independent episodes; the society may change between
phases (selection, inheritance) but never during one, which is what lets a
phase run in any order, on any runner, and resume after a crash.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field
from typing import Any, Protocol

import numpy as np
import pandas as pd
import pyarrow as pa

from societas.config import AgentConfig, ExperimentConfig, member_names
from societas.environments.registry import world_params
from societas.societies.matchmaking import build_graph, round_robin


@dataclass(frozen=True, kw_only=True, slots=True)
class Seat:
    """Who sits in one seat of an episode and how they decide."""

    name: str
    policy: str
    model: str | None = None
    persona: str | None = None
    social_chain_of_thought: bool = False
    temperature: float | None = None
    reasoning: str | None = None
    sampling: str | None = None
    params: dict[str, Any] = field(default_factory=dict)


def identity_hash(*parts: Any) -> int:
    """A 64-bit number for a tuple of names and values (JSON, sorted keys): the same on every machine."""
    text = json.dumps(parts, sort_keys=True, default=str, separators=(",", ":"))
    return int.from_bytes(hashlib.blake2b(text.encode(), digest_size=8).digest(), "big")


@dataclass(frozen=True, kw_only=True, slots=True)
class EpisodeSpec:
    """Everything needed to play one episode, independent of every other episode.

    `index` orders the episodes of a phase (event rows, checkpoints, resume);
    `world` says what the episode is (game, variant, repetition) and seeds its
    randomness, so the environment's draws and each seat's generator do not
    move when members join or leave the schedule, and every player or observer
    compared in a study faces the same worlds (common random numbers). An empty
    `world` falls back to (phase, index).
    """

    phase: int
    index: int
    env_id: str
    env_params: dict[str, Any] = field(default_factory=dict)
    seats: tuple[Seat, ...]
    world: tuple[Any, ...] = ()

    @property
    def key(self) -> tuple[int, int]:
        return (self.phase, self.index)

    def world_key(self) -> int:
        """The hash of what the episode is; seeds the environment and (with seat and name) the agents."""
        return identity_hash(*(self.world or ("position", self.phase, self.index)))


def _seat(agent: AgentConfig, name: str, default_model: str | None) -> Seat:
    return Seat(
        name=name,
        policy=agent.policy,
        model=(agent.model or default_model) if agent.policy == "llm" else None,
        persona=agent.persona,
        social_chain_of_thought=agent.social_chain_of_thought,
        temperature=agent.temperature,
        reasoning=agent.reasoning,
        sampling=agent.sampling,
        params=dict(agent.params),
    )


class PhasedSociety(Protocol):
    """What a runner needs of a society: its phases, its members and models, and how it changes."""

    members: dict[str, Seat]

    @property
    def num_phases(self) -> int: ...

    def phase(self, phase: int) -> list[EpisodeSpec]: ...

    def update(self, phase: int, episodes: pd.DataFrame) -> pa.Table | None: ...

    def models(self) -> list[str]: ...


class Society:
    """The population of a config and the schedule it plays."""

    def __init__(self, config: ExperimentConfig) -> None:
        self.config = config
        self.members: dict[str, Seat] = {}
        for agent in config.active_population():
            for name in member_names(agent):
                self.members[name] = _seat(agent, name, config.model)

    @property
    def num_phases(self) -> int:
        return 1

    def phase(self, phase: int) -> list[EpisodeSpec]:
        """The episodes of one phase: every environment variant x every scheduled table
        (a pair of the round robin, or the whole population)."""
        cfg = self.config
        names = list(self.members)
        mm = cfg.matchmaking
        graph = None
        if mm.graph is not None:
            g = mm.graph
            graph = build_graph(names, g.kind, p=g.p, k=g.k, edges=g.edges,
                                seed=cfg.seed if g.seed is None else g.seed)
        if mm.kind == "assigned":
            return self._assigned(phase)
        if mm.kind == "population":
            tables = [tuple(names)] * mm.repetitions
        elif mm.kind == "solo":
            tables = [(n,) for _ in range(mm.repetitions) for n in names]
        else:
            tables = round_robin(names, self_play=mm.self_play, both_orders=mm.both_orders,
                                 repetitions=mm.repetitions, graph=graph)
        episodes: list[EpisodeSpec] = []
        for params in cfg.environment.variants():
            seen: dict[tuple[str, ...], int] = {}
            for table in tables:
                # The k-th meeting of this table is repetition k: the same world whoever else is scheduled.
                repetition = seen[tuple(table)] = seen.get(tuple(table), -1) + 1
                episodes.append(EpisodeSpec(
                    phase=phase, index=len(episodes), env_id=cfg.environment.id,
                    env_params=params, seats=tuple(self.members[n] for n in table),
                    world=("episode", phase, cfg.environment.id, world_params(cfg.environment.id, params), repetition),
                ))
        return episodes

    def assignment(self) -> dict[str, tuple[str, list[int]]]:
        """`matchmaking.assign`: member -> (its partner, the order of the environment variants it meets).

        Partners are dealt in balance: the group's members are put in a random
        order (seeded by the run seed and the group's name) and take the listed
        partners in turn, so each partner meets as many members as the others,
        give or take one. The variant order of each member comes from a
        generator seeded by the run seed and the member's name.
        """
        cfg = self.config
        n_variants = len(cfg.environment.variants())
        out = {}
        for agent in cfg.population:
            partners = cfg.matchmaking.assign.get(agent.name)
            if partners is None:
                continue
            names = [n for n in member_names(agent) if n in self.members]
            deal = np.random.default_rng(np.random.SeedSequence([cfg.seed, identity_hash("assign", agent.name)]))
            dealt = {names[int(i)]: partners[k % len(partners)] for k, i in enumerate(deal.permutation(len(names)))}
            for name in names:
                rng = np.random.default_rng(np.random.SeedSequence([cfg.seed, identity_hash("variants", name)]))
                order = (rng.permutation(n_variants).tolist() if cfg.matchmaking.shuffle_variants
                         else list(range(n_variants)))
                out[name] = (dealt[name], order)
        return out

    def _assigned(self, phase: int) -> list[EpisodeSpec]:
        """Member by member: its drawn partner in every variant, in the member's order, repetitions side by side."""
        cfg = self.config
        variants = cfg.environment.variants()
        episodes: list[EpisodeSpec] = []
        seen: dict[str, int] = {}
        for name, (partner, order) in self.assignment().items():
            for v in order:
                params = variants[v]
                for _ in range(cfg.matchmaking.repetitions):
                    # The k-th meeting of this pair in this variant: the same world for every member.
                    key = identity_hash(partner, name, params)
                    repetition = seen[key] = seen.get(key, -1) + 1
                    episodes.append(EpisodeSpec(
                        phase=phase, index=len(episodes), env_id=cfg.environment.id, env_params=params,
                        seats=(self.members[partner], self.members[name]),
                        world=("episode", phase, cfg.environment.id, world_params(cfg.environment.id, params),
                               repetition),
                    ))
        return episodes

    def update(self, phase: int, episodes: pd.DataFrame) -> pa.Table | None:
        """Change the society between phases from the phase's episodes table.

        Returns the phase's lineage rows for societies that evolve; a tournament
        has nothing to change.
        """
        return None

    def models(self) -> list[str]:
        return sorted({s.model for s in self.members.values() if s.model})


def make_society(config: ExperimentConfig) -> PhasedSociety:
    """The society a config describes: a tournament, or an evolving population."""
    if config.society.kind == "evolution":
        from societas.societies.evolution import EvolvingSociety

        return EvolvingSociety(config)
    return Society(config)
