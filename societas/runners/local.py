"""The local runner: plays a phase's episodes concurrently in one asyncio loop.

Within an episode, agents that act in the same step are asked together
(`asyncio.gather`), so their model calls overlap; across episodes, a fixed pool
of workers keeps at most `max_concurrent_episodes` in flight. Every random draw
comes from generators seeded by (run seed, phase, episode, seat), never from
scheduling order, so the events do not depend on which episode finished first.
"""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from societas.agents.factory import make_agent, policy_kind
from societas.agents.llm_agent import LLMAgentOptions
from societas.config import LLMConfig
from societas.environments import make as make_env
from societas.llm.base import ChatModel
from societas.runners.rundir import EPISODE_SCHEMA, EVENT_SCHEMA, LLM_CALL_SCHEMA
from societas.societies.society import EpisodeSpec, Seat
from societas.types import Action

_EVENT_COLUMNS = EVENT_SCHEMA.names
_CALL_COLUMNS = LLM_CALL_SCHEMA.names
_EPISODE_COLUMNS = EPISODE_SCHEMA.names


def episode_seed(seed: int, phase: int, episode: int) -> int:
    return int(np.random.SeedSequence(seed, spawn_key=(phase, episode)).generate_state(1)[0])


def agent_rng(seed: int, phase: int, episode: int, seat: int) -> np.random.Generator:
    return np.random.default_rng(np.random.SeedSequence(seed, spawn_key=(phase, episode, 1 + seat)))


@dataclass(slots=True)
class RunContext:
    """What every episode of a run shares: its id, seed, models and LLM settings."""

    run_id: str
    seed: int
    llm: LLMConfig
    models: dict[str, ChatModel] = field(default_factory=dict)

    def llm_options(self, seat: Seat) -> LLMAgentOptions:
        return LLMAgentOptions(
            persona=seat.persona,
            temperature=self.llm.temperature if seat.temperature is None else seat.temperature,
            max_tokens=self.llm.max_tokens,
            max_attempts=self.llm.max_attempts,
            social_chain_of_thought=seat.social_chain_of_thought,
            send_seed=self.llm.send_seed,
        )


@dataclass(slots=True)
class EpisodeOutput:
    """One episode's rows, column by column, ready to append to a Parquet part."""

    key: tuple[int, int]
    events: dict[str, list[Any]]
    calls: dict[str, list[Any]]
    episode: dict[str, list[Any]]
    decisions: int


def _text(value: Any) -> str | None:
    return None if value is None else str(value)


