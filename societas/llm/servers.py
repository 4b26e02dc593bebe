"""Model servers societas starts itself (`vllm:` specs): replicas, health, restarts, shutdown.

A `ServerManager` starts one server per replica (`vllm serve` on one GPU, or
on `tensor_parallel_size` GPUs), waits until each answers `GET /health`, and
from a supervisor thread restarts one that dies or stops answering, with
exponential backoff and a bound on restarts. A server that fails because its
port was taken meanwhile is moved to another port. Servers stop on `stop()`,
at interpreter exit, and (on Linux) when this process dies.

Where servers run is a launcher's business: subprocesses of this process by
default, or Ray actors holding a GPU placement (`societas.llm.ray_servers`)
when Ray is initialised or `placement: ray` asks for it. Every launch happens
on the supervisor thread, which lives as long as the servers do.
"""

from __future__ import annotations

import atexit
import itertools
import logging
import os
import re
import shutil
import subprocess
import sys
import threading
import time
import weakref
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal, Protocol, TypeVar
from urllib.parse import urlparse

from societas.cache_dir import cache_dir
from societas.llm.base import ModelError
from societas.llm.server_process import (
    LaunchSpec,
    ServerProcess,
    command_tokens,
    free_port,
    healthy,
    redact_argv,
)

log = logging.getLogger(__name__)

DEFAULT_COMMAND = "vllm serve {model} --host {host} --port {port} {args}"
Placement = Literal["auto", "local", "ray"]
ReplicaState = Literal["pending", "starting", "ready", "restarting", "failed", "stopped"]

_MAX_BACKOFF_S = 60.0
_PORT_RETRIES = 5
_UNHEALTHY_AFTER_S = 30.0  # a live server that fails /health this long is restarted
_TAIL_LINES = 20
_counter = itertools.count()
T = TypeVar("T")


class ServerStartError(ModelError):
    """The model servers could not be started (the message names the replica, command and log)."""


@dataclass(frozen=True, kw_only=True, slots=True)
class ServerOptions:
    """How `vllm:` servers are started and supervised; the `llm.servers` section of a config.

    `replicas` defaults to the visible GPUs (or the Ray cluster's) divided by
    `tensor_parallel_size`, at least one. `command` is a template: `{model}`,
    `{host}`, `{port}`, `{python}` and `{replica}` are substituted, and a
    `{args}` token expands to the vLLM options below plus `extra_args`.
    `endpoints` (base URLs such as http://10.0.0.5:8000) attach to servers that
    another process supervises, such as a Ray runner's driver, instead of
    starting any: they are health-checked and routed to, never started or stopped.
    `ray_address` is the cluster that `placement: ray` joins when this process
    has not joined one yet (a Ray runner's `address`).
    """

    replicas: int | None = None
    tensor_parallel_size: int = 1
    max_model_len: int | None = None
    dtype: str | None = None
    gpu_memory_utilization: float | None = None
    extra_args: tuple[str, ...] = ()
    command: str | tuple[str, ...] | None = None
    placement: Placement = "auto"
    port: int | None = None
    startup_timeout_s: float = 600.0
    max_restarts: int = 5
    restart_backoff_s: float = 1.0
    shutdown_grace_s: float = 10.0
    affinity_slack: int = 8
    log_dir: str | None = None
    endpoints: tuple[str, ...] = ()
    ray_address: str | None = None

    def template(self) -> list[str]:
        return command_tokens(self.command if self.command is not None else DEFAULT_COMMAND)

    def server_args(self) -> list[str]:
        """The vLLM options that `{args}` expands to."""
        args: list[str] = []
        if self.tensor_parallel_size != 1:
            args += ["--tensor-parallel-size", str(self.tensor_parallel_size)]
        if self.max_model_len is not None:
            args += ["--max-model-len", str(self.max_model_len)]
        if self.dtype is not None:
            args += ["--dtype", self.dtype]
        if self.gpu_memory_utilization is not None:
            args += ["--gpu-memory-utilization", f"{self.gpu_memory_utilization:g}"]
        return [*args, *self.extra_args]


