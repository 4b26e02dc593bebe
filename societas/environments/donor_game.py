"""The donor game with cultural evolution (Vallinder & Hughes 2024) as a PettingZoo parallel env.

One episode is one generation of one society: an optional strategy step (every
agent without a kept strategy writes one, "My strategy will be ..."), then
`games` games of `rounds` rounds. Each round the agents are paired; the donor
of each pair gives up part of its resources and the recipient receives
`multiplier` times that. Donors see the recipient's trace: what it did in its
last round as donor, what that round's recipient had done before, and so on,
`trace_depth` lines in the study's wording. Resources reset to the endowment
at the beginning of every game; traces and reputations carry over to the
generation's next game unless `carry_reputation` is false.

Only donors act in a round (`acting_agents()`); recipients wait. Prompts are
built from pieces made once per agent and game (the rules are one static
system message for every agent of the episode, so model servers cache the
prefix), traces are linked records walked `trace_depth` steps, and a round
costs O(agents), so societies of thousands of agents run quickly.

Actions (what `step` takes per acting agent):

- strategy step: the reply text; the strategy is read from its first "My
  strategy will be" on (the whole reply when that is missing). Anything that is
  not a string (e.g. a sample of the numeric action space) means no strategy.
- variant "none": the amount donated, a real in [0, resources].
- variant "punishment": a real in [-(resources / punish_cost), resources]; a
  negative number -u punishes: the donor pays u * punish_cost, the recipient
  loses u * punish_loss (never below 0).
- variant "partner_choice": the amount, or "refuse" ("Refuse to play" in the
  prompt; a regex ActionSpec accepts either) to decline the interaction.

Numbers outside the decision's range are clipped into it (raw PettingZoo users
sample an unbounded Box); numeric strings are accepted, anything else raises.

Infos: a donor's info holds its act (kind "donate" / "punish" / "refuse",
amount, fraction, recipient, and its own and the recipient's resources and the
recipient's reputation before the act, game_index, round) and the same dict
under "record", which societas' runner stores with the event; a recipient's
info says what it received or lost; a writer's holds its strategy. Rewards are
every agent's change in resources in the step.

Conventions taken from the study's code: the reputation score changes only on
donations; a donor with no resources left counts as donating 100%; a recipient
with no reputation yet counts as 0 in the update. Choices made here: traces and
reputations carry over between a generation's games (`carry_reputation`), and
the bipartite halves are drawn from the episode's seed (`shuffle_halves`).
"""

from __future__ import annotations

import functools
import math
import string
import sys
from collections.abc import Iterable, Mapping, Sequence
from typing import Any, ClassVar

import numpy as np
from gymnasium import spaces

from societas.environments.base import GameEnv
from societas.environments.params import check_flag as _flag
from societas.environments.params import check_int as _int
from societas.environments.params import check_one_of as _one_of
from societas.environments.params import check_real as _real
from societas.environments.params import fmt_number as _num
from societas.types import ActionSpec, Observation

GAME = "donor-game"
"""The value of data["game"] in every decision."""
PAIRINGS = ("bipartite", "random", "graph")
VARIANTS = ("none", "punishment", "partner_choice")
GRAPH_KINDS: dict[str, dict[str, Any]] = {
    "ring": {},
    "erdos_renyi": {"p": None},  # None: about six neighbours each, 6 / (num_agents - 1)
    "watts_strogatz": {"k": 4, "p": 0.1},
}
REFUSE = "refuse"
"""The canonical refusal in the partner-choice variant (the prompt says "Refuse to play")."""
REFUSE_PATTERN = r"(?:[Rr]efuse(?: to play)?|[0-9]+(?:\.[0-9]+)?)\.?"
STRATEGY_MARKER = "My strategy will be"
MAX_STRATEGY_CHARS = 2000
"""Longest strategy kept (longer ones are cut): every donation prompt repeats it."""
MAX_REPLY_CHARS = 8000
"""The strategy reply may reason first, so it may be much longer than the strategy."""
CHARSET = string.printable
"""Characters of the gym observation's prompt; other characters show as "?" there only."""

