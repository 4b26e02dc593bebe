"""The donor game's arithmetic: pairings, the trace chain, and one round of donations and sanctions."""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

import numpy as np

from societas.environments.base import read_number
from societas.environments.donor_game.params import REFUSE
from societas.environments.donor_game.prompts import _read_strategy, _units
from societas.types import ActionSpec

if TYPE_CHECKING:
    from societas.environments.donor_game.env import DonorGame

TraceEntry = tuple[int, str, float | None, str]
"""(round, donor, fraction, recipient): fraction >= 0 donated, < 0 spent punishing
(negated), None refused."""


class _Act:
    """One donor's action, linked to what its recipient had done before (the trace chain)."""

    __slots__ = ("entry", "line", "prev", "recipient_name")

    def __init__(self, entry: TraceEntry, line: str, prev: _Act | None, recipient_name: str) -> None:
        self.entry = entry
        self.line = line
        self.prev = prev
        self.recipient_name = recipient_name


class _Pending:
    """A donor's decision for the current round, built once and shared by decision() and step()."""

    __slots__ = ("prompt", "recipient", "spec", "trace")

    def __init__(self, recipient: int, prompt: str, spec: ActionSpec, trace: tuple[TraceEntry, ...]) -> None:
        self.recipient = recipient
        self.prompt = prompt
        self.spec = spec
        self.trace = trace


def _pairs(env: DonorGame, game: int, rnd: int) -> tuple[list[int], list[int]]:
    if env.pairing == "bipartite":
        a, b = env._halves
        h = len(a)
        idx = rnd % (2 * h)
        i = idx % h
        rotated = b[-i:] + b[:-i] if i else b
        if (i % 2 == 1) ^ (idx >= h) ^ (game % 2 == 1):
            return list(rotated), list(a)
        return list(a), list(rotated)
    rng = env._rng
    if env.pairing == "random":
        perm = rng.permutation(env._n).tolist()
        k = env._n // 2 * 2
        return perm[0:k:2], perm[1:k:2]
    # graph: a random maximal matching along the edges, each edge's roles drawn at random
    edges = env._edges
    if not edges:
        return [], []
    order = rng.permutation(len(edges)).tolist()
    flips = rng.integers(0, 2, size=len(edges)).tolist()
    free = [True] * env._n
    donors, recipients = [], []
    for e in order:
        u, v = edges[e]
        if free[u] and free[v]:
            free[u] = free[v] = False
            if flips[e]:
                u, v = v, u
            donors.append(u)
            recipients.append(v)
    return donors, recipients


def _trace(env: DonorGame, r: int) -> tuple[list[str], tuple[TraceEntry, ...]]:
    """Prompt lines and entries about recipient r: its last act, then its recipient's before that."""
    depth = env.trace_depth
    if not depth:
        return [], ()
    node = env._last[r]
    if node is None:
        return [f"{env.possible_agents[r]} did not have any previous interactions."], ()
    lines, entries = [], []
    while True:
        lines.append(node.line)
        entries.append(node.entry)
        if len(lines) >= depth:
            break
        if node.prev is None:
            lines.append(f"{node.recipient_name} did not have any previous interactions.")
            break
        node = node.prev
    return lines[:depth], tuple(entries)


