"""The naming game as a PettingZoo game: pairs of a population name something at once, conventions emerge.

Each interaction a uniformly random agent and a uniformly random neighbour of
it on the contact graph (complete by default) pick one of W names at the same
time; +100 each when the names agree, -50 each otherwise (Ashery, Aiello &
Baronchelli 2025). Every agent remembers its own last H interactions (its
name, the partner's, the points) and reads them, with its score over them, in
its prompt; the names are offered in a fresh order each time, drawn with the
schedule from the episode's seed.

A step plays the next interactions of the schedule that share no agent (see
`rules.Schedule`), so a population's pairs and its model calls run
concurrently while every agent's memory grows in the schedule's order: the
events are those of playing the interactions one at a time. The run stops at
the first interaction that completes `consensus_rounds` x N consecutive
successes (a step never runs past it), or after `rounds` population rounds of
N interactions. `max_pairs` caps the pairs of a step (1 plays them one by one); it changes
how many model calls overlap, never the events. `show_rounds: false` leaves the round
numbers out of the prompt, so it depends only on the memory and the option order: a
small state, whose prompts `sampling: distribution` asks the model about once each.
`prefill` starts every agent's memory with H successes of an established name
(the paper's "swap" setup, with committed members, see `societas.agents.naming`),
and then the run plays its whole budget.

A step costs in proportion to its pairs, not to the population: `step_acting`
plays them and reports the acting agents alone (the runner's path), and
`step`, PettingZoo's, adds every other live agent's zero reward, empty info
and observation around it. Memories are tuples shared until an agent acts and
observations are built when asked for, so a million agents hold little before
they play.
"""

from __future__ import annotations

import functools
from collections.abc import Iterator, Mapping, Sequence
from typing import Any, ClassVar

import numpy as np
from gymnasium import spaces

from societas.environments.base import GameEnv
from societas.environments.naming import prompts
from societas.environments.naming.rules import LETTERS, MATCH, Schedule, contact_graph, payoff
from societas.environments.params import check_flag, check_int
from societas.types import ActionSpec, Observation

StepResult = tuple[
    dict[str, dict[str, Any]], dict[str, float], dict[str, bool], dict[str, bool], dict[str, dict[str, Any]]
]
Pair = tuple[int, int, int, tuple[int, ...], tuple[int, ...]]
Memory = tuple[int, str, str, float]
"""One remembered interaction: the agent's round number, its name, the partner's name, the points."""


