"""The commons as a PettingZoo game: monthly harvests from a shared stock, with an optional town hall.

A month is a harvest step (every member at once) and, with `discussion`, a
town hall after it: the catches are announced, then members speak one at a
time in an order drawn each month from the episode's seed, each utterance a
proposed per-person limit (or "none") and a sentence. When most speakers'
last proposals name the same limit, it is the month's agreement and every
later prompt recalls it (the members' memory). The run ends after the last
month or when the stock falls below the collapse level after a harvest.

A decision's round is the episode's step, a harvest or one utterance (1, 2, ...), so
every decision of a member has a round of its own; the month is in `data` and in
each event's record.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Mapping
from typing import Any, ClassVar

import numpy as np
from gymnasium import spaces

from societas.environments.base import GameEnv
from societas.environments.commons.rules import allocate, regrow, sustainable_share, sustainable_total
from societas.environments.commons.scenarios import SCENARIOS, Scenario
from societas.environments.params import check_flag, check_int, check_one_of
from societas.types import ActionSpec, Observation

UTTERANCE = r"(none|[0-9]{1,4}) \| [A-Za-z0-9 ,.'!?;:-]{1,300}"
"""A town-hall utterance: a proposed per-person limit or "none", " | ", then what the member says."""
_UTTERANCE = re.compile(UTTERANCE)

StepResult = tuple[
    dict[str, dict[str, Any]], dict[str, float], dict[str, bool], dict[str, bool], dict[str, dict[str, Any]]
]


class Commons(GameEnv):
    """GovSim's harvest game for `num_agents` members over `months` months."""

    metadata: ClassVar[dict[str, Any]] = {"name": "commons_v0", "render_modes": ["ansi"], "is_parallelizable": True}

    def __init__(self, num_agents: int = 5, months: int = 12, stock: int = 100, capacity: int | None = None,
                 collapse: int = 5, scenario: str = "fishery", discussion: bool = False,
                 max_utterances: int | None = None, universalization: bool = False, newcomer: bool = False,
                 render_mode: str | None = None) -> None:
        self.n = check_int("num_agents", num_agents, 1)
        self.months = check_int("months", months, 1)
        self.start_stock = check_int("stock", stock, 1)
        self.capacity = self.start_stock if capacity is None else check_int("capacity", capacity, 1)
        if self.start_stock > self.capacity:
            raise ValueError(f"stock must not exceed capacity ({self.capacity}), got {stock!r}")
        self.collapse = check_int("collapse", collapse, 0)
        self.scenario: Scenario = SCENARIOS[check_one_of("scenario", scenario, tuple(SCENARIOS))]
        self.discussion = check_flag("discussion", discussion)
        self.max_utterances = self.n if max_utterances is None else check_int("max_utterances", max_utterances, 1)
        self.universalization = check_flag("universalization", universalization)
        self.newcomer = check_flag("newcomer", newcomer)
        if render_mode not in (None, "ansi"):
            raise ValueError(f"render_mode must be None or 'ansi', got {render_mode!r}")
        self.render_mode = render_mode
        self.possible_agents = [f"player_{i}" for i in range(self.n)]
        self._index = {a: i for i, a in enumerate(self.possible_agents)}
        self.agents: list[str] = []
        self._rng = np.random.default_rng()
        self._reset_state()

    def _reset_state(self) -> None:
        self.month = 1
        self.steps = 0  # harvests and utterances played
        self.stock = self.start_stock
        self.phase = "harvest"
        self.stocks: list[int] = []  # stock at the start of each month played
        self.catches: list[list[int]] = []
        self.collapsed = False
        self.agreements: list[tuple[int, int]] = []  # (month, per-person limit)
        self._order: list[int] = []
        self._spoken: list[tuple[int, int | None, str]] = []  # (member, proposal, words) this month
        self._lines: list[str] = []

    @functools.cached_property
    def observation_spaces(self) -> dict[str, spaces.Space]:  # type: ignore[override]
        """month: the month under way (months + 1 once over); stock: the units in the commons now;
        phase: 0 harvest, 1 town hall; own_catch: the member's catch last month."""
        space = spaces.Dict({"month": spaces.Discrete(self.months + 2), "stock": spaces.Discrete(self.capacity + 1),
                             "phase": spaces.Discrete(2), "own_catch": spaces.Discrete(self.capacity + 1)})
        return dict.fromkeys(self.possible_agents, space)

    @functools.cached_property
    def action_spaces(self) -> dict[str, spaces.Space]:  # type: ignore[override]
        """Units asked for in a harvest; in the town hall an utterance string, or a number read as a proposal."""
        return {a: spaces.Discrete(self.capacity + 1) for a in self.possible_agents}

    @property
    def threshold(self) -> float:
        """f(t) / N for the current stock."""
        return sustainable_share(self.stock, self.n)

    @property
    def agreed_limit(self) -> int | None:
        """The latest per-person limit the town hall agreed on, if any."""
        return self.agreements[-1][1] if self.agreements else None

    def reset(self, seed: int | None = None,
              options: dict[str, Any] | None = None) -> tuple[dict[str, dict[str, Any]], dict[str, dict[str, Any]]]:
        """Start a run; the seed fixes the allocation draws and the speaking orders."""
        if seed is not None:
            self._rng = np.random.default_rng(seed)
        self._reset_state()
        self.agents = list(self.possible_agents)
        return self._observe(), {a: {} for a in self.agents}

    def acting_agents(self) -> list[str]:
        """Everyone in a harvest; the next speaker in the town hall."""
        if not self.agents:
            return []
        if self.phase == "harvest":
            return list(self.agents)
        return [self.possible_agents[self._order[len(self._spoken) % self.n]]]

    def step(self, actions: dict[str, Any]) -> StepResult:
        """A harvest (every member's units) or one utterance; actions of members not acting are ignored."""
        if not self.agents:
            raise RuntimeError("the episode is over (or never started); call reset() first")
        if not isinstance(actions, Mapping):
            raise ValueError(f"step() takes a dict agent -> action, got {type(actions).__name__}")
        acting = self.acting_agents()
        missing = [a for a in acting if a not in actions]
        if missing:
            raise ValueError(f"step() lacks actions for {', '.join(missing)}")
        if self.phase == "harvest":
            result = self._harvest([self._units(a, actions[a]) for a in self.agents])
        else:
            result = self._speak(acting[0], actions[acting[0]])
        self.steps += 1
        return result

    def _units(self, agent: str, value: Any) -> int:
        ok = isinstance(value, (int, np.integer, float, np.floating)) and not isinstance(value, bool)
        if not ok or not float(value).is_integer() or not 0 <= value <= self.capacity:
            raise ValueError(f"{agent}: a harvest is a whole number of units from 0 to {self.capacity}, got {value!r}")
        return int(value)

    def _harvest(self, demands: list[int]) -> StepResult:
        before, share = self.stock, self.threshold
        got = allocate(demands, before, self._rng)
        remaining = before - sum(got)
        self.stocks.append(before)
        self.catches.append(got)
        self.collapsed = remaining < self.collapse
        last = self.collapsed or self.month >= self.months
        self.stock = remaining if last else regrow(remaining, self.capacity)
        u = self.scenario.unit
        self._lines.append(f"Month {self.month}: the commons held {before} {u}; the members took "
                           f"{', '.join(str(g) for g in got)} ({sum(got)} in all), leaving {remaining}"
                           + (" and the resource collapsed." if self.collapsed else f"; it grew back to {self.stock}."))
        infos = {}
        for i, a in enumerate(self.agents):
            record = {"phase": "harvest", "month": self.month, "scenario": self.scenario.key, "stock": before,
                      "requested": demands[i], "caught": got[i], "remaining": remaining,
                      "next_stock": self.stock, "threshold": share, "collapsed": self.collapsed,
                      "agreed_limit": self.agreed_limit, "newcomer": self._is_newcomer(i),
                      "months": self.months, "collapse": self.collapse, "discussion": self.discussion,
                      "universalization": self.universalization}
            infos[a] = {"action": str(demands[i]), "record": record}
        rewards = {a: float(g) for a, g in zip(self.agents, got, strict=True)}
        if last:
            return self._finish(rewards, infos)
        if self.discussion:
            self.phase = "discussion"
            self._order = [int(x) for x in self._rng.permutation(self.n)]
            self._spoken = []
        else:
            self.month += 1
        return self._result(rewards, infos, done=False)

    def _speak(self, agent: str, value: Any) -> StepResult:
        proposal, words = self._utterance(agent, value)
        i = self._index[agent]
        self._spoken.append((i, proposal, words))
        record: dict[str, Any] = {"phase": "discussion", "month": self.month, "scenario": self.scenario.key,
                                  "turn": len(self._spoken), "proposal": proposal, "words": words}
        if len(self._spoken) >= self.max_utterances:
            limit = _agreement(self._spoken, self.n)
            if limit is not None:
                self.agreements.append((self.month, limit))
            record["agreed_limit"] = limit
            self._lines.append(f"Town hall of month {self.month}: "
                               + (f"agreed limit {limit} each." if limit is not None else "no agreement."))
            self.phase = "harvest"
            self.month += 1
        rewards = dict.fromkeys(self.agents, 0.0)
        infos = {a: {} for a in self.agents}
        infos[agent] = {"action": value if isinstance(value, str) else f"{proposal} | {words}", "record": record}
        return self._result(rewards, infos, done=False)

    def _utterance(self, agent: str, value: Any) -> tuple[int | None, str]:
        if isinstance(value, str):
            m = _UTTERANCE.fullmatch(value.strip())
            if m is None:
                raise ValueError(f"{agent}: an utterance reads 'LIMIT | words' or 'none | words', got {value!r}")
            head, _, words = value.strip().partition(" | ")
            return (None if head == "none" else int(head)), words
        return self._units(agent, value), ""

    def _finish(self, rewards: dict[str, float], infos: dict[str, dict[str, Any]]) -> StepResult:
        result = self._result(rewards, infos, done=True)
        self.agents = []
        return result

    def _result(self, rewards: dict[str, float], infos: dict[str, dict[str, Any]], *, done: bool) -> StepResult:
        obs = self._observe()
        if done:
            obs = {a: {**o, "month": self.months + 1} for a, o in obs.items()}
        return (obs, rewards, dict.fromkeys(self.agents, done), dict.fromkeys(self.agents, False), infos)

    def _observe(self) -> dict[str, dict[str, Any]]:
        last = self.catches[-1] if self.catches else [0] * self.n
        return {a: {"month": min(self.month, self.months), "stock": self.stock,
                    "phase": 0 if self.phase == "harvest" else 1, "own_catch": last[self._index[a]]}
                for a in self.agents}

    def _is_newcomer(self, i: int) -> bool:
        return self.newcomer and i == self.n - 1

    def render(self) -> str | None:
        """The latest month (or town hall) as text, or None before the first harvest."""
        return self._lines[-1] if self._lines else None

    def decision(self, agent: str) -> Observation:
        """The member's prompt: the rules once (system), then its memory and this step's question."""
        i = self._deciding(agent)
        from societas.environments.commons import prompts

        data = {"game": "commons", "phase": self.phase, "month": self.month, "months": self.months,
                "stock": self.stock, "capacity": self.capacity, "members": self.n,
                "sustainable_total": sustainable_total(self.stock), "threshold": self.threshold,
                "agreed_limit": self.agreed_limit, "newcomer": self._is_newcomer(i), "me": i,
                "own_catches": tuple(c[i] for c in self.catches)}
        system = prompts.rules(self.scenario, self.n, self.months, self.capacity, self.collapse,
                               newcomer=self._is_newcomer(i))
        memory = prompts.memory(self, i)
        if self.phase == "harvest":
            return Observation(agent=agent, round=self.steps + 1, system=system,
                               prompt=memory + prompts.harvest_question(self), spec=self._harvest_spec(),
                               data=data)
        return Observation(agent=agent, round=self.steps + 1, system=system,
                           prompt=memory + prompts.town_hall(self, i), spec=_UTTERANCE_SPEC, data=data)

    def _harvest_spec(self) -> ActionSpec:
        return _harvest_spec(self.stock)

    def episode_summary(self) -> dict[str, dict[str, Any]]:
        """Per member: its total catch, the months the commons lasted, and whether it collapsed."""
        return {a: {"scenario": self.scenario.key, "gain": float(sum(c[i] for c in self.catches)),
                    "survival_months": len(self.stocks), "collapsed": self.collapsed,
                    "stocks": list(self.stocks), "agreements": [list(x) for x in self.agreements],
                    "newcomer": self._is_newcomer(i)}
                for i, a in enumerate(self.possible_agents)}


@functools.lru_cache(maxsize=1024)
def _harvest_spec(stock: int) -> ActionSpec:
    return ActionSpec.integer(0, stock, default=0, answer_marker="Answer:")


UTTERANCE_TOKENS = 80
"""The longest utterance asked for: the form holds 300 characters of words, some 75 tokens of English
(any start of a valid utterance is one too, so a reply cut here stays usable)."""

_UTTERANCE_SPEC = ActionSpec(kind="regex", pattern=UTTERANCE, default="none | I have nothing to add.",
                             description='a per-person limit (a whole number, or "none"), " | ", then one '
                                         "plain sentence", max_tokens=UTTERANCE_TOKENS)


def _agreement(spoken: list[tuple[int, int | None, str]], members: int) -> int | None:
    """The limit most speakers last proposed, when more than half the members name it; else None."""
    latest: dict[int, int | None] = {}
    for who, proposal, _ in spoken:
        latest[who] = proposal
    counts: dict[int, int] = {}
    for p in latest.values():
        if p is not None:
            counts[p] = counts.get(p, 0) + 1
    if not counts:
        return None
    limit, votes = max(counts.items(), key=lambda kv: (kv[1], -kv[0]))
    return limit if 2 * votes > members else None