@dataclass(eq=False)
class Replica:
    """One server's state, written by the supervisor thread and read by the router."""

    index: int
    devices: str | None = None
    log_path: str = ""
    state: ReplicaState = "pending"
    host: str = "127.0.0.1"
    port: int = 0
    pid: int | None = None
    restarts: int = 0
    error: str | None = None
    suspect: bool = False
    handle: ServerHandle | None = field(default=None, repr=False)
    launched_at: float = 0.0
    next_at: float = 0.0
    port_retries: int = 0
    unhealthy_since: float | None = None

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}"

    @property
    def ready(self) -> bool:
        """Whether requests may go here: running, answering, and not under suspicion."""
        return self.state == "ready" and not self.suspect


class ServerHandle(Protocol):
    """A launched server, wherever it runs (see ServerProcess)."""

    host: str
    port: int
    devices: str | None
    argv: list[str]

    @property
    def pid(self) -> int: ...
    def poll(self) -> int | None: ...
    def port_clash(self) -> bool: ...
    def log_tail(self, lines: int = 20) -> str: ...
    def terminate(self) -> None: ...
    def wait(self, timeout_s: float) -> bool: ...
    def kill(self) -> None: ...


class Launcher(Protocol):
    """Places replicas and launches their servers."""

    def plan(self) -> list[str | None]:
        """The devices of each replica (None: leave CUDA_VISIBLE_DEVICES alone); its length is the count."""
        ...

    def launch(self, replica: Replica, port: int | None) -> ServerHandle:
        """Start replica's server on `port` (None: a free one)."""
        ...

    def close(self) -> None: ...


def visible_gpus() -> list[str]:
    """GPU ids this process may use: CUDA_VISIBLE_DEVICES when set, else what nvidia-smi lists."""
    env = os.environ.get("CUDA_VISIBLE_DEVICES")
    if env is not None:
        ids = [d.strip() for d in env.split(",") if d.strip()]
        # CUDA stops at the first invalid id ("-1" hides every GPU).
        return list(itertools.takewhile(lambda d: not d.startswith("-"), ids))
    smi = shutil.which("nvidia-smi")
    if smi is None:
        return []
    try:
        out = subprocess.run([smi, "--query-gpu=index", "--format=csv,noheader"], capture_output=True,
                             text=True, timeout=30)
    except (OSError, subprocess.TimeoutExpired):
        return []
    return [line.strip() for line in out.stdout.splitlines() if line.strip()] if out.returncode == 0 else []


