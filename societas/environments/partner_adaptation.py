"""In-context partner adaptation: literal vs functional theory of mind.

The agent under test (the one seat, "player") plays a repeated game against a
partner policy that lives inside the environment. Each round it is asked to
predict the partner's next move (literal theory of mind) and then to move; how
much reward it leaves on the table against the partner's known policy is its
functional theory of mind (Riemer et al. 2024). Because the environment knows
the partner's policy, it records the best response of every round and the
regret of the move played, so analysis needs no model of the partner.

Games: rock-paper-scissors (win 1, draw 0, loss -1) and the Prisoner's
Dilemma (3/0/5/1). Partner policies are defined on move indices, so in the
Prisoner's Dilemma `always_rock` always cooperates and `cycle` alternates.
"""

from __future__ import annotations

import functools
from typing import Any, ClassVar

import numpy as np
from gymnasium import spaces

from societas.environments.base import GameEnv
from societas.types import ActionSpec, Observation, Question

PLAYER = "player"
GAMES: dict[str, tuple[tuple[str, ...], tuple[tuple[float, ...], ...]]] = {
    # moves, payoff[player move][partner move] for the player.
    "rps": (("rock", "paper", "scissors"), ((0, -1, 1), (1, 0, -1), (-1, 1, 0))),
    "pd": (("cooperate", "defect"), ((3, 0), (5, 1))),
}
PARTNERS = ("always_rock", "cycle", "copy_last", "beat_last", "biased", "tit_for_tat")
BIAS = {"rps": (0.6, 0.2, 0.2), "pd": (0.6, 0.4)}
"""The biased partner's move probabilities (the first move most likely)."""

StepResult = tuple[
    dict[str, dict[str, Any]], dict[str, float], dict[str, bool], dict[str, bool], dict[str, dict[str, Any]]
]


def partner_distribution(partner: str, game: str, player_history: list[int] | tuple[int, ...],
                         partner_history: list[int] | tuple[int, ...]) -> np.ndarray:
    """The partner's next-move probabilities given the history: what a best response must answer."""
    moves, payoff = GAMES[game]
    n = len(moves)
    out = np.zeros(n)
    if partner == "biased":
        return np.asarray(BIAS[game], dtype=float)
    if partner == "always_rock":
        out[0] = 1.0
    elif partner == "cycle":
        out[len(partner_history) % n] = 1.0
    elif partner in ("copy_last", "tit_for_tat"):
        out[player_history[-1] if player_history else 0] = 1.0
    elif partner == "beat_last":
        if not player_history:
            out[0] = 1.0
        else:
            # The partner's payoff is the player's payoff with the roles swapped.
            last = player_history[-1]
            out[int(np.argmax([payoff[m][last] for m in range(n)]))] = 1.0
    else:
        raise ValueError(f"unknown partner {partner!r}; known: {', '.join(PARTNERS)}")
    return out


def best_response(game: str, dist: np.ndarray) -> tuple[int, np.ndarray]:
    """The move with the highest expected reward against `dist` (lowest index on ties), and every move's."""
    expected = np.asarray(GAMES[game][1], dtype=float) @ dist
    return int(np.argmax(expected)), expected


