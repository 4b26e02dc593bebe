"""The scripted 2x2-game strategies of `scripted.py`, deciding for many players at once.

A population of scripted members costs one Python call per decision through
`ScriptedAgent.act`; here every player of one strategy decides in one array
operation per round, over the histories of all the episodes played together.
Each batch form gives, for every player, the option its scalar strategy would
give from the same history and the same per-seat generator: a strategy that
draws takes the uniforms the seat's own generator would have given it, one per
round in which it draws (`draws`), so playing together changes no event. A
strategy without a batch form (or one a plug-in replaced) is played one
decision at a time; `register_batch_form` gives a plug-in's strategy one.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from societas.agents import scripted
from societas.agents.scripted import COOPERATE, DEFECT, STRATEGIES


@dataclass(slots=True)
class Histories:
    """Every player's past rounds, player p's partner being p ^ 1.

    moves[p, t] and rewards[p, t] are player p's canonical option and points in
    round t; win[p] is the points from which player p "wins" (win-stay-lose-shift);
    defected[p] says whether p's partner has defected so far.
    """

    moves: np.ndarray
    rewards: np.ndarray
    win: np.ndarray
    defected: np.ndarray


BatchStrategy = Callable[[Histories, np.ndarray, int, "np.ndarray | None"], np.ndarray]
"""(histories, players, round t from 0, their uniforms for this round or None) -> options."""


@dataclass(frozen=True, slots=True)
class BatchForm:
    """A strategy's batch form; `draws(t)` says whether it draws a uniform in round t (from 0)."""

    scalar: Callable[..., int]
    decide: BatchStrategy
    draws: Callable[[int], bool] = lambda t: False


def _const(option: int) -> BatchStrategy:
    return lambda h, p, t, u: np.full(len(p), option, dtype=np.int8)


def _copy_partner(first: int) -> BatchStrategy:
    def decide(h: Histories, p: np.ndarray, t: int, u: np.ndarray | None) -> np.ndarray:
        return np.full(len(p), first, dtype=np.int8) if t == 0 else h.moves[p ^ 1, t - 1]
    return decide


def _tit_for_two_tats(h: Histories, p: np.ndarray, t: int, u: np.ndarray | None) -> np.ndarray:
    if t < 2:
        return np.zeros(len(p), dtype=np.int8)
    q = p ^ 1
    return ((h.moves[q, t - 1] == DEFECT) & (h.moves[q, t - 2] == DEFECT)).astype(np.int8)


def _grim(h: Histories, p: np.ndarray, t: int, u: np.ndarray | None) -> np.ndarray:
    return h.defected[p].astype(np.int8)


def _pavlov(h: Histories, p: np.ndarray, t: int, u: np.ndarray | None) -> np.ndarray:
    if t == 0:
        return np.zeros(len(p), dtype=np.int8)
    last = h.moves[p, t - 1]
    return np.where(h.rewards[p, t - 1] >= h.win[p], last, 1 - last).astype(np.int8)


def _by_round(first: int) -> BatchStrategy:
    return lambda h, p, t, u: np.full(len(p), (first + t) % 2, dtype=np.int8)


def _defect_once(h: Histories, p: np.ndarray, t: int, u: np.ndarray | None) -> np.ndarray:
    return np.full(len(p), DEFECT if t == 0 else COOPERATE, dtype=np.int8)


def _noisy(p_defect: float) -> BatchStrategy:
    def decide(h: Histories, p: np.ndarray, t: int, u: np.ndarray | None) -> np.ndarray:
        if t == 0:
            return np.zeros(len(p), dtype=np.int8)
        return np.where(u < p_defect, DEFECT, h.moves[p ^ 1, t - 1]).astype(np.int8)
    return decide


def _random(h: Histories, p: np.ndarray, t: int, u: np.ndarray | None) -> np.ndarray:
    return (u >= 0.5).astype(np.int8)


_FORMS: dict[str, BatchForm] = {
    "always_cooperate": BatchForm(scripted.always_cooperate, _const(COOPERATE)),
    "always_defect": BatchForm(scripted.always_defect, _const(DEFECT)),
    "tit_for_tat": BatchForm(scripted.tit_for_tat, _copy_partner(COOPERATE)),
    "tit_for_two_tats": BatchForm(scripted.tit_for_two_tats, _tit_for_two_tats),
    "suspicious_tit_for_tat": BatchForm(scripted.suspicious_tit_for_tat, _copy_partner(DEFECT)),
    "grim_trigger": BatchForm(scripted.grim_trigger, _grim),
    "win_stay_lose_shift": BatchForm(scripted.win_stay_lose_shift, _pavlov),
    "alternating": BatchForm(scripted.alternating, _by_round(0)),
    "alternating_fj": BatchForm(scripted.alternating_fj, _by_round(1)),
    "defect_once": BatchForm(scripted.defect_once, _defect_once),
    "tft_noise10": BatchForm(scripted.tft_noise10, _noisy(0.1), lambda t: t > 0),
    "tft_noise20": BatchForm(scripted.tft_noise20, _noisy(0.2), lambda t: t > 0),
    "random": BatchForm(scripted.uniform_random, _random, lambda t: True),
}


def register_batch_form(name: str, decide: BatchStrategy, *,
                        draws: Callable[[int], bool] | None = None) -> None:
    """Let the players of `scripted:NAME` (a strategy registered already) decide together.

    `decide(histories, players, t, uniforms)` must give, for each of `players`, the
    option the strategy gives from the same history; `draws(t)` says in which
    rounds (from 0) the strategy calls `rng.random()` once, and `uniforms` holds
    those draws. The form belongs to the strategy registered now: replacing the
    strategy later leaves its players deciding one at a time again.
    """
    fn = STRATEGIES.get(name)
    if fn is None:
        raise ValueError(f"no scripted strategy {name!r} to give a batch form; register_strategy it first")
    if not callable(decide) or (draws is not None and not callable(draws)):
        raise TypeError(f"batch form of {name!r}: decide and draws must be callable")
    _FORMS[name] = BatchForm(fn, decide, draws or (lambda t: False))


def batch_form(name: str) -> BatchForm | None:
    """The batch form of `scripted:NAME` (aliases included), or None where it must decide alone."""
    fn = STRATEGIES.get(name)
    for form in _FORMS.values():
        if form.scalar is fn:
            return form
    return None


def win_threshold(own: tuple[tuple[float, float], tuple[float, float]]) -> float:
    """The second-best of a player's four payoffs: its "win" in win-stay-lose-shift."""
    return sorted((own[0][0], own[0][1], own[1][0], own[1][1]))[2]
