"""The donor game as a PettingZoo parallel env (the package docstring tells the game)."""

from __future__ import annotations

import functools
import math
from collections.abc import Mapping, Sequence
from typing import Any, ClassVar

import numpy as np
from gymnasium import spaces

from societas.environments.base import GameEnv
from societas.environments.donor_game.observations import _max_prompt_length, _observe_all
from societas.environments.donor_game.params import (
    CHARSET,
    GAME,
    GRAPH_KINDS,
    PAIRINGS,
    REFUSE,
    VARIANTS,
    _check_graph,
    _check_inherited,
    _check_new,
    _check_strategies,
    refuse_pattern,
)
from societas.environments.donor_game.prompts import (
    _STRATEGY_SPEC,
    _donation_prompt,
    _strategy_prompt,
    _system_prompt,
)
from societas.environments.donor_game.rules import (
    TraceEntry,
    _Act,
    _draw_graph,
    _pairs,
    _Pending,
    _round_step,
    _strategy_step,
    _trace,
)
from societas.environments.params import check_flag as _flag
from societas.environments.params import check_int as _int
from societas.environments.params import check_one_of as _one_of
from societas.environments.params import check_real as _real
from societas.environments.params import fmt_number as _num
from societas.types import ActionSpec, Observation

StepResult = tuple[
    dict[str, dict[str, Any]], dict[str, float], dict[str, bool], dict[str, bool], dict[str, dict[str, Any]]
]


