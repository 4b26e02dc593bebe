"""Episodes whose every seat is a scripted strategy, played together as arrays.

A phase of a repeated 2x2 game between scripted members (a tournament, a
society on a graph) is thousands of episodes whose decisions cost a Python call
each. Here the episodes of one game and parameters advance round by round
together: all players of one strategy decide in one call of its batch form
(`agents.scripted_batch`), payoffs are looked up for every pair at once, and the
events come out as Arrow columns, not rows. The events, episodes rows and seeds
are those `local.play_episode` gives the same episodes (each seat's generator
is the one it would have had; the environment is reset from the episode's seed
where it draws letters), so a run gives the same events whichever path played
an episode; `runner.batch_scripted: false` turns the path off. Ray shards play
every episode one decision at a time (the same events).
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from typing import Any

import numpy as np
import pyarrow as pa

from societas.agents.scripted_batch import BatchForm, Histories, batch_form, win_threshold
from societas.environments import make as make_env
from societas.environments.matrix_game import RepeatedMatrixGame
from societas.runners.local import RunContext, agent_rng, episode_seed
from societas.runners.rundir import EPISODE_SCHEMA, EVENT_SCHEMA
from societas.societies.society import EpisodeSpec


@dataclass(slots=True)
class BatchOutput:
    """Whole episodes as Arrow tables, ready to be one Parquet part.

    The events' string columns are dictionary arrays (`EVENT_SCHEMA`'s strings, each held once).
    """

    keys: list[tuple[int, int]]
    events: pa.Table
    episodes: pa.Table


def _forms(spec: EpisodeSpec, memo: dict[tuple[str, ...], list[BatchForm] | None] | None = None
           ) -> list[BatchForm] | None:
    """Each seat's batch form, or None if any seat must decide alone; `memo` caches by policies."""
    key = None
    if memo is not None and not any(seat.params for seat in spec.seats):
        key = tuple(seat.policy for seat in spec.seats)
        if key in memo:
            return memo[key]
    forms: list[BatchForm] | None = []
    for seat in spec.seats:
        kind, _, name = seat.policy.partition(":")
        form = batch_form(name) if kind == "scripted" and not seat.params else None
        if form is None:
            forms = None
            break
        forms.append(form)
    if key is not None:
        memo[key] = forms  # type: ignore[index]
    return forms


def _params_key(params: dict[str, Any]) -> Any:
    try:
        key = tuple(sorted(params.items()))
        hash(key)
        return key
    except TypeError:  # lists or mappings among the values
        return json.dumps(params, sort_keys=True, default=repr)


def split(episodes: Iterable[EpisodeSpec]) -> tuple[list[list[EpisodeSpec]], list[EpisodeSpec]]:
    """Groups that can be played together (one game and parameters each), and the rest."""
    groups: dict[tuple[str, Any], list[EpisodeSpec]] = {}
    envs: dict[tuple[str, Any], bool] = {}
    rest = []
    memo: dict[tuple[str, ...], list[BatchForm] | None] = {}
    for spec in episodes:
        key = (spec.env_id, _params_key(spec.env_params))
        if key not in envs:
            try:
                env = make_env(spec.env_id, **spec.env_params)
            except Exception:  # the per-episode path reports it as it always has
                env = None
            envs[key] = type(env) is RepeatedMatrixGame
        if envs[key] and len(spec.seats) == 2 and _forms(spec, memo) is not None:
            groups.setdefault(key, []).append(spec)
        else:
            rest.append(spec)
    return list(groups.values()), rest


def _strings(values: list[str], index: np.ndarray) -> pa.Array:
    """values[index] as a dictionary column: the strings once, a code per row (the writer hashes nothing).

    Written to Parquet as the string column of `EVENT_SCHEMA` and read back as one (`rundir`).
    """
    unique = list(dict.fromkeys(values))
    code = {v: i for i, v in enumerate(unique)}
    codes = np.array([code[v] for v in values], dtype=np.int32)
    return pa.DictionaryArray.from_arrays(pa.array(codes[index]), pa.array(unique, pa.string()))


