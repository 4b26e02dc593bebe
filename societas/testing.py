"""A conformance kit for games: everything societas needs from an environment, checked in one call.

    from societas.testing import check_environment
    report = check_environment("stag-hunt", players=3)   # raises ConformanceError on failure

`check_environment` runs PettingZoo's parallel API and seed tests, walks an
episode asking every acting agent for its `decision(agent)` (an Observation
with a valid ActionSpec), then plays episodes through the real runner
(`societas.runners.local.play_episode`): once with agents that always answer
validly, once with a fake language model in the first seat. It checks that the
rows come out in the run directory's column shapes and that no seat decides twice
in one round (decisions are told apart by episode, round and seat). Plug-in authors run it in
their own tests; societas runs it over every registered game.
"""

from __future__ import annotations

import asyncio
import contextlib
import io
import math
import warnings
from collections.abc import Coroutine, Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any, TypeVar

import numpy as np

from societas.plugins import describe_exception as _describe
from societas.types import Action, ActionSpec, Observation, Question

T = TypeVar("T")

VALID_POLICY = "conformance:first_valid"
"""Policy spec of the agent that answers every ActionSpec validly (registered when the kit runs)."""
FAKE_MODEL = "fake:first"
MAX_STEPS = 10_000


class ConformanceError(AssertionError):
    """An environment that does not meet what societas needs; the message says which check and why."""

    def __init__(self, env_id: str, check: str, detail: str) -> None:
        self.env_id = env_id
        self.check = check
        self.detail = detail
        super().__init__(f"{env_id}: {check}: {detail}")


@dataclass(frozen=True, kw_only=True, slots=True)
class ConformanceReport:
    """What the checks saw: seats, action kinds, decisions walked, rows written, a sample prompt."""

    env_id: str
    params: Mapping[str, Any]
    agents: tuple[str, ...]
    action_kinds: tuple[str, ...]
    decisions: int
    events: int
    llm_calls: int
    sample_system: str
    sample_prompt: str

    def __str__(self) -> str:
        params = ", ".join(f"{k}={v!r}" for k, v in self.params.items())
        return (f"{self.env_id}({params}) conforms: {len(self.agents)} agents, actions "
                f"{'/'.join(self.action_kinds)}, {self.decisions} decisions walked, {self.events} events and "
                f"{self.llm_calls} model calls from the runner")


def first_valid(spec: ActionSpec) -> Any:
    """A valid answer to any ActionSpec: first choice, the minimum, "ok", or the spec's default.

    Raises ValueError when none can be built (a regex or JSON spec without a valid default).
    """
    if spec.kind == "choice":
        candidate: Any = spec.choices[0]
    elif spec.kind == "integer":
        candidate = math.ceil(spec.minimum)
    elif spec.kind == "real":
        candidate = float(spec.minimum)
    elif spec.kind == "text":
        candidate = "ok"[: max(1, spec.max_length)]
    elif spec.kind == "json":
        candidate = spec.default if spec.default is not None else dict.fromkeys(spec.schema.get("required", ()))
    else:
        candidate = spec.default
    if candidate is None:
        raise ValueError(f"cannot build a valid {spec.kind} answer without a default; give the ActionSpec one")
    return spec.validate(candidate)


class FirstValidAgent:
    """Answers every decision with `first_valid(spec)`: exercises a game without any strategy of its own."""

    kind = "conformance"
    model: str | None = None

    def __init__(self, name: str) -> None:
        self.name = name
        self.policy = VALID_POLICY

    async def act(self, observation: Observation) -> Action:
        return Action(value=first_valid(observation.spec), policy=self.policy)


def _make_first_valid(ident: str, *, name: str, **_: Any) -> FirstValidAgent:
    return FirstValidAgent(name)


def check_environment(env_id: str, /, **params: Any) -> ConformanceReport:
    """Check registered game `env_id` built with `params`; raise ConformanceError on the first failure.

    Runs synchronously (inside a running event loop it uses a worker thread).
    """
    from societas.environments import make

    def build() -> Any:
        try:
            return make(env_id, **params)
        except Exception as exc:
            raise ConformanceError(env_id, "build", _describe(exc)) from exc

    build().close()
    _pettingzoo_tests(env_id, build)
    walk = _walk_decisions(env_id, build())
    events, calls = _run(_runner_episodes(env_id, params, len(walk["agents"])))
    return ConformanceReport(
        env_id=env_id, params=dict(params), agents=walk["agents"], action_kinds=walk["kinds"],
        decisions=walk["decisions"], events=events, llm_calls=calls,
        sample_system=walk["system"], sample_prompt=walk["prompt"],
    )