class NamingGame(GameEnv):
    """The naming game for `num_agents` agents over a pool of `names`."""

    metadata: ClassVar[dict[str, Any]] = {"name": "naming_game_v0", "render_modes": ["ansi"],
                                          "is_parallelizable": True}
    # Changes how many pairs' model calls overlap, never the events: left out of the episode's seed.
    timing_params: ClassVar[frozenset[str]] = frozenset({"max_pairs"})

    def __init__(self, num_agents: int = 24, names: Sequence[str] | None = None, memory: int = 5,
                 rounds: int = 100, consensus_rounds: int = 3, graph: Any = None, prefill: str | None = None,
                 until_consensus: bool | None = None, shuffle: bool = True, max_pairs: int | None = None,
                 show_rounds: bool = True, render_mode: str | None = None) -> None:
        self.n = check_int("num_agents", num_agents, 2)
        self.names = check_names(LETTERS if names is None else names)
        self.memory_size = check_int("memory", memory, 0)
        self.rounds = check_int("rounds", rounds, 1)
        self.consensus_rounds = check_int("consensus_rounds", consensus_rounds, 1)
        if prefill is not None and prefill not in self.names:
            raise ValueError(f"prefill must be one of the names ({', '.join(self.names)}), got {prefill!r}")
        self.prefill = prefill
        self.until_consensus = (prefill is None) if until_consensus is None else check_flag(
            "until_consensus", until_consensus)
        self.shuffle = check_flag("shuffle", shuffle)
        self.show_rounds = check_flag("show_rounds", show_rounds)
        self.max_pairs = None if max_pairs is None else check_int("max_pairs", max_pairs, 1)
        self._graph_spec = None if _complete(graph) else graph
        if self._graph_spec is not None:
            contact_graph(self.n, graph, np.random.default_rng(0))  # a bad graph fails here, not at reset
        if render_mode not in (None, "ansi"):
            raise ValueError(f"render_mode must be None or 'ansi', got {render_mode!r}")
        self.render_mode = render_mode
        self.possible_agents = [f"player_{i}" for i in range(self.n)]
        self._index = {a: i for i, a in enumerate(self.possible_agents)}
        self._name_index = {name: i for i, name in enumerate(self.names)}
        self.agents: list[str] = []
        self._rng = np.random.default_rng()
        self._reset_state()

    @property
    def budget(self) -> int:
        """Interactions at most: `rounds` population rounds of N."""
        return self.rounds * self.n

    @property
    def window(self) -> int:
        """Consecutive successes that make a consensus: `consensus_rounds` x N."""
        return self.consensus_rounds * self.n

    def _reset_state(self) -> None:
        h = self.memory_size
        start: list[Memory] = ([(k, self.prefill, self.prefill, MATCH) for k in range(1, h + 1)]
                               if self.prefill is not None else [])
        # Each agent's last H interactions, oldest first; the starting tuple is shared until an agent plays.
        self.memories: list[tuple[Memory, ...]] = [tuple(start)] * self.n
        self.round_no = [len(start)] * self.n  # rounds each agent has in its past
        self.played = 0
        self.streak = 0
        self.consensus_at: int | None = None
        self.successes = 0
        self._batch: list[Pair] = []
        self._partner: dict[int, int] = {}
        self._order: dict[int, tuple[int, ...]] = {}
        self._t: dict[int, int] = {}
        self._last: list[str] = []
        self._obs: dict[int, dict[str, Any]] = {}  # observations asked for since the agent's memory changed

    @functools.cached_property
    def observation_spaces(self) -> dict[str, spaces.Space]:  # type: ignore[override]
        """memory: the agent's last H interactions, oldest first, as (its name, the partner's name) pairs,
        each name's index + 1 (0 where the memory is not yet full)."""
        space = spaces.Dict({"memory": spaces.MultiDiscrete([len(self.names) + 1] * (2 * self.memory_size or 1))})
        return dict.fromkeys(self.possible_agents, space)

    @functools.cached_property
    def action_spaces(self) -> dict[str, spaces.Space]:  # type: ignore[override]
        """A name's index in `names` (the runner passes the name itself)."""
        return {a: spaces.Discrete(len(self.names)) for a in self.possible_agents}

    def reset(self, seed: int | None = None,
              options: dict[str, Any] | None = None) -> tuple[dict[str, dict[str, Any]], dict[str, dict[str, Any]]]:
        """Start a run; the seed fixes the graph (if random), the pairs and the option orders."""
        if seed is not None:
            self._rng = np.random.default_rng(seed)
        graph = self.n if self._graph_spec is None else contact_graph(self.n, self._graph_spec, self._rng)
        self._schedule = Schedule(graph, len(self.names), self._rng, shuffle=self.shuffle)
        self._reset_state()
        self.agents = list(self.possible_agents)
        self._next_batch()
        # Every agent starts from the same memory: one observation object for all (read, not written).
        first = self._observation(0)
        self._obs.clear()
        return dict.fromkeys(self.agents, first), {a: {} for a in self.agents}

    def _next_batch(self) -> None:
        limit = self.budget - self.played
        if self.until_consensus:
            limit = min(limit, self.window - self.streak)
        if self.max_pairs is not None:
            limit = min(limit, self.max_pairs)
        self._batch = self._schedule.step(limit)
        self._partner, self._order, self._t = {}, {}, {}
        for t, a, b, order_a, order_b in self._batch:
            self._partner[a], self._partner[b] = b, a
            self._order[a], self._order[b] = order_a, order_b
            self._t[a] = self._t[b] = t

    def acting_agents(self) -> list[str]:
        """The agents of this step's pairs, pair by pair."""
        if not self.agents:
            return []
        return [self.possible_agents[i] for _, a, b, _, _ in self._batch for i in (a, b)]

    def step(self, actions: dict[str, Any]) -> StepResult:
        """Play this step's pairs; actions of agents not in them are ignored."""
        live = self.agents
        acting_rewards, acting_infos = self.step_acting(actions)
        rewards = dict.fromkeys(live, 0.0)
        rewards.update(acting_rewards)
        infos: dict[str, dict[str, Any]] = {a: {} for a in live}
        infos.update(acting_infos)
        done = self.until_consensus and self.consensus_at is not None
        out_of_time = not done and not self.agents
        return (self._observe(live), rewards, dict.fromkeys(live, done), dict.fromkeys(live, out_of_time), infos)

    def step_acting(self, actions: Mapping[str, Any]) -> tuple[dict[str, float], dict[str, dict[str, Any]]]:
        """`step` for this step's pairs alone: their agents' rewards and infos, nothing of the others.

        Every other live agent's reward is 0 and its info empty; the episode is
        over when `agents` is empty afterwards. The work is the pairs', whatever N is.
        """
        if not self.agents:
            raise RuntimeError("the episode is over (or never started); call reset() first")
        if not isinstance(actions, Mapping):
            raise ValueError(f"step() takes a dict agent -> action, got {type(actions).__name__}")
        names = self.possible_agents
        missing = [names[i] for _, a, b, _, _ in self._batch for i in (a, b) if names[i] not in actions]
        if missing:
            raise ValueError(f"step() lacks actions for {', '.join(missing)}")
        said = {i: self._name(names[i], actions[names[i]]) for _, a, b, _, _ in self._batch for i in (a, b)}
        rewards: dict[str, float] = {}
        infos: dict[str, dict[str, Any]] = {}
        h = self.memory_size
        memories, round_no, cached = self.memories, self.round_no, self._obs
        self._last = []
        for t, a, b, order_a, order_b in self._batch:
            points = payoff(said[a], said[b])
            ok = points == MATCH
            for me, other, order in ((a, b, order_a), (b, a, order_b)):
                round_no[me] += 1
                if h:
                    memories[me] = (*memories[me][1 - h:], (round_no[me], said[me], said[other], points)) \
                        if h > 1 else ((round_no[me], said[me], said[other], points),)
                cached.pop(me, None)
                agent = names[me]
                rewards[agent] = points
                infos[agent] = {"action": said[me], "record": {
                    "t": t, "heard": said[other], "success": ok,
                    "position": order.index(self._name_index[said[me]])}}
            self.successes += ok
            self.streak = self.streak + 1 if ok else 0
            self.played += 1
            if self.consensus_at is None and self.streak >= self.window:
                self.consensus_at = t
            self._last.append(f"interaction {t}: player_{a} said {said[a]}, player_{b} said {said[b]}"
                              + (" (match)" if ok else ""))
        done = self.until_consensus and self.consensus_at is not None
        if done or self.played >= self.budget:
            self.agents = []
            self._batch = []
        else:
            self._next_batch()
        return rewards, infos

    def _name(self, agent: str, value: Any) -> str:
        if isinstance(value, str) and value in self._name_index:
            return value
        if isinstance(value, (int, np.integer)) and not isinstance(value, bool) and 0 <= value < len(self.names):
            return self.names[int(value)]
        raise ValueError(f"{agent}: an answer is one of the names {', '.join(self.names)} (or its index), "
                         f"got {value!r}")

    def _observation(self, i: int) -> dict[str, Any]:
        found = self._obs.get(i)
        if found is not None:
            return found
        cells = np.zeros(2 * self.memory_size or 1, dtype=np.int64)
        for j, (_, own, other, _) in enumerate(self.memories[i]):
            cells[2 * j] = self._name_index[own] + 1
            cells[2 * j + 1] = self._name_index[other] + 1
        found = self._obs[i] = {"memory": cells}
        return found

    def observe(self, agent: str) -> dict[str, Any]:
        """One agent's observation now, as `step` would give it (built only when asked for)."""
        return self._observation(self._index[agent])

    def _observe(self, agents: list[str]) -> dict[str, dict[str, Any]]:
        return {a: self._observation(self._index[a]) for a in agents}

    def render(self) -> str | None:
        """The last step's interactions as text, or None before the first."""
        return "\n".join(self._last) if self._last else None

    def decision(self, agent: str) -> Observation:
        """The player's prompt: the rules once (system), then its memory, score, round and the names to pick from."""
        i = self._deciding(agent)
        if i not in self._partner:
            raise ValueError(f"{agent} does not play this step; ask acting_agents()")
        memory = self.memories[i]
        score = float(sum(m[3] for m in memory))
        round_no = self.round_no[i] + 1
        options = tuple(self.names[k] for k in self._order[i])
        data = {"game": "naming", "names": self.names, "options": options, "memory": memory, "score": score,
                "round": round_no, "t": self._t[i], "partner": self.possible_agents[self._partner[i]]}
        if self.show_rounds:
            system, prompt, spec = player_prompt(len(self.names), options, memory, score, round_no)
        else:  # the prompt depends on the memory's names alone: a few states, each text made once
            system, prompt, spec = _unnumbered_prompt(len(self.names), options,
                                                      tuple((own, other, points) for _, own, other, points in memory))
        return Observation(agent=agent, round=self._t[i], system=system, prompt=prompt, spec=spec, data=data)

    def episode_summary(self) -> Mapping[str, dict[str, Any]]:
        """Per agent: the run's length, whether and when it reached consensus, the agent's rounds and last name.

        Each agent's entry is made when it is read (a population's are read once, one by one).
        """
        common = {"interactions": self.played, "population_rounds": self.played / self.n,
                  "consensus": self.consensus_at is not None,
                  "consensus_interactions": None if self.consensus_at is None else self.consensus_at + 1,
                  "success_rate": self.successes / self.played if self.played else None,
                  "names": len(self.names), "prefill": self.prefill}
        return _Summaries(self, common)