def play_group(specs: list[EpisodeSpec], ctx: RunContext, cache: dict[Any, pa.Array] | None = None
               ) -> BatchOutput:
    """Play episodes of one repeated matrix game (every seat with a batch form) together."""
    env = make_env(specs[0].env_id, **specs[0].env_params)
    if type(env) is not RepeatedMatrixGame:
        raise TypeError(f"{specs[0].env_id} is not a repeated matrix game; split() keeps it out of a batch")
    n_ep, rounds = len(specs), env.rounds
    players = 2 * n_ep
    p = env.payoffs
    own = (((p[0][0][0], p[0][1][0]), (p[1][0][0], p[1][1][0])),
           ((p[0][0][1], p[1][0][1]), (p[0][1][1], p[1][1][1])))
    pay = np.array([[[c[0] for c in row] for row in p], [[c[1] for c in row] for row in p]])  # [seat][a0][a1]
    h = Histories(moves=np.zeros((players, rounds), dtype=np.int8), rewards=np.zeros((players, rounds)),
                  win=np.tile([win_threshold(own[0]), win_threshold(own[1])], n_ep),
                  defected=np.zeros(players, dtype=bool))
    # Players by strategy, and the uniforms of those that draw, from each seat's own generator.
    by_form: dict[int, tuple[BatchForm, list[int]]] = {}
    names, policies, letters = [], [], []
    worlds: dict[int, int] = {}  # hashed only where an episode or seat draws

    def world(e: int) -> int:
        if e not in worlds:
            worlds[e] = specs[e].world_key()
        return worlds[e]

    memo: dict[tuple[str, ...], list[BatchForm] | None] = {}
    for e, spec in enumerate(specs):
        if env.random_letters:
            env.reset(seed=episode_seed(ctx.seed, world(e)))
        letters.extend(env.options)
        for s, (seat, form) in enumerate(zip(spec.seats, _forms(spec, memo) or [], strict=True)):
            by_form.setdefault(id(form), (form, []))[1].append(2 * e + s)
            names.append(seat.name)
            policies.append(seat.policy)
    plan = []
    for form, members in by_form.values():
        idx = np.array(members, dtype=np.intp)
        steps = [t for t in range(rounds) if form.draws(t)]
        uniforms = None
        if steps:
            uniforms = np.empty((len(idx), rounds))
            for row, player in enumerate(members):
                e, s = divmod(player, 2)
                gen = agent_rng(ctx.seed, world(e), s, specs[e].seats[s].name)
                uniforms[row, steps] = gen.random(len(steps))
        plan.append((form, idx, uniforms))
    options = np.empty(players, dtype=np.int8)
    partner = np.arange(players) ^ 1
    for t in range(rounds):
        for form, idx, uniforms in plan:
            options[idx] = form.decide(h, idx, t, None if uniforms is None else uniforms[:, t])
        a0, a1 = options[0::2], options[1::2]
        h.moves[:, t] = options
        h.rewards[0::2, t] = pay[0, a0, a1]
        h.rewards[1::2, t] = pay[1, a0, a1]
        h.defected |= options[partner] == 1
    return _output(specs, ctx, env, h, names, policies, letters, {} if cache is None else cache)


def _constant(cache: dict[Any, pa.Array], value: Any, n: int, type_: pa.DataType) -> pa.Array:
    """A column of n equal values (None: nulls), shared by the chunks of one play (arrays are immutable)."""
    key = (value, n, str(type_))
    if key not in cache:
        if value is None:
            cache[key] = pa.nulls(n, type_)
        elif type_ == pa.string():
            cache[key] = _strings([value], np.zeros(n, dtype=np.int32))
        else:
            cache[key] = pa.array([value], type_).take(pa.array(np.zeros(n, dtype=np.int64)))
    return cache[key]


