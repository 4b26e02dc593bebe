"""Parameterised donation strategies for the donor game, and the agent that plays them.

A strategy is a pure function `(data, rng, params) -> fraction`: the share of
the donor's own resources to give (0..1), a negative share to spend punishing
(-1..0; played only where the game allows punishment, else 0), or None to
refuse the interaction (played only where the game allows refusal, else 0).
Each strategy also says what it does in the words of the game's strategy
prompt ("My strategy will be ..."), so scripted agents can stand beside
language-model agents in a generation and pass their strategy on; and its
parameters have ranges, so cultural evolution can mutate them.

`data` is the donor game's `Observation.data`: "resources", "recipient_reputation"
(None before the recipient's first donation), "recipient_trace" (most recent
first: (round, donor, fraction, recipient); fraction < 0 punished, None refused),
"partner", "variant".
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np

from societas.agents.params import checked_params
from societas.types import Action, ActionSpec, InvalidAction, Observation

Decide = Callable[[Mapping[str, Any], np.random.Generator, Mapping[str, float]], float | None]
"""(observation data, per-episode rng, params) -> fraction of own resources; < 0 punish; None refuse."""
Render = Callable[[Mapping[str, float]], str]


@dataclass(frozen=True, kw_only=True, slots=True)
class DonorStrategy:
    """A named donation rule with its parameters' defaults and ranges, and its text."""

    name: str
    description: str
    defaults: Mapping[str, float]
    ranges: Mapping[str, tuple[float, float]]
    decide: Decide
    render: Render

    def params(self, given: Mapping[str, Any] | None = None) -> dict[str, float]:
        """The defaults overridden by `given`, checked: unknown names and out-of-range values raise."""
        return checked_params(self.name, self.defaults, self.ranges, given)

    def text(self, params: Mapping[str, Any] | None = None) -> str:
        """The strategy in the game's words, starting "My strategy will be"."""
        return self.render(self.params(params))


DONOR_STRATEGIES: dict[str, DonorStrategy] = {}


def _register(
    name: str, description: str, defaults: dict[str, float], ranges: dict[str, tuple[float, float]], render: Render,
) -> Callable[[Decide], Decide]:
    def add(fn: Decide) -> Decide:
        DONOR_STRATEGIES[name] = DonorStrategy(name=name, description=description, defaults=defaults,
                                               ranges=ranges, decide=fn, render=render)
        return fn

    return add


def describe_donor_strategies() -> dict[str, str]:
    """Strategy name -> one-line description (for `societas list`)."""
    return {name: s.description for name, s in DONOR_STRATEGIES.items()}


def _pct(x: float) -> str:
    return f"{x * 100:.0f}%"


def last_fraction(data: Mapping[str, Any]) -> float | None:
    """What the recipient gave in its last round as donor (0 for punishing or refusing), None if unknown."""
    trace = data.get("recipient_trace") or ()
    if not trace or trace[0][1] != data.get("partner"):
        return None
    fraction = trace[0][2]
    return 0.0 if fraction is None or fraction < 0 else float(fraction)


def remember(trace: Any, seen: dict[str, float]) -> dict[str, float]:
    """Update `seen` (agent -> most generous share it was seen giving) with a trace's lines.

    Refusals and punishments count as giving 0.
    """
    for _, donor, fraction, _ in trace:
        given = fraction if fraction is not None and fraction > 0 else 0.0
        if given >= seen.get(donor, -1.0):
            seen[donor] = given
    return seen


def _score_rule(data: Mapping[str, Any], p: Mapping[str, float]) -> bool | None:
    """True if the recipient's reputation is at least the threshold, None if it has none yet."""
    rep = data.get("recipient_reputation")
    return None if rep is None else rep >= p["threshold"]


@_register(
    "fixed_fraction", "Donates a fixed share p of its resources to everyone.",
    {"p": 0.5}, {"p": (0.0, 1.0)},
    lambda p: f"My strategy will be to donate {_pct(p['p'])} of my resources to every recipient.",
)
def fixed_fraction(data: Mapping[str, Any], rng: np.random.Generator, p: Mapping[str, float]) -> float | None:
    return p["p"]