class _Summaries(Mapping[str, dict[str, Any]]):
    """The naming game's episode summary, agent by agent, on reading."""

    def __init__(self, env: NamingGame, common: dict[str, Any]) -> None:
        self._env = env
        self._common = common

    def __getitem__(self, agent: str) -> dict[str, Any]:
        env = self._env
        i = env._index[agent]
        memory = env.memories[i]
        return {**self._common, "rounds_played": env.round_no[i] - (env.memory_size if env.prefill else 0),
                "last_name": memory[-1][1] if memory else None}

    def __contains__(self, agent: object) -> bool:
        return agent in self._env._index

    def __iter__(self) -> Iterator[str]:
        return iter(self._env.possible_agents)

    def __len__(self) -> int:
        return self._env.n


def player_prompt(names: int, options: Sequence[str], memory: Sequence[Memory] = (), score: float = 0.0,
                  round_no: int | None = 1) -> tuple[str, str, ActionSpec]:
    """What a player is asked: the system message, the prompt and how its reply is read.

    The defaults are a player's first interaction (empty memory, round 1), the
    prompt an individual-bias measurement asks (`societas.analysis.norms.naming_bias`).
    """
    return (prompts.rules(names), prompts.history(memory, score, round_no) + prompts.question(options),
            _spec(tuple(options)))


