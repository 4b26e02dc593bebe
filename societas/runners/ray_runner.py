"""The Ray runner: a phase's episodes in small batches across shard actors, on one machine or a cluster.

A shard is one async Ray actor hosting many episodes (never one agent). It
builds its own models from their specs (model clients do not pickle) and plays
each batch with the local runner's `run_episodes`, so an episode is the same
code and gives the same rows wherever it runs. The driver stays the only writer
of the run directory: it hands batches to shards as they have room, takes each
batch's outputs as it finishes, and accepts every episode key once.

A shard that dies (its process, or its node) takes its unfinished batches with
it. The driver puts them back at the head of the queue, starts a replacement
shard, and lets whichever shard is free play them again. Seeds come from (run
seed, phase, episode), so a replayed episode gives the same rows; a batch lost
too often, or a run with no shard left, stops with `ShardLostError`.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import math
import os
import threading
import time
from collections import deque
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from societas.config import LLMConfig, RunnerConfig
from societas.llm.specs import ModelOptions, make_model
from societas.runners.local import EPISODES_UNLIMITED, EpisodeOutput, RunContext, run_episodes
from societas.societies.society import EpisodeSpec

# Batches per shard a phase is cut into (at least), so a slow shard holds little of it.
BATCHES_PER_SHARD = 8


class RayRunnerError(RuntimeError):
    """The Ray runner cannot go on; the message is one line meant for the user."""


class ShardLostError(RayRunnerError):
    """Episodes could not be played: their shards kept dying, or no shard could be started."""


class _Shard:
    """One shard actor: a RunContext with models of its own; plays batches of episodes concurrently."""

    def __init__(self, run_id: str, seed: int, llm: LLMConfig, models: dict[str, ModelOptions]) -> None:
        self._run_id, self._seed, self._llm, self._models = run_id, seed, llm, models
        self._ctx: RunContext | None = None

    async def start(self) -> str:
        """Build the models inside the actor's event loop; return the id of the node the shard landed on."""
        import ray

        if self._ctx is None:
            self._ctx = RunContext(run_id=self._run_id, seed=self._seed, llm=self._llm,
                                   models={s: make_model(s, o) for s, o in self._models.items()})
        return ray.get_runtime_context().get_node_id()

    async def play(self, batch: list[EpisodeSpec]) -> list[EpisodeOutput]:
        assert self._ctx is not None, "start() first"
        outputs: list[EpisodeOutput] = []
        await run_episodes(batch, self._ctx, max_concurrent=len(batch), on_done=outputs.append)
        return outputs

    async def close(self) -> None:
        if self._ctx is not None:
            for model in self._ctx.models.values():
                await model.aclose()


@dataclass(eq=False, slots=True)
class _Batch:
    specs: list[EpisodeSpec]
    losses: int = 0

    def describe(self) -> str:
        keys = [s.key for s in self.specs]
        shown = ", ".join(f"({p}, {e})" for p, e in keys[:4])
        return f"episodes {shown}{', ...' if len(keys) > 4 else ''}"


@dataclass(eq=False, slots=True)
class _Slot:
    """One place for a shard: its current actor, and whether that actor is up."""

    index: int
    actor: Any = None
    starting: asyncio.Future[str] | None = None
    ready: bool = False
    load: int = 0  # episodes handed to the actor and not yet returned


@dataclass(slots=True)
class RayStats:
    """What the Ray runner did, for summary.json."""

    shards: int
    nodes: set[str] = field(default_factory=set)
    lost_batches: int = 0
    restarts: int = 0
    start_s: float = 0.0
    """Seconds spent joining or starting Ray and bringing the shards up: the fixed cost of a Ray run."""

    def as_dict(self) -> dict[str, Any]:
        return {"kind": "ray", "shards": self.shards, "nodes": len(self.nodes),
                "lost_batches": self.lost_batches, "restarted_shards": self.restarts,
                "start_s": round(self.start_s, 3)}


_connection_lock = threading.Lock()
_connection_users = 0
_connection_ours = False


