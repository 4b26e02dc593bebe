"""The local runner: plays a phase's episodes concurrently in one asyncio loop.

Within an episode, agents that act in the same step are asked together
(`asyncio.gather`), so their model calls overlap; across episodes, a fixed pool
of episodes in flight follows the endpoints' adapted in-flight limits, or
`max_concurrent_episodes` where that is set. Every random draw
comes from generators seeded by the run seed and what the episode is (its
`world`: game, variant, repetition) with the seat and its member, never from
the episode's position or the scheduling order, so the events depend neither on
which episode finished first nor on who else is in the schedule.
"""

from __future__ import annotations

import asyncio
import json
import time
from collections import deque
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np
import pyarrow as pa

from societas.agents.base import Agent, EpisodeEnd
from societas.agents.factory import make_agent, policy_kind
from societas.agents.llm_agent import LLMAgentOptions
from societas.config import LLMConfig
from societas.environments import make as make_env
from societas.llm.base import ChatModel, message_json
from societas.llm.openai_backend import in_flight_capacity
from societas.runners.rundir import EPISODE_SCHEMA, EVENT_SCHEMA, LLM_CALL_SCHEMA
from societas.societies.society import EpisodeSpec, Seat, identity_hash
from societas.types import Action, Observation

if TYPE_CHECKING:
    from societas.human.hub import SeatHub

_EVENT_COLUMNS = EVENT_SCHEMA.names
_CALL_COLUMNS = LLM_CALL_SCHEMA.names
_EPISODE_COLUMNS = EPISODE_SCHEMA.names


def episode_seed(seed: int, world: int) -> int:
    """The environment's seed: the run seed and what the episode is (`EpisodeSpec.world_key`)."""
    return int(np.random.SeedSequence([seed, world]).generate_state(1)[0])


def agent_rng(seed: int, world: int, seat: int, name: str) -> np.random.Generator:
    """A seat's generator: the episode's world, the seat and the member in it, never the schedule position."""
    return np.random.default_rng(np.random.SeedSequence([seed, world, identity_hash(name)], spawn_key=(1 + seat,)))


@dataclass(slots=True)
class RunContext:
    """What every episode of a run shares: its id, seed, models and LLM settings, and its human seats."""

    run_id: str
    seed: int
    llm: LLMConfig
    models: dict[str, ChatModel] = field(default_factory=dict)
    humans: SeatHub | None = None
    _options: dict[LLMAgentOptions, LLMAgentOptions] = field(default_factory=dict)

    def llm_options(self, seat: Seat) -> LLMAgentOptions:
        """The seat's options; equal options are one shared object (a population's seats mostly share them)."""
        options = self._new_options(seat)
        return self._options.setdefault(options, options)

    def _new_options(self, seat: Seat) -> LLMAgentOptions:
        return LLMAgentOptions(
            persona=seat.persona,
            temperature=self.llm.temperature if seat.temperature is None else seat.temperature,
            max_tokens=self.llm.max_tokens,
            max_attempts=self.llm.max_attempts,
            social_chain_of_thought=seat.social_chain_of_thought,
            send_seed=self.llm.send_seed,
            reasoning=self.llm.reasoning if seat.reasoning is None else seat.reasoning,
            reasoning_max_tokens=self.llm.reasoning_max_tokens,
            sampling=self.llm.sampling if seat.sampling is None else seat.sampling,
        )


@dataclass(slots=True)
class EpisodeOutput:
    """One episode's rows, column by column, ready to append to a Parquet part."""

    key: tuple[int, int]
    events: dict[str, list[Any]] | pa.Table  # a table where the episode is large (see _EVENT_CHUNK)
    calls: dict[str, list[Any]]
    episode: dict[str, list[Any]]
    decisions: int


def _text(value: Any) -> str | None:
    return None if value is None else str(value)


# Encoders built once: json.dumps builds a new encoder on every call that passes options.
_encode_info = json.JSONEncoder(sort_keys=True, default=str).encode
_encode_params = json.JSONEncoder(sort_keys=True).encode

# The per-decision (per-call) columns in row order; run_id, phase, episode and env are per episode.
_EVENT_ROW = ("game", "round", "seat", "agent", "partner", "policy", "policy_kind", "model", "action", "value",
              "option", "cooperated", "prediction", "prediction_valid", "valid", "retries", "reward",
              "cumulative_reward", "latency_s", "prompt_tokens", "completion_tokens", "cache_hit", "info",
              "sampled_p")
_CALL_ROW = ("round", "seat", "agent", "purpose", "attempt", "model", "messages", "params", "reply", "error",
             "latency_s", "prompt_tokens", "completion_tokens", "cache_hit", "cached_tokens", "reasoning")


