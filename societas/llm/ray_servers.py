"""Model servers hosted by Ray actors: one actor per replica, each in a bundle of a placement group.

The driver reserves `replicas` bundles of `tensor_parallel_size` GPUs (one CPU
each when the cluster has no GPU). Ray sets every actor's CUDA_VISIBLE_DEVICES
to the GPUs of its bundle, and the actor runs the server as a subprocess on its
node (a ServerProcess), listening on the node's address, which it reports with
the port. The driver's ServerManager supervises these handles like local ones:
an actor lost with its node reads as a dead server and is replaced by a new
actor in the same bundle, which Ray moves to a node that can hold it.
"""

from __future__ import annotations

import contextlib
from typing import Any

import ray
from ray.util.placement_group import PlacementGroup, placement_group, remove_placement_group
from ray.util.scheduling_strategies import PlacementGroupSchedulingStrategy

from societas.llm.server_process import LaunchSpec, ServerProcess, free_port
from societas.llm.servers import Replica, ServerHandle, ServerOptions, ServerStartError

_CALL_TIMEOUT_S = 30.0
_LAUNCH_TIMEOUT_S = 300.0  # a new actor needs a worker process first


class ServerActor:
    """Runs one server subprocess on the actor's node and answers for it."""

    def __init__(self) -> None:
        self._proc: ServerProcess | None = None

    def launch(self, spec: LaunchSpec, replica: int, port: int | None) -> dict[str, Any]:
        host = ray.util.get_node_ip_address()
        proc = ServerProcess(spec, replica=replica, host=host, port=port or free_port(host))
        proc.start()
        self._proc = proc
        return {"host": host, "port": proc.port, "pid": proc.pid, "devices": proc.devices, "argv": proc.argv}

    def poll(self) -> int | None:
        return None if self._proc is None else self._proc.poll()

    def port_clash(self) -> bool:
        return self._proc is not None and self._proc.port_clash()

    def log_tail(self, lines: int) -> str:
        return "" if self._proc is None else self._proc.log_tail(lines)

    def terminate(self) -> None:
        if self._proc is not None:
            self._proc.terminate()

    def wait(self, timeout_s: float) -> bool:
        return self._proc is None or self._proc.wait(timeout_s)

    def kill(self) -> None:
        if self._proc is not None:
            self._proc.kill()


class RayServerHandle:
    """The driver's view of a server inside a ServerActor (the ServerHandle protocol)."""

    def __init__(self, actor: Any, info: dict[str, Any]) -> None:
        self._actor = actor
        self.host: str = info["host"]
        self.port: int = int(info["port"])
        self.devices: str | None = info["devices"]
        self.argv: list[str] = list(info["argv"])
        self._pid = int(info["pid"])
        self._lost = False

    @property
    def pid(self) -> int:
        return self._pid

    def _call(self, method: str, *args: Any, timeout_s: float = _CALL_TIMEOUT_S) -> Any:
        return ray.get(getattr(self._actor, method).remote(*args), timeout=timeout_s)

    def poll(self) -> int | None:
        if self._lost:
            return -1
        try:
            return self._call("poll")
        except ray.exceptions.GetTimeoutError:
            return None  # a busy actor is not a dead server
        except ray.exceptions.RayError:
            self._lost = True  # the actor (or its node) is gone, and the server with it
            return -1

    def port_clash(self) -> bool:
        try:
            return bool(self._call("port_clash"))
        except ray.exceptions.RayError:
            return False

    def log_tail(self, lines: int = 20) -> str:
        try:
            return str(self._call("log_tail", lines))
        except ray.exceptions.RayError:
            return "" if not self._lost else "(the actor hosting this server is gone; its log stays on its node)"

    def terminate(self) -> None:
        with contextlib.suppress(ray.exceptions.RayError):
            self._actor.terminate.remote()

    def wait(self, timeout_s: float) -> bool:
        try:
            return bool(self._call("wait", timeout_s, timeout_s=timeout_s + _CALL_TIMEOUT_S))
        except ray.exceptions.RayError:
            return self._lost

    def kill(self) -> None:
        with contextlib.suppress(ray.exceptions.RayError):
            self._call("kill")
        ray.kill(self._actor, no_restart=True)
        self._lost = True


class RayLauncher:
    """Places replicas on a Ray cluster (started here when none is connected yet)."""

    def __init__(self, model: str, options: ServerOptions) -> None:
        if not ray.is_initialized():
            ray.init(address=options.ray_address, include_dashboard=False)
        self.model = model
        self.options = options
        self._template = tuple(options.template())
        self._args = tuple(options.server_args())
        self._actor_cls = ray.remote(ServerActor)
        self._pg: PlacementGroup | None = None
        self._gpus_per_replica = 0

    def plan(self) -> list[str | None]:
        opts = self.options
        tp = opts.tensor_parallel_size
        gpus = int(ray.cluster_resources().get("GPU", 0))
        n = opts.replicas or max(1, gpus // tp)
        if gpus:
            if n * tp > gpus:
                raise ServerStartError(
                    f"{n} replica(s) x tensor_parallel_size {tp} need {n * tp} GPUs, but the Ray cluster has "
                    f"{gpus}; lower llm.servers.replicas or tensor_parallel_size")
            bundle: dict[str, float] = {"GPU": float(tp)}
            self._gpus_per_replica = tp
        else:
            bundle = {"CPU": 1.0}
        pg = placement_group([dict(bundle) for _ in range(n)], strategy="PACK")
        try:
            ray.get(pg.ready(), timeout=opts.startup_timeout_s)
        except ray.exceptions.GetTimeoutError:
            remove_placement_group(pg)
            raise ServerStartError(
                f"the Ray cluster could not place {n} replica(s) of {bundle} within {opts.startup_timeout_s:g} s "
                f"(available: {ray.available_resources()})") from None
        self._pg = pg
        return [None] * n

    def launch(self, replica: Replica, port: int | None) -> ServerHandle:
        assert self._pg is not None, "plan() first"
        gpus = self._gpus_per_replica
        actor = self._actor_cls.options(
            num_cpus=0 if gpus else 1, num_gpus=gpus, max_restarts=0,
            scheduling_strategy=PlacementGroupSchedulingStrategy(
                placement_group=self._pg, placement_group_bundle_index=replica.index),
        ).remote()
        spec = LaunchSpec(model=self.model, template=self._template, args=self._args, log_path=replica.log_path)
        try:
            info = ray.get(actor.launch.remote(spec, replica.index, port), timeout=_LAUNCH_TIMEOUT_S)
        except BaseException:
            ray.kill(actor, no_restart=True)
            raise
        return RayServerHandle(actor, info)

    def close(self) -> None:
        if self._pg is not None:
            with contextlib.suppress(Exception):
                remove_placement_group(self._pg)
            self._pg = None