def check_address(address: str | None, timeout_s: float = 5.0) -> None:
    """Fail in seconds, with one line, when a HOST:PORT cluster address does not answer at all.

    ray.init waits a long time on an address where nothing listens; a plain TCP
    connect tells first. `auto` and `ray://` addresses are left to Ray.
    """
    import socket

    if address is None or address == "auto" or "://" in address or ":" not in address:
        return
    host, _, port = address.rpartition(":")
    try:
        with socket.create_connection((host or "127.0.0.1", int(port)), timeout=timeout_s):
            pass
    except ValueError:
        raise RayRunnerError(f"runner.address {address}: expected HOST:PORT") from None
    except OSError as exc:
        raise RayRunnerError(f"runner.address {address}: cannot reach Ray: {exc.strerror or exc}") from None


def _connect(runner: RunnerConfig) -> None:
    """Join the Ray this process already uses, or connect to `address`, or start Ray here.

    Runs of one process (a sweep) share one connection; it is closed by the last
    of them, and only if a run opened it.
    """
    global _connection_users, _connection_ours
    import ray

    with _connection_lock:
        if _connection_users == 0 and not ray.is_initialized():
            quiet: dict[str, Any] = {"include_dashboard": False, "logging_level": logging.ERROR,
                                     "log_to_driver": False}
            if runner.address is None:
                # A Ray of our own, even if `ray start` left one running here. Shards need one
                # CPU each; a machine with fewer cores runs them side by side anyway.
                ray.init(address="local", num_cpus=max(os.cpu_count() or 1, runner.shards), **quiet)
            else:
                check_address(runner.address)
                try:
                    ray.init(address=runner.address, **quiet)
                except ConnectionError as exc:
                    raise RayRunnerError(f"runner.address {runner.address}: cannot reach Ray: "
                                         f"{_first_line(exc)}") from exc
            _connection_ours = True
        _connection_users += 1


def _disconnect() -> None:
    global _connection_users, _connection_ours
    import ray

    with _connection_lock:
        _connection_users -= 1
        if _connection_users == 0 and _connection_ours:
            _connection_ours = False
            ray.shutdown()


def _lost_errors() -> tuple[type[BaseException], ...]:
    """Errors that mean a shard (process or node) is gone, not that an episode failed."""
    from ray import exceptions as rx

    names = ("RayActorError", "ObjectLostError", "NodeDiedError", "WorkerCrashedError", "ActorUnschedulableError")
    return tuple(getattr(rx, n) for n in names if hasattr(rx, n))


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip()
    return f"{type(exc).__name__}: {text.splitlines()[0] if text else ''}"