def _columns(names: tuple[str, ...], constants: dict[str, Any], row_names: tuple[str, ...],
             rows: list[tuple[Any, ...]]) -> dict[str, list[Any]]:
    """Rows (tuples in `row_names` order) turned into columns, constants repeated, in schema order."""
    n = len(rows)
    data = dict(zip(row_names, map(list, zip(*rows, strict=True)), strict=True)) if n else {}
    return {c: [constants[c]] * n if c in constants else data.get(c, []) for c in names}


_EVENT_CHUNK = 65_536
"""Event rows an episode keeps as tuples before it turns them into Arrow (a population's round is millions)."""


def _event_table(constants: dict[str, Any], rows: list[tuple[Any, ...]]) -> pa.Table:
    return pa.Table.from_pydict(_columns(_EVENT_COLUMNS, constants, _EVENT_ROW, rows), schema=EVENT_SCHEMA)


class _MessageEncoder:
    """The llm_calls `messages` column: JSON of each call's messages, as `json.dumps` writes the list.

    A message object seen again (an agent's system message, identical across an
    episode) is encoded once; the cache holds the object, so its id stays its own.
    """

    __slots__ = ("_seen",)

    def __init__(self) -> None:
        self._seen: dict[int, tuple[Any, str]] = {}

    def __call__(self, messages: tuple[Any, ...]) -> str:
        parts = []
        seen = self._seen
        for m in messages:
            hit = seen.get(id(m))
            if hit is not None and hit[0] is m:
                parts.append(hit[1])
                continue
            text = message_json(m)
            if m.get("role") == "system":
                seen[id(m)] = (m, text)
            parts.append(text)
        return "[" + ", ".join(parts) + "]"


