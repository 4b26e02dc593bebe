"""Repeated 2x2 matrix games as a PettingZoo parallel environment.

Players see the prompts of the repeated-games study (Akata et al. 2023): the
rules once, then one line per past round and the question with the options in a
freshly shuffled order. Rules come first and are byte-identical across the
episode so model servers can cache the prefix; history lines are kept per player
and joined once per round, so a decision costs microseconds.

Where the study's scripts differ: they sent rules and history as one message
with a blank line before "You are currently playing round ..."; they drew one
option order per round for both players (here each player gets its own draw);
and their 144-game script stated the second player's off-diagonal payoffs
untransposed (here each player reads its own payoffs, as they are scored).
"""

from __future__ import annotations

import functools
import math
import string
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, ClassVar

import numpy as np
from gymnasium import spaces

from societas.environments.base import GameEnv
from societas.environments.catalog import Game, Payoffs, lookup
from societas.types import ActionSpec, Observation, Question

AGENTS = ("player_0", "player_1")
NO_ACTION = 2
"""The value of `own_last` / `partner_last` before the first round."""
DEFAULT_LETTERS = ("J", "F")
CHARSET = string.printable
"""Characters the observation's prompt text may hold (all printable ASCII)."""

Matrix = tuple[tuple[float, float], tuple[float, float]]
"""matrix[mine][theirs] = one player's points, from its own side."""

StepResult = tuple[
    dict[str, dict[str, Any]], dict[str, float], dict[str, bool], dict[str, bool], dict[str, dict[str, Any]]
]
"""observations, rewards, terminations, truncations, infos: PettingZoo's parallel step."""

_ANSWER = "\nA: Option"
_P0, _P1 = AGENTS
_SEAT = {_P0: 0, _P1: 1}


class _FromGame:
    def __repr__(self) -> str:
        return "<from game>"


_FROM_GAME: Any = _FromGame()


@dataclass(frozen=True, slots=True)
class _Texts:
    """Everything the prompts need for one (payoffs, letters, rounds): built once, shared."""

    rules: tuple[str, str]
    # tails[seat][own][partner] = the history line after "In round r, ".
    tails: tuple[tuple[tuple[str, str], tuple[str, str]], ...]
    questions: tuple[str, str]  # by swap flag: 0 = option 0 listed first
    predictions: tuple[str, str]
    specs: tuple[ActionSpec, ActionSpec]
    action_index: dict[Any, int]


def _num(x: float) -> str:
    return str(int(x)) if float(x).is_integer() else f"{x:g}"


@functools.lru_cache(maxsize=4096)
def _texts(own: tuple[Matrix, Matrix], letters: tuple[str, str], rounds: int) -> _Texts:
    """Rules, history-line tails, questions and specs for both seats (cached: episodes share them)."""
    a, b = letters
    rules, tails = [], []
    for seat in (0, 1):
        me, other = own[seat], own[1 - seat]
        lines = [
            "You are playing a game repeatedly with another player. "
            f"In this game, you can choose between Option {a} and Option {b}. "
            f"You will play {rounds} rounds in total with the same player. "
            "The rules of the game are as follows:"
        ]
        seat_tails = []
        for i in (0, 1):
            row = []
            for j in (0, 1):
                mine, theirs = _num(me[i][j]), _num(other[j][i])
                lines.append(
                    f"If you choose Option {letters[i]} and the other player chooses Option {letters[j]}, "
                    f"then you win {mine} points and the other player wins {theirs} points."
                )
                row.append(
                    f"you chose Option {letters[i]} and the other player chose Option {letters[j]}. "
                    f"Thus, you won {mine} points and the other player won {theirs} points."
                )
            seat_tails.append(tuple(row))
        rules.append("\n".join(lines))
        tails.append(tuple(seat_tails))
    orders = ((a, b), (b, a))
    return _Texts(
        rules=(rules[0], rules[1]),
        tails=tuple(tails),
        questions=tuple(
            f"Q: Which Option do you choose, Option {x} or Option {y}?{_ANSWER}"
            for x, y in orders
        ),
        predictions=tuple(
            f"Q: Which Option do you predict the other player will choose, Option {x} or Option {y}?{_ANSWER}"
            for x, y in orders
        ),
        # The default (played when a reply stays invalid) is canonical option 0,
        # so it does not depend on the order the options were shown in.
        specs=tuple(ActionSpec.choice(order, default=a) for order in orders),
        action_index={0: 0, 1: 1, a: 0, b: 1},
    )