def _round_step(env: DonorGame, actions: Mapping[str, Any], rewards: dict[str, float],
                infos: dict[str, dict[str, Any]]) -> None:
    ids = env.possible_agents
    res, rep, last = env._res, env._rep, env._last
    m = env.multiplier
    rnd = env._round + 1
    disc = env.reputation_discount
    ledger = env._ledger
    game = env._game
    played = []
    donors = env._donors
    # Read every action first: an invalid one raises before anything has moved.
    moves = [_read_action(env, ids[d], actions[ids[d]], res[d]) for d in donors]
    for d, r, (kind, x) in zip(donors, env._recipients, moves):
        a, b = ids[d], ids[r]
        before, res_r = res[d], res[r]
        seen = rep[r]
        env._times_donor[d] += 1
        if kind == "refuse":
            frac: float | None = None
            line = f"In round {rnd}, {a} refused to play with {b}."
            env._refusals_given[d] += 1
            env._refusals_received[r] += 1
            info: dict[str, Any] = {"kind": "refuse", "amount": 0.0, "fraction": None}
            infos[b] = {"kind": "refused", "donor": a, "received": 0.0}
        elif kind == "punish":
            cost = min(x * env.punish_cost, before)
            loss = min(x * env.punish_loss, res[r])
            res[d] = before - cost
            res[r] -= loss
            ledger[1] += cost
            ledger[2] += loss
            frac = -(cost / before) if before > 0 else 0.0
            line = (f"In round {rnd}, {a} punished {b} by spending {_units(cost)} units to take away "
                    f"{_units(loss)} units from their resources.")
            env._punish_given[d] += 1
            env._punish_spent[d] += cost
            env._punish_received[r] += 1
            env._punish_lost[r] += loss
            rewards[a] -= cost
            rewards[b] -= loss
            info = {"kind": "punish", "amount": -x, "fraction": frac, "spent": cost, "lost": loss}
            infos[b] = {"kind": "punished", "donor": a, "lost": loss, "received": 0.0}
        else:
            res[d] = before - x
            gain = m * x
            res[r] += gain
            ledger[0] += x
            frac = x / before if before > 0 else 1.0
            line = f"In round {rnd}, {a} donated {frac * 100:.2f}% of their resources to {b}."
            env._donated[d] += x
            env._received[r] += gain
            env._donations[d] += 1
            env._fraction_sum[d] += frac
            rewards[a] -= x
            rewards[b] += gain
            old = rep[d]
            if old is None:
                rep[d] = frac
            else:
                other = rep[r] or 0.0
                rep[d] = ((1.0 - abs(frac - other)) + disc * old) / (1.0 + disc)
            info = {"kind": "donate", "amount": x, "fraction": frac, "received": gain}
            infos[b] = {"kind": "received", "donor": a, "received": gain}
        info.update(recipient=b, resources=before, recipient_resources=res_r, recipient_reputation=seen,
                    game_index=game, round=rnd)
        infos[a] = {**info, "cooperated": kind == "donate" and x > 0, "record": info}
        last[d] = _Act((rnd, a, frac, b), line, last[r], b)
        played.append((d, r, kind, frac if frac is not None else 0.0))
    env._last_round = played
    env._game_done, env._round_done = env._game, rnd
    _advance(env)


def _read_action(env: DonorGame, agent: str, value: Any, res: float) -> tuple[str, float]:
    """("donate" | "punish" | "refuse", units), clipped into the decision's range."""
    choosing = env.variant == "partner_choice"
    if choosing and isinstance(value, str) and value.strip().rstrip(".").strip().lower().startswith(REFUSE):
        return "refuse", 0.0
    number = read_number(agent, value, expected="a number or 'refuse'" if choosing else "a number")
    if number < 0.0 and env.variant == "punishment":
        return "punish", min(-number, res / env.punish_cost)
    return "donate", min(max(number, 0.0), res)


def _draw_graph(env: DonorGame, rng: np.random.Generator) -> list[tuple[int, int]]:
    import networkx as nx

    n, kind, params = env._n, env.graph_kind, env.graph_params
    seed = int(rng.integers(2**32))
    if kind == "ring":
        graph = nx.cycle_graph(n)
    elif kind == "erdos_renyi":
        p = params["p"] if params["p"] is not None else min(1.0, 6.0 / (n - 1))
        graph = nx.fast_gnp_random_graph(n, p, seed=seed)
    else:
        graph = nx.watts_strogatz_graph(n, params["k"], params["p"], seed=seed)
    return sorted((min(u, v), max(u, v)) for u, v in graph.edges() if u != v)


def _strategy_step(env: DonorGame, actions: Mapping[str, Any], infos: dict[str, dict[str, Any]]) -> None:
    ids = env.possible_agents
    for i in env._writers:
        a = ids[i]
        reply = actions[a]
        if isinstance(reply, str):
            justification, strategy = _read_strategy(reply)
        else:
            justification, strategy = "", ""
        env._strategy[i] = strategy
        env._justification[i] = justification
        env._source[i] = "written" if strategy else "none"
        infos[a] = {"strategy": strategy, "record": {"kind": "strategy", "strategy": strategy,
                                                      "source": env._source[i]}}


def _advance(env: DonorGame) -> None:
    env._round += 1
    if env._round < env.rounds:
        env._new_round()
        return
    env._finals.append(list(env._res))
    env._final_reps.append(list(env._rep))
    env._game += 1
    if env._game >= env.games:
        env._phase = "over"
        env._acting = []
        env._donors, env._recipients = [], []
        env._recipient_of = {}
        env._pending.clear()
        return
    n = env._n
    env._res = [env.endowment] * n
    if not env.carry_reputation:
        env._rep = [None] * n
        env._last = [None] * n
    env._ledger = [0.0, 0.0, 0.0]
    env._round = 0
    env._new_round()