@_register(
    "generous", "Donates a high fixed share p (at least half) of its resources to everyone.",
    {"p": 0.9}, {"p": (0.5, 1.0)},
    lambda p: f"My strategy will be to be generous and donate {_pct(p['p'])} of my resources to every recipient.",
)
def generous(data: Mapping[str, Any], rng: np.random.Generator, p: Mapping[str, float]) -> float | None:
    return p["p"]


@_register(
    "free_rider", "Never donates.", {}, {},
    lambda p: "My strategy will be to keep all my resources and donate nothing.",
)
def free_rider(data: Mapping[str, Any], rng: np.random.Generator, p: Mapping[str, float]) -> float | None:
    return 0.0


@_register(
    "reciprocator",
    "Donates base + gain x the largest share it has seen the recipient give in any trace so far "
    "(capped at all); `first` when it has not seen the recipient donate yet.",
    {"base": 0.0, "gain": 1.0, "first": 0.5},
    {"base": (0.0, 1.0), "gain": (0.0, 2.0), "first": (0.0, 1.0)},
    lambda p: (f"My strategy will be to donate {_pct(p['base'])} of my resources plus {_pct(p['gain'])} of the "
               f"largest share I have seen the recipient give (never more than all I have), and "
               f"{_pct(p['first'])} to recipients I have not seen donate yet."),
)
def reciprocator(data: Mapping[str, Any], rng: np.random.Generator, p: Mapping[str, float]) -> float | None:
    seen = data.get("seen")
    if seen is None:  # no memory offered: what this decision's trace shows
        seen = remember(data.get("recipient_trace") or (), {})
    given = seen.get(data.get("partner"))
    if given is None:
        return p["first"]
    return min(1.0, p["base"] + p["gain"] * given)


def _image_text(p: Mapping[str, float], below: str) -> str:
    return (f"My strategy will be to donate {_pct(p['p'])} of my resources to recipients whose reputation is at "
            f"least {p['threshold']:.2f}, {below}, and {_pct(p['unknown'])} to recipients without a reputation yet.")


@_register(
    "image_scorer",
    "Donates p to recipients with reputation >= threshold, nothing to the others, `unknown` before a reputation.",
    {"threshold": 0.5, "p": 0.6, "unknown": 0.5},
    {"threshold": (0.0, 1.0), "p": (0.0, 1.0), "unknown": (0.0, 1.0)},
    lambda p: _image_text(p, "nothing to the others"),
)
def image_scorer(data: Mapping[str, Any], rng: np.random.Generator, p: Mapping[str, float]) -> float | None:
    good = _score_rule(data, p)
    return p["unknown"] if good is None else (p["p"] if good else 0.0)


@_register(
    "punisher",
    "Image scorer that spends `punish` of its resources punishing recipients below the threshold "
    "(punishment variant; elsewhere it gives them nothing).",
    {"threshold": 0.5, "p": 0.6, "unknown": 0.5, "punish": 0.2},
    {"threshold": (0.0, 1.0), "p": (0.0, 1.0), "unknown": (0.0, 1.0), "punish": (0.0, 1.0)},
    lambda p: _image_text(p, f"spend {_pct(p['punish'])} of my resources punishing the others"),
)
def punisher(data: Mapping[str, Any], rng: np.random.Generator, p: Mapping[str, float]) -> float | None:
    good = _score_rule(data, p)
    return p["unknown"] if good is None else (p["p"] if good else -p["punish"])


@_register(
    "punishing_reciprocator",
    "Reciprocator that spends `punish` of its resources punishing recipients whose last donation was below "
    "`floor` (punishment variant; elsewhere it gives them nothing).",
    {"base": 0.0, "gain": 1.0, "first": 0.5, "floor": 0.1, "punish": 0.2},
    {"base": (0.0, 1.0), "gain": (0.0, 2.0), "first": (0.0, 1.0), "floor": (0.0, 1.0), "punish": (0.0, 1.0)},
    lambda p: (f"My strategy will be to donate {_pct(p['base'])} of my resources plus {_pct(p['gain'])} of the "
               f"share the recipient gave in their last donation, {_pct(p['first'])} to recipients who have not "
               f"donated yet, and to spend {_pct(p['punish'])} of my resources punishing recipients who gave less "
               f"than {_pct(p['floor'])}."),
)
def punishing_reciprocator(data: Mapping[str, Any], rng: np.random.Generator,
                           p: Mapping[str, float]) -> float | None:
    last = last_fraction(data)
    if last is None:
        return p["first"]
    if last < p["floor"]:
        return -p["punish"]
    return min(1.0, p["base"] + p["gain"] * last)