class RepeatedMatrixGame(GameEnv):
    """Two players play a 2x2 game for `rounds` rounds and see each other's past moves.

    `payoffs[i][j]` = (player_0's points, player_1's points) when player_0 plays
    canonical option i and player_1 option j. Actions are canonical indices
    (`action_space` is Discrete(2)) or the option letters; observations are a
    dict with the full prompt text and structured fields. `decision(agent)` gives
    societas' runner the same situation as a `societas.types.Observation`.

    game: a preset ("prisoners_dilemma", the default, or "battle_of_the_sexes"),
        "akata144:N" for game N of the study's 144, or a catalog Game.
    payoffs: a custom matrix instead of `game`.
    letters: the two option labels, canonical order (default J, F).
    random_letters: draw two distinct capital letters per episode from the seed.
    shuffle_options: list the options in the question in a random order each
        round, drawn separately per player (the rules keep canonical order).
    cooperative_option: the option counted as cooperating in `infos`
        (default: the game's, 0 for the Prisoner's Dilemma, else None).
    """

    metadata: ClassVar[dict[str, Any]] = {
        "name": "repeated_matrix_game_v0", "render_modes": ["ansi"], "is_parallelizable": True,
    }

    def __init__(
        self,
        game: str | Game | None = None,
        *,
        payoffs: Sequence[Sequence[Sequence[float]]] | None = None,
        rounds: int = 10,
        letters: Sequence[str] | None = None,
        random_letters: bool = False,
        shuffle_options: bool = True,
        cooperative_option: int | None = _FROM_GAME,
        render_mode: str | None = None,
    ) -> None:
        if payoffs is not None:
            if game is not None and game != "custom":
                raise ValueError(f"give either game ({game!r}) or payoffs, not both")
            self.game: Game | None = None
            self.game_key = "custom"
            self.payoffs = _check_payoffs(payoffs)
        else:
            if isinstance(game, Game):
                self.game = game
            elif game is None:
                self.game = lookup("prisoners_dilemma")
            elif isinstance(game, str):
                if game == "custom":
                    raise ValueError(
                        "game: 'custom' needs payoffs=[[[p0, p1], [p0, p1]], [[p0, p1], [p0, p1]]]"
                    )
                try:
                    self.game = lookup(game)
                except ValueError as exc:
                    raise ValueError(f"game: {exc}") from None
            else:
                raise TypeError(f"game must be a game name or a catalog Game, got {type(game).__name__}")
            self.game_key = self.game.key
            self.payoffs = _check_payoffs(self.game.payoffs)
        if isinstance(rounds, bool) or not isinstance(rounds, (int, np.integer)) or rounds < 1:
            raise ValueError(f"rounds must be a positive integer, got {rounds!r}")
        self.rounds = int(rounds)
        self.random_letters = _check_flag("random_letters", random_letters)
        self.shuffle_options = _check_flag("shuffle_options", shuffle_options)
        if letters is not None and self.random_letters:
            raise ValueError("give either letters or random_letters=True, not both")
        self.letters = _check_letters(DEFAULT_LETTERS if letters is None else letters)
        if cooperative_option is _FROM_GAME:
            cooperative_option = self.game.cooperative_option if self.game is not None else None
        elif cooperative_option is not None and (
            isinstance(cooperative_option, bool) or cooperative_option not in (0, 1)
        ):
            raise ValueError(f"cooperative_option must be 0, 1 or None, got {cooperative_option!r}")
        self.cooperative_option: int | None = None if cooperative_option is None else int(cooperative_option)
        if render_mode not in (None, "ansi"):
            raise ValueError(f"render_mode must be None or 'ansi', got {render_mode!r}")
        self.render_mode = render_mode

        p = self.payoffs
        # Each seat's own points by (its option, partner's option): the column player sees the transpose.
        self._own_payoffs: tuple[Matrix, Matrix] = (
            ((p[0][0][0], p[0][1][0]), (p[1][0][0], p[1][1][0])),
            ((p[0][0][1], p[1][0][1]), (p[0][1][1], p[1][1][1])),
        )

        self.possible_agents = list(AGENTS)
        self.agents: list[str] = []
        self._rng: np.random.Generator | None = None
        self._t: _Texts | None = None
        self._ep_letters = self.letters
        self._swap: list[list[int]] = [[], []]
        self._round = 0
        self._lines: tuple[list[str], list[str]] = ([], [])
        self._moves: tuple[list[int], list[int]] = ([], [])
        self._rewards: tuple[list[float], list[float]] = ([], [])
        self._prefix = ["", ""]
        self._prompt = ["", ""]

    # -- PettingZoo API -------------------------------------------------------

    # Spaces are built on first use: gymnasium's Text space costs more to create
    # than a whole episode, and societas' runner never asks for them.
    @functools.cached_property
    def observation_spaces(self) -> dict[str, spaces.Space]:  # type: ignore[override]
        """prompt: rules, history and question as one text; round: the round about to be
        played (rounds + 1 once over); own_last / partner_last: canonical options, 2 = none yet."""
        sample = ("A", "B") if self.random_letters else self.letters
        text_len = _max_prompt_length(_texts(self._own_payoffs, sample, self.rounds), self.rounds)
        return {
            a: spaces.Dict({
                "prompt": spaces.Text(max_length=text_len, min_length=1, charset=CHARSET),
                "round": spaces.Discrete(self.rounds + 2),
                "own_last": spaces.Discrete(3),
                "partner_last": spaces.Discrete(3),
            })
            for a in AGENTS
        }

    @functools.cached_property
    def action_spaces(self) -> dict[str, spaces.Space]:  # type: ignore[override]
        return {a: spaces.Discrete(2) for a in AGENTS}

    def reset(
        self, seed: int | None = None, options: dict[str, Any] | None = None
    ) -> tuple[dict[str, dict[str, Any]], dict[str, dict[str, Any]]]:
        """Start an episode; a seed fixes the letters and option orders, None continues the stream."""
        if seed is not None or self._rng is None:
            self._rng = np.random.default_rng(seed)
        rng = self._rng
        if self.random_letters:
            i, j = rng.choice(26, size=2, replace=False)
            self._ep_letters = (string.ascii_uppercase[i], string.ascii_uppercase[j])
        if self.shuffle_options:
            self._swap = rng.integers(0, 2, size=(2, self.rounds)).tolist()
        else:
            self._swap = [[0] * self.rounds, [0] * self.rounds]
        self._t = _texts(self._own_payoffs, self._ep_letters, self.rounds)
        self.agents = list(AGENTS)
        self._round = 0
        for seat in (0, 1):
            self._lines[seat].clear()
            self._moves[seat].clear()
            self._rewards[seat].clear()
            self._next_prompt(seat)
        obs = {_P0: self._observe(0), _P1: self._observe(1)}
        return obs, {_P0: {}, _P1: {}}

    def step(self, actions: dict[str, Any]) -> StepResult:
        """Play one round: both players move at once (canonical index or option letter)."""
        if not self.agents:
            raise RuntimeError("the episode is over (or never started); call reset() first")
        index = self._t.action_index
        try:
            a0 = index[actions[_P0]]
            a1 = index[actions[_P1]]
        except (KeyError, TypeError):
            raise self._bad_actions(actions) from None
        if len(actions) != 2:
            raise self._bad_actions(actions)
        r0, r1 = self.payoffs[a0][a1]
        rnd = self._round + 1
        self._round = rnd
        tails = self._t.tails
        self._lines[0].append(f"In round {rnd}, {tails[0][a0][a1]}")
        self._lines[1].append(f"In round {rnd}, {tails[1][a1][a0]}")
        self._moves[0].append(a0)
        self._moves[1].append(a1)
        self._rewards[0].append(r0)
        self._rewards[1].append(r1)
        done = rnd >= self.rounds
        if done:
            self.agents = []
        self._next_prompt(0)
        self._next_prompt(1)
        letters, coop = self._ep_letters, self.cooperative_option
        infos = {
            _P0: {"action": letters[a0], "option": a0, "cooperated": None if coop is None else a0 == coop},
            _P1: {"action": letters[a1], "option": a1, "cooperated": None if coop is None else a1 == coop},
        }
        obs = {_P0: self._observe(0), _P1: self._observe(1)}
        return (obs, {_P0: r0, _P1: r1}, {_P0: False, _P1: False}, {_P0: done, _P1: done}, infos)

    def render(self) -> str | None:
        """The last round as text, or None before the first round."""
        if not self._round:
            return None
        k = self._round - 1
        a0, a1 = self._moves[0][k], self._moves[1][k]
        letters = self._ep_letters
        return (
            f"Round {self._round}: player_0 chose Option {letters[a0]} and player_1 chose Option "
            f"{letters[a1]}; player_0 won {_num(self._rewards[0][k])} points and player_1 won "
            f"{_num(self._rewards[1][k])} points."
        )

    # -- societas runner API --------------------------------------------------

    def decision(self, agent: str) -> Observation:
        """The current round's question for `agent`: rules, history prompt, typed choice, data."""
        seat = _SEAT.get(agent)
        if seat is None:
            raise ValueError(f"unknown agent {agent!r}; agents are {', '.join(AGENTS)}")
        if not self.agents:
            raise RuntimeError("the episode is over (or never started); call reset() first")
        t = self._t
        swap = self._swap[seat][self._round]
        spec = t.specs[swap]
        moves, rewards = self._moves, self._rewards
        return Observation(
            agent=agent,
            round=self._round + 1,
            system=t.rules[seat],
            prompt=self._prompt[seat],
            spec=spec,
            data={
                "game": self.game_key,
                "seat": seat,
                "options": self._ep_letters,
                "own_history": tuple(moves[seat]),
                "partner_history": tuple(moves[1 - seat]),
                "own_rewards": tuple(rewards[seat]),
                "partner_rewards": tuple(rewards[1 - seat]),
                "payoffs": self._own_payoffs[seat],
                "partner_payoffs": self._own_payoffs[1 - seat],
                "rounds": self.rounds,
                "cooperative_option": self.cooperative_option,
            },
            prediction=Question(prompt=self._prefix[seat] + t.predictions[swap], spec=spec),
        )

    @property
    def options(self) -> tuple[str, str]:
        """This episode's option letters in canonical order."""
        return self._ep_letters

    # -- internals -------------------------------------------------------------

    def _next_prompt(self, seat: int) -> None:
        """Build the seat's prompt for the coming round with one join over its history lines."""
        lines = self._lines[seat]
        if self.agents:
            rnd = self._round
            lines.append(f"You are currently playing round {rnd + 1}.\n")
            prefix = "\n".join(lines)
            lines.pop()
            self._prefix[seat] = prefix
            self._prompt[seat] = prefix + self._t.questions[self._swap[seat][rnd]]
        else:
            self._prefix[seat] = ""
            self._prompt[seat] = "\n".join(lines)

    def _observe(self, seat: int) -> dict[str, Any]:
        moves = self._moves
        return {
            "prompt": f"{self._t.rules[seat]}\n\n{self._prompt[seat]}",
            "round": self._round + 1,
            "own_last": moves[seat][-1] if moves[seat] else NO_ACTION,
            "partner_last": moves[1 - seat][-1] if moves[1 - seat] else NO_ACTION,
        }

    def _bad_actions(self, actions: Any) -> ValueError:
        allowed = f"0, 1, {self._ep_letters[0]!r} or {self._ep_letters[1]!r}"
        if not isinstance(actions, dict):
            return ValueError(f"step() takes a dict agent -> action, got {type(actions).__name__}")
        missing = [a for a in self.agents if a not in actions]
        if missing:
            return ValueError(f"step() needs an action for every live agent; missing: {', '.join(missing)}")
        extra = [a for a in actions if a not in self.agents]
        if extra:
            names = ", ".join(map(str, extra))
            return ValueError(f"step() got actions for unknown or finished agents: {names}")
        for a in self.agents:
            value = actions[a]
            try:
                ok = value in self._t.action_index
            except TypeError:  # unhashable
                ok = False
            if not ok:
                return ValueError(f"invalid action {value!r} for {a}; expected {allowed}")
        return ValueError(f"invalid actions {actions!r}; expected {allowed} per agent")