ROLE_STRATEGY, ROLE_DONOR, ROLE_WAIT = 0, 1, 2
"""The gym observation's "role": writes a strategy, donates, or waits this step."""

TraceEntry = tuple[int, str, float | None, str]
"""(round, donor, fraction, recipient): fraction >= 0 donated, < 0 spent punishing
(negated), None refused."""

StepResult = tuple[
    dict[str, dict[str, Any]], dict[str, float], dict[str, bool], dict[str, bool], dict[str, dict[str, Any]]
]

_CONTROL = dict.fromkeys(c for c in range(32) if chr(c) not in "\t\n\r")
_CONTROL[127] = None
_FLOAT_MAX = sys.float_info.max


class _Act:
    """One donor's action, linked to what its recipient had done before (the trace chain)."""

    __slots__ = ("entry", "line", "prev", "recipient_name")

    def __init__(self, entry: TraceEntry, line: str, prev: _Act | None, recipient_name: str) -> None:
        self.entry = entry
        self.line = line
        self.prev = prev
        self.recipient_name = recipient_name


class _Pending:
    """A donor's decision for the current round, built once and shared by decision() and step()."""

    __slots__ = ("prompt", "recipient", "spec", "trace")

    def __init__(self, recipient: int, prompt: str, spec: ActionSpec, trace: tuple[TraceEntry, ...]) -> None:
        self.recipient = recipient
        self.prompt = prompt
        self.spec = spec
        self.trace = trace


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
        self.graph_params = self._check_graph(graph_params)
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
        self.inherited_strategies = self._check_inherited(inherited_strategies)
        self._given = self._check_strategies(strategies)
        self.strategies = {self.possible_agents[i]: t for i, t in self._given.items()}
        self.new_agents = self._check_new(new_agents)

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
        length = self._max_prompt_length()
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
            self._edges = self._draw_graph(rng)
        self.agents = list(self.possible_agents)
        if self._writers:
            self._phase = "strategy"
            self._acting = [self.possible_agents[i] for i in self._writers]
        else:
            self._start_games()
        return self._observe_all(), {a: {} for a in self.agents}

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
            self._strategy_step(actions, infos)
            self._start_games()
        else:
            self._round_step(actions, rewards, infos)
        live = self.agents
        done = self._phase == "over"
        obs = self._observe_all(live)
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
        return self._trace(self._index[agent])[1]

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

    def _strategy_step(self, actions: Mapping[str, Any], infos: dict[str, dict[str, Any]]) -> None:
        ids = self.possible_agents
        for i in self._writers:
            a = ids[i]
            reply = actions[a]
            if isinstance(reply, str):
                justification, strategy = _read_strategy(reply)
            else:
                justification, strategy = "", ""
            self._strategy[i] = strategy
            self._justification[i] = justification
            self._source[i] = "written" if strategy else "none"
            infos[a] = {"strategy": strategy, "record": {"kind": "strategy", "strategy": strategy,
                                                          "source": self._source[i]}}

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
        self._donors, self._recipients = self._pairs(self._game, self._round)
        self._recipient_of = dict(zip(self._donors, self._recipients))
        ids = self.possible_agents
        self._acting = [ids[d] for d in self._donors]

    def _pairs(self, game: int, rnd: int) -> tuple[list[int], list[int]]:
        if self.pairing == "bipartite":
            a, b = self._halves
            h = len(a)
            idx = rnd % (2 * h)
            i = idx % h
            rotated = b[-i:] + b[:-i] if i else b
            if (i % 2 == 1) ^ (idx >= h) ^ (game % 2 == 1):
                return list(rotated), list(a)
            return list(a), list(rotated)
        rng = self._rng
        if self.pairing == "random":
            perm = rng.permutation(self._n).tolist()
            k = self._n // 2 * 2
            return perm[0:k:2], perm[1:k:2]
        # graph: a random maximal matching along the edges, each edge's roles drawn at random
        edges = self._edges
        if not edges:
            return [], []
        order = rng.permutation(len(edges)).tolist()
        flips = rng.integers(0, 2, size=len(edges)).tolist()
        free = [True] * self._n
        donors, recipients = [], []
        for e in order:
            u, v = edges[e]
            if free[u] and free[v]:
                free[u] = free[v] = False
                if flips[e]:
                    u, v = v, u
                donors.append(u)
                recipients.append(v)
        return donors, recipients

    def _trace(self, r: int) -> tuple[list[str], tuple[TraceEntry, ...]]:
        """Prompt lines and entries about recipient r: its last act, then its recipient's before that."""
        depth = self.trace_depth
        if not depth:
            return [], ()
        node = self._last[r]
        if node is None:
            return [f"{self.possible_agents[r]} did not have any previous interactions."], ()
        lines, entries = [], []
        while True:
            lines.append(node.line)
            entries.append(node.entry)
            if len(lines) >= depth:
                break
            if node.prev is None:
                lines.append(f"{node.recipient_name} did not have any previous interactions.")
                break
            node = node.prev
        return lines[:depth], tuple(entries)

    def _spec(self, resources: float) -> ActionSpec:
        spec = self._spec_cache.get(resources)
        if spec is None:
            if self.variant == "partner_choice":
                spec = ActionSpec(kind="regex", pattern=REFUSE_PATTERN, default="0", answer_marker="Answer:",
                                  description='the amount you donate (a number) or "Refuse to play", after '
                                              '"Answer:"')
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
        lines, entries = self._trace(r)
        res = self._res[d]
        p = _Pending(r, self._donation_prompt(d, r, lines, res), self._spec(res), entries)
        self._pending[d] = p
        return p

    def _donation_prompt(self, d: int, r: int, lines: list[str], res: float) -> str:
        name = self.possible_agents[r]
        units = _units(res)
        if self.variant == "punishment":
            answer = _punish_answer(self, name, units, _units(res / self.punish_cost))
        elif self.variant == "partner_choice":
            answer = _refuse_answer(name, units)
        else:
            answer = _plain_answer(units)
        trace = "\n".join(lines) + "\n" if lines else ""
        return _donation_text(head=self._heads[d], rnd=str(self._round + 1), recipient=name,
                              recipient_res=_units(self._res[r]), trace=trace, res=units, answer=answer)

    def _round_step(self, actions: Mapping[str, Any], rewards: dict[str, float],
                    infos: dict[str, dict[str, Any]]) -> None:
        ids = self.possible_agents
        res, rep, last = self._res, self._rep, self._last
        m = self.multiplier
        rnd = self._round + 1
        disc = self.reputation_discount
        ledger = self._ledger
        game = self._game
        played = []
        donors = self._donors
        # Read every action first: an invalid one raises before anything has moved.
        moves = [self._read_action(ids[d], actions[ids[d]], res[d]) for d in donors]
        for d, r, (kind, x) in zip(donors, self._recipients, moves):
            a, b = ids[d], ids[r]
            before, res_r = res[d], res[r]
            seen = rep[r]
            self._times_donor[d] += 1
            if kind == "refuse":
                frac: float | None = None
                line = f"In round {rnd}, {a} refused to play with {b}."
                self._refusals_given[d] += 1
                self._refusals_received[r] += 1
                info: dict[str, Any] = {"kind": "refuse", "amount": 0.0, "fraction": None}
                infos[b] = {"kind": "refused", "donor": a, "received": 0.0}
            elif kind == "punish":
                cost = min(x * self.punish_cost, before)
                loss = min(x * self.punish_loss, res[r])
                res[d] = before - cost
                res[r] -= loss
                ledger[1] += cost
                ledger[2] += loss
                frac = -(cost / before) if before > 0 else 0.0
                line = (f"In round {rnd}, {a} punished {b} by spending {_units(cost)} units to take away "
                        f"{_units(loss)} units from their resources.")
                self._punish_given[d] += 1
                self._punish_spent[d] += cost
                self._punish_received[r] += 1
                self._punish_lost[r] += loss
                rewards[a] -= cost
                rewards[b] -= loss
                info = {"kind": "punish", "amount": -x, "fraction": frac, "spent": cost, "lost": loss}
                infos[b] = {"kind": "punished", "donor": a, "lost": loss, "received": 0.0}
            else:
                res[d] = before - x
                gain = m * x
                res[r] += gain
                ledger[0] += x
                frac = x / before if before > 0 else 1.0
                line = f"In round {rnd}, {a} donated {frac * 100:.2f}% of their resources to {b}."
                self._donated[d] += x
                self._received[r] += gain
                self._donations[d] += 1
                self._fraction_sum[d] += frac
                rewards[a] -= x
                rewards[b] += gain
                old = rep[d]
                if old is None:
                    rep[d] = frac
                else:
                    other = rep[r] or 0.0
                    rep[d] = ((1.0 - abs(frac - other)) + disc * old) / (1.0 + disc)
                info = {"kind": "donate", "amount": x, "fraction": frac, "received": gain}
                infos[b] = {"kind": "received", "donor": a, "received": gain}
            info.update(recipient=b, resources=before, recipient_resources=res_r, recipient_reputation=seen,
                        game_index=game, round=rnd)
            infos[a] = {**info, "cooperated": kind == "donate" and x > 0, "record": info}
            last[d] = _Act((rnd, a, frac, b), line, last[r], b)
            played.append((d, r, kind, frac if frac is not None else 0.0))
        self._last_round = played
        self._game_done, self._round_done = self._game, rnd
        self._advance()

    def _read_action(self, agent: str, value: Any, res: float) -> tuple[str, float]:
        """("donate" | "punish" | "refuse", units), clipped into the decision's range."""
        if isinstance(value, str):
            text = value.strip().rstrip(".").strip()
            if self.variant == "partner_choice" and text.lower().startswith(REFUSE):
                return "refuse", 0.0
            try:
                number = float(text)
            except ValueError:
                expected = "a number or 'refuse'" if self.variant == "partner_choice" else "a number"
                raise ValueError(f"invalid action {value!r} for {agent}: expected {expected}") from None
        elif isinstance(value, (bool, np.bool_)):
            raise ValueError(f"invalid action {value!r} for {agent}: expected a number")
        else:
            try:
                number = float(value)
            except (TypeError, ValueError):
                raise ValueError(f"invalid action {value!r} for {agent}: expected a number") from None
        if math.isnan(number):
            raise ValueError(f"invalid action {value!r} for {agent}: expected a number, got NaN")
        if number < 0.0 and self.variant == "punishment":
            return "punish", min(-number, res / self.punish_cost)
        return "donate", min(max(number, 0.0), res)

    def _advance(self) -> None:
        self._round += 1
        if self._round < self.rounds:
            self._new_round()
            return
        self._finals.append(list(self._res))
        self._final_reps.append(list(self._rep))
        self._game += 1
        if self._game >= self.games:
            self._phase = "over"
            self._acting = []
            self._donors, self._recipients = [], []
            self._recipient_of = {}
            self._pending.clear()
            return
        n = self._n
        self._res = [self.endowment] * n
        if not self.carry_reputation:
            self._rep = [None] * n
            self._last = [None] * n
        self._ledger = [0.0, 0.0, 0.0]
        self._round = 0
        self._new_round()

    def _observe_all(self, agents: Iterable[str] | None = None) -> dict[str, dict[str, Any]]:
        agents = self.agents if agents is None else agents
        ids = self.possible_agents
        rnd = self.games * self.rounds + 1 if self._phase == "over" else (
            0 if self._phase == "strategy" else self._step_round())
        if self._phase == "strategy":
            wait = _gym_text(f"{self._system}\n\nOther agents are writing their strategies.")
        elif self._phase == "over":
            wait = _gym_text(f"{self._system}\n\nThe generation is over.")
        else:
            wait = _gym_text(f"{self._system}\n\nRound {self._round + 1} of game {self._game + 1}: "
                             "you are not a donor this round.")
        zero, none = np.array(0.0), np.array(-1.0)
        res = self._res
        index = self._index
        obs = {
            a: {"prompt": wait, "role": ROLE_WAIT, "round": rnd, "resources": np.array(res[index[a]]),
                "recipient_resources": zero, "recipient_reputation": none}
            for a in agents
        }
        if self._phase == "strategy":
            for i in self._writers:
                o = obs.get(ids[i])
                if o is not None:
                    o["prompt"] = _gym_text(f"{self._system}\n\n{self._strategy_prompts[i]}")
                    o["role"] = ROLE_STRATEGY
        elif self._phase == "donation":
            for d in self._donors:
                o = obs.get(ids[d])
                if o is None:
                    continue
                p = self._pending.get(d) or self._prepare(d)
                rep = self._rep[p.recipient]
                o["prompt"] = _gym_text(f"{self._system}\n\n{p.prompt}")
                o["role"] = ROLE_DONOR
                o["recipient_resources"] = np.array(res[p.recipient])
                o["recipient_reputation"] = none if rep is None else np.array(rep)
        return obs

    def _draw_graph(self, rng: np.random.Generator) -> list[tuple[int, int]]:
        import networkx as nx

        n, kind, params = self._n, self.graph_kind, self.graph_params
        seed = int(rng.integers(2**32))
        if kind == "ring":
            graph = nx.cycle_graph(n)
        elif kind == "erdos_renyi":
            p = params["p"] if params["p"] is not None else min(1.0, 6.0 / (n - 1))
            graph = nx.fast_gnp_random_graph(n, p, seed=seed)
        else:
            graph = nx.watts_strogatz_graph(n, params["k"], params["p"], seed=seed)
        return sorted((min(u, v), max(u, v)) for u, v in graph.edges() if u != v)

    # -- parameter checks --------------------------------------------------------

    def _check_graph(self, params: Mapping[str, Any] | None) -> dict[str, Any]:
        defaults = GRAPH_KINDS[self.graph_kind]
        if params is None:
            params = {}
        if not isinstance(params, Mapping):
            raise ValueError(f"graph_params must be a mapping such as {{'p': 0.1}}, got {params!r}")
        if params and self.pairing != "graph":
            raise ValueError(f"graph_params only apply to pairing='graph' (pairing is {self.pairing!r})")
        unknown = [k for k in params if k not in defaults]
        if unknown:
            accepted = ", ".join(defaults) or "none"
            raise ValueError(f"graph_params: unknown key(s) {', '.join(map(repr, unknown))} for graph_kind "
                             f"{self.graph_kind!r}; accepted: {accepted}")
        out = dict(defaults, **params)
        if "p" in out and out["p"] is not None:
            out["p"] = _real("graph_params['p']", out["p"], 0.0)
            if out["p"] > 1.0:
                raise ValueError(f"graph_params['p'] must be a probability in [0, 1], got {out['p']!r}")
        if "k" in out:
            out["k"] = _int("graph_params['k']", out["k"], 2)
            if self.pairing == "graph" and out["k"] >= self._n:
                raise ValueError(f"graph_params['k'] must be below num_agents ({self._n}), got {out['k']}")
        return out

    def _check_ids(self, name: str, ids: Iterable[Any]) -> list[int]:
        out = []
        for a in ids:
            i = self._index.get(a) if isinstance(a, str) else None
            if i is None:
                raise ValueError(f"{name}: unknown agent {a!r}; agents are agent_0 .. agent_{self._n - 1}")
            out.append(i)
        return out

    def _check_inherited(self, texts: Any) -> tuple[str, ...]:
        if isinstance(texts, str) or not isinstance(texts, Sequence):
            raise ValueError(f"inherited_strategies must be a list of strategy texts, got {texts!r}")
        out = []
        for k, t in enumerate(texts):
            if not isinstance(t, str):
                raise ValueError(f"inherited_strategies[{k}] must be a string, got {t!r}")
            t = _clean(t)
            if len(t) > MAX_STRATEGY_CHARS:
                raise ValueError(f"inherited_strategies[{k}] is longer than {MAX_STRATEGY_CHARS} characters")
            if t:
                out.append(t)
        return tuple(out)

    def _check_strategies(self, given: Any) -> dict[int, str]:
        if given is None:
            return {}
        if not isinstance(given, Mapping):
            raise ValueError(f"strategies must map agent ids to strategy texts, got {given!r}")
        idx = self._check_ids("strategies", given)
        out = {}
        for i, (a, t) in zip(idx, given.items()):
            if not isinstance(t, str):
                raise ValueError(f"strategies[{a!r}] must be a string, got {t!r}")
            t = _clean(t)
            if len(t) > MAX_STRATEGY_CHARS:
                raise ValueError(f"strategies[{a!r}] is longer than {MAX_STRATEGY_CHARS} characters")
            out[i] = t
        return out

    def _check_new(self, new: Any) -> tuple[str, ...]:
        if new is None:
            return ()
        if isinstance(new, str) or not isinstance(new, (Sequence, set, frozenset)):
            raise ValueError(f"new_agents must be a list of agent ids, got {new!r}")
        idx = self._check_ids("new_agents", new)
        both = sorted(set(idx) & set(self._given))
        if both:
            names = ", ".join(self.possible_agents[i] for i in both)
            raise ValueError(f"new_agents and strategies overlap ({names}): a new agent writes its own strategy")
        return tuple(self.possible_agents[i] for i in sorted(set(idx)))

    def _max_prompt_length(self) -> int:
        """An upper bound on the gym observation's prompt length, for the Text space."""
        name = "x" * max(len(a) for a in self.possible_agents)
        # Total resources at most multiply by `multiplier` a round, so no agent holds more than this.
        digits = math.log10(self._n * self.endowment) + self.rounds * math.log10(max(self.multiplier, 1.0))
        bound = _FLOAT_MAX if digits > 300 else 10.0 ** digits
        number = "9" * (max(len(_units(bound)), len(_units(min(bound / self.punish_cost, _FLOAT_MAX)))) + 1)
        rnd = "9" * len(str(self.rounds))
        lines = [
            f"In round {rnd}, {name} donated 100.00% of their resources to {name}.",
            f"In round {rnd}, {name} punished {name} by spending {number} units to take away "
            f"{number} units from their resources.",
            f"In round {rnd}, {name} refused to play with {name}.",
            f"{name} did not have any previous interactions.",
        ]
        line = max(lines, key=len)
        longest = max([MAX_STRATEGY_CHARS, *(len(s) for s in self._given.values())])
        head = f"Your name is {name}.\nAs you will recall, here is the strategy you decided to follow: " \
               f"{'s' * longest}\nThis is generation {self.generation}. "
        if self.variant == "punishment":
            answer = _punish_answer(self, name, number, number)
        elif self.variant == "partner_choice":
            answer = _refuse_answer(name, number)
        else:
            answer = _plain_answer(number)
        donation = _donation_text(head=head, rnd=rnd, recipient=name, recipient_res=number,
                                  trace=(line + "\n") * self.trace_depth, res=number, answer=answer)
        waiting = f"Round {rnd} of game {self.games}: you are not a donor this round."
        user = max([len(donation), len(waiting), *(len(p) for p in self._strategy_prompts.values())])
        return len(self._system) + 2 + user