class RayShards:
    """The driver's side of the Ray runner: shard actors, the batch queue, and recovery from lost shards.

    One instance serves a whole run (its shards live across phases); `run` plays
    one phase and returns when every episode of it has been reported to
    `on_done` exactly once. Ray is started (or joined) on the first `run`.
    """

    def __init__(self, runner: RunnerConfig, *, run_id: str, seed: int, llm: LLMConfig,
                 models: Mapping[str, ModelOptions], max_batch_losses: int = 3,
                 max_restarts: int | None = None, start_timeout_s: float = 300.0,
                 start_grace_s: float = 30.0) -> None:
        self.runner = runner
        self._actor_args = (run_id, seed, llm, dict(models))
        self.max_batch_losses = max_batch_losses
        self.max_restarts = 2 * runner.shards + 2 if max_restarts is None else max_restarts
        self.start_timeout_s = start_timeout_s
        self.start_grace_s = start_grace_s
        self.stats = RayStats(shards=runner.shards)
        self._slots: list[_Slot] = []
        self._connected = False
        self._last_loss = ""

    @property
    def actors(self) -> list[Any]:
        """Handles of the current shard actors (up or starting)."""
        return [s.actor for s in self._slots if s.actor is not None]

    def _spawn(self, slot: _Slot) -> None:
        cls = _actor_class()
        env = {k: os.environ[k] for k in {o.api_key_env for o in self._actor_args[3].values()} if k in os.environ}
        options: dict[str, Any] = {"num_cpus": 1, "max_restarts": 0, "max_task_retries": 0,
                                   "scheduling_strategy": "SPREAD"}
        if env:  # a cluster's workers may not have the driver's API key
            options["runtime_env"] = {"env_vars": env}
        slot.actor = cls.options(**options).remote(*self._actor_args)
        slot.ready = False
        slot.load = 0
        slot.starting = asyncio.wrap_future(slot.actor.start.remote().future())

    async def _start(self) -> None:
        """Connect and start the shards; wait for all of them, or `start_grace_s` after the first is up.

        Waiting spreads the first phase over every shard (a shard that comes up
        late would find the queue empty); the grace period keeps a shard that
        cannot be placed from holding the run.
        """
        if self._slots:
            return
        began = time.perf_counter()
        try:
            await self._start_shards()
        finally:
            self.stats.start_s += time.perf_counter() - began

    async def _start_shards(self) -> None:
        if not self._connected:
            _connect(self.runner)
            self._connected = True
        self._slots = [_Slot(i) for i in range(self.runner.shards)]
        for slot in self._slots:
            self._spawn(slot)
        pending = {s.starting: s for s in self._slots if s.starting is not None}
        loop = asyncio.get_running_loop()
        deadline = loop.time() + self.start_timeout_s
        while pending:
            done, _ = await asyncio.wait(pending, timeout=max(0.0, deadline - loop.time()),
                                         return_when=asyncio.FIRST_COMPLETED)
            if not done:
                if not any(s.ready for s in self._slots):
                    raise self._none_started()
                return  # go on with the shards that are up; the others join when they are
            up_before = any(s.ready for s in self._slots)
            for fut in done:
                self._started(pending.pop(fut), fut)
            if not up_before and any(s.ready for s in self._slots):
                deadline = loop.time() + self.start_grace_s

    def _none_started(self) -> ShardLostError:
        import ray

        return ShardLostError(f"ray runner: no shard started within {self.start_timeout_s:.0f} s; each shard "
                              f"needs 1 CPU, the cluster has {ray.cluster_resources().get('CPU', 0):g}")

    def _started(self, slot: _Slot, fut: asyncio.Future[str]) -> None:
        """A shard's start() returned: it is up, or it died on the way (replace it), or start() failed."""
        from ray.exceptions import RayTaskError

        slot.starting = None
        try:
            node = fut.result()
        except _lost_errors() as exc:
            self._replace(slot, exc)
            return
        except RayTaskError as exc:  # building its models failed: the same error as in the driver
            raise _cause(exc) from exc
        slot.ready = True
        self.stats.nodes.add(node)

    def _replace(self, slot: _Slot, cause: BaseException) -> None:
        """The slot's actor is gone: kill what is left of it and start another, within the restart budget."""
        import ray

        self._last_loss = _first_line(cause)
        with contextlib.suppress(Exception):
            ray.kill(slot.actor, no_restart=True)
        slot.actor, slot.starting, slot.ready, slot.load = None, None, False, 0
        if self.stats.restarts < self.max_restarts:
            self.stats.restarts += 1
            self._spawn(slot)

    async def run(self, episodes: Sequence[EpisodeSpec], on_done: Callable[[EpisodeOutput], None]) -> None:
        """Play `episodes` (one phase) on the shards; report each finished episode once, as it arrives."""
        if not episodes:
            return
        await self._start()
        cap = self.runner.max_concurrent_episodes or EPISODES_UNLIMITED
        size = max(1, min(math.ceil(cap / 2), math.ceil(len(episodes) / (BATCHES_PER_SHARD * len(self._slots)))))
        queue = deque(_Batch(list(episodes[i:i + size])) for i in range(0, len(episodes), size))
        wanted = {e.key for e in episodes}
        accepted: set[tuple[int, int]] = set()
        inflight: dict[asyncio.Future[Any], tuple[_Slot, Any, _Batch]] = {}
        lost = _lost_errors()
        from ray.exceptions import RayTaskError

        try:
            while queue or inflight:
                self._hand_out(queue, inflight, cap)
                starting = {s.starting: s for s in self._slots if s.starting is not None}
                if not inflight and not starting:
                    raise ShardLostError(f"ray runner: no shard left to play {len(queue)} batch(es) "
                                         f"({self.stats.restarts} restarts used; last loss: {self._last_loss})")
                # With nothing in flight only starting shards can make progress: give them a deadline.
                done, _ = await asyncio.wait({*inflight, *starting}, return_when=asyncio.FIRST_COMPLETED,
                                             timeout=None if inflight else self.start_timeout_s)
                if not done:
                    raise self._none_started()
                for fut in done:
                    if fut in starting:
                        self._started(starting[fut], fut)
                        continue
                    slot, actor, batch = inflight.pop(fut)
                    if slot.actor is actor:
                        slot.load -= len(batch.specs)
                    try:
                        outputs = fut.result()
                    except lost as exc:
                        self._lose(batch, exc, queue)
                        if slot.actor is actor:  # the first of this actor's batches to report it gone
                            self._replace(slot, exc)
                        continue
                    except RayTaskError as exc:  # the episode itself failed: the same error as locally
                        raise _cause(exc) from exc
                    for out in outputs:
                        if out.key in wanted and out.key not in accepted:
                            accepted.add(out.key)
                            on_done(out)
        finally:
            for fut in inflight:
                fut.cancel()
        missing = wanted - accepted
        if missing:  # a shard returned fewer episodes than it was given
            raise ShardLostError(f"ray runner: {len(missing)} episode(s) never came back, e.g. {min(missing)}")

    def _hand_out(self, queue: deque[_Batch], inflight: dict[asyncio.Future[Any], tuple[_Slot, Any, _Batch]],
                  cap: int) -> None:
        """Give batches to the least-loaded shards that are up, while they have room under `cap` episodes."""
        ready = [s for s in self._slots if s.ready]
        while queue and ready:
            slot = min(ready, key=lambda s: s.load)
            batch = queue[0]
            if slot.load and slot.load + len(batch.specs) > cap:
                return
            queue.popleft()
            fut = asyncio.wrap_future(slot.actor.play.remote(batch.specs).future())
            inflight[fut] = (slot, slot.actor, batch)
            slot.load += len(batch.specs)

    def _lose(self, batch: _Batch, exc: BaseException, queue: deque[_Batch]) -> None:
        batch.losses += 1
        self.stats.lost_batches += 1
        if batch.losses >= self.max_batch_losses:
            raise ShardLostError(f"ray runner: {batch.describe()} were lost with their shard {batch.losses} "
                                 f"times; last: {_first_line(exc)}")
        queue.appendleft(batch)  # first in line for the next free shard

    async def aclose(self) -> None:
        """Close the shards' models, end the actors, and leave Ray (stopping it if this run started it)."""
        if not self._connected:
            return
        import ray

        up = [s.actor for s in self._slots if s.ready]
        if up:
            closing = [asyncio.wrap_future(a.close.remote().future()) for a in up]
            with contextlib.suppress(Exception):
                await asyncio.wait_for(asyncio.gather(*closing, return_exceptions=True), timeout=10)
        for slot in self._slots:
            if slot.starting is not None:
                slot.starting.cancel()
            if slot.actor is not None:
                with contextlib.suppress(Exception):
                    ray.kill(slot.actor, no_restart=True)
        self._slots = []
        self._connected = False
        _disconnect()


def _cause(exc: BaseException) -> BaseException:
    """The exception raised inside the shard, so a failed episode reads as it does on the local runner."""
    cause = getattr(exc, "cause", None)
    return cause if isinstance(cause, BaseException) else exc


_ACTOR: Any = None


def _actor_class() -> Any:
    """`_Shard` as a Ray actor class, made on first use so that importing this module does not import Ray."""
    global _ACTOR
    if _ACTOR is None:
        import ray

        _ACTOR = ray.remote(_Shard)
    return _ACTOR
