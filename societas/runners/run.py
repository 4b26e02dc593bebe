"""Run or resume an experiment: config -> society -> phases -> run directory.

Beside it: the models a run asks (run_models), its human seats (seats), and why
a run ended early (stopping); their public names are importable from here too.
"""

from __future__ import annotations

import asyncio
import re
import sys
import time
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

from societas import __version__
from societas.config import ExperimentConfig, parse_config
from societas.errors import BadInput
from societas.llm.base import ChatModel, ModelError
from societas.llm.specs import make_model
from societas.runners import batched
from societas.runners.local import EpisodeOutput, Flusher, RunContext, run_episodes
from societas.runners.run_models import default_cache_path, model_options, probe_models
from societas.runners.rundir import EPISODE_SCHEMA, EVENT_SCHEMA, LLM_CALL_SCHEMA, Columns, RunDirectory
from societas.runners.seats import SeatAnnouncer, print_seats, serve_seats
from societas.runners.stopping import RunInterrupted, RunStopped, record_stop, world_write_error
from societas.runners.tally import RunTally
from societas.societies.society import PhasedSociety, Society, make_society
from societas.types import FALLBACK_LIMIT

if TYPE_CHECKING:
    from societas.human.server import SeatServer
    from societas.runners.ray_runner import RayShards

__all__ = [
    "RunInterrupted",
    "RunStopped",
    "SeatAnnouncer",
    "default_cache_path",
    "model_options",
    "print_seats",
    "probe_models",
    "record_stop",
    "resume_run",
    "run_experiment",
    "run_experiment_async",
    "stored_config",
    "summarize",
]


class _Progress:
    """A progress bar on a terminal, silence elsewhere."""

    def __init__(self, total: int, done: int, enabled: bool, label: str) -> None:
        self._bar: Any = None
        if enabled and sys.stderr.isatty():
            from rich.progress import BarColumn, MofNCompleteColumn, Progress, TimeRemainingColumn

            self._bar = Progress("[progress.description]{task.description}", BarColumn(),
                                 MofNCompleteColumn(), TimeRemainingColumn(), transient=True)
            self._bar.start()
            self._task = self._bar.add_task(label, total=total, completed=done)

    def advance(self) -> None:
        if self._bar is not None:
            self._bar.advance(self._task)

    def close(self) -> None:
        if self._bar is not None:
            self._bar.stop()


def _models(config: ExperimentConfig, society: PhasedSociety) -> dict[str, ChatModel]:
    """Every model the society needs, built before anything is written (a missing API key stops here)."""
    return {s: make_model(s, model_options(config, s)) for s in society.models()}


async def _execute(config: ExperimentConfig, rd: RunDirectory, progress: bool,
                   society: PhasedSociety, models: dict[str, ChatModel], *,
                   close_models: bool = True, on_seats: SeatAnnouncer = print_seats) -> dict[str, Any]:
    """Play the run in `rd` to its end; a failure of the world becomes RunStopped (one line, resumable)."""
    from societas.runners.ray_runner import RayRunnerError

    with rd.lock():  # another process playing this run: BadInput here, and its checkpoint is left alone
        try:
            return await _play(config, rd, progress, society, models, close_models=close_models,
                               on_seats=on_seats)
        except BaseException as exc:
            stopped: BaseException | None = None
            if isinstance(exc, RayRunnerError):
                stopped = RunStopped(rd.path, str(exc))
            elif isinstance(exc, ModelError):
                stopped = RunStopped(rd.path, f"model endpoint failed: {exc}")
            elif isinstance(exc, OSError) and world_write_error(exc):
                stopped = RunStopped(rd.path, f"cannot write the run directory {rd.path}: {exc.strerror or exc}")
            record_stop(rd, stopped or exc)
            if stopped is not None:
                raise stopped from None
            raise


async def _play(config: ExperimentConfig, rd: RunDirectory, progress: bool,
                society: PhasedSociety, models: dict[str, ChatModel], *,
                close_models: bool = True, on_seats: SeatAnnouncer = print_seats) -> dict[str, Any]:
    await probe_models(models)
    done = rd.recover()
    started = time.time()
    try:
        seats = await serve_seats(config, society, on_seats)
    except BaseException:
        if close_models:
            for m in models.values():
                await m.aclose()
        raise
    try:
        return await _play_phases(config, rd, progress, society, models, done, started, seats,
                                  close_models=close_models)
    finally:
        if seats is not None:
            await seats.stop()