class DonorGame(GameEnv):
    """The donor game: agents donate to each other, see reputations, write strategies.

    num_agents: agents "agent_0", ... in seat order.
    endowment: resources every agent has at the start of each game.
    multiplier: what the recipient receives per unit donated (cooperation gain).
    rounds / games: rounds per game; games per episode (every other game has the
        roles of each pair reversed).
    pairing: "bipartite" (the study's: two halves, a round robin across them with
        roles alternating, then repeated reversed, so with 12 agents and 12 rounds
        each agent donates 6 times and every cross pair meets once each way;
        agents of a half never meet), "random" (a random matching with random
        roles each round; with an odd count one agent sits out) or "graph" (a
        random maximal matching along the edges of a `graph_kind` graph).
    graph_kind / graph_params: "ring"; "erdos_renyi" (p); "watts_strogatz" (k, p).
        The graph is drawn from the episode's seed.
    shuffle_halves: draw the bipartite halves from the seed (the study shuffles
        its agents every generation); False keeps seat order.
    variant: "none", "punishment" or "partner_choice" (see the module docstring).
    punish_cost / punish_loss: per unit of punishment, what the punisher pays and
        the target loses.
    trace_depth: lines of reputation information a donor sees (0: none).
    reputation_discount: weight of the old score in the reputation update.
    carry_reputation: keep traces and reputation scores from one game of the
        generation to the next (resources still reset). With fresh information
        every game, first movers can never tell a free rider from anyone else.
    strategy_step: let agents without a kept strategy write one first.
    inherited_strategies: strategies of the previous generation's survivors,
        shown to new agents when they write their own.
    new_agents: agents that are new this generation (default: all writers).
    strategies: agent id -> kept strategy text (survivors); they do not write.
    generation: the generation number shown in the prompts.
    """

    metadata: ClassVar[dict[str, Any]] = {
        "name": "donor_game_v0", "render_modes": ["ansi"], "is_parallelizable": True,
    }

    def __init__(
        self,
        num_agents: int = 12,
        *,
        endowment: float = 10.0,
        multiplier: float = 2.0,
        rounds: int = 12,
        games: int = 2,
        pairing: str = "bipartite",
        graph_kind: str = "ring",
        graph_params: Mapping[str, Any] | None = None,
        shuffle_halves: bool = True,
        variant: str = "none",
        punish_cost: float = 1.0,
        punish_loss: float = 2.0,
        trace_depth: int = 3,
        reputation_discount: float = 0.5,
        carry_reputation: bool = True,
        strategy_step: bool = True,
        inherited_strategies: Sequence[str] = (),
        new_agents: Sequence[str] | None = None,
        strategies: Mapping[str, str] | None = None,
        generation: int = 1,
        render_mode: str | None = None,
    ) -> None:
        self._n = _int("num_agents", num_agents, 2)
        self.endowment = _real("endowment", endowment, 0.0, strict=True)
        self.multiplier = _real("multiplier", multiplier, 0.0)
        self.rounds = _int("rounds", rounds, 1)
        self.games = _int("games", games, 1)
        self.pairing = _one_of("pairing", pairing, PAIRINGS)
        if self.pairing == "bipartite" and self._n % 2:
            raise ValueError(f"num_agents must be even for pairing='bipartite' (two equal halves), got {self._n}")
        self.graph_kind = _one_of("graph_kind", graph_kind, tuple(GRAPH_KINDS))
        self.graph_params = _check_graph(self, graph_params)
        self.shuffle_halves = _flag("shuffle_halves", shuffle_halves)
        self.variant = _one_of("variant", variant, VARIANTS)
        self.punish_cost = _real("punish_cost", punish_cost, 0.0, strict=True)
        self.punish_loss = _real("punish_loss", punish_loss, 0.0)
        self.trace_depth = _int("trace_depth", trace_depth, 0)
        self.reputation_discount = _real("reputation_discount", reputation_discount, 0.0)
        self.carry_reputation = _flag("carry_reputation", carry_reputation)
        self.strategy_step = _flag("strategy_step", strategy_step)
        self.generation = _int("generation", generation, 0)
        if render_mode not in (None, "ansi"):
            raise ValueError(f"render_mode must be None or 'ansi', got {render_mode!r}")
        self.render_mode = render_mode

        self.possible_agents = [f"agent_{i}" for i in range(self._n)]
        self._index = {a: i for i, a in enumerate(self.possible_agents)}
        self.inherited_strategies = _check_inherited(self, inherited_strategies)
        self._given = _check_strategies(self, strategies)
        self.strategies = {self.possible_agents[i]: t for i, t in self._given.items()}
        self.new_agents = _check_new(self, new_agents)

        self._system = _system_prompt(self)
        self._writers = [i for i in range(self._n) if i not in self._given] if self.strategy_step else []
        self._new = set(range(self._n)) if new_agents is None else {self._index[a] for a in self.new_agents}

        self.agents: list[str] = []
        self._rng: np.random.Generator | None = None
        self._phase = "over"
        self._acting: list[str] = []
        self._donors: list[int] = []
        self._recipients: list[int] = []
        self._recipient_of: dict[int, int] = {}
        self._pending: dict[int, _Pending] = {}
        self._spec_cache: dict[float, ActionSpec] = {}
        self._halves: tuple[list[int], list[int]] = ([], [])
        self._edges: list[tuple[int, int]] = []
        self._last_round: list[tuple[int, int, str, float]] = []
        self._reset_state()

    # -- PettingZoo API -------------------------------------------------------

    # Spaces are built on first use: gymnasium's Text space is costly, and
    # societas' runner never asks for them.
    @functools.cached_property
    def observation_spaces(self) -> dict[str, spaces.Space]:  # type: ignore[override]
        """prompt: system and user message as one text; role: 0 writes a strategy, 1 donates,
        2 waits; round: 0 for the strategy step, then 1, 2, ... across games (games * rounds + 1
        once over); resources; recipient_resources (0 unless donating); recipient_reputation
        (-1 when there is none or the agent does not donate)."""
        length = _max_prompt_length(self)
        return {
            a: spaces.Dict({
                "prompt": spaces.Text(max_length=length, min_length=1, charset=CHARSET),
                "role": spaces.Discrete(3),
                "round": spaces.Discrete(self.games * self.rounds + 2),
                "resources": spaces.Box(0.0, np.inf, shape=(), dtype=np.float64),
                "recipient_resources": spaces.Box(0.0, np.inf, shape=(), dtype=np.float64),
                "recipient_reputation": spaces.Box(-1.0, 1.0, shape=(), dtype=np.float64),
            })
            for a in self.possible_agents
        }

    @functools.cached_property
    def action_spaces(self) -> dict[str, spaces.Space]:  # type: ignore[override]
        """The amount a donor gives (negative: punishment units); clipped to the decision's range.
        Strategy texts and refusals are strings, outside this space."""
        low = -np.inf if self.variant == "punishment" else 0.0
        return {a: spaces.Box(low, np.inf, shape=(), dtype=np.float64) for a in self.possible_agents}

    def reset(
        self, seed: int | None = None, options: dict[str, Any] | None = None
    ) -> tuple[dict[str, dict[str, Any]], dict[str, dict[str, Any]]]:
        """Start a generation; a seed fixes halves, graph and random pairings, None continues the stream."""
        if seed is not None or self._rng is None:
            self._rng = np.random.default_rng(seed)
        rng = self._rng
        n = self._n
        self._reset_state()
        if self.pairing == "bipartite":
            order = rng.permutation(n).tolist() if self.shuffle_halves else list(range(n))
            self._halves = (order[: n // 2], order[n // 2:])
        elif self.pairing == "graph":
            self._edges = _draw_graph(self, rng)
        self.agents = list(self.possible_agents)
        if self._writers:
            self._phase = "strategy"
            self._acting = [self.possible_agents[i] for i in self._writers]
        else:
            self._start_games()
        return _observe_all(self), {a: {} for a in self.agents}

    def step(self, actions: dict[str, Any]) -> StepResult:
        """Play the strategy step or one round: the acting agents' actions; others' are ignored."""
        if not self.agents:
            raise RuntimeError("the episode is over (or never started); call reset() first")
        if not isinstance(actions, Mapping):
            raise ValueError(f"step() takes a dict agent -> action, got {type(actions).__name__}")
        index = self._index
        for a in actions:
            if a not in index:
                raise ValueError(f"step() got an action for unknown agent {a!r}; agents are agent_0 .. "
                                 f"agent_{self._n - 1}")
        missing = [a for a in self._acting if a not in actions]
        if missing:
            shown = ", ".join(missing[:5]) + (" ..." if len(missing) > 5 else "")
            raise ValueError(f"step() needs an action for every acting agent; missing: {shown}")
        rewards = dict.fromkeys(self.agents, 0.0)
        infos: dict[str, dict[str, Any]] = {a: {} for a in self.agents}
        if self._phase == "strategy":
            _strategy_step(self, actions, infos)
            self._start_games()
        else:
            _round_step(self, actions, rewards, infos)
        live = self.agents
        done = self._phase == "over"
        obs = _observe_all(self, live)
        if done:
            self.agents = []
        terminations = dict.fromkeys(live, done)
        truncations = dict.fromkeys(live, False)
        return obs, rewards, terminations, truncations, infos

    def render(self) -> str | None:
        """The last round in one line, or None before the first round."""
        if not self._last_round:
            return None
        given = [f for _, _, kind, f in self._last_round if kind == "donate"]
        mean = sum(given) / len(given) if given else 0.0
        return (f"Game {self._game_done + 1}, round {self._round_done}: {len(self._last_round)} pairs, "
                f"{len(given)} donations (mean {mean:.0%} of resources), total resources "
                f"{_num(sum(self._res))}.")

    # -- societas runner API --------------------------------------------------

    def acting_agents(self) -> list[str]:
        """Who decides this step: the writers in the strategy step, then each round's donors."""
        return list(self._acting)

    def decision(self, agent: str) -> Observation:
        """The acting agent's prompt, typed action and structured data for this step."""
        i = self._deciding(agent)
        if self._phase == "strategy":
            if i not in self._writer_set:
                raise ValueError(f"{agent} does not write a strategy (it keeps one); see acting_agents()")
            return Observation(
                agent=agent, round=0, system=self._system, prompt=self._strategy_prompts[i],
                spec=_STRATEGY_SPEC,
                data={
                    "game": GAME, "phase": "strategy", "round": 0, "game_index": None,
                    "generation": self.generation, "variant": self.variant, "new": i in self._new,
                    "inherited_strategies": self.inherited_strategies,
                },
            )
        p = self._pending.get(i) or self._prepare(i)
        r = p.recipient
        return Observation(
            agent=agent, round=self._step_round(), system=self._system, prompt=p.prompt, spec=p.spec,
            data={
                "game": GAME, "phase": "donation", "partner": self.possible_agents[r],
                "resources": self._res[i], "recipient_resources": self._res[r],
                "recipient_reputation": self._rep[r], "recipient_trace": p.trace,
                "round": self._round + 1, "game_index": self._game, "rounds": self.rounds, "games": self.games,
                "generation": self.generation, "variant": self.variant, "own_strategy": self._strategy[i],
                "multiplier": self.multiplier, "punish_cost": self.punish_cost, "punish_loss": self.punish_loss,
                "refuse": REFUSE if self.variant == "partner_choice" else None,
            },
        )

    def episode_summary(self) -> dict[str, dict[str, Any]]:
        """Per agent: final resources per game, totals given and received, punishments and
        refusals, reputation at the end (per game too), strategy and where it came from."""
        out = {}
        for i, a in enumerate(self.possible_agents):
            finals = [g[i] for g in self._finals]
            reps = [g[i] for g in self._final_reps]
            out[a] = {
                "final_resources": finals,
                "total_final_resources": sum(finals),
                "donated": self._donated[i],
                "received": self._received[i],
                "times_donor": self._times_donor[i],
                "mean_fraction_donated": self._fraction_sum[i] / self._donations[i] if self._donations[i] else None,
                "punishments_given": self._punish_given[i],
                "punishment_spent": self._punish_spent[i],
                "punishments_received": self._punish_received[i],
                "punishment_lost": self._punish_lost[i],
                "refusals_given": self._refusals_given[i],
                "refusals_received": self._refusals_received[i],
                "reputation": reps[-1] if reps else self._rep[i],
                "reputations": reps,
                "strategy": self._strategy[i],
                "strategy_justification": self._justification[i],
                "strategy_source": self._source[i],
                "new": i in self._new,
                "generation": self.generation,
            }
        return out

    # -- inspection (tests, analysis) -------------------------------------------

    @property
    def halves(self) -> tuple[list[str], list[str]]:
        """The two halves of the bipartite pairing for this episode."""
        ids = self.possible_agents
        return [ids[i] for i in self._halves[0]], [ids[i] for i in self._halves[1]]

    @property
    def edges(self) -> list[tuple[str, str]]:
        """The graph pairing's edges for this episode."""
        ids = self.possible_agents
        return [(ids[u], ids[v]) for u, v in self._edges]

    def current_pairs(self) -> list[tuple[str, str]]:
        """(donor, recipient) pairs of the coming round; empty in the strategy step."""
        if self._phase != "donation":
            return []
        ids = self.possible_agents
        return [(ids[d], ids[r]) for d, r in zip(self._donors, self._recipients)]

    @property
    def resources(self) -> dict[str, float]:
        return dict(zip(self.possible_agents, self._res))

    @property
    def reputations(self) -> dict[str, float | None]:
        return dict(zip(self.possible_agents, self._rep))

    def trace(self, agent: str) -> tuple[TraceEntry, ...]:
        """The reputation information a donor would see about `agent` now."""
        return _trace(self, self._index[agent])[1]

    def check_invariants(self) -> None:
        """Raise RuntimeError unless resources are non-negative and the game's ledger balances:
        total = agents * endowment + (multiplier - 1) * donated - punishment spent - punishment lost."""
        res = self._res
        if any(not (x >= 0.0) or math.isinf(x) for x in res):
            bad = [(a, x) for a, x in zip(self.possible_agents, res) if not (x >= 0.0) or math.isinf(x)]
            raise RuntimeError(f"resources must be finite and non-negative: {bad[:5]}")
        donated, spent, lost = self._ledger
        expected = self._n * self.endowment + (self.multiplier - 1.0) * donated - spent - lost
        total = math.fsum(res)
        scale = self._n * self.endowment + self.multiplier * donated + spent + lost
        if abs(total - expected) > 1e-9 * max(1.0, scale):
            raise RuntimeError(f"resources are not conserved: total {total!r}, expected {expected!r} "
                               f"(donated {donated!r}, punishment spent {spent!r}, lost {lost!r})")

    # -- internals -------------------------------------------------------------

    def _reset_state(self) -> None:
        n = self._n
        self._phase = "over"
        self._game = 0
        self._round = 0
        self._game_done = 0
        self._round_done = 0
        self._res = [self.endowment] * n
        self._rep: list[float | None] = [None] * n
        self._last: list[_Act | None] = [None] * n
        self._ledger = [0.0, 0.0, 0.0]
        self._finals: list[list[float]] = []
        self._final_reps: list[list[float | None]] = []
        self._strategy = [self._given.get(i, "") for i in range(n)]
        self._justification = [""] * n
        self._source = ["given" if i in self._given else "none" for i in range(n)]
        self._donated = [0.0] * n
        self._received = [0.0] * n
        self._times_donor = [0] * n
        self._donations = [0] * n
        self._fraction_sum = [0.0] * n
        self._punish_given = [0] * n
        self._punish_spent = [0.0] * n
        self._punish_received = [0] * n
        self._punish_lost = [0.0] * n
        self._refusals_given = [0] * n
        self._refusals_received = [0] * n
        self._pending.clear()
        self._spec_cache.clear()
        self._last_round = []

    @functools.cached_property
    def _writer_set(self) -> frozenset[int]:
        return frozenset(self._writers)

    @functools.cached_property
    def _strategy_prompts(self) -> dict[int, str]:
        return {i: _strategy_prompt(self, i) for i in self._writers}

    def _start_games(self) -> None:
        """After the strategy step: build each agent's prompt head and pair the first round."""
        g = self.generation
        heads = []
        for i, a in enumerate(self.possible_agents):
            s = self._strategy[i]
            recall = f"As you will recall, here is the strategy you decided to follow: {s}\n" if s else ""
            heads.append(f"Your name is {a}.\n{recall}This is generation {g}. ")
        self._heads = heads
        self._phase = "donation"
        self._game = 0
        self._round = 0
        self._new_round()

    def _step_round(self) -> int:
        return 1 + self._game * self.rounds + self._round

    def _new_round(self) -> None:
        self._pending.clear()
        self._donors, self._recipients = _pairs(self, self._game, self._round)
        self._recipient_of = dict(zip(self._donors, self._recipients))
        ids = self.possible_agents
        self._acting = [ids[d] for d in self._donors]


    def _spec(self, resources: float) -> ActionSpec:
        spec = self._spec_cache.get(resources)
        if spec is None:
            if self.variant == "partner_choice":
                spec = ActionSpec(kind="regex", pattern=refuse_pattern(resources), default="0",
                                  answer_marker="Answer:",
                                  description=f'the amount you donate (a number from 0 to {resources:g}) or '
                                              '"Refuse to play", after "Answer:"')
            elif self.variant == "punishment":
                spec = ActionSpec.real(-(resources / self.punish_cost), resources, default=0.0,
                                       answer_marker="Answer:")
            else:
                spec = ActionSpec.real(0.0, resources, default=0.0, answer_marker="Answer:")
            if len(self._spec_cache) < 65536:
                self._spec_cache[resources] = spec
        return spec

    def _prepare(self, d: int) -> _Pending:
        """Build donor d's prompt for this round (once; step() and decision() share it)."""
        r = self._recipient_of.get(d)
        if r is None:
            raise ValueError(f"{self.possible_agents[d]} is not a donor this round; see acting_agents()")
        lines, entries = _trace(self, r)
        res = self._res[d]
        p = _Pending(r, _donation_prompt(self, d, r, lines, res), self._spec(res), entries)
        self._pending[d] = p
        return p