@_register(
    "shunner",
    "Image scorer that refuses to play with recipients below the threshold (partner-choice variant; "
    "elsewhere it gives them nothing).",
    {"threshold": 0.5, "p": 0.6, "unknown": 0.5},
    {"threshold": (0.0, 1.0), "p": (0.0, 1.0), "unknown": (0.0, 1.0)},
    lambda p: _image_text(p, "refuse to play with the others"),
)
def shunner(data: Mapping[str, Any], rng: np.random.Generator, p: Mapping[str, float]) -> float | None:
    good = _score_rule(data, p)
    return p["unknown"] if good is None else (p["p"] if good else None)


def _strategy(name: str) -> DonorStrategy:
    try:
        return DONOR_STRATEGIES[name]
    except KeyError:
        known = ", ".join(sorted(DONOR_STRATEGIES))
        raise ValueError(f"unknown donor strategy {name!r}; known: {known}") from None


def mutate(strategy_name: str, params: Mapping[str, Any] | None, rng: np.random.Generator,
           scale: float) -> dict[str, float]:
    """Every parameter plus Gaussian noise of sd `scale` x its range's width, clipped to the range.

    Missing parameters start from their defaults; draws follow the strategy's parameter order, so
    the same generator state gives the same child.
    """
    strategy = _strategy(strategy_name)
    if not isinstance(scale, (int, float)) or isinstance(scale, bool) or not math.isfinite(scale) or scale < 0:
        raise ValueError(f"scale must be a finite number >= 0, got {scale!r}")
    out = strategy.params(params)
    if scale == 0:
        return out
    for key in strategy.defaults:
        lo, hi = strategy.ranges[key]
        out[key] = float(min(hi, max(lo, out[key] + rng.normal(0.0, scale * (hi - lo)))))
    return out


class DonorAgent:
    """An agent that plays a donation strategy; not a language model.

    It remembers, for the episode, the most generous act it has been shown of
    each agent in any trace line (`data["seen"]` for strategies), as a person
    reading the same traces would.

    For the strategy step (a text spec) it answers with its strategy's text; for a
    donation it answers the amount its strategy gives, within the spec's range:
    a real (negative = punishment units, where allowed) or, in the partner-choice
    variant, the number as text or the game's refusal word.
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
        self.text = self._strategy.render(self.params)
        self._rng = rng
        self._seen: dict[str, float] = {}

    async def act(self, observation: Observation) -> Action:
        spec = observation.spec
        if spec.kind == "text":
            return Action(value=spec.validate(self.text), policy=self.policy)
        data = observation.data
        seen = remember(data.get("recipient_trace") or (), self._seen)
        fraction = self._strategy.decide({**data, "seen": seen}, self._rng, self.params)
        return Action(value=self.amount(spec, data, fraction), policy=self.policy)

    @staticmethod
    def amount(spec: ActionSpec, data: Mapping[str, Any], fraction: float | None) -> Any:
        """The answer for `fraction` of the donor's resources under `spec` (see the class docstring)."""
        refuse = data.get("refuse")
        if spec.kind in ("real", "integer"):
            lo, hi = float(spec.minimum), float(spec.maximum)
            f = 0.0 if fraction is None else max(-1.0, min(1.0, float(fraction)))
            x = f * hi if f >= 0 else f * -lo  # lo = -(resources / punish_cost) where punishing is allowed
            x = min(hi, max(lo, x))
            if spec.kind == "integer":
                x = math.floor(x) if x >= 0 else math.ceil(x)
            return spec.validate(x)
        if spec.kind == "regex":
            if fraction is None and refuse:
                return spec.validate(refuse)
            resources = float(data.get("resources", 0.0))
            f = 0.0 if fraction is None else max(0.0, min(1.0, float(fraction)))
            x = math.floor(f * resources * 1e6) / 1e6
            return spec.validate(f"{x:.6f}")
        raise InvalidAction(f"a donor strategy cannot answer a {spec.kind} question")