async def _play_phases(config: ExperimentConfig, rd: RunDirectory, progress: bool, society: PhasedSociety,
                       models: dict[str, ChatModel], done: set[tuple[int, int]], started: float,
                       seats: SeatServer | None, *, close_models: bool) -> dict[str, Any]:
    ctx = RunContext(run_id=rd.run_id, seed=config.seed, llm=config.llm, models=models,
                     humans=None if seats is None else seats.hub)
    events = Columns(EVENT_SCHEMA)
    calls = Columns(LLM_CALL_SCHEMA)
    episode_rows = Columns(EPISODE_SCHEMA)
    state = {"part": rd.next_part_index(), "episodes": len(done)}
    tally = RunTally()
    tally.add_parts(rd.events_dir, rd.calls_dir)  # what earlier processes of a resumed run wrote
    pending_keys: list[tuple[int, int]] = []

    progress_of = {"phase": 0, "phase_episodes": 0, "phase_done": 0}

    def checkpoint(status: str) -> None:
        rd.write_json("checkpoint.json", {
            "run_id": rd.run_id, "status": status, "episodes_done": state["episodes"],
            "parts": state["part"], "phases": society.num_phases, **progress_of, "updated": time.time(),
        })

    def write() -> None:
        if not len(events):
            return
        table, call_table = events.take(), calls.take() if len(calls) else None
        rd.write_part(state["part"], table, call_table, episode_rows.take())
        tally.add_events(table)
        tally.llm_calls += 0 if call_table is None else call_table.num_rows
        state["part"] += 1
        state["episodes"] += len(pending_keys)
        progress_of["phase_done"] += len(pending_keys)
        pending_keys.clear()
        checkpoint("running")

    def write_batch(out: batched.BatchOutput) -> None:
        rd.write_part(state["part"], out.events, None, out.episodes)
        tally.add_events(out.events)
        state["part"] += 1
        state["episodes"] += len(out.keys)
        progress_of["phase_done"] += len(out.keys)
        checkpoint("running")

    flusher = Flusher(write, every_s=config.runner.flush_every_s, every_rows=config.runner.flush_every_rows)
    shards = _ray_shards(config, rd, models) if config.runner.kind == "ray" else None
    try:
        for phase in range(society.num_phases):
            episodes = society.phase(phase)
            todo = [e for e in episodes if e.key not in done]
            progress_of.update(phase=phase, phase_episodes=len(episodes), phase_done=len(episodes) - len(todo))
            checkpoint("running")  # a resumed run stops showing its old error at once
            if seats is not None:  # each person meets their episodes in this order, one at a time
                seats.hub.schedule(((e.key, [s.name for s in e.seats]) for e in todo),
                                   final=phase == society.num_phases - 1)
            bar = _Progress(len(episodes), len(episodes) - len(todo), progress, f"phase {phase}")

            def on_done(out: EpisodeOutput, bar: _Progress = bar) -> None:
                events.extend(out.events)
                if out.calls["run_id"]:
                    calls.extend(out.calls)
                episode_rows.extend(out.episode)
                pending_keys.append(out.key)
                bar.advance()
                flusher.maybe(len(events))

            try:
                if shards is None and config.runner.batch_scripted:
                    groups, todo = batched.split(todo)
                    for out in batched.play(groups, ctx, max_rows=config.runner.flush_every_rows):
                        write_batch(out)
                        for _ in out.keys:
                            bar.advance()
                if shards is not None:
                    await shards.run(todo, on_done)
                else:
                    await run_episodes(todo, ctx, max_concurrent=config.runner.max_concurrent_episodes,
                                       on_done=on_done)
            except BaseException:
                bar.close()
                try:
                    write()  # keep every episode that finished before the failure
                except OSError:
                    pass  # the original failure is the one to report
                raise
            bar.close()
            write()
            if type(society) is Society:
                continue  # a tournament changes nothing between phases: its episodes are not read back
            # The society's next state depends only on what is on disk, so a
            # resume re-derives it exactly.
            lineage = society.update(phase, rd.read_episodes(phase).to_pandas())
            if lineage is not None:
                rd.write_lineage(phase, lineage)
    finally:
        if shards is not None:
            await shards.aclose()
        if close_models:
            for m in models.values():
                await m.aclose()
    summary = summarize(rd, config, society, tally, wall_s=time.time() - started)
    summary["runner"] = shards.stats.as_dict() if shards is not None else {"kind": "local"}
    checkpoint("complete")
    rd.write_json("summary.json", summary)
    return summary


def _ray_shards(config: ExperimentConfig, rd: RunDirectory, models: Mapping[str, ChatModel]) -> RayShards:
    """The Ray runner's driver side; shards build their own models from these specs and options.

    Model servers the driver started (`vllm:` specs) are shared: shards route to them, never start their own.
    """
    from societas.llm.router import attach_options
    from societas.runners.ray_runner import RayShards

    return RayShards(config.runner, run_id=rd.run_id, seed=config.seed, llm=config.llm,
                     models={s: attach_options(m, model_options(config, s)) for s, m in models.items()})


