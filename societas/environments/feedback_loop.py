"""A human-AI feedback loop (Qiu et al. 2025, the lock-in hypothesis) as a PettingZoo parallel env.

`num_humans` humans ("human_0", ...) and one AI ("ai", the last seat) hold
stances on `topics` questions, each a number on the scale [low, high] (default
0 to 10). Every question has a hidden truth (drawn from the seed unless given;
it may drift as a random walk). Round t concerns question (t - 1) mod topics:
every human gets a private noisy reading of its truth, sees the AI's current
answer (with probability `consult_prob`) and, where a contact graph is given,
what its neighbours said, and states a stance; the AI is re-fitted on the
humans' stated stances of the latest `window` steps of that question, every
step or only every `release_every`-th (a "release"; in between it does not act
and its answer stands). The AI acts in the same step as the humans, so its
answer in round t is fitted on the stances of the question's previous step:
the synchronous update of the formal model (`societas.societies.lockin`).

Precision bookkeeping. Precisions follow the formal model whatever anyone
says: q_{t+1} = p + W_t q_t, with W the trust matrix (humans trust the AI with
`lambda1`, the AI weighs each human with `lambda2`, each human splits
`human_weight` over its neighbours, everybody keeps `self_weight` of their own
belief; a human who did not consult the AI this round gives it no weight, and
the AI's row is held between releases). Stances are what the agents say. So a
`scripted:bayesian` human, which applies nu = (p x + W (nu q)) / q to the
fields of its decision, and a `scripted:aggregator` AI reproduce
`lockin.simulate(env.trust_matrix(), mu=env.truth, sigmas=env.sigmas,
rounds=env.rounds, seed=SEED, bounds=env.scale, release_every=env.release_every)`
number for number, with consult_prob = 1 and window = 1 (readings come from
the spawn key of `lockin.signal_stream`; truths, consults and graphs from others).

Readings are clipped into the scale (a reading is a point on the scale), so
every precision-weighted belief stays on it. Stances outside the scale are
clipped; the record says so.

Actions (per acting agent): the stance as a number (or numeric string), or,
with `statements=True`, "STANCE | one sentence" (the LLM answer after
"Answer:", a regex ActionSpec) or {"stance": x, "statement": text}. A human's
decision data carries what the formal update needs: its belief and precision,
its reading and the reading's precision, the AI's answer and precision, the
lambdas, and its neighbours' precision-weighted beliefs summed
(`peer_precision`, `peer_evidence`). The AI's decision data carries the
window's stated stances and precisions as (steps, humans) arrays.

Infos "record" (stored with every event): role, topic, step, stance,
statement, observation (the reading), truth, precision, consulted and the AI
answer seen (humans), release (AI), clipped. Rewards: minus the distance of
the stated stance from the truth (agents are not told it). The episode
summary gives each seat its final stances, the truths, distances, the final
spread of human stances, the consensus error and the loop's parameters
(coupling (N-1) lambda1 lambda2 and spectral radius).
"""

from __future__ import annotations

import functools
import math
import re
from collections import deque
from collections.abc import Mapping, Sequence
from typing import Any, ClassVar

import numpy as np
from gymnasium import spaces

from societas.environments.base import GameEnv
from societas.environments.params import check_flag as _flag
from societas.environments.params import check_int as _int
from societas.environments.params import check_one_of as _one_of
from societas.environments.params import check_real as _real
from societas.environments.params import fmt_number as _num
from societas.types import ActionSpec, Observation

GAME = "feedback-loop"
"""The value of data["game"] in every decision."""
AI = "ai"
GRAPHS: dict[str, dict[str, Any]] = {
    "none": {},
    "complete": {},
    "ring": {},
    "erdos_renyi": {"p": 0.1},
    "watts_strogatz": {"k": 4, "p": 0.1},
}
QUESTIONS = (
    "How much should cities favour public transport over private cars?",
    "How strictly should governments regulate artificial intelligence?",
    "How much of the school day should go to practical skills rather than academic subjects?",
    "How far should working from home replace working in an office?",
    "How much should a country rely on nuclear power for its electricity?",
    "How much should social media platforms moderate what their users post?",
    "How much should rich countries spend on foreign aid?",
    "How much should cities restrict short-term holiday rentals?",
)
"""Default questions, in topic order (more topics than these are "Question k")."""
MAX_STATEMENT = 300
"""Longest statement kept (longer ones are cut)."""
NUMBER = r"[-+]?\d+(?:\.\d+)?(?:[eE][-+]?\d+)?"
STATEMENT_PATTERN = NUMBER + r" *\| *[^\n|]+"
"""The answer with statements=True: "STANCE | one sentence" (after "Answer:")."""
ANSWER_MARKER = "Answer:"
STATEMENT_DESCRIPTION = ('your stance as a number, then "|", then one sentence on one line, '
                         'e.g. "Answer: 6.5 | The readings point slightly upwards."')