def _output(specs: list[EpisodeSpec], ctx: RunContext, env: RepeatedMatrixGame, h: Histories,
            names: list[str], policies: list[str], letters: list[str], cache: dict[Any, pa.Array]) -> BatchOutput:
    n_ep, rounds = len(specs), env.rounds
    players = 2 * n_ep
    n = players * rounds
    # Rows in play_episode's order: episode, round, seat. player = 2 * episode + seat.
    player = (np.arange(n_ep)[:, None, None] * 2 + np.arange(2)[None, None, :]
              + np.zeros((1, rounds, 1), dtype=np.int64)).reshape(-1)
    t = np.broadcast_to(np.arange(rounds)[None, :, None], (n_ep, rounds, 2)).reshape(-1)
    option = h.moves[player, t]
    reward = h.rewards[player, t]
    cumulative = np.cumsum(h.rewards, axis=1)
    ep_index = player // 2
    coop = env.cooperative_option
    phases = np.array([s.phase for s in specs], dtype=np.int32)
    indices = np.array([s.index for s in specs], dtype=np.int32)
    columns = {
        "run_id": _constant(cache, ctx.run_id, n, pa.string()),
        "phase": pa.array(phases[ep_index]),
        "episode": pa.array(indices[ep_index]),
        "env": _constant(cache, specs[0].env_id, n, pa.string()),
        "game": _constant(cache, env.game_key, n, pa.string()),
        "round": pa.array((t + 1).astype(np.int32)),
        "seat": pa.array((player % 2).astype(np.int32)),
        "agent": _strings(names, player),
        "partner": _strings(names, player ^ 1),
        "policy": _strings(policies, player),
        "policy_kind": _constant(cache, "scripted", n, pa.string()),
        "action": _strings(letters, 2 * ep_index + option),
        "option": pa.array(option),
        "cooperated": _constant(cache, None, n, pa.bool_()) if coop is None else pa.array(option == coop),
        "valid": _constant(cache, True, n, pa.bool_()),
        "retries": _constant(cache, 0, n, pa.int16()),
        "reward": pa.array(reward),
        "cumulative_reward": pa.array(cumulative[player, t]),
        "latency_s": _constant(cache, 0.0, n, pa.float64()),
        "prompt_tokens": _constant(cache, 0, n, pa.int32()),
        "completion_tokens": _constant(cache, 0, n, pa.int32()),
        "cache_hit": _constant(cache, False, n, pa.bool_()),
    }
    events = pa.table([columns[f.name] if f.name in columns else _constant(cache, None, n, f.type)
                       for f in EVENT_SCHEMA], names=EVENT_SCHEMA.names)
    seat_player = np.arange(players)
    episodes = pa.table({
        "run_id": pa.array([ctx.run_id], pa.string()).take(pa.array(np.zeros(players, dtype=np.int64))),
        "phase": pa.array(phases[seat_player // 2]),
        "episode": pa.array(indices[seat_player // 2]),
        "seat": pa.array((seat_player % 2).astype(np.int32)),
        "agent": pa.array(names, pa.string()),
        "policy": pa.array(policies, pa.string()),
        "model": pa.nulls(players, pa.string()),
        "total_reward": pa.array(cumulative[:, -1]),
        "decisions": pa.array(np.full(players, rounds, dtype=np.int32)),
        "summary": pa.nulls(players, pa.string()),
    }, schema=EPISODE_SCHEMA)
    return BatchOutput(keys=[s.key for s in specs], events=events, episodes=episodes)


def play(groups: list[list[EpisodeSpec]], ctx: RunContext, *, max_rows: int) -> Iterator[BatchOutput]:
    """Every group, in chunks of whole episodes of about `max_rows` events each."""
    for specs in groups:
        rows = 2 * make_env(specs[0].env_id, **specs[0].env_params).rounds
        step = max(1, max_rows // rows)
        cache: dict[Any, pa.Array] = {}
        for i in range(0, len(specs), step):
            yield play_group(specs[i: i + step], ctx, cache)