def summarize(rd: RunDirectory, config: ExperimentConfig, society: PhasedSociety, tally: RunTally, *,
              wall_s: float) -> dict[str, Any]:
    """Totals a reader wants first, from the run's tally of every events part (earlier processes' too)."""
    per_agent = tally.per_agent()
    members = society.members.values()
    return {
        "run_id": rd.run_id,
        "name": config.name,
        "seed": config.seed,
        "societas_version": __version__,
        "episodes": tally.episodes,
        "decisions": tally.decisions,
        "llm_calls": tally.llm_calls,
        "prompt_tokens": tally.prompt_tokens,
        "completion_tokens": tally.completion_tokens,
        "invalid_actions": sum(a["invalid"] for a in per_agent.values()),
        "retries": tally.retries,
        # Predictions asked for (social chain of thought) that no attempt answered usably.
        "invalid_predictions": tally.invalid_predictions,
        "wall_s": round(wall_s, 3),
        "language_model_agents": sorted(s.name for s in members if s.policy == "llm"),
        "non_language_model_agents": {s.name: s.policy for s in members if s.policy != "llm"},
        "skipped_agents": config.skipped_members(),
        "agents": per_agent,
        "fallbacks": _fallbacks(per_agent),
    }


_MEMBER_SUFFIX = re.compile(r"-\d+$")


def _fallbacks(per_agent: dict[str, Any]) -> dict[str, Any]:
    """Share of decisions that were invalid fallbacks, and who is above `FALLBACK_LIMIT` (many agents: by member)."""
    groups: dict[str, list[int]] = {}
    for name, a in per_agent.items():
        key = name if len(per_agent) <= 8 else _MEMBER_SUFFIX.sub("", name)
        g = groups.setdefault(key, [0, 0])
        g[0] += a["invalid"]
        g[1] += a["decisions"]
    bad, n = sum(g[0] for g in groups.values()), sum(g[1] for g in groups.values())
    return {"share": round(bad / n, 6) if n else 0.0, "limit": FALLBACK_LIMIT,
            "not_interpretable": {k: round(b / d, 6) for k, (b, d) in sorted(groups.items())
                                  if d and b / d > FALLBACK_LIMIT}}


def run_experiment(config: ExperimentConfig, *, out: str | Path | None = None, progress: bool = True,
                   on_seats: SeatAnnouncer = print_seats) -> tuple[RunDirectory, dict[str, Any]]:
    """Create a run directory for `config` and play it to the end; human seats' links go to `on_seats`."""
    society = make_society(config)
    models = _models(config, society)

    async def start() -> tuple[RunDirectory, dict[str, Any]]:
        try:
            await probe_models(models)  # a dead endpoint stops here, before a run directory exists
            if config.runner.kind == "ray":  # and so does an unreachable cluster
                from societas.runners.ray_runner import check_address

                check_address(config.runner.address)
            rd = RunDirectory.create(config, out)
        except BaseException:
            for m in models.values():
                await m.aclose()
            raise
        holder.append(rd)
        return rd, await _execute(config, rd, progress, society, models, on_seats=on_seats)

    holder: list[RunDirectory] = []
    try:
        return asyncio.run(start())
    except KeyboardInterrupt:
        if holder:
            raise RunInterrupted(holder[0].path) from None
        raise


async def run_experiment_async(config: ExperimentConfig, rd: RunDirectory, *, progress: bool = False,
                               models: Mapping[str, ChatModel] | None = None) -> dict[str, Any]:
    """Play (or finish) the run in `rd` inside a running event loop, so a sweep can await several at once.

    `models` (spec -> ChatModel) belong to the caller, who may share them between
    runs and closes them; without them the run builds its own and closes them.
    """
    society = make_society(config)
    if models is None:
        return await _execute(config, rd, progress, society, _models(config, society))
    return await _execute(config, rd, progress, society, {s: models[s] for s in society.models()},
                          close_models=False)


def stored_config(rd: RunDirectory, runner: Mapping[str, Any] | None = None) -> ExperimentConfig:
    """A run directory's config, with its runner settings replaced where `runner` says (for a resume)."""
    config = rd.config()
    if not runner:
        return config
    return parse_config(config.model_dump(mode="json"), source=str(rd.path / "config.yaml"),
                        overrides={"runner": dict(runner)})


def resume_run(path: str | Path, *, progress: bool = True, runner: Mapping[str, Any] | None = None,
               on_seats: SeatAnnouncer = print_seats) -> tuple[RunDirectory, dict[str, Any]]:
    """Finish a run that stopped early: episodes already on disk are kept, the rest replayed.

    `runner` overrides the run's runner settings (e.g. `{"kind": "ray", "shards": 4}`);
    they change where episodes run, never what they give.
    """
    rd = RunDirectory(Path(path))
    if not rd.exists():
        raise BadInput(f"{path}: not a run directory (no config.yaml)")
    config = stored_config(rd, runner)
    summary = rd.read_json("summary.json")
    if summary is not None:  # nothing to do, and nothing rewritten
        return rd, {**summary, "already_complete": True}
    society = make_society(config)
    try:
        return rd, asyncio.run(_execute(config, rd, progress, society, _models(config, society),
                                        on_seats=on_seats))
    except KeyboardInterrupt:
        raise RunInterrupted(rd.path) from None