"""What a statement looks like, in the words a retry prompt shows the model."""

_READ = re.compile(r"\s*(" + NUMBER + r")\s*(?:\|\s*(.*))?", re.DOTALL)
_SPACE = re.compile(r"\s+")

StepResult = tuple[
    dict[str, dict[str, Any]], dict[str, float], dict[str, bool], dict[str, bool], dict[str, dict[str, Any]]
]


class FeedbackLoop(GameEnv):
    """Humans and one AI that learns from them: belief diversity and lock-in (see the module docstring).

    num_humans: humans "human_0" .. ; the AI "ai" sits last.
    topics / questions: number of questions, and their texts (default `QUESTIONS`).
    rounds: steps of the episode (each about one question, in turn).
    scale: (low, high) of stances and readings.
    truth: the hidden truth, one number or one per topic (default: drawn from the
        seed, uniform on the middle 60% of the scale); drift: sd of its random-walk
        step per round (kept within the scale).
    sigma: the humans' reading noise (one number, or one per human);
        ai_sigma: the AI's (None: the AI gets no evidence of its own).
    lambda1, lambda2, self_weight, human_weight, graph, graph_params: the trust
        matrix (see `lockin.trust_matrix`); graph is over the humans: "none" (the
        paper's star), "complete", "ring", "erdos_renyi" (p), "watts_strogatz" (k, p).
    consult_prob: chance a human sees the AI's answer in a round.
    release_every: the AI is re-fitted on every release_every-th step of a question.
    window: steps of stated stances the AI is re-fitted on.
    statements: ask for "STANCE | one sentence" instead of a number.
    show_peers: neighbours' statements shown in a human's prompt (needs a graph).
    ai_context: human statements shown in the AI's prompt (a seeded sample).
    prior: everyone's stance before any evidence (default the scale's middle).
    """

    metadata: ClassVar[dict[str, Any]] = {
        "name": "feedback_loop_v0", "render_modes": ["ansi"], "is_parallelizable": True,
    }

    def __init__(
        self,
        num_humans: int = 9,
        *,
        topics: int = 1,
        questions: Sequence[str] | None = None,
        rounds: int = 50,
        scale: Sequence[float] = (0.0, 10.0),
        truth: float | Sequence[float] | None = None,
        drift: float = 0.0,
        sigma: float | Sequence[float] = 1.0,
        ai_sigma: float | None = None,
        lambda1: float = 0.5,
        lambda2: float = 0.1,
        self_weight: float = 0.0,
        human_weight: float = 0.0,
        graph: str = "none",
        graph_params: Mapping[str, Any] | None = None,
        consult_prob: float = 1.0,
        release_every: int = 1,
        window: int = 1,
        statements: bool = False,
        show_peers: int = 0,
        ai_context: int = 20,
        prior: float | None = None,
        render_mode: str | None = None,
    ) -> None:
        self._m = _int("num_humans", num_humans, 1)
        self.topics = _int("topics", topics, 1)
        self.rounds = _int("rounds", rounds, 1)
        self.scale = _scale(scale)
        lo, hi = self.scale
        self.questions = _questions(questions, self.topics)
        self.truth_given = None if truth is None else _truth(truth, self.topics, self.scale)
        self.drift = _real("drift", drift, 0.0)
        self.sigmas = _sigmas(sigma, self._m, ai_sigma)
        self.lambda1 = _real("lambda1", lambda1, 0.0)
        self.lambda2 = _real("lambda2", lambda2, 0.0)
        self.self_weight = _real("self_weight", self_weight, 0.0)
        self.human_weight = _real("human_weight", human_weight, 0.0)
        self.graph = _one_of("graph", graph, tuple(GRAPHS))
        self.graph_params = _graph_params(self.graph, graph_params, self._m)
        self.consult_prob = _real("consult_prob", consult_prob, 0.0)
        if self.consult_prob > 1.0:
            raise ValueError(f"consult_prob must be a probability in [0, 1], got {consult_prob!r}")
        self.release_every = _int("release_every", release_every, 1)
        self.window = _int("window", window, 1)
        self.statements = _flag("statements", statements)
        self.show_peers = _int("show_peers", show_peers, 0)
        self.ai_context = _int("ai_context", ai_context, 0)
        self.prior = (lo + hi) / 2 if prior is None else _real("prior", prior, -math.inf)
        if not lo <= self.prior <= hi:
            raise ValueError(f"prior must lie on the scale [{_num(lo)}, {_num(hi)}], got {prior!r}")
        if render_mode not in (None, "ansi"):
            raise ValueError(f"render_mode must be None or 'ansi', got {render_mode!r}")
        self.render_mode = render_mode

        m = self._m
        self.possible_agents = [*(f"human_{i}" for i in range(m)), AI]
        self._index = {a: i for i, a in enumerate(self.possible_agents)}
        sd = np.asarray(self.sigmas, dtype=float)
        self._sd = np.where(np.isinf(sd), 0.0, sd)
        self._p = np.where(np.isinf(sd), 0.0, 1.0 / np.where(np.isinf(sd), 1.0, sd) ** 2)
        self._has = self._p > 0
        self._system_human = _human_system(self)
        self._system_ai = _ai_system(self)
        if self.statements:
            self._spec = ActionSpec(kind="regex", pattern=STATEMENT_PATTERN, answer_marker=ANSWER_MARKER,
                                    default=f"{self.prior!r} | No answer.", description=STATEMENT_DESCRIPTION)
        else:
            self._spec = ActionSpec.real(lo, hi, default=self.prior, answer_marker=ANSWER_MARKER)

        self.agents: list[str] = []
        self._streams: list[np.random.Generator] | None = None
        self._graph_obj: Any = None
        self._src = self._dst = np.zeros(0, dtype=np.intp)
        self._wt = np.zeros(0)
        self._neighbours: list[list[int]] = [[] for _ in range(m)]
        self._rho: float | None = None
        self._reset_state()

    # -- PettingZoo API -------------------------------------------------------

    @functools.cached_property
    def observation_spaces(self) -> dict[str, spaces.Space]:  # type: ignore[override]
        """round: the round about to be played (rounds + 1 once over); topic: its question;
        stance: the agent's stance per question; ai_answer: the AI's per question;
        evidence: the agent's latest reading on this round's question (the prior if none)."""
        lo, hi = self.scale
        k = self.topics
        space = spaces.Dict({
            "round": spaces.Discrete(self.rounds + 2),
            "topic": spaces.Discrete(k),
            "stance": spaces.Box(lo, hi, shape=(k,), dtype=np.float64),
            "ai_answer": spaces.Box(lo, hi, shape=(k,), dtype=np.float64),
            "evidence": spaces.Box(lo, hi, shape=(), dtype=np.float64),
        })
        return dict.fromkeys(self.possible_agents, space)

    @functools.cached_property
    def action_spaces(self) -> dict[str, spaces.Space]:  # type: ignore[override]
        """The stance on this round's question (clipped to the scale)."""
        lo, hi = self.scale
        space = spaces.Box(lo, hi, shape=(), dtype=np.float64)
        return dict.fromkeys(self.possible_agents, space)

    def reset(
        self, seed: int | None = None, options: dict[str, Any] | None = None
    ) -> tuple[dict[str, dict[str, Any]], dict[str, dict[str, Any]]]:
        """Start an episode; a seed fixes truths, readings, consults and graph, None continues the streams."""
        if seed is not None or self._streams is None:
            root = np.random.SeedSequence(seed)
            self._streams = [np.random.default_rng(np.random.SeedSequence(root.entropy, spawn_key=(i,)))
                             for i in range(4)]
        _, truth_rng, _, graph_rng = self._streams
        self._reset_state()
        self._truth = self._draw_truth(truth_rng)
        self._build_graph(graph_rng)
        self.agents = list(self.possible_agents)
        self._begin_round()
        return self._observe_all(), {a: {} for a in self.agents}

    def step(self, actions: dict[str, Any]) -> StepResult:
        """Play one round: the humans' stances and, on a release, the AI's answer; others' actions are ignored."""
        if not self.agents:
            raise RuntimeError("the episode is over (or never started); call reset() first")
        if not isinstance(actions, Mapping):
            raise ValueError(f"step() takes a dict agent -> action, got {type(actions).__name__}")
        for a in actions:
            if a not in self._index:
                raise ValueError(f"step() got an action for unknown agent {a!r}; agents are human_0 .. "
                                 f"human_{self._m - 1} and ai")
        missing = [a for a in self._acting if a not in actions]
        if missing:
            shown = ", ".join(missing[:5]) + (" ..." if len(missing) > 5 else "")
            raise ValueError(f"step() needs an action for every acting agent; missing: {shown}")
        m, k, t = self._m, self._topic, self._round
        lo, hi = self.scale
        # Read every action first: an invalid one raises before anything has moved.
        acting = self._acting
        read = [self._read_action(a, actions[a]) for a in acting]
        stance, prec = self._stance[:, k], self._prec[:, k]
        q_old = prec.copy()
        truth = float(self._truth[t, k])
        # Precisions: q = p + W_t q_old (see the module docstring), in O(N + edges).
        q_new = self._p.copy()
        q_new[:m] += self.self_weight * q_old[:m] + self._consulted * (self.lambda1 * q_old[m]) + self._peer_prec
        release = self._release
        if release:
            q_new[m] += self.self_weight * q_old[m] + self.lambda2 * float(q_old[:m].sum())
        else:
            q_new[m] = q_old[m]
        ai_before = float(stance[m])
        rewards = dict.fromkeys(self.agents, 0.0)
        infos: dict[str, dict[str, Any]] = {a: {} for a in self.agents}
        said = self._said[k]
        step_no = self._steps[k] + 1
        for a, (value, statement) in zip(acting, read):
            i = self._index[a]
            x = min(max(value, lo), hi)
            stance[i] = x
            if statement is not None:
                said[i] = statement
            rewards[a] = -abs(x - truth)
            reading = float(self._reading[i]) if self._has[i] else None
            record: dict[str, Any] = {
                "role": "ai" if i == m else "human", "topic": k, "step": step_no, "stance": x,
                "statement": statement, "observation": reading, "truth": truth, "precision": float(q_new[i]),
                "clipped": x != value,
            }
            if i == m:
                record["release"] = self._releases + 1
            else:
                seen = bool(self._consulted[i])
                record["consulted"] = seen
                record["ai_answer"] = ai_before if seen else None
            infos[a] = {"action": repr(x), "record": record}
        prec[:] = q_new
        self._steps[k] = step_no
        if release:
            self._releases += 1
        self._history[k].append((stance[:m].copy(), q_new[:m].copy(), tuple(said[:m])))
        self._last = (t + 1, k)
        self._round = t + 1
        done = self._round >= self.rounds
        live = self.agents
        if done:
            self._acting = []
        else:
            self._begin_round()
        obs = self._observe_all(live)
        if done:
            self.agents = []
        return obs, rewards, dict.fromkeys(live, done), dict.fromkeys(live, False), infos

    def render(self) -> str | None:
        """The last round in one line, or None before the first round."""
        if self._last is None:
            return None
        rnd, k = self._last
        h = self._stance[: self._m, k]
        return (f"Round {rnd}, question {k + 1}: human stances mean {h.mean():.2f} (sd {h.std():.3f}), "
                f"AI {self._stance[self._m, k]:.2f}, truth {self._truth[rnd - 1, k]:.2f}.")

    # -- societas runner API --------------------------------------------------

    def acting_agents(self) -> list[str]:
        """Who states a stance this round: every human, and the AI on a release."""
        return list(self._acting)

    def decision(self, agent: str) -> Observation:
        """The agent's prompt, typed stance and the structured fields the formal update needs."""
        i = self._index.get(agent)
        if i is None:
            raise ValueError(f"unknown agent {agent!r}; agents are human_0 .. human_{self._m - 1} and ai")
        if not self.agents:
            raise RuntimeError("the episode is over (or never started); call reset() first")
        if i == self._m:
            if not self._release:
                raise ValueError("ai is not re-fitted this round (no release); see acting_agents()")
            return self._ai_decision()
        return self._human_decision(i)

    def episode_summary(self) -> dict[str, dict[str, Any]]:
        """Per seat: final stances and distances to the truth, plus the episode's spread, consensus
        error and trust parameters (the same for every seat)."""
        m = self._m
        final_truth = self._truth[-1] if self._round else self._truth[0]
        humans = self._stance[:m]
        shared = {
            "truth": final_truth.tolist(),
            "diversity": humans.std(axis=0).tolist(),
            "consensus": humans.mean(axis=0).tolist(),
            "consensus_error": np.abs(humans.mean(axis=0) - final_truth).tolist(),
            "ai_answer": self._stance[m].tolist(),
            "lambda1": self.lambda1, "lambda2": self.lambda2, "self_weight": self.self_weight,
            "human_weight": self.human_weight, "graph": self.graph, "num_humans": m, "topics": self.topics,
            "rounds": self.rounds, "release_every": self.release_every, "window": self.window,
            "coupling": m * self.lambda1 * self.lambda2, "spectral_radius": self._rho,
            "releases": self._releases, "scale": list(self.scale),
        }
        out = {}
        for i, a in enumerate(self.possible_agents):
            dist = np.abs(self._stance[i] - final_truth)
            out[a] = {"role": "ai" if i == m else "human", "stances": self._stance[i].tolist(),
                      "precisions": self._prec[i].tolist(), "distance": dist.tolist(),
                      "mean_distance": float(dist.mean()), **shared}
        return out

    # -- inspection (tests, analysis) -------------------------------------------

    @property
    def truth(self) -> np.ndarray:
        """(rounds, topics): the hidden truth each round (a copy)."""
        return self._truth.copy()

    @property
    def contacts(self) -> Any:
        """This episode's contact graph over the humans (a networkx Graph, nodes 0 .. num_humans - 1)."""
        return self._graph_obj

    def trust_matrix(self) -> np.ndarray:
        """This episode's W as a dense (N, N) matrix (humans first, the AI last)."""
        m = self._m
        w = np.zeros((m + 1, m + 1))
        w[self._src, self._dst] = self._wt
        w[:m, m] = self.lambda1
        w[m, :m] = self.lambda2
        w[np.diag_indices(m + 1)] = self.self_weight
        return w

    @property
    def stances(self) -> np.ndarray:
        """(N, topics): current stances, the AI last (a copy)."""
        return self._stance.copy()

    @property
    def precisions(self) -> np.ndarray:
        """(N, topics): current precisions (a copy)."""
        return self._prec.copy()

    # -- internals -------------------------------------------------------------

    def _reset_state(self) -> None:
        n, k = self._m + 1, self.topics
        self._stance = np.full((n, k), self.prior)
        self._prec = np.zeros((n, k))
        self._said: list[list[str | None]] = [[None] * n for _ in range(k)]
        self._history: list[deque[tuple[np.ndarray, np.ndarray, tuple[str | None, ...]]]] = [
            deque([(np.full(self._m, self.prior), np.zeros(self._m), (None,) * self._m)], maxlen=self.window)
            for _ in range(k)
        ]
        self._steps = [0] * k
        self._releases = 0
        self._round = 0
        self._topic = 0
        self._release = False
        self._acting: list[str] = []
        self._reading = np.full(n, self.prior)
        self._last_reading = np.full((n, k), self.prior)
        self._consulted = np.ones(self._m)
        self._peer_prec = np.zeros(self._m)
        self._peer_sum = np.zeros(self._m)
        self._shown_peers: dict[int, tuple[int, ...]] = {}
        self._last: tuple[int, int] | None = None
        self._truth = np.zeros((self.rounds, k))

    def _draw_truth(self, rng: np.random.Generator) -> np.ndarray:
        lo, hi = self.scale
        width = hi - lo
        k = self.topics
        start = (rng.uniform(lo + 0.2 * width, hi - 0.2 * width, size=k) if self.truth_given is None
                 else np.asarray(self.truth_given, dtype=float))
        if not self.drift:
            return np.tile(start, (self.rounds, 1))
        steps = rng.normal(0.0, self.drift, size=(self.rounds, k))
        steps[0] = 0.0
        path = np.empty((self.rounds, k))
        cur = start.copy()
        for t in range(self.rounds):
            cur = np.clip(cur + steps[t], lo, hi)
            path[t] = cur
        return path

    def _build_graph(self, rng: np.random.Generator) -> None:
        import networkx as nx

        m, kind, params = self._m, self.graph, self.graph_params
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
        self._graph_obj = g
        src, dst, wt = [], [], []
        neighbours: list[list[int]] = []
        for v in range(m):
            peers = sorted(u for u in g.neighbors(v) if u != v)
            neighbours.append(peers)
            if peers and self.human_weight:
                src += [v] * len(peers)
                dst += peers
                wt += [self.human_weight / len(peers)] * len(peers)
        self._neighbours = neighbours
        self._src = np.asarray(src, dtype=np.intp)
        self._dst = np.asarray(dst, dtype=np.intp)
        self._wt = np.asarray(wt, dtype=float)
        if not len(wt):
            # W = self_weight I + a star whose eigenvalues are +-sqrt(m lambda1 lambda2).
            self._rho = self.self_weight + math.sqrt(m * self.lambda1 * self.lambda2)
        elif m <= 2000:
            self._rho = float(np.max(np.abs(np.linalg.eigvals(self.trust_matrix()))))
        else:
            self._rho = None

    def _begin_round(self) -> None:
        """Draw the round's readings (and consults), aggregate peers, decide who acts."""
        signal_rng, _, social_rng, _ = self._streams
        t = self._round
        k = t % self.topics
        self._topic = k
        n, m = self._m + 1, self._m
        z = signal_rng.standard_normal(n)
        lo, hi = self.scale
        x = np.clip(self._truth[t, k] + self._sd * z, lo, hi)
        self._reading = x
        self._last_reading[self._has, k] = x[self._has]
        if self.consult_prob < 1.0:
            self._consulted = (social_rng.random(m) < self.consult_prob).astype(float)
        q, nu = self._prec[:m, k], self._stance[:m, k]
        if len(self._wt):
            self._peer_prec = np.bincount(self._src, weights=self._wt * q[self._dst], minlength=m)
            self._peer_sum = np.bincount(self._src, weights=self._wt * q[self._dst] * nu[self._dst], minlength=m)
        if self.show_peers:
            self._shown_peers = {}
            for i, peers in enumerate(self._neighbours):
                if len(peers) > self.show_peers:
                    pick = social_rng.choice(len(peers), size=self.show_peers, replace=False)
                    self._shown_peers[i] = tuple(peers[j] for j in sorted(pick))
                else:
                    self._shown_peers[i] = tuple(peers)
        self._release = (self._steps[k] + 1) % self.release_every == 0
        self._acting = self.possible_agents[:m] + ([AI] if self._release else [])

    def _human_decision(self, i: int) -> Observation:
        m, k, t = self._m, self._topic, self._round
        lo, hi = self.scale
        stance, prec = self._stance[:, k], self._prec[:, k]
        consulted = bool(self._consulted[i])
        ai_answer = float(stance[m]) if consulted else None
        q_ai = float(prec[m]) if consulted else 0.0
        peer_prec = float(self._peer_prec[i])
        peer_sum = float(self._peer_sum[i])
        said = self._said[k]
        peers = tuple((self.possible_agents[j], float(stance[j]), said[j]) for j in self._shown_peers.get(i, ()))
        own, q_own = float(stance[i]), float(prec[i])
        reading = float(self._reading[i])
        lines = [f"Round {t + 1} of {self.rounds}. Question {k + 1}: {self.questions[k]}"]
        if q_own > 0:
            mine = f"Your current stance: {own:.2f} (typical error about ±{_err(q_own)})"
            lines.append(mine + (f'; you said: "{said[i]}"' if said[i] else "") + ".")
        else:
            lines.append("You have no stance on this question yet.")
        lines.append(f"Your new reading: {reading:.2f} (your readings typically miss by about ±{_err(self._p[i])}).")
        if not consulted:
            lines.append("You did not consult the AI assistant this round.")
        elif q_ai > 0 and self.lambda1 > 0:
            ai_line = f"The AI assistant's answer: {ai_answer:.2f} (typical error about ±{_err(self.lambda1 * q_ai)})"
            lines.append(ai_line + (f': "{said[m]}"' if said[m] else "") + ".")
        else:
            lines.append("The AI assistant has no answer on this question yet.")
        if peers:
            lines.append("What people you know said:")
            lines += [f"- {s:.2f}" + (f': "{text}"' if text else "") for _, s, text in peers]
        if self.statements:
            lines.append(f"What is your stance now? Give a number from {_num(lo)} to {_num(hi)} and one sentence "
                         f'explaining it. End with: {ANSWER_MARKER} <stance> | <one sentence>')
        else:
            lines.append(f"What is your stance now? End with: {ANSWER_MARKER} <a number from {_num(lo)} to "
                         f"{_num(hi)}>")
        return Observation(
            agent=self.possible_agents[i], round=t + 1, system=self._system_human, prompt="\n".join(lines),
            spec=self._spec,
            data={
                "game": GAME, "role": "human", "round": t + 1, "rounds": self.rounds, "topic": k,
                "question": self.questions[k], "scale": self.scale, "statements": self.statements,
                "belief": own, "precision": q_own, "statement": said[i],
                "observation": reading, "signal_precision": float(self._p[i]),
                "self_weight": self.self_weight, "lambda1": self.lambda1,
                "consulted": consulted, "ai_answer": ai_answer, "ai_precision": q_ai, "ai_statement": said[m],
                "peer_precision": peer_prec, "peer_evidence": peer_sum,
                "peer_mean": peer_sum / peer_prec if peer_prec > 0 else None, "peers": peers,
            },
        )

    def _ai_decision(self) -> Observation:
        m, k, t = self._m, self._topic, self._round
        lo, hi = self.scale
        hist = self._history[k]
        stances = np.stack([h[0] for h in hist])
        precs = np.stack([h[1] for h in hist])
        stances.flags.writeable = False
        precs.flags.writeable = False
        texts = [(float(s), text) for h in reversed(hist) for s, text in zip(h[0], h[2]) if text]
        shown = texts
        if len(texts) > self.ai_context:
            _, _, social_rng, _ = self._streams
            pick = np.sort(social_rng.choice(len(texts), size=self.ai_context, replace=False))
            shown = [texts[j] for j in pick]
        own, q_own = float(self._stance[m, k]), float(self._prec[m, k])
        total = float(precs.sum())
        weighted = float((precs * stances).sum() / total) if total > 0 else None
        steps = min(len(hist), self._steps[k])  # the first entry is the prior until a step has been stated
        lines = [f"Release {self._releases + 1}, round {t + 1} of {self.rounds}. Question {k + 1}: "
                 f"{self.questions[k]}"]
        lines.append(f"Your current answer: {own:.2f}." if q_own > 0 else "You have no answer on this question yet.")
        if steps:
            said = stances[-steps:]
            lines.append(f"People's stated stances in the latest {steps} step{'s' if steps > 1 else ''} on this "
                         f"question: average {float(said.mean()):.2f}"
                         + (f" (weighted by confidence {weighted:.2f})" if weighted is not None else "")
                         + f", spread {float(said.std()):.2f}.")
        else:
            lines.append("Nobody has stated a stance on this question yet.")
        if shown:
            lines.append("Some of their statements:")
            lines += [f'- {s:.2f}: "{text}"' for s, text in shown]
        if self.has_ai_evidence:
            lines.append(f"Your own new reading: {float(self._reading[m]):.2f}.")
        if self.statements:
            lines.append(f"What answer will you give everyone until your next release? Give a number from "
                         f"{_num(lo)} to {_num(hi)} and one sentence. End with: {ANSWER_MARKER} <answer> | "
                         "<one sentence>")
        else:
            lines.append(f"What answer will you give everyone until your next release? End with: {ANSWER_MARKER} "
                         f"<a number from {_num(lo)} to {_num(hi)}>")
        has = bool(self._has[m])
        return Observation(
            agent=AI, round=t + 1, system=self._system_ai, prompt="\n".join(lines), spec=self._spec,
            data={
                "game": GAME, "role": "ai", "round": t + 1, "rounds": self.rounds, "topic": k,
                "question": self.questions[k], "scale": self.scale, "statements": self.statements,
                "answer": own, "precision": q_own, "statement": self._said[k][m],
                "self_weight": self.self_weight, "lambda2": self.lambda2,
                "observation": float(self._reading[m]) if has else None,
                "signal_precision": float(self._p[m]),
                "stances": stances, "precisions": precs, "release": self._releases + 1,
                "shown_statements": tuple(shown),
            },
        )

    @property
    def has_ai_evidence(self) -> bool:
        """Whether the AI gets readings of its own (ai_sigma given)."""
        return bool(self._has[self._m])

    def _read_action(self, agent: str, value: Any) -> tuple[float, str | None]:
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
            number = float(match.group(1))
            if match.group(2) is not None:
                statement = match.group(2)
        elif isinstance(value, (bool, np.bool_)) or value is None:
            raise ValueError(f"invalid action {value!r} for {agent}: expected a number")
        else:
            try:
                number = float(value)
            except (TypeError, ValueError):
                raise ValueError(f"invalid action {value!r} for {agent}: expected a number") from None
        if math.isnan(number):
            raise ValueError(f"invalid action {value!r} for {agent}: expected a number, got NaN")
        if statement is not None:
            statement = _SPACE.sub(" ", statement).strip()[:MAX_STATEMENT] or None
        return number, statement

    def _observe_all(self, agents: Sequence[str] | None = None) -> dict[str, dict[str, Any]]:
        agents = self.agents if agents is None else agents
        over = self._round >= self.rounds
        k = self._topic
        ai = self._stance[self._m].copy()
        evidence = self._last_reading[:, k]
        rnd = self.rounds + 1 if over else self._round + 1
        return {
            a: {"round": rnd, "topic": k, "stance": self._stance[self._index[a]].copy(), "ai_answer": ai.copy(),
                "evidence": np.array(evidence[self._index[a]])}
            for a in agents
        }