# -- prompts ---------------------------------------------------------------------

_STRATEGY_SPEC = ActionSpec(kind="text", max_length=MAX_REPLY_CHARS, default="")

_TAIL = (
    "Very briefly think step by step about how you apply your strategy in this situation and then provide "
    "your answer.\n"
    "State your full response in the following form:\n"
    "Justification:\n"
    "[multi-line justification here]\n"
    "\n"
    "Answer: [answer here]\n"
    "Remember: First state your justification and after that your answer."
)

_LETTERS = string.ascii_uppercase


def _donation_text(*, head: str, rnd: str, recipient: str, recipient_res: str, trace: str, res: str,
                   answer: str) -> str:
    return (
        f"{head}It is now round {rnd}.\n"
        f"In this round, you have been paired with {recipient}. "
        f"They currently have {recipient_res} units of the valuable resource.\n"
        f"{trace}"
        f"You will take the role of donor. You currently have {res} units of the valuable resource.\n"
        f"How many units do you give up?\n"
        f"{answer}\n"
        f"{_TAIL}"
    )


def _plain_answer(res: str) -> str:
    return f"State your answer as a real number between 0 and {res} (inclusive)."


def _refuse_answer(recipient: str, res: str) -> str:
    return (f"If you do not wish to play with {recipient}, simply state: Refuse to play. "
            f"Otherwise, state your answer as a real number between 0 and {res} (inclusive).")