@functools.lru_cache(maxsize=65536)
def _unnumbered_prompt(names: int, options: tuple[str, ...], memory: tuple[tuple[str, str, float], ...]
                       ) -> tuple[str, str, ActionSpec]:
    """`player_prompt` without round numbers, one text object per state (whose hash is then kept)."""
    return player_prompt(names, options, tuple((0, own, other, points) for own, other, points in memory),
                         float(sum(m[2] for m in memory)), None)


def _complete(graph: Any) -> bool:
    """The default contact graph: no spec, or {kind: complete} (played without building its n^2 edges)."""
    return graph is None or (isinstance(graph, Mapping) and dict(graph) in ({"kind": "complete"}, {}))


def check_names(names: Any) -> tuple[str, ...]:
    """The names as a tuple: at least two, distinct, non-empty, without outer spaces."""
    if isinstance(names, str) or not isinstance(names, Sequence):
        raise ValueError(f"names must be a list of at least two names, got {names!r}")
    out = tuple(names)
    if len(out) < 2 or not all(isinstance(x, str) and x.strip() == x and x for x in out):
        raise ValueError(f"names must be a list of at least two non-empty names without outer spaces, got {names!r}")
    if len(set(out)) != len(out):
        raise ValueError(f"names must be distinct, got {names!r}")
    return out


@functools.lru_cache(maxsize=4096)
def _spec(options: tuple[str, ...]) -> ActionSpec:
    # The first name in the reply is the answer, as the paper reads its replies.
    return ActionSpec.choice(options, first_match=True)