def plan_devices(gpus: Sequence[str], replicas: int | None, tensor_parallel_size: int) -> list[str | None]:
    """Split GPUs into replicas of `tensor_parallel_size` each; no GPUs means CPU replicas."""
    tp = tensor_parallel_size
    if not gpus:
        return [None] * (replicas or 1)
    n = replicas or max(1, len(gpus) // tp)
    if n * tp > len(gpus):
        raise ServerStartError(
            f"{n} replica(s) x tensor_parallel_size {tp} need {n * tp} GPUs, but {len(gpus)} are visible "
            f"({','.join(gpus)}); lower llm.servers.replicas or tensor_parallel_size")
    return [",".join(gpus[i * tp:(i + 1) * tp]) for i in range(n)]


class LocalLauncher:
    """Servers as subprocesses of this process on 127.0.0.1, one group of GPUs each."""

    host = "127.0.0.1"

    def __init__(self, model: str, options: ServerOptions) -> None:
        self.model = model
        self.options = options
        self._template = tuple(options.template())
        self._args = tuple(options.server_args())

    def plan(self) -> list[str | None]:
        return plan_devices(visible_gpus(), self.options.replicas, self.options.tensor_parallel_size)

    def launch(self, replica: Replica, port: int | None) -> ServerHandle:
        env = {"CUDA_VISIBLE_DEVICES": replica.devices} if replica.devices is not None else {}
        spec = LaunchSpec(model=self.model, template=self._template, args=self._args, env=env,
                          log_path=replica.log_path)
        proc = ServerProcess(spec, replica=replica.index, host=self.host, port=port or free_port(self.host))
        proc.start()
        return proc

    def close(self) -> None:
        pass


class AttachedServer:
    """A server someone else runs: health-checked and routed to, never signalled (the ServerHandle protocol)."""

    devices: str | None = None

    def __init__(self, url: str) -> None:
        parsed = urlparse(url)
        if parsed.scheme != "http" or not parsed.hostname or not parsed.port:
            raise ValueError(f"server endpoint must be http://HOST:PORT, got {url!r}")
        self.host, self.port = parsed.hostname, parsed.port
        self.argv = [f"(attached to {url})"]

    @property
    def pid(self) -> int:
        return 0

    def poll(self) -> int | None:
        return None  # its own supervisor restarts it; health checks tell when it is back

    def port_clash(self) -> bool:
        return False

    def log_tail(self, lines: int = 20) -> str:
        return ""

    def terminate(self) -> None:
        pass

    def wait(self, timeout_s: float) -> bool:
        return True

    def kill(self) -> None:
        pass


class AttachLauncher:
    """Replicas that are servers already running elsewhere, one per endpoint URL."""

    def __init__(self, endpoints: Sequence[str]) -> None:
        self.endpoints = list(endpoints)

    def plan(self) -> list[str | None]:
        return [None] * len(self.endpoints)

    def launch(self, replica: Replica, port: int | None) -> ServerHandle:
        return AttachedServer(self.endpoints[replica.index])

    def close(self) -> None:
        pass


def default_log_root() -> Path:
    """Where server logs go unless `log_dir` is set: beside the response cache."""
    return cache_dir() / "servers"


def use_ray(placement: Placement) -> bool:
    """Ray hosts the servers when asked to, or under `auto` when this process has initialised Ray."""
    if placement != "auto":
        return placement == "ray"
    ray = sys.modules.get("ray")
    return ray is not None and bool(ray.is_initialized())


def make_launcher(model: str, options: ServerOptions) -> Launcher:
    if options.endpoints:
        return AttachLauncher(options.endpoints)
    if use_ray(options.placement):
        from societas.llm.ray_servers import RayLauncher

        return RayLauncher(model, options)
    return LocalLauncher(model, options)


class ServerManager:
    """Starts, watches, restarts and stops the replicas of one model's servers.

    `start()` blocks until every replica answers `GET /health` and raises
    ServerStartError (with the server's last log lines) when one cannot start.
    Afterwards a replica that exits or stops answering is restarted after
    `restart_backoff_s * 2**k` seconds, at most `max_restarts` times; the
    router skips it meanwhile.
    """

    def __init__(self, model: str, options: ServerOptions | None = None, *, launcher: Launcher | None = None,
                 check_interval_s: float = 0.2, health_interval_s: float = 5.0) -> None:
        self.model = model
        self.options = options or ServerOptions()
        self.name = f"vllm:{model}"
        self.replicas: list[Replica] = []
        self.log_dir: Path | None = None
        self.check_interval_s = check_interval_s
        self.health_interval_s = health_interval_s
        self._launcher = launcher
        self._phase: Literal["new", "starting", "running", "stopped"] = "new"
        self._phase_lock = threading.Lock()
        self._wake = threading.Event()
        self._changed = threading.Event()
        self._stopping = threading.Event()
        self._thread: threading.Thread | None = None

    def __repr__(self) -> str:
        return f"ServerManager({self.name!r}, replicas={len(self.replicas)}, {self._phase})"

    @property
    def running(self) -> bool:
        return self._phase == "running"

    # -- lifecycle ---------------------------------------------------------------

    def start(self) -> None:
        """Launch every replica and wait until all answer /health (ServerStartError otherwise)."""
        with self._phase_lock:
            if self._phase != "new":
                raise RuntimeError(f"{self!r} was already started")
            self._phase = "starting"
        try:
            self.options.template()  # a malformed command fails before anything starts
            if self._launcher is None:
                self._launcher = make_launcher(self.model, self.options)
            devices = self._launcher.plan()
            slug = re.sub(r"[^A-Za-z0-9_.-]+", "_", self.model).strip("_")[-60:] or "model"
            root = Path(self.options.log_dir) if self.options.log_dir else default_log_root()
            self.log_dir = root / f"{slug}-{time.strftime('%Y%m%d-%H%M%S')}-{os.getpid()}-{next(_counter)}"
            base = self.options.port
            self.replicas = [
                Replica(index=i, devices=d, log_path=str(self.log_dir / f"replica-{i}.log"),
                        port=(base + i) if base else 0)
                for i, d in enumerate(devices)
            ]
            _LIVE.add(self)
            self._thread = threading.Thread(target=self._supervise, name=f"servers-{slug}", daemon=True)
            self._thread.start()
            while True:
                if all(r.state == "ready" for r in self.replicas):
                    break
                failed = [r for r in self.replicas if r.state == "failed"]
                if failed:
                    raise ServerStartError(f"{self.name}: " + "; ".join(str(r.error) for r in failed))
                if self._phase == "stopped" or not self._thread.is_alive():
                    raise ServerStartError(f"{self.name}: the servers were stopped while starting")
                self._changed.wait(0.1)
                self._changed.clear()
        except BaseException:
            self.stop()
            raise
        with self._phase_lock:
            if self._phase == "starting":
                self._phase = "running"
        log.info("%s: %d replica(s) ready: %s", self.name, len(self.replicas),
                 ", ".join(r.url for r in self.replicas))

    def stop(self) -> None:
        """Stop every server: SIGTERM to its process group, SIGKILL after `shutdown_grace_s`."""
        with self._phase_lock:
            if self._phase == "stopped":
                return
            self._phase = "stopped"
        self._stopping.set()
        self._wake.set()
        thread = self._thread
        if thread is not None and thread is not threading.current_thread():
            thread.join(timeout=120)
        handles = [r.handle for r in self.replicas if r.handle is not None]
        for h in handles:
            _quietly(h.terminate)
        deadline = time.monotonic() + self.options.shutdown_grace_s
        for h in handles:
            if not _quietly(h.wait, max(0.0, deadline - time.monotonic()), default=False):
                _quietly(h.kill)
        for r in self.replicas:
            r.state = "stopped"
        if self._launcher is not None:
            _quietly(self._launcher.close)
        _LIVE.discard(self)
        self._changed.set()

    def __enter__(self) -> ServerManager:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # -- what the router asks ----------------------------------------------------------

    def ready_replicas(self) -> list[Replica]:
        return [r for r in self.replicas if r.ready]

    def failure(self) -> str | None:
        """Why no replica can serve any more (all failed or stopped), or None while one may."""
        if self._phase == "stopped":
            return f"{self.name}: the servers were stopped"
        if self.replicas and all(r.state == "failed" for r in self.replicas):
            return f"{self.name}: every replica failed: " + "; ".join(str(r.error) for r in self.replicas)
        return None

    def report_unreachable(self, replica: Replica) -> None:
        """A request could not reach `replica`: skip it until its health check passes again."""
        if replica.state == "ready":
            replica.suspect = True
            self._wake.set()

    # -- the supervisor thread ----------------------------------------------------------

    def _supervise(self) -> None:
        while not self._stopping.is_set():
            for r in self.replicas:
                if self._stopping.is_set():
                    return
                try:
                    self._step(r, time.monotonic())
                except Exception as exc:  # one replica's trouble must not end the watch over the others
                    log.exception("%s: replica %d: supervisor error", self.name, r.index)
                    r.error = f"replica {r.index}: supervisor error: {exc}"
            self._wake.wait(self.check_interval_s)
            self._wake.clear()

    def _step(self, r: Replica, now: float) -> None:
        if r.state == "pending":
            self._launch(r, r.port or None)
        elif r.state == "restarting":
            if now >= r.next_at:
                self._launch(r, r.port or None)
        elif r.state == "starting":
            self._step_starting(r, now)
        elif r.state == "ready":
            self._step_ready(r, now)

    def _step_starting(self, r: Replica, now: float) -> None:
        h = r.handle
        assert h is not None
        code = h.poll()
        if code is not None:
            if r.port_retries < _PORT_RETRIES and h.port_clash():
                _quietly(h.kill)  # whatever it left in its process group
                r.port_retries += 1
                log.warning("%s: replica %d: port %d was taken; retrying on another port",
                            self.name, r.index, r.port)
                self._launch(r, None)
                return
            self._attempt_failed(r, f"exited with code {code} while starting")
        elif healthy(h.host, h.port, timeout_s=2.0):
            if h.poll() is None:  # the answer came from our server, not from one that took the port
                r.state, r.error, r.port_retries, r.unhealthy_since = "ready", None, 0, None
                r.suspect = False
                r.next_at = now + self.health_interval_s
                log.info("%s: replica %d ready at %s (pid %d)", self.name, r.index, r.url, h.pid)
                self._changed.set()
        elif now - r.launched_at > self.options.startup_timeout_s:
            self._attempt_failed(r, f"did not answer GET /health within {self.options.startup_timeout_s:g} s")

    def _step_ready(self, r: Replica, now: float) -> None:
        h = r.handle
        assert h is not None
        code = h.poll()
        if code is not None:
            self._schedule_restart(r, f"exited with code {code}")
            return
        if not (r.suspect or now >= r.next_at):
            return
        if healthy(h.host, h.port, timeout_s=5.0):
            r.suspect, r.unhealthy_since = False, None
            r.next_at = now + self.health_interval_s
            return
        if r.unhealthy_since is None:
            r.unhealthy_since = now
        if now - r.unhealthy_since >= _UNHEALTHY_AFTER_S:
            self._schedule_restart(r, f"stopped answering GET /health for {_UNHEALTHY_AFTER_S:g} s")
        else:
            r.suspect = True  # skipped by the router until it answers again
            r.next_at = now + min(1.0, self.health_interval_s)

    def _launch(self, r: Replica, port: int | None) -> None:
        assert self._launcher is not None
        try:
            h = self._launcher.launch(r, port)
        except FileNotFoundError as exc:
            self._attempt_failed(r, f"could not be launched: {exc.filename or exc} not found (install vLLM, "
                                    "`pip install vllm`, or set llm.servers.command)", tail=False)
            return
        except Exception as exc:
            self._attempt_failed(r, f"could not be launched: {type(exc).__name__}: {exc}", tail=False)
            return
        r.handle, r.host, r.port, r.pid, r.devices = h, h.host, h.port, h.pid, h.devices
        r.state, r.launched_at, r.suspect, r.unhealthy_since = "starting", time.monotonic(), False, None
        log.info("%s: replica %d starting on %s (pid %d): %s", self.name, r.index, r.url, h.pid,
                 redact_argv(h.argv))
        self._changed.set()

    def _describe(self, r: Replica, why: str, tail: bool = True) -> str:
        text = f"replica {r.index} {why}"
        if r.handle is not None:
            text += f"; command: {redact_argv(r.handle.argv)}"
        text += f"; log: {r.log_path}"
        lines = _quietly(r.handle.log_tail, _TAIL_LINES, default="") if (tail and r.handle) else ""
        if lines:
            text += "; last lines:\n" + "\n".join(f"    {line}" for line in lines.splitlines())
        return text

    def _attempt_failed(self, r: Replica, why: str, tail: bool = True) -> None:
        """A launch that did not come up: fatal while starting, a failed restart afterwards."""
        if r.handle is not None:
            _quietly(r.handle.kill)
        if self._phase == "starting":
            r.state, r.error = "failed", self._describe(r, why, tail)
            self._changed.set()
        else:
            self._schedule_restart(r, why, tail)

    def _schedule_restart(self, r: Replica, why: str, tail: bool = True) -> None:
        if r.handle is not None:
            _quietly(r.handle.kill)  # what is left of its process group
        if r.restarts >= self.options.max_restarts:
            r.state = "failed"
            r.error = self._describe(r, f"{why}; gave up after {r.restarts} restart(s) "
                                        "(llm.servers.max_restarts)", tail)
            log.error("%s: %s", self.name, r.error)
        else:
            r.restarts += 1
            delay = min(_MAX_BACKOFF_S, self.options.restart_backoff_s * 2 ** (r.restarts - 1))
            r.state, r.next_at = "restarting", time.monotonic() + delay
            r.error = f"replica {r.index} {why}"
            log.warning("%s: replica %d %s; restart %d of %d in %.1f s (log: %s)", self.name, r.index, why,
                        r.restarts, self.options.max_restarts, delay, r.log_path)
        self._changed.set()


def _quietly(fn: Callable[..., T], *args: Any, default: T | None = None) -> T | None:
    """Call a shutdown step; log instead of raising, so one stuck server does not keep the others up."""
    try:
        return fn(*args)
    except Exception:
        log.warning("model server shutdown step %s failed", getattr(fn, "__name__", fn), exc_info=True)
        return default


_LIVE: weakref.WeakSet[ServerManager] = weakref.WeakSet()


@atexit.register
def _stop_all() -> None:
    """No server outlives the interpreter that started it."""
    for manager in list(_LIVE):
        manager.stop()