async def play_episode(spec: EpisodeSpec, ctx: RunContext) -> EpisodeOutput:
    """Play one episode to its end and return its events, model calls and per-seat totals.

    An environment may offer `acting_agents()` (only those decide this step; the
    others wait, e.g. recipients in the donor game), with it `step_acting(actions)`
    (the acting agents' rewards and infos alone, so a step costs its acting agents,
    not the population; then `observe(agent)` gives a last observation on asking),
    and `episode_summary()` (per-agent facts for the episodes table); plain
    PettingZoo envs need none of them. Language-model and scripted agents are built
    at their first decision.
    Each decision appends one tuple; the columns are built once at the end, and
    values that are the same for the whole episode are not stored per row.
    """
    env = make_env(spec.env_id, **spec.env_params)
    world = spec.world_key()
    env.reset(seed=episode_seed(ctx.seed, world))
    seats = list(env.possible_agents)
    if len(seats) != len(spec.seats):
        raise ValueError(f"{spec.env_id} has {len(seats)} seats but the episode fills {len(spec.seats)}")
    seat_of = {a: i for i, a in enumerate(seats)}
    agents: dict[str, Agent] = {}
    # Per seat: (agent, seat index, agent name, policy, policy kind, its decide_now or None), the same in
    # every row of that seat.
    who: dict[str, tuple[Any, ...]] = {}

    def seated(a: str) -> tuple[Any, ...]:
        """The seat's agent and its row facts, built at its first decision (a million seats cost little
        before they play; the agent's generator is the seat's whenever it is built)."""
        found = who.get(a)
        if found is None:
            i = seat_of[a]
            seat = spec.seats[i]
            agent = agents.get(a)
            if agent is None:
                agent = agents[a] = _make_seat_agent(ctx, spec, world, i, seat)
            found = who[a] = (agent, i, agent.name, agent.policy, policy_kind(seat.policy),
                              getattr(agent, "decide_now", None))
        return found

    for i, (a, seat) in enumerate(zip(seats, spec.seats, strict=True)):
        if seat.policy != "llm" and policy_kind(seat.policy) != "scripted":
            # People and plug-in policies are built at once: they may wait for the episode's end (`finish`).
            agents[a] = _make_seat_agent(ctx, spec, world, i, seat)
    # Seats that wait on a model or a person are asked together, so their waits overlap.
    concurrent = any(policy_kind(p) in ("llm", "human") for p in {s.policy for s in spec.seats})
    partner = ({seats[0]: spec.seats[1].name, seats[1]: spec.seats[0].name} if len(seats) == 2 else {})
    acting = getattr(env, "acting_agents", None)
    # A game that can report the acting agents alone (`step_acting`) is stepped so: no per-step dicts of all.
    narrow = getattr(env, "step_acting", None) if acting is not None else None
    cumulative = dict.fromkeys(seats, 0.0)
    counts = dict.fromkeys(seats, 0)
    rows: list[tuple[Any, ...]] = []
    call_rows: list[tuple[Any, ...]] = []
    encode_messages = _MessageEncoder()
    # Encoded params by object; the entry holds the object, so its id cannot be reused meanwhile.
    params_seen: dict[int, tuple[Any, str]] = {}
    last_obs: dict[str, Any] = {}
    run_id, phase, index, env_id = ctx.run_id, spec.phase, spec.index, spec.env_id
    constants = {"run_id": run_id, "phase": phase, "episode": index, "env": env_id}
    chunks: list[pa.Table] = []  # a large episode's rows so far, as Arrow (far smaller than the tuples)
    decisions = 0
    while env.agents:
        live = list(env.agents) if acting is None else acting()
        facts = [seated(a) for a in live]
        obs = [env.decision(a) for a in live]
        # Decisions that need no wait are taken at once (`decide_now`): before any other agent of the
        # step starts, as gather would have them see the step, so the events are the same.
        ready = [None if f[5] is None else f[5](o) for f, o in zip(facts, obs)]
        waiting = [k for k, r in enumerate(ready) if r is None]
        if not waiting:
            actions = ready
        else:
            if concurrent and len(waiting) > 1:
                asked = await _act_together([facts[k][0] for k in waiting], [obs[k] for k in waiting])
            else:
                asked = [await facts[k][0].act(obs[k]) for k in waiting]
            actions = ready
            for k, act in zip(waiting, asked):
                actions[k] = act
        step_actions = {a: act.value for a, act in zip(live, actions)}
        if narrow is not None:
            rewards, infos = narrow(step_actions)
        else:
            last_obs, rewards, _, _, infos = env.step(step_actions)
        for a, r in rewards.items():
            cumulative[a] += float(r)
        for a, o, act, (_, seat_index, name, policy, kind, _) in zip(live, obs, actions, facts):
            counts[a] += 1
            info = infos.get(a, {})
            data = o.data
            other = data.get("partner")
            value = act.value
            record = info.get("record")  # environment-specific facts of this decision, if any
            if other is not None:
                j = seat_of.get(other)
                other = other if j is None else spec.seats[j].name
            rows.append((
                data.get("game"), o.round, seat_index, name,
                partner.get(a) if other is None else other,
                policy, kind, act.model, _text(info.get("action", value)),
                float(value) if isinstance(value, (int, float)) and not isinstance(value, bool) else None,
                info.get("option"), info.get("cooperated"), _text(act.prediction), act.prediction_valid,
                act.valid, act.retries,
                float(rewards.get(a, 0.0)), cumulative[a], act.latency_s, act.prompt_tokens,
                act.completion_tokens, act.cache_hit, None if record is None else _encode_info(record),
                act.sampled_p,
            ))
            for c in act.calls:
                params = c.params
                hit = params_seen.get(id(params))
                if hit is None or hit[0] is not params:
                    # Agents hand the same params object over while the parameters stay the same.
                    if len(params_seen) >= 1024:  # sampled replicates make new ones every call
                        params_seen.clear()
                    hit = params_seen[id(params)] = (params, _encode_params(
                        params if type(params) is dict else dict(params)))
                call_rows.append((
                    o.round, seat_index, name, c.purpose, c.attempt, c.model, encode_messages(c.messages),
                    hit[1], c.reply, c.error, c.latency_s, c.prompt_tokens, c.completion_tokens, c.cache_hit,
                    c.cached_tokens, c.reasoning,
                ))
        if len(rows) >= _EVENT_CHUNK:
            decisions += len(rows)
            chunks.append(_event_table(constants, rows))
            rows = []
    for agent in agents.values():  # models may free what they kept of the agents' conversations
        end = getattr(agent, "end_episode", None)
        if end is not None:
            end()
    summary = env.episode_summary() if hasattr(env, "episode_summary") else {}
    env.close()
    finishing = [a for a in agents if hasattr(agents[a], "finish")]
    if finishing:
        if narrow is not None:  # the last observations were never built; the game gives them on asking
            observe = getattr(env, "observe", None)
            last_obs = {} if observe is None else {a: observe(a) for a in finishing}
        ends = await asyncio.gather(*(agents[a].finish(EpisodeEnd(  # type: ignore[attr-defined]
            total_reward=cumulative[a], decisions=counts[a], observation=last_obs.get(a))) for a in finishing))
        summary = dict(summary)
        for a, extra in zip(finishing, ends):
            if extra:
                summary[a] = {**summary.get(a, {}), **extra}
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
        ep["summary"].append(_encode_info(summary[a]) if a in summary else None)
    return EpisodeOutput(
        key=spec.key,
        events=(pa.concat_tables([*chunks, _event_table(constants, rows)]) if chunks
                else _columns(_EVENT_COLUMNS, constants, _EVENT_ROW, rows)),
        calls=_columns(_CALL_COLUMNS, constants, _CALL_ROW, call_rows),
        episode=ep,
        decisions=decisions + len(rows),
    )