async def play_episode(spec: EpisodeSpec, ctx: RunContext) -> EpisodeOutput:
    """Play one episode to its end and return its events, model calls and per-seat totals.

    An environment may offer `acting_agents()` (only those decide this step; the
    others wait, e.g. recipients in the donor game) and `episode_summary()`
    (per-agent facts for the episodes table); plain PettingZoo envs need neither.
    """
    env = make_env(spec.env_id, **spec.env_params)
    env.reset(seed=episode_seed(ctx.seed, spec.phase, spec.index))
    seats = list(env.possible_agents)
    if len(seats) != len(spec.seats):
        raise ValueError(f"{spec.env_id} has {len(seats)} seats but the episode fills {len(spec.seats)}")
    seat_of = {a: i for i, a in enumerate(seats)}
    agents = {}
    for i, (a, seat) in enumerate(zip(seats, spec.seats, strict=True)):
        agents[a] = make_agent(
            seat.policy, name=seat.name, rng=agent_rng(ctx.seed, spec.phase, spec.index, i),
            model=ctx.models.get(seat.model) if seat.model else None,
            llm_options=ctx.llm_options(seat) if seat.policy == "llm" else None,
            params=seat.params or None,
        )
    kinds = {a: policy_kind(s.policy) for a, s in zip(seats, spec.seats, strict=True)}
    concurrent = any(k == "llm" for k in kinds.values())
    partner = ({seats[0]: spec.seats[1].name, seats[1]: spec.seats[0].name} if len(seats) == 2 else {})
    member = {a: s.name for a, s in zip(seats, spec.seats)}
    acting = getattr(env, "acting_agents", None)
    cumulative = dict.fromkeys(seats, 0.0)
    counts = dict.fromkeys(seats, 0)
    ev: dict[str, list[Any]] = {c: [] for c in _EVENT_COLUMNS}
    calls: dict[str, list[Any]] = {c: [] for c in _CALL_COLUMNS}
    run_id, phase, index, env_id = ctx.run_id, spec.phase, spec.index, spec.env_id
    decisions = 0
    while env.agents:
        live = list(env.agents) if acting is None else acting()
        obs = [env.decision(a) for a in live]
        if concurrent and len(live) > 1:
            actions: list[Action] = list(await asyncio.gather(*(agents[a].act(o) for a, o in zip(live, obs))))
        else:
            actions = [await agents[a].act(o) for a, o in zip(live, obs)]
        _, rewards, _, _, infos = env.step({a: act.value for a, act in zip(live, actions)})
        for a, r in rewards.items():
            cumulative[a] += float(r)
        for a, o, act in zip(live, obs, actions):
            reward = float(rewards.get(a, 0.0))
            counts[a] += 1
            info = infos.get(a, {})
            other = o.data.get("partner")
            agent = agents[a]
            ev["run_id"].append(run_id)
            ev["phase"].append(phase)
            ev["episode"].append(index)
            ev["env"].append(env_id)
            ev["game"].append(o.data.get("game"))
            ev["round"].append(o.round)
            ev["seat"].append(seat_of[a])
            ev["agent"].append(agent.name)
            ev["partner"].append(partner.get(a) if other is None else member.get(other, other))
            ev["policy"].append(agent.policy)
            ev["policy_kind"].append(kinds[a])
            ev["model"].append(act.model)
            ev["action"].append(_text(info.get("action", act.value)))
            value = act.value
            ev["value"].append(float(value) if isinstance(value, (int, float)) and not isinstance(value, bool)
                               else None)
            ev["option"].append(info.get("option"))
            ev["cooperated"].append(info.get("cooperated"))
            ev["prediction"].append(_text(act.prediction))
            ev["valid"].append(act.valid)
            ev["retries"].append(act.retries)
            ev["reward"].append(reward)
            ev["cumulative_reward"].append(cumulative[a])
            ev["latency_s"].append(act.latency_s)
            ev["prompt_tokens"].append(act.prompt_tokens)
            ev["completion_tokens"].append(act.completion_tokens)
            ev["cache_hit"].append(act.cache_hit)
            record = info.get("record")  # environment-specific facts of this decision, if any
            ev["info"].append(None if record is None else json.dumps(record, sort_keys=True, default=str))
            decisions += 1
            for c in act.calls:
                calls["run_id"].append(run_id)
                calls["phase"].append(phase)
                calls["episode"].append(index)
                calls["round"].append(o.round)
                calls["seat"].append(seat_of[a])
                calls["agent"].append(agent.name)
                calls["purpose"].append(c.purpose)
                calls["attempt"].append(c.attempt)
                calls["model"].append(c.model)
                calls["messages"].append(json.dumps(list(c.messages), ensure_ascii=False))
                calls["params"].append(json.dumps(dict(c.params), sort_keys=True))
                calls["reply"].append(c.reply)
                calls["error"].append(c.error)
                calls["latency_s"].append(c.latency_s)
                calls["prompt_tokens"].append(c.prompt_tokens)
                calls["completion_tokens"].append(c.completion_tokens)
                calls["cache_hit"].append(c.cache_hit)
    summary = env.episode_summary() if hasattr(env, "episode_summary") else {}
    env.close()
    ep: dict[str, list[Any]] = {c: [] for c in _EPISODE_COLUMNS}
    for i, (a, seat) in enumerate(zip(seats, spec.seats)):
        ep["run_id"].append(run_id)
        ep["phase"].append(phase)
        ep["episode"].append(index)
        ep["seat"].append(i)
        ep["agent"].append(seat.name)
        ep["policy"].append(seat.policy)
        ep["model"].append(seat.model)
        ep["total_reward"].append(cumulative[a])
        ep["decisions"].append(counts[a])
        ep["summary"].append(json.dumps(summary[a], sort_keys=True, default=str) if a in summary else None)
    return EpisodeOutput(key=spec.key, events=ev, calls=calls, episode=ep, decisions=decisions)


async def run_episodes(
    episodes: Iterable[EpisodeSpec],
    ctx: RunContext,
    *,
    max_concurrent: int,
    on_done: Callable[[EpisodeOutput], None],
) -> None:
    """Play episodes with at most `max_concurrent` in flight; report each as it finishes."""
    queue = iter(episodes)

    async def worker() -> None:
        for spec in queue:
            on_done(await play_episode(spec, ctx))

    workers = [asyncio.create_task(worker()) for _ in range(max_concurrent)]
    try:
        await asyncio.gather(*workers)
    except BaseException:
        for w in workers:
            w.cancel()
        await asyncio.gather(*workers, return_exceptions=True)
        raise


class Flusher:
    """Buffers finished episodes and writes them as Parquet parts, by time or size."""

    def __init__(self, write: Callable[[], None], *, every_s: float, every_rows: int) -> None:
        self._write = write
        self.every_s = every_s
        self.every_rows = every_rows
        self._last = time.monotonic()

    def maybe(self, rows: int) -> None:
        now = time.monotonic()
        if rows >= self.every_rows or (rows and now - self._last >= self.every_s):
            self._write()
            self._last = now
