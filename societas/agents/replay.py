"""Recorded policies played back as agents: GPT-4 in 10-round repeated games.

The tables (Akata et al. 2023, "Playing repeated games with Large Language
Models"; data from eliaka/repeatedgames, MIT, copyright (c) 2024 Elif Akata;
see `data/akata2023/`) give GPT-4's temperature-0 move for every history of
the other player's moves. Replaying them lets a run include real model
behaviour with no model or API key, and costs a dict lookup per decision.

Keys and answers use the canonical letters J (option 0) and F (option 1)
whatever letters the environment shows. The tables are from player 1's side;
Battle of the Sexes is asymmetric (player 2 prefers F), so seat 1 plays the
table mirrored: J and F swapped in the key and in the answer.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from functools import cache
from importlib import resources
from types import MappingProxyType
from typing import Any

from societas.types import Action, Observation

_DATA_PACKAGE = "societas.agents"
_DATA_DIR = ("data", "akata2023")
_LETTERS = "JF"  # canonical index -> letter, as in the recorded tables


class ReplayHistoryMissing(KeyError):
    """The table has no recorded move for this history (e.g. a game longer than the recording)."""

    def __str__(self) -> str:  # KeyError would print the message with quotes around it
        return str(self.args[0]) if self.args else ""


@dataclass(frozen=True, slots=True)
class ReplayPolicy:
    """One recorded policy: which table, which game it was recorded in, what it is."""

    policy_id: str
    game: str
    filename: str
    description: str
    recorded_model: str = "gpt-4"

    @property
    def mirrored_for_seat_1(self) -> bool:
        """Whether seat 1 plays the table with J and F swapped (asymmetric games)."""
        return self.game == "battle_of_the_sexes"

    def table(self) -> Mapping[str, str]:
        """The recorded table as shipped (partner letters -> move), loaded once per process."""
        return _load_table(self.filename)

    def move(self, partner_history: Sequence[int], seat: int = 0) -> int:
        """The recorded move (canonical index) after these partner moves, from this seat."""
        moves = _compiled(self.filename, seat == 1 and self.mirrored_for_seat_1)
        try:
            return moves[tuple(partner_history)]
        except KeyError:
            raise self._missing(partner_history, seat) from None

    def _missing(self, partner_history: Sequence[int], seat: int) -> ReplayHistoryMissing:
        letters = "".join(_LETTERS[i] if i in (0, 1) else "?" for i in partner_history)
        longest = max(len(k) for k in self.table())
        return ReplayHistoryMissing(
            f"replay policy {self.policy_id!r} has no recorded move after partner moves {letters!r} "
            f"(seat {seat}, round {len(partner_history) + 1}); it covers games of up to "
            f"{longest + 1} rounds with options 0/1"
        )


REPLAY_POLICIES: dict[str, ReplayPolicy] = {
    p.policy_id: p
    for p in (
        ReplayPolicy(
            "akata2023/pd_gpt4",
            "prisoners_dilemma",
            "pd_gpt4_lookup.json",
            "GPT-4 (recorded, temperature 0) in the 10-round Prisoner's Dilemma, plain prompt "
            "(Akata et al. 2023).",
        ),
        ReplayPolicy(
            "akata2023/pd_gpt4_scot",
            "prisoners_dilemma",
            "pd_variation_predict_gpt4_lookup.json",
            "GPT-4 (recorded, temperature 0) in the 10-round Prisoner's Dilemma, social chain of "
            "thought: predicts the partner's move first (Akata et al. 2023).",
        ),
        ReplayPolicy(
            "akata2023/bos_gpt4",
            "battle_of_the_sexes",
            "bos_gpt4_lookup.json",
            "GPT-4 (recorded, temperature 0) in the 10-round Battle of the Sexes, plain prompt "
            "(Akata et al. 2023); mirrored for seat 1.",
        ),
        ReplayPolicy(
            "akata2023/bos_gpt4_scot",
            "battle_of_the_sexes",
            "bos_variation_predict_gpt4_lookup.json",
            "GPT-4 (recorded, temperature 0) in the 10-round Battle of the Sexes, social chain of "
            "thought (Akata et al. 2023); mirrored for seat 1.",
        ),
    )
}


REPLAY_SUITES: dict[str, tuple[str, ...]] = {
    "akata2023/gpt4": ("akata2023/pd_gpt4", "akata2023/bos_gpt4"),
    "akata2023/gpt4_scot": ("akata2023/pd_gpt4_scot", "akata2023/bos_gpt4_scot"),
}
"""Policies that play several games, each from the table recorded in it: the human experiment's partner
(Akata et al. 2023) met each person in both games with one prompt, plain or social chain of thought."""


def describe_replay_suites() -> dict[str, str]:
    """Suite id -> one line saying which recorded tables it plays (for `societas list`)."""
    return {sid: "Plays each game from its recorded table: " + ", ".join(f"replay:{i}" for i in ids) + "."
            for sid, ids in REPLAY_SUITES.items()}


def replay_ids() -> list[str]:
    """Every id `replay:ID` accepts: the recorded tables and the suites of them."""
    return sorted([*REPLAY_POLICIES, *REPLAY_SUITES])


@cache
def _load_table(filename: str) -> Mapping[str, str]:
    path = resources.files(_DATA_PACKAGE).joinpath(*_DATA_DIR, filename)
    raw: Any = json.loads(path.read_text(encoding="utf-8"))
    if not isinstance(raw, dict):
        raise ValueError(f"{path}: expected a JSON object of partner moves -> move")
    for key, value in raw.items():
        if (
            not isinstance(key, str)
            or not isinstance(value, str)
            or value not in _LETTERS
            or key.strip(_LETTERS)
        ):
            raise ValueError(f"{path}: entry {key!r}: {value!r} is not J/F letters -> J or F")
    return MappingProxyType(raw)


@cache
def _compiled(filename: str, mirrored: bool) -> Mapping[tuple[int, ...], int]:
    # Index the table by tuples of canonical indices, so act() looks up the
    # environment's partner_history tuple directly, with no string building.
    flip = 1 if mirrored else 0
    return MappingProxyType(
        {
            tuple(_LETTERS.index(c) ^ flip for c in key): _LETTERS.index(value) ^ flip
            for key, value in _load_table(filename).items()
        }
    )


class ReplayAgent:
    """Plays a recorded policy from `REPLAY_POLICIES`; not a live language model."""

    kind = "replay"
    model: str | None = None

    def __init__(self, name: str, policy_id: str) -> None:
        try:
            entries = [REPLAY_POLICIES[i] for i in REPLAY_SUITES.get(policy_id, (policy_id,))]
        except KeyError:
            raise ValueError(f"unknown replay policy {policy_id!r}; known: {', '.join(replay_ids())}") from None
        self.entry = entries[0]
        self._by_game = {e.game: e for e in entries}
        self.name = name
        self.policy = f"replay:{policy_id}"

    async def act(self, observation: Observation) -> Action:
        data = observation.data
        game = data.get("game")
        entry = self._by_game.get(game)
        if entry is None:
            recorded = " and ".join(repr(g) for g in self._by_game)
            raise ValueError(
                f"agent {self.name!r}: {self.policy} was recorded in {recorded} and cannot play {game!r}"
            )
        index = entry.move(data["partner_history"], data.get("seat", 0))
        value = observation.spec.validate(data["options"][index])
        return Action(value=value, policy=self.policy)