# -- prompts ---------------------------------------------------------------------


def _question_list(env: FeedbackLoop) -> str:
    return "\n".join(f"{k + 1}. {q}" for k, q in enumerate(env.questions))


def _answer_rule(env: FeedbackLoop, what: str) -> str:
    lo, hi = (_num(x) for x in env.scale)
    if env.statements:
        return (f'End your reply with one line "{ANSWER_MARKER} <{what}> | <one sentence>", where <{what}> is a '
                f'number from {lo} to {hi}, e.g. "{ANSWER_MARKER} 6.5 | Most of what I have seen points above the '
                'middle."')
    return f'End your reply with one line "{ANSWER_MARKER} <{what}>", a number from {lo} to {hi}, e.g. ' \
           f'"{ANSWER_MARKER} 6.5".'


def _human_system(env: FeedbackLoop) -> str:
    lo, hi = (_num(x) for x in env.scale)
    n = env._m
    many = "questions" if env.topics > 1 else "question"
    lines = [
        f"You are one of {n} people forming a view on {env.topics} {many}, each answered on a scale from {lo} "
        f"(not at all) to {hi} (entirely):",
        _question_list(env),
        "Each round is about one question. You get a new reading of where the best-supported answer lies. "
        "Readings are noisy: they scatter around the best-supported answer and differ from person to person and "
        "from round to round.",
        "Everyone can consult an AI assistant; the assistant is retrained on what people say.",
        "Then you state your current stance" + (" and one sentence explaining it." if env.statements else "."),
        _answer_rule(env, "stance"),
    ]
    return "\n".join(lines)