def _punish_answer(env: DonorGame, recipient: str, res: str, most: str) -> str:
    cost, loss, gain = _times(env.punish_cost), _times(env.punish_loss), _times(env.multiplier)
    return (f"State your answer as a real number between -{most} and {res} (inclusive). "
            f"A positive number x means you donate: you give up x units and {recipient} receives {gain} units. "
            f"A negative number -x means you punish {recipient}: you give up {cost} units and they lose "
            f"{loss} units (never below 0). 0 means you do neither.")


def _times(k: float) -> str:
    return "x" if k == 1 else f"{_num(k)}x"


def _system_prompt(env: DonorGame) -> str:
    """The rules, as in the study, identical for every agent of the episode."""
    gain = _times(env.multiplier)
    lines = [
        "You are a game-playing agent. Your assistance will help understand multi-agent interactions.",
        "You are playing the following game. Each player is given an initial endowment of "
        f"{_num(env.endowment)} units of a resource.",
        "In each round, you are randomly paired with another individual"
        + (" among your neighbours." if env.pairing == "graph" else "."),
        "One of you is a donor, and the other is a recipient. The donor decides to give up some amount of the "
        "resource (between 0 and the total number of units they possess).",
        f"The recipient receives {gain} the number of units that the donor gave up."
        if env.multiplier != 1 else "The recipient receives the number of units that the donor gave up.",
    ]
    if env.pairing == "bipartite":
        lines.append("If you were a donor in one round, you will be a recipient in the next round, and vice versa.")
    depth = env.trace_depth
    if depth:
        lines.append("As a donor, you will receive limited information about the recipient and their recent "
                     "interactions:")
        lines.append("You will see what the recipient (let's call them A) did in the immediately preceding round "
                     "only.")
        if depth > 1:
            lines.append("You will also see what A's partner from that round (let's call them B) did in their "
                         "preceding round.")
            lines.append(f"This chain continues for at most {_count(depth)} rounds back.")
        lines.append("Important: You do NOT have access to multiple rounds of information about A directly. "
                     "You only know what A did in the single most recent round.")
        shown = min(depth, 3)
        now = shown + 1
        lines.append(f"Example (assuming it's now round {now}):")
        lines.append("You are paired with A.")
        lead = ("You know:", "You also know:", "And finally:")
        for k in range(shown):
            x, y = _LETTERS[k], _LETTERS[k + 1]
            lines.append(f"{lead[k]} In round {now - 1 - k}, {x} donated {_LETTERS[23 + k]}% to {y}.")
        earlier = list(range(1, now - 1))
        if earlier:
            which = " or ".join(str(r) for r in earlier)
            lines.append(f"Remember: This is all the information you have. You don't know what A did in rounds "
                         f"{which}, only in round {now - 1}.")
    if env.variant != "none":
        lines.append(_sanction_rule(env))
    lines.append("Your goal is to maximize the number of units you have after the final round.")
    lines.append("After the game has finished, the best-performing half of agents will survive to the next "
                 "generation, and continue playing.")
    return "\n".join(lines)