def _check_flag(name: str, value: Any) -> bool:
    if not isinstance(value, (bool, np.bool_)):
        raise TypeError(f"{name} must be true or false, got {value!r}")
    return bool(value)


def _check_letters(letters: Any) -> tuple[str, str]:
    if isinstance(letters, str) or not isinstance(letters, Sequence) or len(letters) != 2:
        raise ValueError(f"letters must be two option labels such as ['J', 'F'], got {letters!r}")
    for x in letters:
        if not isinstance(x, str) or not x or x != x.strip() or not x.isprintable() or any(
            ch not in CHARSET for ch in x
        ):
            raise ValueError(f"letters: each label must be non-empty printable ASCII without surrounding "
                             f"spaces, got {x!r}")
    if letters[0] == letters[1]:
        raise ValueError(f"letters must be two different labels, got {letters[0]!r} twice")
    return (letters[0], letters[1])


def _check_payoffs(payoffs: Any) -> Payoffs:
    shape = "payoffs must be a 2x2 matrix of (player_0 points, player_1 points) pairs"
    try:
        if len(payoffs) != 2 or any(len(line) != 2 for line in payoffs):
            raise ValueError
        out = []
        for line in payoffs:
            row = []
            for cell in line:
                if isinstance(cell, str) or len(cell) != 2:
                    raise ValueError
                pair = []
                for v in cell:
                    if isinstance(v, (bool, str)):
                        raise ValueError
                    number = float(v)
                    if not math.isfinite(number):
                        raise ValueError
                    pair.append(number)
                row.append((pair[0], pair[1]))
            out.append((row[0], row[1]))
    except (TypeError, ValueError):
        raise ValueError(f"{shape} of finite numbers, got {payoffs!r}") from None
    return (out[0], out[1])


def _max_prompt_length(t: _Texts, rounds: int) -> int:
    """An upper bound on the observation's prompt length, for the Text space."""
    line = len(f"In round {rounds}, ") + max(len(x) for seat in t.tails for row in seat for x in row) + 1
    tail = len(f"You are currently playing round {rounds}.\n") + max(len(q) for q in t.questions)
    return max(len(r) for r in t.rules) + 2 + rounds * line + tail