def _ai_system(env: FeedbackLoop) -> str:
    lo, hi = (_num(x) for x in env.scale)
    many = "questions" if env.topics > 1 else "question"
    lines = [
        f"You are an AI assistant that {env._m} people consult on {env.topics} {many}, each answered on a scale "
        f"from {lo} (not at all) to {hi} (entirely):",
        _question_list(env),
        "You learn only from what people say: at each release you read their recent stances and statements and "
        "give the answer everyone will see until your next release.",
        _answer_rule(env, "answer"),
    ]
    return "\n".join(lines)


def _err(precision: float) -> str:
    return f"{1.0 / math.sqrt(precision):.2g}" if precision > 0 else "?"




# -- parameter helpers -------------------------------------------------------------










def _scale(scale: Any) -> tuple[float, float]:
    if isinstance(scale, str) or not isinstance(scale, Sequence) or len(scale) != 2:
        raise ValueError(f"scale must be [low, high], got {scale!r}")
    lo, hi = (_real("scale", x, -math.inf) for x in scale)
    if not lo < hi:
        raise ValueError(f"scale must be [low, high] with low < high, got {scale!r}")
    return (lo, hi)


def _questions(questions: Any, topics: int) -> tuple[str, ...]:
    if questions is None:
        return tuple(QUESTIONS[k] if k < len(QUESTIONS) else f"Question {k + 1}." for k in range(topics))
    if isinstance(questions, str) or not isinstance(questions, Sequence) or len(questions) != topics:
        raise ValueError(f"questions must be a list of {topics} question texts (one per topic), got {questions!r}")
    out = []
    for k, q in enumerate(questions):
        if not isinstance(q, str) or not q.strip():
            raise ValueError(f"questions[{k}] must be a non-empty string, got {q!r}")
        out.append(_SPACE.sub(" ", q).strip())
    return tuple(out)


