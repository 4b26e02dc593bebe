"""The 2x2 games the repeated matrix game knows by name.

Two presets (the Prisoner's Dilemma and Battle of the Sexes of the repeated-games
study) and the study's 144 ordinal games, read from the bundled
`data/akata2023/144_games_info.csv` (Akata et al. 2023, "Playing repeated games
with Large Language Models"; MIT licence, copyright (c) 2024 Elif Akata, from
eliaka/repeatedgames; see the LICENSE.md beside the file).

Canonical options: index 0 is row 1 / column 1 of the table and index 1 is row 2 /
column 2; player 1 (`player_0`) picks the row. In the study's logs
(`all_games/experiments/game_N.csv`) `choice_option1` names option 0's letter and
`choice_option2` option 1's, for both players; replaying every logged round of
all 144 games reproduces the logged points exactly with this mapping (and with no
other), see tests/environments/test_replay_logs.py.

A caution for exact reproductions of that study: its 144-game script told the
second player the off-diagonal payoffs untransposed (as if it chose the row).
societas states every player's payoffs from its own side, as the points are
actually computed.
"""

from __future__ import annotations

import csv
import functools
import io
from dataclasses import dataclass
from importlib import resources

Cell = tuple[float, float]
Payoffs = tuple[tuple[Cell, Cell], tuple[Cell, Cell]]
"""payoffs[i][j] = (row player's points, column player's points) when the row
player plays option i and the column player option j."""

AKATA144_PREFIX = "akata144:"
_DATA = "data/akata2023/144_games_info.csv"


@dataclass(frozen=True, kw_only=True, slots=True)
class Game:
    """One named 2x2 game.

    `key` is what `RepeatedMatrixGame(game=...)` takes. `number`, `row` and `col`
    place the 144 ordinal games in the Robinson-Goforth table (None for presets).
    """

    key: str
    name: str
    payoffs: Payoffs
    family: str = ""
    number: int | None = None
    row: int | None = None
    col: int | None = None
    cooperative_option: int | None = None

    @property
    def max_payoff(self) -> float:
        """The largest points either player can win in one round."""
        return max(v for line in self.payoffs for cell in line for v in cell)

    def normalised_score(self, total: float, rounds: int = 10) -> float:
        """The study's score: a final total over rounds x the game's largest per-round payoff."""
        return total / (rounds * self.max_payoff)


PRESETS: dict[str, Game] = {
    "prisoners_dilemma": Game(
        key="prisoners_dilemma", name="Prisoner's Dilemma", family="PD Family",
        payoffs=(((8.0, 8.0), (0.0, 10.0)), ((10.0, 0.0), (5.0, 5.0))),
        cooperative_option=0,
    ),
    "battle_of_the_sexes": Game(
        key="battle_of_the_sexes", name="Battle of the Sexes", family="Unfair",
        payoffs=(((10.0, 7.0), (0.0, 0.0)), ((0.0, 0.0), (7.0, 10.0))),
    ),
}
"""Named games with J = option 0 and F = option 1, as in the study."""


@functools.cache
def _akata144() -> tuple[Game, ...]:
    text = resources.files("societas.environments").joinpath(_DATA).read_text(encoding="utf-8")
    games = []
    for line, row in enumerate(csv.DictReader(io.StringIO(text), delimiter=";"), start=2):
        try:
            number = int(row["game_number"])
            payoffs = tuple(
                tuple((float(row[f"r{i}_c{j}_p1"]), float(row[f"r{i}_c{j}_p2"])) for j in (1, 2))
                for i in (1, 2)
            )
            games.append(Game(
                key=f"{AKATA144_PREFIX}{number}", name=row["game_name"], family=row["game_family"],
                payoffs=payoffs, number=number, row=int(row["game_row"]), col=int(row["game_col"]),
            ))
        except (KeyError, TypeError, ValueError) as exc:
            raise ValueError(f"societas/environments/{_DATA}, line {line}: unreadable row ({exc})") from None
    if [g.number for g in games] != list(range(1, 145)):
        raise ValueError(f"societas/environments/{_DATA}: expected games 1..144 in order")
    return tuple(games)


def akata144() -> list[Game]:
    """The 144 ordinal 2x2 games of the study, game 1 first (read once per process)."""
    return list(_akata144())


def get_game(n: int) -> Game:
    """Game number `n` (1-144) of the study's catalog."""
    if isinstance(n, bool) or not isinstance(n, int) or not 1 <= n <= 144:
        raise ValueError(f"game number must be an integer from 1 to 144, got {n!r}")
    return _akata144()[n - 1]


def lookup(key: str) -> Game:
    """A preset by name, or "akata144:N" for game N of the 144-game catalog."""
    if isinstance(key, str):
        preset = PRESETS.get(key)
        if preset is not None:
            return preset
        if key.startswith(AKATA144_PREFIX):
            number = key[len(AKATA144_PREFIX):]
            if number.isascii() and number.isdigit() and 1 <= int(number) <= 144:
                return _akata144()[int(number) - 1]
    raise ValueError(
        f"unknown game {key!r}; expected one of {', '.join(PRESETS)} or akata144:N with N from 1 to 144"
    )