def _make_seat_agent(ctx: RunContext, spec: EpisodeSpec, world: int, i: int, seat: Seat) -> Agent:
    """The agent of seat i, with the seat's own generator."""
    if seat.policy == "human":
        return _human_agent(ctx, seat, spec)
    return make_agent(
        seat.policy, name=seat.name, rng=agent_rng(ctx.seed, world, i, seat.name),
        model=ctx.models.get(seat.model) if seat.model else None,
        llm_options=ctx.llm_options(seat) if seat.policy == "llm" else None,
        params=seat.params or None,
    )


def _human_agent(ctx: RunContext, seat: Seat, spec: EpisodeSpec) -> Agent:
    """A person's seat: its questions go to the run's seat server."""
    from societas.human.agent import HumanAgent
    from societas.human.params import human_params

    if ctx.humans is None:
        raise ValueError(f"agent {seat.name!r} has policy human but the run serves no seats")
    return HumanAgent(seat.name, ctx.humans, spec.key, human_params(seat.params))


async def _act_together(agents: list[Agent], observations: list[Observation]) -> list[Action]:
    """Every agent's act at once, in seat order, as `asyncio.gather` would run them.

    The first runs in this task and the others in tasks that start when it first
    waits, which is the order gather gives, with one task fewer per step.
    """
    tasks = [asyncio.ensure_future(agent.act(o)) for agent, o in zip(agents[1:], observations[1:])]
    try:
        first = await agents[0].act(observations[0])
        return [first, *[await t for t in tasks]]
    except BaseException:
        for t in tasks:
            if not t.done():
                t.cancel()
            elif not t.cancelled():
                t.exception()  # seen: the error raised here is the first one met
        raise


# Episodes in flight before any endpoint has a limit, and when no endpoint limits them (scripted agents).
EPISODES_UNLIMITED = 256
_RECHECK_S = 0.05  # how often a growing in-flight limit may admit more episodes between finishes


def episode_cap(max_concurrent: int | None) -> int:
    """Episodes to keep in flight: `max_concurrent` when set, else twice what the endpoints take at once.

    Following the endpoints' adapted limits keeps them fed without cutting a population's
    round into waves: an episode waiting for a slot costs little, a slot waiting for an
    episode costs a round trip.
    """
    if max_concurrent is not None:
        return max_concurrent
    capacity = in_flight_capacity()
    return EPISODES_UNLIMITED if capacity is None else max(EPISODES_UNLIMITED, 2 * capacity)


async def run_episodes(
    episodes: Iterable[EpisodeSpec],
    ctx: RunContext,
    *,
    max_concurrent: int | None,
    on_done: Callable[[EpisodeOutput], None],
) -> None:
    """Play episodes, at most `episode_cap(max_concurrent)` in flight; report each as it finishes."""
    queue = iter(episodes)
    exhausted = False
    pending: set[asyncio.Task[EpisodeOutput]] = set()
    finished: deque[asyncio.Task[EpisodeOutput]] = deque()
    wake = asyncio.Event()
    loop = asyncio.get_running_loop()

    def _finished(t: asyncio.Task[EpisodeOutput]) -> None:
        finished.append(t)
        wake.set()

    try:
        while True:
            cap = episode_cap(max_concurrent)
            while not exhausted and len(pending) < cap:
                spec = next(queue, None)
                if spec is None:
                    exhausted = True
                    break
                task = asyncio.create_task(play_episode(spec, ctx))
                task.add_done_callback(_finished)
                pending.add(task)
            if not pending:
                return
            if not finished:
                wake.clear()
                # A fixed cap changes only when an episode finishes; an adapted one may grow meanwhile.
                recheck = None if exhausted or max_concurrent is not None else loop.call_later(_RECHECK_S, wake.set)
                await wake.wait()
                if recheck is not None:
                    recheck.cancel()
            while finished:
                t = finished.popleft()
                pending.discard(t)
                on_done(t.result())
    except BaseException:
        for t in pending:
            t.cancel()
        await asyncio.gather(*pending, return_exceptions=True)
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