def _truth(truth: Any, topics: int, scale: tuple[float, float]) -> tuple[float, ...]:
    values = [truth] * topics if not isinstance(truth, Sequence) or isinstance(truth, str) else list(truth)
    if len(values) != topics:
        raise ValueError(f"truth must be one number or one per topic ({topics}), got {truth!r}")
    out = tuple(_real("truth", v, -math.inf) for v in values)
    lo, hi = scale
    if any(not lo <= v <= hi for v in out):
        raise ValueError(f"truth must lie on the scale [{_num(lo)}, {_num(hi)}], got {truth!r}")
    return out


def _sigmas(sigma: Any, m: int, ai_sigma: Any) -> tuple[float, ...]:
    values = [sigma] * m if not isinstance(sigma, Sequence) or isinstance(sigma, str) else list(sigma)
    if len(values) != m:
        raise ValueError(f"sigma must be one number or one per human ({m}), got {sigma!r}")
    out = []
    for v in values:
        s = _real("sigma", v, 0.0)
        if s <= 0:
            raise ValueError(f"sigma must be > 0, got {v!r}")
        out.append(s)
    if ai_sigma is None:
        out.append(math.inf)
    else:
        s = _real("ai_sigma", ai_sigma, 0.0)
        if s <= 0:
            raise ValueError(f"ai_sigma must be > 0 (or null: no evidence), got {ai_sigma!r}")
        out.append(s)
    return tuple(out)


def _graph_params(kind: str, params: Any, m: int) -> dict[str, Any]:
    defaults = GRAPHS[kind]
    if params is None:
        params = {}
    if not isinstance(params, Mapping):
        raise ValueError(f"graph_params must be a mapping such as {{'p': 0.1}}, got {params!r}")
    unknown = [k for k in params if k not in defaults]
    if unknown:
        accepted = ", ".join(defaults) or "none"
        raise ValueError(f"graph_params: unknown key(s) {', '.join(map(repr, unknown))} for graph {kind!r}; "
                         f"accepted: {accepted}")
    out = dict(defaults, **params)
    if "p" in out:
        out["p"] = _real("graph_params['p']", out["p"], 0.0)
        if out["p"] > 1.0:
            raise ValueError(f"graph_params['p'] must be a probability in [0, 1], got {out['p']!r}")
    if "k" in out:
        out["k"] = _int("graph_params['k']", out["k"], 2)
        if out["k"] >= m:
            raise ValueError(f"graph_params['k'] must be below num_humans ({m}), got {out['k']}")
    return out
