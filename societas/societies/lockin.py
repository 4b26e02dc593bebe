"""The lock-in model of Qiu et al. (2025): precision-weighted belief updates through a trust matrix.

N agents estimate hidden quantities (one per topic). Every round agent i gets a
private reading x_i ~ N(mu, sigma_i^2) of the truth, with precision
p_i = 1 / sigma_i^2, and combines it with the others' beliefs through a trust
matrix W (W[i, j] = the weight i gives j's belief):

    q_{t+1}          = p + W q_t                       (precisions)
    nu_{t+1} q_{t+1} = p x_{t+1} + W (nu_t q_t)        (means; products elementwise)

Precisions never depend on what anyone believes, only on W. If the spectral
radius rho(W) < 1 they converge to (I - W)^-1 p, every new reading keeps a
fixed share of the weight, and beliefs keep tracking the evidence (a truth
that moves is followed). If rho(W) > 1 they grow like rho^t, the readings'
share of the weight vanishes geometrically, and the collective belief freezes
where the early readings left it: diversity collapses and the consensus error
stays (lock-in). rho(W) = 1 is the knife edge where every reading weighs the same.

With one AI among N-1 humans, where humans trust the AI with lambda_1 and the AI
weighs each human with lambda_2 and nobody else is trusted, W is a star whose
eigenvalues are +-sqrt((N-1) lambda_1 lambda_2): lock-in iff (N-1) lambda_1 lambda_2 > 1.

This module is pure numpy (networkx for graphs). The `feedback-loop`
environment plays the same loop with agents; with `scripted:bayesian` humans
and a `scripted:aggregator` AI it reproduces `simulate` number for number,
because both draw the readings from `signal_stream(seed)`.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import networkx as nx
import numpy as np
from numpy.typing import ArrayLike

LOCK_IN_TOLERANCE = 1e-9
"""rho(W) must exceed 1 by more than this to count as lock-in (rho = 1 computed in floats is not)."""


def signal_stream(seed: int | None) -> np.random.Generator:
    """The generator of the private readings for `seed`: one standard normal per agent per round.

    Shared by `simulate` and the feedback-loop environment (which draws its other
    randomness from other spawn keys), so the two see the same readings.
    """
    return np.random.default_rng(np.random.SeedSequence(seed, spawn_key=(0,)))


def trust_matrix(
    graph: nx.Graph | int,
    lambda1: float,
    lambda2: float,
    *,
    human_weight: float = 0.0,
    self_weight: float = 0.0,
) -> np.ndarray:
    """W for N-1 humans (the graph's nodes, in graph order) and one AI (the last row and column).

    W[h, ai] = lambda1 (every human trusts the AI), W[ai, h] = lambda2 (the AI
    weighs every human), W[h, g] = human_weight / deg(h) for each neighbour g of
    h in `graph` (each human's peer trust sums to human_weight whatever its
    degree; self-loops are ignored), W[i, i] = self_weight (memory of one's own
    belief; 0 in the paper's star). The AI's weights are not normalised: it is
    as sure as everything it learns from taken together, which is what lets the
    loop amplify. An int `graph` means that many humans with no ties.
    """
    if isinstance(graph, (int, np.integer)) and not isinstance(graph, bool):
        graph = nx.empty_graph(int(graph))
    if not isinstance(graph, nx.Graph):
        raise TypeError(f"graph must be a networkx Graph over the humans or their number, got {graph!r}")
    for name, value in (("lambda1", lambda1), ("lambda2", lambda2), ("human_weight", human_weight),
                        ("self_weight", self_weight)):
        if not (isinstance(value, (int, float, np.integer, np.floating)) and math.isfinite(value) and value >= 0):
            raise ValueError(f"{name} must be a finite number >= 0, got {value!r}")
    nodes = list(graph.nodes)
    m = len(nodes)
    if m < 1:
        raise ValueError("the graph needs at least one human")
    index = {v: i for i, v in enumerate(nodes)}
    w = np.zeros((m + 1, m + 1))
    if human_weight:
        for v in nodes:
            peers = [index[u] for u in graph.neighbors(v) if u != v]
            if peers:
                w[index[v], peers] = human_weight / len(peers)
    w[:m, m] = lambda1
    w[m, :m] = lambda2
    w[np.diag_indices(m + 1)] = self_weight
    return w


def spectral_radius(w: ArrayLike) -> float:
    """The largest eigenvalue modulus of a square matrix."""
    a = np.asarray(w, dtype=float)
    if a.ndim != 2 or a.shape[0] != a.shape[1] or a.shape[0] == 0:
        raise ValueError(f"spectral_radius needs a non-empty square matrix, got shape {a.shape}")
    return float(np.max(np.abs(np.linalg.eigvals(a))))


def locks_in(w: ArrayLike, *, tolerance: float = LOCK_IN_TOLERANCE) -> bool:
    """Whether beliefs under trust matrix `w` lock in: rho(W) > 1 (beyond float rounding)."""
    return spectral_radius(w) > 1.0 + tolerance


def star_condition(n: int, lambda1: float, lambda2: float) -> float:
    """(n - 1) lambda1 lambda2 for n agents (n - 1 humans and the AI): rho(W)^2 of the pure star."""
    if isinstance(n, bool) or not isinstance(n, (int, np.integer)) or n < 2:
        raise ValueError(f"n must be an integer >= 2 (humans and the AI), got {n!r}")
    return (n - 1) * lambda1 * lambda2


def star_locks_in(n: int, lambda1: float, lambda2: float, *, tolerance: float = LOCK_IN_TOLERANCE) -> bool:
    """The lock-in condition of the star: (n - 1) lambda1 lambda2 > 1."""
    return star_condition(n, lambda1, lambda2) > 1.0 + tolerance


@dataclass(frozen=True, slots=True)
class Trajectory:
    """Beliefs over time from `simulate`.

    mean, precision: (rounds + 1, N, K), row 0 the state before any reading;
    observations: (rounds, N) each agent's reading on the round's topic (NaN
    for agents with no evidence); topic: (rounds,) the topic of each round;
    truth: (rounds, K) the truth each round.
    """

    mean: np.ndarray
    precision: np.ndarray
    observations: np.ndarray
    topic: np.ndarray
    truth: np.ndarray

    @property
    def stated(self) -> np.ndarray:
        """(rounds, N): every agent's belief mean on the round's topic after the round."""
        t = np.arange(1, len(self.topic) + 1)
        return self.mean[t, :, self.topic]

    @property
    def stated_precision(self) -> np.ndarray:
        """(rounds, N): every agent's precision on the round's topic after the round."""
        t = np.arange(1, len(self.topic) + 1)
        return self.precision[t, :, self.topic]

    @property
    def round_truth(self) -> np.ndarray:
        """(rounds,): the truth of each round's topic."""
        return self.truth[np.arange(len(self.topic)), self.topic]


def truth_path(mu: ArrayLike, rounds: int) -> np.ndarray:
    """(rounds, K) truths from a scalar, one value per topic (K,), or a path per round (rounds, K)."""
    a = np.asarray(mu, dtype=float)
    if a.ndim == 0:
        a = a.reshape(1)
    if a.ndim == 1:
        a = np.broadcast_to(a, (rounds, a.shape[0]))
    if a.ndim != 2 or a.shape[0] != rounds or a.shape[1] < 1:
        raise ValueError(f"mu must be a number, one value per topic, or an array (rounds={rounds}, topics); "
                         f"got shape {np.shape(mu)}")
    if not np.isfinite(a).all():
        raise ValueError("mu must be finite")
    return np.array(a)


def precisions(sigmas: ArrayLike, n: int) -> np.ndarray:
    """1 / sigma^2 per agent; sigma = inf (an agent without evidence) gives 0."""
    s = np.broadcast_to(np.asarray(sigmas, dtype=float), (n,))
    if np.isnan(s).any() or (s <= 0).any():
        raise ValueError("sigmas must be > 0 (inf for an agent without evidence)")
    return np.where(np.isinf(s), 0.0, 1.0 / np.where(np.isinf(s), 1.0, s) ** 2)


def simulate(
    w: ArrayLike,
    *,
    mu: ArrayLike,
    sigmas: ArrayLike,
    rounds: int,
    seed: int | None = None,
    bounds: tuple[float, float] | None = None,
    prior: float | None = None,
    release_every: int = 1,
) -> Trajectory:
    """Run the precision-weighted updates for `rounds` rounds.

    mu: the truth (see `truth_path`; K topics). With K > 1, round t concerns
    topic (t - 1) mod K alone, as in the feedback-loop environment: each topic
    is its own copy of the model on its own clock. sigmas: each agent's reading
    noise (N,), inf for none. bounds: clip readings (and beliefs, by float
    rounding only) into a scale, as the environment does; None for the plain
    Gaussian model. prior: the belief mean before any reading (weight 0;
    default the middle of `bounds`, else 0). release_every: the last agent (the
    AI) updates only on every release_every-th step of a topic and holds its
    belief in between. Readings: `signal_stream(seed)`, one standard normal per
    agent per round.
    """
    a = np.asarray(w, dtype=float)
    if a.ndim != 2 or a.shape[0] != a.shape[1] or a.shape[0] < 2:
        raise ValueError(f"w must be a square matrix of at least 2 agents, got shape {a.shape}")
    if not np.isfinite(a).all() or (a < 0).any():
        raise ValueError("w must hold finite, non-negative trust weights")
    if isinstance(rounds, bool) or not isinstance(rounds, (int, np.integer)) or rounds < 1:
        raise ValueError(f"rounds must be a positive integer, got {rounds!r}")
    if isinstance(release_every, bool) or not isinstance(release_every, (int, np.integer)) or release_every < 1:
        raise ValueError(f"release_every must be a positive integer, got {release_every!r}")
    n = a.shape[0]
    truth = truth_path(mu, rounds)
    k_topics = truth.shape[1]
    p = precisions(sigmas, n)
    sd = np.broadcast_to(np.asarray(sigmas, dtype=float), (n,))
    has = p > 0
    if bounds is not None:
        lo, hi = float(bounds[0]), float(bounds[1])
        if not lo < hi:
            raise ValueError(f"bounds must be (low, high) with low < high, got {bounds!r}")
    start = (0.0 if bounds is None else (lo + hi) / 2) if prior is None else float(prior)
    mean = np.empty((rounds + 1, n, k_topics))
    prec = np.empty((rounds + 1, n, k_topics))
    mean[0] = start
    prec[0] = 0.0
    obs = np.full((rounds, n), np.nan)
    topic = np.arange(rounds) % k_topics
    rng = signal_stream(seed)
    steps = np.zeros(k_topics, dtype=int)
    for t in range(rounds):
        k = topic[t]
        steps[k] += 1
        z = rng.standard_normal(n)
        x = np.where(has, truth[t, k] + np.where(has, sd, 0.0) * z, 0.0)
        if bounds is not None:
            x = np.clip(x, lo, hi)
        obs[t] = np.where(has, x, np.nan)
        q_old = prec[t, :, k]
        m_old = mean[t, :, k]
        q_new = p + a @ q_old
        num = p * x + a @ (q_old * m_old)
        m_new = np.divide(num, q_new, out=m_old.copy(), where=q_new > 0)
        if bounds is not None:
            m_new = np.clip(m_new, lo, hi)
        if steps[k] % release_every:
            q_new[-1], m_new[-1] = q_old[-1], m_old[-1]
        mean[t + 1] = mean[t]
        prec[t + 1] = prec[t]
        mean[t + 1, :, k] = m_new
        prec[t + 1, :, k] = q_new
    return Trajectory(mean=mean, precision=prec, observations=obs, topic=topic, truth=truth)


def summary(traj: Trajectory, *, humans: Any = slice(0, -1)) -> dict[str, np.ndarray]:
    """Per round: spread (std) of the humans' stated beliefs and the consensus error |mean - truth|."""
    stated = traj.stated[:, humans]
    return {
        "diversity": stated.std(axis=1),
        "consensus_error": np.abs(stated.mean(axis=1) - traj.round_truth),
    }
