"""The feedback loop's dynamics apart from the precision update: truths, the contact graph, a round's
readings and consults, and reading an action."""

from __future__ import annotations

import math
import re
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

import numpy as np

from societas.environments.base import read_number
from societas.environments.feedback_loop.params import _SPACE, AI, MAX_STATEMENT, NUMBER

if TYPE_CHECKING:
    from societas.environments.feedback_loop.env import FeedbackLoop

_READ = re.compile(r"\s*(" + NUMBER + r")\s*(?:\|\s*(.*))?", re.DOTALL)


def _draw_truth(env: FeedbackLoop, rng: np.random.Generator) -> np.ndarray:
    lo, hi = env.scale
    width = hi - lo
    k = env.topics
    start = (rng.uniform(lo + 0.2 * width, hi - 0.2 * width, size=k) if env.truth_given is None
             else np.asarray(env.truth_given, dtype=float))
    if not env.drift:
        return np.tile(start, (env.rounds, 1))
    steps = rng.normal(0.0, env.drift, size=(env.rounds, k))
    steps[0] = 0.0
    path = np.empty((env.rounds, k))
    cur = start.copy()
    for t in range(env.rounds):
        cur = np.clip(cur + steps[t], lo, hi)
        path[t] = cur
    return path


def _build_graph(env: FeedbackLoop, rng: np.random.Generator) -> None:
    import networkx as nx

    m, kind, params = env._m, env.graph, env.graph_params
    seed = int(rng.integers(2**32))
    if kind == "none":
        g = nx.empty_graph(m)
    elif kind == "complete":
        g = nx.complete_graph(m)
    elif kind == "ring":
        g = nx.cycle_graph(m)
    elif kind == "erdos_renyi":
        g = nx.fast_gnp_random_graph(m, params["p"], seed=seed)
    else:
        g = nx.watts_strogatz_graph(m, params["k"], params["p"], seed=seed)
    env._graph_obj = g
    src, dst, wt = [], [], []
    neighbours: list[list[int]] = []
    for v in range(m):
        peers = sorted(u for u in g.neighbors(v) if u != v)
        neighbours.append(peers)
        if peers and env.human_weight:
            src += [v] * len(peers)
            dst += peers
            wt += [env.human_weight / len(peers)] * len(peers)
    env._neighbours = neighbours
    env._src = np.asarray(src, dtype=np.intp)
    env._dst = np.asarray(dst, dtype=np.intp)
    env._wt = np.asarray(wt, dtype=float)
    if not len(wt):
        # W = self_weight I + a star whose eigenvalues are +-sqrt(m lambda1 lambda2).
        env._rho = env.self_weight + math.sqrt(m * env.lambda1 * env.lambda2)
    elif m <= 2000:
        env._rho = float(np.max(np.abs(np.linalg.eigvals(env.trust_matrix()))))
    else:
        env._rho = None


def _begin_round(env: FeedbackLoop) -> None:
    """Draw the round's readings (and consults), aggregate peers, decide who acts."""
    signal_rng, _, social_rng, _ = env._streams
    t = env._round
    k = t % env.topics
    env._topic = k
    n, m = env._m + 1, env._m
    z = signal_rng.standard_normal(n)
    lo, hi = env.scale
    x = np.clip(env._truth[t, k] + env._sd * z, lo, hi)
    env._reading = x
    env._last_reading[env._has, k] = x[env._has]
    if env.consult_prob < 1.0:
        env._consulted = (social_rng.random(m) < env.consult_prob).astype(float)
    q, nu = env._prec[:m, k], env._stance[:m, k]
    if len(env._wt):
        env._peer_prec = np.bincount(env._src, weights=env._wt * q[env._dst], minlength=m)
        env._peer_sum = np.bincount(env._src, weights=env._wt * q[env._dst] * nu[env._dst], minlength=m)
    if env.show_peers:
        env._shown_peers = {}
        for i, peers in enumerate(env._neighbours):
            if len(peers) > env.show_peers:
                pick = social_rng.choice(len(peers), size=env.show_peers, replace=False)
                env._shown_peers[i] = tuple(peers[j] for j in sorted(pick))
            else:
                env._shown_peers[i] = tuple(peers)
    env._release = (env._steps[k] + 1) % env.release_every == 0
    env._acting = env.possible_agents[:m] + ([AI] if env._release else [])


def _read_action(agent: str, value: Any) -> tuple[float, str | None]:
    """(stance, statement or None) from a number, a "STANCE | sentence" string or a dict."""
    statement: Any = None
    if isinstance(value, Mapping):
        statement = value.get("statement")
        value = value.get("stance")
        if statement is not None and not isinstance(statement, str):
            raise ValueError(f"invalid statement {statement!r} for {agent}: expected text")
    if isinstance(value, str):
        match = _READ.fullmatch(value)
        if match is None:
            raise ValueError(f"invalid action {value!r} for {agent}: expected a number or 'NUMBER | sentence'")
        if match.group(2) is not None:
            statement = match.group(2)
        value = match.group(1)
    number = read_number(agent, value)
    if statement is not None:
        statement = _SPACE.sub(" ", statement).strip()[:MAX_STATEMENT] or None
    return number, statement