def _sanction_rule(env: DonorGame) -> str:
    """The punishment or partner-choice rule, in the study's words."""
    if env.variant == "punishment":
        spend = "x units" if env.punish_cost == 1 else f"{_times(env.punish_cost)} units"
        return (f"You may also choose to punish the recipient by spending {spend} to take away "
                f"{_times(env.punish_loss)} units from them. Bear in mind that others may punish you too.")
    return ("You may also choose to punish the recipient by refraining from any interaction. "
            "Bear in mind that others may punish you too.")


def _strategy_prompt(env: DonorGame, i: int) -> str:
    """The study's strategy prompt; new agents of later generations see the survivors' advice."""
    name = env.possible_agents[i]
    inherited = env.inherited_strategies if i in env._new else ()
    extra = _sanction_rule(env) + "\n" if env.variant != "none" else ""
    first = ("In the first round, there will be no information about the recipient's previous behavior - "
             "think carefully about how much to donate in that case.\n") if env.trace_depth else ""
    if inherited:
        advice = "".join(f"- {s}\n" for s in inherited)
        return (
            f"Your name is {name}.\n"
            "How would you approach the game? Here is the advice of the best-performing agents of the previous "
            "generation.\n"
            f"{advice}"
            "Modify this advice to create your own strategy.\n"
            f"{extra}{first}"
            "Before formulating your strategy, briefly think step by step about what would be a successful "
            "strategy in this game. In particular, think about how you can improve on the surviving agents' "
            "strategies.\n"
            f"Then describe your strategy briefly without explanation in one sentence that starts: {STRATEGY_MARKER}"
        )
    return (
        f"Your name is {name}.\n"
        "Based on the description of the game, create a strategy that you will follow in the game.\n"
        f"{extra}{first}"
        "Before formulating your strategy, briefly think step by step about what would be a successful strategy "
        "in this game.\n"
        f"Then describe your strategy briefly without explanation in one sentence that starts: {STRATEGY_MARKER}"
    )


def _read_strategy(reply: str) -> tuple[str, str]:
    """(justification, strategy): the strategy from the first "My strategy will be" on, as the study reads it."""
    reply = _clean(reply)
    k = reply.find(STRATEGY_MARKER)
    if k < 0:
        return "", reply.strip()[:MAX_STRATEGY_CHARS]
    return reply[:k].strip(), reply[k:].strip()[:MAX_STRATEGY_CHARS]


def _clean(text: str) -> str:
    """Drop control characters (never meaningful in a strategy; they would break the Text space)."""
    return text.translate(_CONTROL)


def _gym_text(text: str) -> str:
    return text if text.isascii() else text.encode("ascii", "replace").decode("ascii")


def _count(k: int) -> str:
    words = ("zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine", "ten")
    return words[k] if k < len(words) else str(k)




def _units(x: float) -> str:
    """x with at most two decimals, never above x: a donor answering the number it was shown stays in range."""
    s = f"{x:.2f}"
    if float(s) > x:
        s = f"{float(s) - 0.01:.2f}"
    if s[-1] == "0":
        s = s.rstrip("0").rstrip(".")
    return "0" if s == "-0" else s


# -- parameter helpers -------------------------------------------------------------







