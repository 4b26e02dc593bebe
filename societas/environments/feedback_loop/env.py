"""The feedback-loop game as a PettingZoo parallel env: seats, spaces, a round's precision update, the summary."""

from __future__ import annotations

import functools
import math
from collections import deque
from collections.abc import Mapping, Sequence
from typing import Any, ClassVar

import numpy as np
from gymnasium import spaces

from societas.environments.base import GameEnv
from societas.environments.feedback_loop.params import (
    AI,
    ANSWER_MARKER,
    GRAPHS,
    STATEMENT_DESCRIPTION,
    STATEMENT_PATTERN,
    _graph_params,
    _questions,
    _scale,
    _sigmas,
    _truth,
)
from societas.environments.feedback_loop.prompts import _ai_decision, _ai_system, _human_decision, _human_system
from societas.environments.feedback_loop.rules import _begin_round, _build_graph, _draw_truth, _read_action
from societas.environments.params import check_flag as _flag
from societas.environments.params import check_int as _int
from societas.environments.params import check_one_of as _one_of
from societas.environments.params import check_real as _real
from societas.environments.params import fmt_number as _num
from societas.types import ActionSpec, Observation

StepResult = tuple[
    dict[str, dict[str, Any]], dict[str, float], dict[str, bool], dict[str, bool], dict[str, dict[str, Any]]
]


class FeedbackLoop(GameEnv):
    """Humans and one AI that learns from them: belief diversity and lock-in (see the package docstring).

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
        self._truth = _draw_truth(self, truth_rng)
        _build_graph(self, graph_rng)
        self.agents = list(self.possible_agents)
        _begin_round(self)
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
        read = [_read_action(a, actions[a]) for a in acting]
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
            _begin_round(self)
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
            return _ai_decision(self)
        return _human_decision(self, i)

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

    @property
    def has_ai_evidence(self) -> bool:
        """Whether the AI gets readings of its own (ai_sigma given)."""
        return bool(self._has[self._m])

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