def _pettingzoo_tests(env_id: str, build: Any) -> None:
    from pettingzoo.test import parallel_api_test, parallel_seed_test

    for name, test in (("PettingZoo parallel_api_test", lambda: parallel_api_test(build(), num_cycles=1000)),
                       ("PettingZoo parallel_seed_test", lambda: parallel_seed_test(build))):
        # The tests print on success and warn on soft failures: keep the output
        # quiet and turn their warnings into failures.
        with warnings.catch_warnings(), contextlib.redirect_stdout(io.StringIO()):
            warnings.simplefilter("error", UserWarning)
            try:
                test()
            except ConformanceError:
                raise
            except Exception as exc:
                raise ConformanceError(env_id, name, _describe(exc) or "assertion failed") from exc


def _walk_decisions(env_id: str, env: Any) -> dict[str, Any]:
    """Reset with a seed and walk one episode, checking every decision the runner would ask for."""
    check = "decision"
    try:
        env.reset(seed=0)
    except Exception as exc:
        raise ConformanceError(env_id, "reset", _describe(exc)) from exc
    agents = tuple(env.possible_agents)
    acting = getattr(env, "acting_agents", None)
    if not callable(getattr(env, "decision", None)):
        raise ConformanceError(env_id, check, f"{type(env).__name__} has no decision(agent) method")
    kinds: dict[str, None] = {}
    decisions = 0
    sample: Observation | None = None
    for _ in range(MAX_STEPS):
        if not env.agents:
            break
        live = list(env.agents) if acting is None else list(acting())
        stray = [a for a in live if a not in env.agents]
        if stray:
            raise ConformanceError(env_id, "acting_agents", f"names agents that are not live: {stray}")
        actions = {}
        for agent in live:
            try:
                obs = env.decision(agent)
            except Exception as exc:
                raise ConformanceError(env_id, check, f"decision({agent!r}) raised {_describe(exc)}") from exc
            _check_observation(env_id, agent, obs)
            kinds.setdefault(obs.spec.kind)
            sample = sample or obs
            try:
                actions[agent] = first_valid(obs.spec)
            except ValueError as exc:
                raise ConformanceError(env_id, check, f"decision({agent!r}): {exc}") from exc
            decisions += 1
        try:
            env.step(actions)
        except Exception as exc:
            raise ConformanceError(env_id, "step", f"step() rejected valid actions {actions!r}: "
                                                   f"{_describe(exc)}") from exc
    else:
        raise ConformanceError(env_id, "episode", f"did not end within {MAX_STEPS} steps")
    env.close()
    if sample is None:
        raise ConformanceError(env_id, check, "the episode ended before any agent was asked to decide")
    return {"agents": agents, "kinds": tuple(kinds), "decisions": decisions,
            "system": sample.system, "prompt": sample.prompt}


def _check_observation(env_id: str, agent: str, obs: Any) -> None:
    where = f"decision({agent!r})"
    if not isinstance(obs, Observation):
        raise ConformanceError(env_id, "decision", f"{where} must return a societas.types.Observation, "
                                                   f"got {type(obs).__name__}")
    problems = []
    if obs.agent != agent:
        problems.append(f"agent is {obs.agent!r}")
    if isinstance(obs.round, bool) or not isinstance(obs.round, (int, np.integer)) or obs.round < 0:
        problems.append(f"round must be an integer >= 0, got {obs.round!r}")
    if not isinstance(obs.system, str) or not isinstance(obs.prompt, str) or not (obs.system + obs.prompt).strip():
        problems.append("system and prompt must be strings, not both empty (the text a language model reads)")
    if not isinstance(obs.spec, ActionSpec):
        problems.append(f"spec must be a societas.types.ActionSpec, got {type(obs.spec).__name__}")
    elif obs.spec.default is not None and obs.spec.kind in ("integer", "real"):
        # A number outside the declared range would be played as the fallback;
        # a text default ("" = no answer) is the game's own convention.
        try:
            obs.spec.validate(obs.spec.default)
        except ValueError as exc:
            problems.append(f"spec.default {obs.spec.default!r} is not a valid answer: {exc}")
    if not isinstance(obs.data, Mapping):
        problems.append(f"data must be a mapping, got {type(obs.data).__name__}")
    if obs.prediction is not None and not (
        isinstance(obs.prediction, Question) and isinstance(obs.prediction.spec, ActionSpec)
    ):
        problems.append("prediction must be None or a societas.types.Question")
    if problems:
        raise ConformanceError(env_id, "decision", f"{where}: {'; '.join(problems)}")


async def _runner_episodes(env_id: str, params: Mapping[str, Any], seats: int) -> tuple[int, int]:
    """Two episodes through the runner: all valid-answer agents, then a fake model in seat 0."""
    from societas.agents.registry import find_policy, register_policy, unregister_policy

    # The valid-answer agent is a policy kind only while the kit runs, so the
    # runner builds it like any other agent and nothing stays registered.
    kind = VALID_POLICY.partition(":")[0]
    added = find_policy(kind) is None
    register_policy(kind, _make_first_valid, names={"first_valid": "Answers every decision validly."},
                    description="Agents of the conformance kit.")
    try:
        return await _play_checked(env_id, params, seats)
    finally:
        if added:
            unregister_policy(kind)


