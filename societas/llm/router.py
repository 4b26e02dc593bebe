"""One ChatModel over the replicas of a model's servers: least outstanding requests, with agent affinity.

Each request goes to a replica chosen among those that are running and
answering. Requests with the same affinity key (by default a hash of the
conversation's leading system messages: the game's rules and the agent's
persona) prefer the same replica, picked by rendezvous hashing so that a
replica going away moves only its own keys; that replica's prefix cache then
already holds the prompt's start. The preference yields when the preferred
replica has more than `slack` requests outstanding beyond the least-loaded one.

Each replica is reached through its own OpenAIChatModel (the same HTTP client,
error mapping and in-flight limit as `openai:` specs). A request that cannot
reach its replica makes the router probe that replica and, when it does not
answer, skip it until the supervisor sees it healthy again; the error itself is
transient, so the retry wrapper sends the request again, elsewhere.
"""

from __future__ import annotations

import asyncio
import dataclasses
import hashlib
import time
from collections import Counter
from collections.abc import Callable

from societas.llm.base import ChatModel, ChatRequest, ChatResult, ModelError, TransientModelError
from societas.llm.openai_backend import OpenAIChatModel
from societas.llm.server_process import healthy
from societas.llm.servers import Replica, ServerManager, ServerOptions
from societas.llm.specs import ModelOptions, ModelSpec

AffinityKey = Callable[[ChatRequest], "str | None"]
_PROBE_TIMEOUT_S = 2.0
_WAIT_POLL_S = 0.05


def prefix_affinity(request: ChatRequest) -> str | None:
    """The leading system messages (rules and persona), the part of a prompt every turn shares."""
    parts = []
    for m in request.messages:
        if m.get("role") != "system":
            break
        parts.append(m.get("content") or "")
    if not parts:
        if not request.messages:
            return None
        parts.append(request.messages[0].get("content") or "")
    return "\x00".join(parts)


def _rank(key: bytes, replica: int) -> int:
    """Rendezvous-hash score of a replica for a key; the highest-scoring live replica is preferred."""
    return int.from_bytes(hashlib.blake2b(key + replica.to_bytes(4, "big"), digest_size=8).digest(), "big")


async def probe(host: str, port: int, timeout_s: float = _PROBE_TIMEOUT_S) -> bool:
    """Whether `GET /health` answers 200: the supervisor's check, off the event loop."""
    return await asyncio.to_thread(healthy, host, port, timeout_s)


class ReplicaRouter:
    """A ChatModel spreading requests over a ServerManager's replicas (see the module docstring).

    `name` is the model spec (e.g. "vllm:ORG/NAME"), independent of ports, so
    response-cache keys survive restarts and reruns. `aclose()` stops the servers
    unless `owns_manager` is False (several routers over one set of servers).
    """

    def __init__(self, manager: ServerManager, options: ModelOptions, *, name: str | None = None,
                 slack: int | None = None, affinity: AffinityKey | None = prefix_affinity,
                 wait_s: float | None = None, owns_manager: bool = True) -> None:
        self.manager = manager
        self.owns_manager = owns_manager
        self.name = name or manager.name
        servers = manager.options
        self.slack = servers.affinity_slack if slack is None else slack
        self.affinity = affinity
        # How long a request waits for some replica to come back before it fails (transiently).
        self.wait_s = wait_s if wait_s is not None else servers.startup_timeout_s + servers.restart_backoff_s
        if options.structured_outputs == "auto":
            options = dataclasses.replace(options, structured_outputs="vllm")  # the servers are vLLM
        self.options = options
        self.outstanding: Counter[int] = Counter()
        self.served: Counter[int] = Counter()
        self._clients: dict[str, OpenAIChatModel] = {}

    def __repr__(self) -> str:
        return f"ReplicaRouter({self.name!r}, replicas={len(self.manager.replicas)})"

    def pick(self, request: ChatRequest, ready: list[Replica]) -> Replica:
        """The replica for `request` among `ready` (non-empty): affinity unless it is `slack` busier."""
        load = self.outstanding
        least = min(ready, key=lambda r: (load[r.index], r.index))
        key = self.affinity(request) if self.affinity is not None else None
        if key is None:
            return least
        k = key.encode()
        preferred = max(ready, key=lambda r: _rank(k, r.index))
        return preferred if load[preferred.index] <= load[least.index] + self.slack else least

    async def _ready(self) -> list[Replica]:
        ready = self.manager.ready_replicas()
        if ready:
            return ready
        deadline = time.monotonic() + self.wait_s
        while True:
            failure = self.manager.failure()
            if failure is not None:
                raise ModelError(failure)
            await asyncio.sleep(_WAIT_POLL_S)
            ready = self.manager.ready_replicas()
            if ready:
                return ready
            if time.monotonic() >= deadline:
                raise TransientModelError(f"{self.name}: no replica ready after {self.wait_s:g} s "
                                          f"({self._states()})")

    def _states(self) -> str:
        return ", ".join(f"replica {r.index} {r.state}" for r in self.manager.replicas)

    def _client(self, replica: Replica) -> OpenAIChatModel:
        url = replica.url + "/v1"
        client = self._clients.get(url)
        if client is None:
            # Errors and logs name the replica by its engine: the manager's spec says which (vllm: or llamacpp:).
            provider = "llamacpp" if self.name.startswith("llamacpp:") else "vllm"
            spec = ModelSpec(provider=provider, name=self.manager.model, base_url=url)
            client = self._clients[url] = OpenAIChatModel(spec, self.options)
        return client

    async def complete(self, request: ChatRequest) -> ChatResult:
        ready = self.manager.ready_replicas() or await self._ready()
        replica = self.pick(request, ready)
        i = replica.index
        self.outstanding[i] += 1
        try:
            result = await self._client(replica).complete(request)
        except TransientModelError:
            # A dead server refuses connections; a live one answering 429 or 500 still passes its probe.
            if replica.state == "ready" and not await probe(replica.host, replica.port):
                self.manager.report_unreachable(replica)
            raise
        finally:
            self.outstanding[i] -= 1
        self.served[i] += 1
        result.model = self.name
        return result

    async def aclose(self) -> None:
        clients, self._clients = list(self._clients.values()), {}
        try:
            for client in clients:
                await client.aclose()
        finally:
            if self.owns_manager:
                await asyncio.to_thread(self.manager.stop)


def attach_options(model: ChatModel, options: ModelOptions) -> ModelOptions:
    """Options under which `make_model` in another process (a Ray shard) reaches the servers `model` runs.

    For a router over managed servers, the options name its replicas' URLs as
    `servers.endpoints`, so the other process routes to them instead of starting
    servers of its own; any other model's options come back unchanged.
    """
    inner: object = model
    while not isinstance(inner, ReplicaRouter):
        inner = getattr(inner, "inner", None)
        if inner is None:
            return options
    servers = options.servers or ServerOptions()
    urls = tuple(r.url for r in inner.manager.replicas)
    return dataclasses.replace(options, servers=dataclasses.replace(servers, endpoints=urls))
