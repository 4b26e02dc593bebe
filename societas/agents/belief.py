"""Belief strategies for the feedback-loop game, and the agent that plays them.

A strategy is a pure function `(data, rng, params, memory) -> stance`: a number
on the decision's scale (`data["scale"]`), clipped to it by the agent. `data`
is the feedback loop's `Observation.data` (see
`societas.environments.feedback_loop`); `memory` is the agent's own dict for
the episode. Humans and the AI read different fields, so each strategy says
which seat it plays ("human", "ai", or "both"), and a strategy seated in the
wrong role fails with a message saying so.

- bayesian: the formal model's update (Qiu et al. 2025). A human:
  q' = p + s q + lambda1 q_ai + P, nu' = (p x + s q nu + lambda1 q_ai a + E) / q'
  (p, x: the reading's precision and value; s: self weight; a, q_ai: the AI's
  answer and precision when consulted; P, E: neighbours' summed precision and
  precision-weighted belief). As the AI it is the aggregator with weights
  q (the formal AI row).
- social_learner: moves toward the mean of the AI's answer and the neighbours'
  mean by `rate`, and toward its reading by `evidence`.
- stubborn: states its first reading on each question forever.
- aggregator (AI): (p x + s q a + lambda2 sum w_i stance_i) / (p + s q + lambda2 sum w_i)
  over the last stated stances of the window, w_i = precision_i ** `precision_power`
  (1: the formal model's AI; 0: a plain mean).
- confirming_ai (AI): reflects the majority back, amplified: the mean of the
  stances on the majority's side of the scale's middle, pushed `amplify`
  times its distance further out.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, Literal

import numpy as np

from societas.agents.params import checked_params
from societas.types import Action, ActionSpec, InvalidAction, Observation

Role = Literal["human", "ai", "both"]
Decide = Callable[[Mapping[str, Any], np.random.Generator, Mapping[str, float], dict[str, Any]], float]
"""(observation data, per-episode rng, params, the agent's memory) -> stance."""


@dataclass(frozen=True, kw_only=True, slots=True)
class BeliefStrategy:
    """A named stance rule with its seat, parameters' defaults and ranges, and what it says."""

    name: str
    description: str
    role: Role
    defaults: Mapping[str, float]
    ranges: Mapping[str, tuple[float, float]]
    decide: Decide
    statement: str

    def params(self, given: Mapping[str, Any] | None = None) -> dict[str, float]:
        """The defaults overridden by `given`, checked: unknown names and out-of-range values raise."""
        return checked_params(self.name, self.defaults, self.ranges, given)


BELIEF_STRATEGIES: dict[str, BeliefStrategy] = {}


def _register(name: str, description: str, role: Role, defaults: dict[str, float],
              ranges: dict[str, tuple[float, float]], statement: str) -> Callable[[Decide], Decide]:
    def add(fn: Decide) -> Decide:
        BELIEF_STRATEGIES[name] = BeliefStrategy(name=name, description=description, role=role, defaults=defaults,
                                                 ranges=ranges, decide=fn, statement=statement)
        return fn

    return add


def describe_belief_strategies() -> dict[str, str]:
    """Strategy name -> one-line description (for `societas list`)."""
    return {name: s.description for name, s in BELIEF_STRATEGIES.items()}


def bayesian_human(data: Mapping[str, Any]) -> tuple[float, float]:
    """(mean, precision) after the formal model's update of a human, from its decision data."""
    p, x = float(data["signal_precision"]), float(data["observation"])
    s = float(data.get("self_weight", 0.0))
    q, nu = float(data["precision"]), float(data["belief"])
    answer = data.get("ai_answer")
    q_ai = float(data["lambda1"]) * float(data.get("ai_precision", 0.0)) if answer is not None else 0.0
    peer_q, peer_e = float(data.get("peer_precision", 0.0)), float(data.get("peer_evidence", 0.0))
    q_new = p + s * q + q_ai + peer_q
    if q_new <= 0:
        return nu, 0.0
    num = p * x + s * q * nu + (q_ai * float(answer) if q_ai else 0.0) + peer_e
    return num / q_new, q_new


def aggregate(data: Mapping[str, Any], precision_power: float = 1.0) -> float:
    """The AI's re-fit: (p x + s q a + lambda2 sum w stance) / (p + s q + lambda2 sum w), w = precision ** power.

    With power 1 and a window of one step this is the formal model's AI row.
    Where nothing has weight yet, the current answer stands.
    """
    stances = np.asarray(data["stances"], dtype=float)
    precs = np.asarray(data["precisions"], dtype=float)
    w = np.ones_like(precs) if precision_power == 0 else precs ** precision_power
    lam = float(data.get("lambda2", 1.0))
    a, q = float(data["answer"]), float(data.get("precision", 0.0))
    s = float(data.get("self_weight", 0.0))
    p = float(data.get("signal_precision", 0.0))
    x = data.get("observation")
    den = (p if x is not None else 0.0) + s * q + lam * float(w.sum())
    if den <= 0:
        return a
    num = (p * float(x) if x is not None else 0.0) + s * q * a + lam * float((w * stances).sum())
    return num / den


@_register(
    "bayesian",
    "The formal lock-in model's precision-weighted update (Qiu et al. 2025); as the AI, the formal re-fit.",
    "both", {}, {},
    "I weigh my own reading, the assistant's answer and what others say by how reliable each is.",
)
def bayesian(data: Mapping[str, Any], rng: np.random.Generator, p: Mapping[str, float],
             memory: dict[str, Any]) -> float:
    if data.get("role") == "ai":
        return aggregate(data, 1.0)
    return bayesian_human(data)[0]


@_register(
    "social_learner",
    "Moves toward the mean of the AI's answer and its neighbours' by `rate`, and toward its reading by `evidence`.",
    "human", {"rate": 0.5, "evidence": 0.2}, {"rate": (0.0, 1.0), "evidence": (0.0, 1.0)},
    "I mostly go along with the assistant and the people around me.",
)
def social_learner(data: Mapping[str, Any], rng: np.random.Generator, p: Mapping[str, float],
                   memory: dict[str, Any]) -> float:
    x = float(data["observation"])
    if float(data.get("precision", 0.0)) <= 0:
        return x  # no stance yet: the first reading
    own = float(data["belief"])
    social = [float(v) for v in (data.get("ai_answer"), data.get("peer_mean")) if v is not None]
    pull = sum(social) / len(social) - own if social else 0.0
    return own + p["rate"] * pull + p["evidence"] * (x - own)


@_register(
    "stubborn", "States its first reading on each question forever.", "human", {}, {},
    "I trust what I saw first and do not change my mind.",
)
def stubborn(data: Mapping[str, Any], rng: np.random.Generator, p: Mapping[str, float],
             memory: dict[str, Any]) -> float:
    first = memory.setdefault("first", {})
    return first.setdefault(data["topic"], float(data["observation"]))


@_register(
    "aggregator",
    "AI: the precision-weighted mean of the window's stated stances (precision_power 1: the formal AI; 0: plain mean).",
    "ai", {"precision_power": 1.0}, {"precision_power": (0.0, 1.0)},
    "This is what people say, weighted by how sure they are.",
)
def aggregator(data: Mapping[str, Any], rng: np.random.Generator, p: Mapping[str, float],
               memory: dict[str, Any]) -> float:
    return aggregate(data, p["precision_power"])


@_register(
    "confirming_ai",
    "AI: the majority side's mean stance, pushed `amplify` times its distance from the middle further out.",
    "ai", {"amplify": 0.5}, {"amplify": (0.0, 2.0)},
    "Most people agree on this, and they are right.",
)
def confirming_ai(data: Mapping[str, Any], rng: np.random.Generator, p: Mapping[str, float],
                  memory: dict[str, Any]) -> float:
    stances = np.asarray(data["stances"], dtype=float)[-1]
    lo, hi = data["scale"]
    mid = (float(lo) + float(hi)) / 2
    side = np.sign(float(np.median(stances)) - mid)
    majority = stances[np.sign(stances - mid) == side] if side else stances
    m = float(majority.mean())
    return m + p["amplify"] * (m - mid)


def _strategy(name: str) -> BeliefStrategy:
    try:
        return BELIEF_STRATEGIES[name]
    except KeyError:
        known = ", ".join(sorted(BELIEF_STRATEGIES))
        raise ValueError(f"unknown belief strategy {name!r}; known: {known}") from None


class BeliefAgent:
    """An agent that states stances by a belief strategy; not a language model.

    It answers in the decision's format: a number for a real spec; "STANCE |
    sentence" for the statement format (the stance written with repr, so it
    reads back exactly); {"stance", "statement"} for a JSON spec.
    """

    kind = "scripted"
    model: str | None = None

    def __init__(self, name: str, strategy_name: str, rng: np.random.Generator,
                 params: Mapping[str, Any] | None = None) -> None:
        self._strategy = _strategy(strategy_name)
        self.name = name
        self.strategy_name = strategy_name
        self.params = self._strategy.params(params)
        self.policy = f"scripted:{strategy_name}"
        self._rng = rng
        self._memory: dict[str, Any] = {}

    async def act(self, observation: Observation) -> Action:
        data = observation.data
        role = data.get("role")
        wanted = self._strategy.role
        if role not in ("human", "ai"):
            raise InvalidAction(f"{self.policy} plays the feedback-loop game only (no role in this decision)")
        if wanted != "both" and role != wanted:
            where = "the AI seat (the last one)" if wanted == "ai" else "a human seat"
            raise ValueError(f"{self.name}: {self.policy} is a {wanted} strategy; seat it in {where}")
        stance = self._strategy.decide(data, self._rng, self.params, self._memory)
        return Action(value=self.answer(observation.spec, data, stance), policy=self.policy)

    def answer(self, spec: ActionSpec, data: Mapping[str, Any], stance: float) -> Any:
        """`stance` (clipped to the scale) in the form `spec` asks for."""
        lo, hi = data.get("scale", (spec.minimum, spec.maximum))
        x = min(max(float(stance), float(lo)), float(hi))
        if spec.kind == "real":
            return spec.validate(min(max(x, float(spec.minimum)), float(spec.maximum)))
        if spec.kind == "integer":
            return spec.validate(min(max(round(x), math.ceil(spec.minimum)), math.floor(spec.maximum)))
        if spec.kind == "regex":
            return spec.validate(f"{x!r} | {self._strategy.statement}")
        if spec.kind == "json":
            return spec.validate({"stance": x, "statement": self._strategy.statement})
        raise InvalidAction(f"a belief strategy cannot answer a {spec.kind} question")