async def _play_checked(env_id: str, params: Mapping[str, Any], seats: int) -> tuple[int, int]:
    """Play the two episodes and check their rows; (event rows, model-call rows)."""
    from societas.config import LLMConfig
    from societas.llm.specs import make_model
    from societas.runners.local import RunContext, play_episode
    from societas.runners.rundir import EVENT_SCHEMA, LLM_CALL_SCHEMA
    from societas.societies.society import EpisodeSpec, Seat

    model = make_model(FAKE_MODEL)
    ctx = RunContext(run_id="conformance", seed=0, llm=LLMConfig(), models={FAKE_MODEL: model})
    valid = [Seat(name=f"valid-{i}", policy=VALID_POLICY) for i in range(seats)]
    specs = [
        ("runner episode (valid agents)", valid),
        ("runner episode (fake model in seat 0)", [Seat(name="llm-0", policy="llm", model=FAKE_MODEL), *valid[1:]]),
    ]
    events = calls = 0
    try:
        for index, (check, seated) in enumerate(specs):
            spec = EpisodeSpec(phase=0, index=index, env_id=env_id, env_params=dict(params), seats=tuple(seated))
            try:
                out = await play_episode(spec, ctx)
            except Exception as exc:
                raise ConformanceError(env_id, check, _describe(exc)) from exc
            n = _check_columns(env_id, check, "events", out.events, EVENT_SCHEMA)
            if n == 0:
                raise ConformanceError(env_id, check, "the episode produced no events")
            if n != out.decisions:
                raise ConformanceError(env_id, check, f"{n} event rows for {out.decisions} decisions")
            names = {s.name for s in seated}
            if not set(out.events["agent"]) <= names:
                raise ConformanceError(env_id, check, f"events name agents {sorted(set(out.events['agent']))}, "
                                                      f"not the seated {sorted(names)}")
            seen: set[tuple[Any, Any]] = set()
            for key in zip(out.events["round"], out.events["seat"], strict=True):
                if key in seen:
                    raise ConformanceError(env_id, check, f"seat {key[1]} decides twice in round {key[0]}: each "
                                           "decision of a seat needs a round of its own (the run's tables and "
                                           "transcripts tell decisions apart by episode, round and seat)")
                seen.add(key)
            bad_rewards = [r for r in out.events["reward"] if not math.isfinite(r)]
            if bad_rewards:
                raise ConformanceError(env_id, check, f"rewards must be finite numbers, got {bad_rewards[:3]}")
            if index == 0 and not all(out.events["valid"]):
                raise ConformanceError(env_id, check, "valid answers were recorded as invalid")
            m = _check_columns(env_id, check, "llm_calls", out.calls, LLM_CALL_SCHEMA)
            if index == 1 and m == 0:
                raise ConformanceError(env_id, check, "the language-model seat made no model calls")
            episode_schema = _episode_schema()
            if episode_schema is not None and getattr(out, "episode", None) is not None:
                _check_columns(env_id, check, "episodes", out.episode, episode_schema)
            events += n
            calls += m
    finally:
        await model.aclose()
    return events, calls


def _episode_schema() -> Any:
    from societas.runners import rundir

    return getattr(rundir, "EPISODE_SCHEMA", None)


def _check_columns(env_id: str, check: str, table: str, columns: Mapping[str, list[Any]], schema: Any) -> int:
    """Check rows against a run-directory schema (names, equal lengths, types); return the row count."""
    import pyarrow as pa

    names = list(schema.names)
    if list(columns) != names:
        missing = [c for c in names if c not in columns]
        extra = [c for c in columns if c not in names]
        raise ConformanceError(env_id, check, f"{table} columns differ from the run directory's: "
                                              f"missing {missing}, unexpected {extra}")
    lengths = {len(v) for v in columns.values()}
    if len(lengths) > 1:
        raise ConformanceError(env_id, check, f"{table} columns have different lengths: {sorted(lengths)}")
    try:
        pa.Table.from_pydict(dict(columns), schema=schema)
    except (pa.ArrowException, TypeError, ValueError, OverflowError) as exc:
        raise ConformanceError(env_id, check, f"{table} rows do not fit the run directory's schema: "
                                              f"{_describe(exc)}") from exc
    return lengths.pop() if lengths else 0


def _run(coro: Coroutine[Any, Any, T]) -> T:
    """Run a coroutine to completion, from plain code or from inside a running event loop."""
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        return asyncio.run(coro)
    with ThreadPoolExecutor(max_workers=1) as pool:
        return pool.submit(asyncio.run, coro).result()
