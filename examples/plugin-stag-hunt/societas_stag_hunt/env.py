"""The repeated stag hunt for N hunters, as a PettingZoo parallel environment.

Every round each hunter chooses the stag (option 0, the cooperative choice) or
a hare (option 1). The stag is caught only if at least `needed` hunters go for
it (all of them by default); a hare is caught alone. Prompts follow the
repeated-games study societas bundles: the rules once, one line per past
round, then the question with the options in a freshly shuffled order, so the
same language-model agents play it unchanged.

With two hunters the observation data carry the same fields as the bundled
2x2 game (`partner_history`, `payoffs`, ...), so the bundled scripted
strategies (tit-for-tat, win-stay-lose-shift, ...) play it too.
"""

from __future__ import annotations

import functools
import math
import string
from collections.abc import Sequence
from typing import Any, ClassVar

import numpy as np
from gymnasium import spaces
from pettingzoo import ParallelEnv

from societas.types import ActionSpec, Observation

STAG, HARE = 0, 1
CHARSET = string.printable
_ANSWER = "\nA: Option"


def _num(x: float) -> str:
    return str(int(x)) if float(x).is_integer() else f"{x:g}"


class StagHunt(ParallelEnv):
    """N hunters choose stag or hare each round for `rounds` rounds.

    players: number of hunters (2 or more).
    rounds: rounds per episode.
    stag: points for each stag hunter when the hunt succeeds.
    hare: points for a hare, caught whatever the others do.
    failed_stag: points for a stag hunter when too few others hunted stag.
    needed: stag hunters needed for success (default: all players).
    labels: the two option labels shown to players, stag first.
    shuffle_options: list the options in a random order each round.
    """

    metadata: ClassVar[dict[str, Any]] = {
        "name": "stag_hunt_v0", "render_modes": ["ansi"], "is_parallelizable": True,
    }

    def __init__(
        self,
        *,
        players: int = 2,
        rounds: int = 10,
        stag: float = 4.0,
        hare: float = 3.0,
        failed_stag: float = 0.0,
        needed: int | None = None,
        labels: Sequence[str] = ("J", "F"),
        shuffle_options: bool = True,
        render_mode: str | None = None,
    ) -> None:
        if isinstance(players, bool) or not isinstance(players, (int, np.integer)) or players < 2:
            raise ValueError(f"players must be an integer >= 2, got {players!r}")
        if isinstance(rounds, bool) or not isinstance(rounds, (int, np.integer)) or rounds < 1:
            raise ValueError(f"rounds must be a positive integer, got {rounds!r}")
        for key, value in (("stag", stag), ("hare", hare), ("failed_stag", failed_stag)):
            if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
                raise ValueError(f"{key} must be a finite number, got {value!r}")
        needed = players if needed is None else needed
        if isinstance(needed, bool) or not isinstance(needed, (int, np.integer)) or not 1 <= needed <= players:
            raise ValueError(f"needed must be an integer between 1 and players ({players}), got {needed!r}")
        if isinstance(labels, str) or len(labels) != 2 or labels[0] == labels[1] or not all(
            isinstance(x, str) and x and x.strip() == x and all(c in CHARSET for c in x) for x in labels
        ):
            raise ValueError(f"labels must be two different printable labels such as ['J', 'F'], got {labels!r}")
        if not isinstance(shuffle_options, bool):
            raise TypeError(f"shuffle_options must be true or false, got {shuffle_options!r}")
        if render_mode not in (None, "ansi"):
            raise ValueError(f"render_mode must be None or 'ansi', got {render_mode!r}")
        self.players = int(players)
        self.rounds = int(rounds)
        self.stag, self.hare, self.failed_stag = float(stag), float(hare), float(failed_stag)
        self.needed = int(needed)
        self.labels = (labels[0], labels[1])
        self.shuffle_options = shuffle_options
        self.render_mode = render_mode
        self.possible_agents = [f"hunter_{i}" for i in range(self.players)]
        self.agents: list[str] = []
        self._seat = {a: i for i, a in enumerate(self.possible_agents)}
        self._rules = self._build_rules()
        self._rng: np.random.Generator | None = None
        self._round = 0
        self._moves: list[list[int]] = []
        self._rewards: list[list[float]] = []
        self._lines: list[list[str]] = []
        self._order: list[list[int]] = []

    # -- PettingZoo API -------------------------------------------------------

    @functools.cached_property
    def _observation_spaces(self) -> dict[str, spaces.Space]:
        prompt = spaces.Text(max_length=self._max_prompt_length(), min_length=1, charset=CHARSET)
        return {
            a: spaces.Dict({
                "prompt": prompt,
                "round": spaces.Discrete(self.rounds + 2),
                "stag_hunters_last": spaces.Discrete(self.players + 2),  # players + 1 = none yet
            })
            for a in self.possible_agents
        }

    @functools.cached_property
    def _action_spaces(self) -> dict[str, spaces.Space]:
        return {a: spaces.Discrete(2) for a in self.possible_agents}

    def observation_space(self, agent: str) -> spaces.Space:
        return self._observation_spaces[agent]

    def action_space(self, agent: str) -> spaces.Space:
        return self._action_spaces[agent]

    def reset(
        self, seed: int | None = None, options: dict[str, Any] | None = None
    ) -> tuple[dict[str, dict[str, Any]], dict[str, dict[str, Any]]]:
        """Start an episode; the seed fixes the option order of every round."""
        if seed is not None or self._rng is None:
            self._rng = np.random.default_rng(seed)
        n = self.players
        if self.shuffle_options:
            self._order = self._rng.integers(0, 2, size=(n, self.rounds)).tolist()
        else:
            self._order = [[0] * self.rounds for _ in range(n)]
        self.agents = list(self.possible_agents)
        self._round = 0
        self._moves = [[] for _ in range(n)]
        self._rewards = [[] for _ in range(n)]
        self._lines = [[] for _ in range(n)]
        return {a: self._observe(a) for a in self.agents}, {a: {} for a in self.agents}

    def step(self, actions: dict[str, Any]) -> tuple[dict, dict, dict, dict, dict]:
        """Play one round: every hunter moves at once (option index or label)."""
        if not self.agents:
            raise RuntimeError("the episode is over (or never started); call reset() first")
        missing = [a for a in self.agents if a not in actions]
        if missing:
            raise ValueError(f"step() needs an action for every live agent; missing: {', '.join(missing)}")
        choice = [self._index(a, actions[a]) for a in self.possible_agents]
        hunters = choice.count(STAG)
        success = hunters >= self.needed
        rewards = {}
        infos = {}
        self._round += 1
        for i, a in enumerate(self.possible_agents):
            r = (self.stag if success else self.failed_stag) if choice[i] == STAG else self.hare
            rewards[a] = r
            self._moves[i].append(choice[i])
            self._rewards[i].append(r)
            others = ", ".join(f"Option {self.labels[c]}" for j, c in enumerate(choice) if j != i)
            self._lines[i].append(
                f"In round {self._round}, you chose Option {self.labels[choice[i]]} and the other "
                f"{'player' if self.players == 2 else 'players'} chose {others}. You won {_num(r)} points."
            )
            infos[a] = {"action": self.labels[choice[i]], "option": choice[i], "cooperated": choice[i] == STAG}
        done = self._round >= self.rounds
        if done:
            self.agents = []
        obs = {a: self._observe(a) for a in self.possible_agents}
        never = dict.fromkeys(self.possible_agents, False)
        return obs, rewards, never, dict.fromkeys(self.possible_agents, done), infos

    def render(self) -> str | None:
        """The last round as text, or None before the first round."""
        if not self._round:
            return None
        moves = ", ".join(f"{a} chose {self.labels[self._moves[i][-1]]}"
                          for i, a in enumerate(self.possible_agents))
        return f"Round {self._round}: {moves}."

    def close(self) -> None:
        """Nothing to release."""

    # -- societas runner API --------------------------------------------------

    def decision(self, agent: str) -> Observation:
        """This round's question for `agent`: rules, history, a choice between the two labels."""
        if agent not in self._seat:
            raise ValueError(f"unknown agent {agent!r}; agents are {', '.join(self.possible_agents)}")
        if not self.agents:
            raise RuntimeError("the episode is over (or never started); call reset() first")
        seat = self._seat[agent]
        first, second = self._shown(seat)
        data: dict[str, Any] = {
            "game": "stag_hunt",
            "seat": seat,
            "players": self.players,
            "options": self.labels,
            "own_history": tuple(self._moves[seat]),
            "others_history": tuple(
                tuple(self._moves[j][k] for j in range(self.players) if j != seat) for k in range(self._round)
            ),
            "own_rewards": tuple(self._rewards[seat]),
            "rounds": self.rounds,
            "cooperative_option": STAG,
        }
        if self.players == 2:
            # The 2x2 game's fields, so the bundled scripted strategies play this game too.
            data["partner_history"] = tuple(self._moves[1 - seat])
            data["partner_rewards"] = tuple(self._rewards[1 - seat])
            data["payoffs"] = ((self.stag, self.failed_stag), (self.hare, self.hare))
        return Observation(
            agent=agent,
            round=self._round + 1,
            system=self._rules,
            prompt=self._prompt(seat),
            spec=ActionSpec.choice((self.labels[first], self.labels[second])),
            data=data,
        )

    # -- internals -------------------------------------------------------------

    def _build_rules(self) -> str:
        s, h = self.labels
        others = "another player" if self.players == 2 else f"{self.players - 1} other players"
        if self.needed == self.players:
            condition = ("the other player also chooses" if self.players == 2
                         else "all other players also choose") + f" Option {s}"
            failure = ("the other player chooses" if self.players == 2
                       else "any other player chooses") + f" Option {h}"
        else:
            condition = f"at least {self.needed - 1} of the other players also choose Option {s}"
            failure = f"fewer of them choose Option {s}"
        return (
            f"You are playing a game repeatedly with {others}. In this game, you can choose between "
            f"Option {s} and Option {h}. You will play {self.rounds} rounds in total. "
            f"If you choose Option {s} and {condition}, you win {_num(self.stag)} points. "
            f"If you choose Option {s} and {failure}, you win {_num(self.failed_stag)} points. "
            f"If you choose Option {h}, you win {_num(self.hare)} points, whatever the others choose."
        )

    def _shown(self, seat: int) -> tuple[int, int]:
        swap = self._order[seat][min(self._round, self.rounds - 1)]
        return (HARE, STAG) if swap else (STAG, HARE)

    def _question(self, seat: int) -> str:
        first, second = self._shown(seat)
        return (f"You are currently playing round {self._round + 1}.\n"
                f"Q: Which Option do you choose, Option {self.labels[first]} or Option {self.labels[second]}?"
                f"{_ANSWER}")

    def _prompt(self, seat: int) -> str:
        lines = self._lines[seat]
        if not self.agents:
            return "\n".join(lines)
        return "\n".join([*lines, self._question(seat)])

    def _observe(self, agent: str) -> dict[str, Any]:
        seat = self._seat[agent]
        last = self.players + 1 if not self._round else sum(1 for m in self._moves if m[-1] == STAG)
        return {
            "prompt": f"{self._rules}\n\n{self._prompt(seat)}",
            "round": self._round + 1,
            "stag_hunters_last": last,
        }

    def _index(self, agent: str, value: Any) -> int:
        if isinstance(value, (int, np.integer)) and not isinstance(value, bool) and int(value) in (STAG, HARE):
            return int(value)
        if value in self.labels:
            return self.labels.index(value)
        raise ValueError(f"invalid action {value!r} for {agent}; expected 0, 1, {self.labels[0]!r} "
                         f"or {self.labels[1]!r}")

    def _max_prompt_length(self) -> int:
        """An upper bound on the observation's prompt length, for the Text space."""
        label = max(len(x) for x in self.labels)
        points = max(len(_num(x)) for x in (self.stag, self.hare, self.failed_stag))
        digits = len(str(self.rounds + 1))
        line = (len("In round , you chose Option  and the other players chose . You won  points.") + digits
                + label + (self.players - 1) * (len("Option , ") + label) + points + 1)
        question = len("You are currently playing round .\nQ: Which Option do you choose, Option  or Option ?")
        return len(self._rules) + 2 + self.rounds * line + question + digits + 2 * label + len(_ANSWER)