class PartnerAdaptation(GameEnv):
    """A repeated game of the player against a fixed partner policy; one seat."""

    metadata: ClassVar[dict[str, Any]] = {"name": "partner_adaptation_v0",
                                           "render_modes": ["ansi"], "is_parallelizable": True}

    def __init__(self, game: str = "rps", partner: str = "copy_last", rounds: int = 30,
                 render_mode: str | None = None) -> None:
        if game not in GAMES:
            raise ValueError(f"game must be one of {', '.join(GAMES)}, got {game!r}")
        if partner not in PARTNERS:
            raise ValueError(f"partner must be one of {', '.join(PARTNERS)}, got {partner!r}")
        if isinstance(rounds, bool) or not isinstance(rounds, (int, np.integer)) or rounds < 1:
            raise ValueError(f"rounds must be a positive integer, got {rounds!r}")
        if render_mode not in (None, "ansi"):
            raise ValueError(f"render_mode must be None or 'ansi', got {render_mode!r}")
        self.game, self.partner, self.rounds, self.render_mode = game, partner, int(rounds), render_mode
        self.moves, self.payoff = GAMES[game]
        self._spec = ActionSpec.choice(self.moves)
        self._rules = _rules(game, self.rounds)
        self.possible_agents = [PLAYER]
        self.agents: list[str] = []
        self._rng = np.random.default_rng()
        self._mine: list[int] = []
        self._theirs: list[int] = []
        self._rewards: list[float] = []
        self._lines: list[str] = []

    @functools.cached_property
    def observation_spaces(self) -> dict[str, spaces.Space]:  # type: ignore[override]
        """round: the round about to be played; own_last / partner_last: move index, len(moves) = none yet."""
        n = len(self.moves)
        return {PLAYER: spaces.Dict({"round": spaces.Discrete(self.rounds + 2),
                                     "own_last": spaces.Discrete(n + 1), "partner_last": spaces.Discrete(n + 1)})}

    @functools.cached_property
    def action_spaces(self) -> dict[str, spaces.Space]:  # type: ignore[override]
        return {PLAYER: spaces.Discrete(len(self.moves))}

    def reset(self, seed: int | None = None,
              options: dict[str, Any] | None = None) -> tuple[dict[str, dict[str, Any]], dict[str, dict[str, Any]]]:
        """Start an episode; the seed fixes the biased partner's draws."""
        if seed is not None:
            self._rng = np.random.default_rng(seed)
        self.agents = [PLAYER]
        self._mine, self._theirs, self._rewards, self._lines = [], [], [], []
        return {PLAYER: self._observe()}, {PLAYER: {}}

    def step(self, actions: dict[str, Any]) -> StepResult:
        """Play one round: the partner moves by its policy, the player by its action (index or move name)."""
        if not self.agents:
            raise RuntimeError("the episode is over (or never started); call reset() first")
        if not isinstance(actions, dict) or set(actions) != {PLAYER}:
            raise ValueError(f"step() takes {{'{PLAYER}': move}}, got {actions!r}")
        mine = self._index(actions[PLAYER])
        dist = partner_distribution(self.partner, self.game, self._mine, self._theirs)
        theirs = int(self._rng.choice(len(dist), p=dist)) if self.partner == "biased" else int(np.argmax(dist))
        br, expected = best_response(self.game, dist)
        reward = float(self.payoff[mine][theirs])
        self._mine.append(mine)
        self._theirs.append(theirs)
        self._rewards.append(reward)
        rnd = len(self._mine)
        self._lines.append(f"In round {rnd}, you played {self.moves[mine]} and your partner played "
                           f"{self.moves[theirs]}; you got {_num(reward)} points.")
        done = rnd >= self.rounds
        if done:
            self.agents = []
        record = {
            "game": self.game, "partner_policy": self.partner, "move": self.moves[mine],
            "partner_move": self.moves[theirs], "best_response": self.moves[br],
            "br_reward": float(expected[br]), "expected_reward": float(expected[mine]),
            "regret": float(expected[br] - expected[mine]), "reward": reward,
        }
        info = {"action": self.moves[mine], "option": mine, "record": record,
                "cooperated": (mine == 0) if self.game == "pd" else None}
        return ({PLAYER: self._observe()}, {PLAYER: reward}, {PLAYER: False}, {PLAYER: done}, {PLAYER: info})

    def render(self) -> str | None:
        """The last round as text, or None before the first round."""
        return self._lines[-1] if self._lines else None

    def decision(self, agent: str) -> Observation:
        """The round's question: rules, history, the move choice, and the prediction of the partner's move."""
        if agent != PLAYER:
            raise ValueError(f"unknown agent {agent!r}; the only agent is {PLAYER!r}")
        if not self.agents:
            raise RuntimeError("the episode is over (or never started); call reset() first")
        rnd = len(self._mine) + 1
        head = "\n".join([*self._lines, f"You are currently playing round {rnd}."])
        options = ", ".join(self.moves)
        return Observation(
            agent=agent, round=rnd, system=self._rules,
            prompt=f"{head}\nWhich move do you play? Answer with one of: {options}.",
            spec=self._spec,
            data={"game": self.game, "moves": self.moves, "own_history": tuple(self._mine),
                  "partner_history": tuple(self._theirs), "own_rewards": tuple(self._rewards),
                  "payoffs": self.payoff, "rounds": self.rounds},
            prediction=Question(prompt=f"{head}\nWhich move will your partner play next? Answer with one of: "
                                       f"{options}.", spec=self._spec),
        )

    def episode_summary(self) -> dict[str, dict[str, Any]]:
        """The partner policy and the player's total reward and regret."""
        regret = 0.0
        for t, mine in enumerate(self._mine):
            dist = partner_distribution(self.partner, self.game, self._mine[:t], self._theirs[:t])
            br, expected = best_response(self.game, dist)
            regret += float(expected[br] - expected[mine])
        return {PLAYER: {"game": self.game, "partner_policy": self.partner, "rounds": len(self._mine),
                         "total_reward": float(sum(self._rewards)), "total_regret": regret}}

    def _index(self, value: Any) -> int:
        if isinstance(value, str) and value in self.moves:
            return self.moves.index(value)
        if isinstance(value, (int, np.integer)) and not isinstance(value, bool) and 0 <= value < len(self.moves):
            return int(value)
        raise ValueError(f"invalid action {value!r}; expected a move index or one of {', '.join(self.moves)}")

    def _observe(self) -> dict[str, Any]:
        none = len(self.moves)
        return {"round": len(self._mine) + 1,
                "own_last": self._mine[-1] if self._mine else none,
                "partner_last": self._theirs[-1] if self._theirs else none}


def _num(x: float) -> str:
    return str(int(x)) if float(x).is_integer() else f"{x:g}"


@functools.lru_cache(maxsize=16)
def _rules(game: str, rounds: int) -> str:
    """The static rules, identical across the episode so the prompt prefix caches."""
    moves, payoff = GAMES[game]
    lines = [f"You are playing a game for {rounds} rounds with the same partner. Each round you both choose "
             f"one of: {', '.join(moves)}. Your points for each pair of moves:"]
    for i, m in enumerate(moves):
        for j, o in enumerate(moves):
            lines.append(f"- you play {m}, your partner plays {o}: you get {_num(payoff[i][j])} points.")
    lines.append("Your partner follows its own fixed way of choosing. Win as many points as you can.")
    return "\n".join(lines)
