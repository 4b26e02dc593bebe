"""Managed model servers: real subprocesses of the fake OpenAI server standing in for `vllm serve`.

Covers start and health wait, restart after SIGKILL, clean shutdown of whole
process groups, interpreter exit, port clashes, startup failures, and the Ray
path on a local cluster with fake GPUs.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import textwrap
import time
import urllib.request
from collections.abc import Callable, Iterator
from dataclasses import replace
from pathlib import Path

import pytest

from societas.llm.server_process import build_argv, command_tokens, healthy, redact_argv
from societas.llm.servers import ServerManager, ServerOptions, ServerStartError, plan_devices, visible_gpus

STAND_IN = "{python} -m societas.llm.testing --host {host} --port {port} --model {model} --owned-by vllm"
pytestmark = pytest.mark.skipif(not sys.platform.startswith("linux"), reason="reads /proc; uses Linux signals")


def wait_for(predicate: Callable[[], bool], timeout_s: float = 60.0, what: str = "condition") -> None:
    """Poll until `predicate()` holds; a generous deadline only guards against hanging forever."""
    deadline = time.monotonic() + timeout_s
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.05)


def pid_alive(pid: int) -> bool:
    """Whether `pid` runs (a zombie waiting for its reaper counts as gone)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] != "Z"
    except (OSError, IndexError):
        return True


def group_members(pgid: int) -> list[int]:
    """Live processes whose process group is `pgid` (from /proc)."""
    out = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except (OSError, IndexError):
            continue
        if fields[0] != "Z" and int(fields[2]) == pgid:
            out.append(int(stat.parent.name))
    return out


def group_alive(pgid: int) -> bool:
    try:
        os.killpg(pgid, 0)
    except ProcessLookupError:
        return False
    return True


def server_stats(url: str) -> dict:
    with urllib.request.urlopen(url + "/stats", timeout=10) as resp:
        return json.loads(resp.read())


@pytest.fixture
def options(tmp_path: Path) -> ServerOptions:
    return ServerOptions(replicas=2, command=STAND_IN, startup_timeout_s=60, log_dir=str(tmp_path / "logs"),
                         restart_backoff_s=0.1, shutdown_grace_s=5, placement="local")


@pytest.fixture
def managers() -> Iterator[list[ServerManager]]:
    """Managers a test starts; stopped after it whatever happened."""
    started: list[ServerManager] = []
    yield started
    for m in started:
        m.stop()


# -- command templates ------------------------------------------------------------------------


def test_command_template_fills_placeholders_and_args() -> None:
    opts = ServerOptions(tensor_parallel_size=2, max_model_len=4096, dtype="bfloat16", gpu_memory_utilization=0.85,
                         extra_args=("--enable-prefix-caching", '{"level": 0}'))
    argv = build_argv(opts.template(), model="Org/M", host="127.0.0.1", port=8123, args=opts.server_args(),
                      replica=0)
    assert argv == ["vllm", "serve", "Org/M", "--host", "127.0.0.1", "--port", "8123",
                    "--tensor-parallel-size", "2", "--max-model-len", "4096", "--dtype", "bfloat16",
                    "--gpu-memory-utilization", "0.85", "--enable-prefix-caching", '{"level": 0}']
    with pytest.raises(ValueError, match=r"\{port\}"):
        command_tokens("vllm serve {model}")
    assert redact_argv(["vllm", "--api-key", "abc123", "--hf-token=hf_zzzzzzzzzz", "x"]) == \
        "vllm --api-key '***' '--hf-token=***' x"


def test_replicas_follow_visible_gpus(monkeypatch: pytest.MonkeyPatch) -> None:
    assert plan_devices(["0", "1", "2", "3"], None, 1) == ["0", "1", "2", "3"]
    assert plan_devices(["0", "1", "2", "3"], None, 2) == ["0,1", "2,3"]
    assert plan_devices(["0", "1", "2"], None, 2) == ["0,1"]
    assert plan_devices([], None, 1) == [None]
    assert plan_devices([], 3, 1) == [None, None, None]
    with pytest.raises(ServerStartError, match="need 4 GPUs, but 2 are visible"):
        plan_devices(["0", "1"], 2, 2)
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "2,5")
    assert visible_gpus() == ["2", "5"]
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "")
    assert visible_gpus() == []


# -- lifecycle ------------------------------------------------------------------------------------


def test_start_health_gpus_and_shutdown_of_process_groups(
        options: ServerOptions, managers: list[ServerManager], monkeypatch: pytest.MonkeyPatch) -> None:
    # A shell wrapper makes the server a grandchild: only stopping the whole group stops it.
    wrapped = ["sh", "-c", "{python} -m societas.llm.testing --port {port} --model {model} & wait"]
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "0,1")
    manager = ServerManager("tiny", replace(options, command=tuple(wrapped)))
    managers.append(manager)
    manager.start()
    assert [r.state for r in manager.replicas] == ["ready", "ready"]
    ports = {r.port for r in manager.replicas}
    assert len(ports) == 2
    pids = [r.pid for r in manager.replicas]
    for r in manager.replicas:
        assert r.pid is not None and healthy(r.host, r.port)
        environ = Path(f"/proc/{r.pid}/environ").read_bytes().split(b"\0")
        assert f"CUDA_VISIBLE_DEVICES={r.devices}".encode() in environ
        header = Path(r.log_path).read_text().splitlines()[0]
        assert f"replica {r.index} on 127.0.0.1:{r.port}" in header
    assert sorted(r.devices for r in manager.replicas) == ["0", "1"]
    # the grandchild is up: its group has more than the shell in it
    wait_for(lambda: all(len(group_members(pid)) >= 2 for pid in pids if pid is not None),
             what="the servers under the shell")
    manager.stop()
    for pid in pids:
        assert pid is not None and not group_members(pid), "a process of the server's group survived"
    assert not any(healthy("127.0.0.1", p, timeout_s=1) for p in ports)
    assert all(r.state == "stopped" for r in manager.replicas)


def test_server_ignoring_sigterm_is_killed_after_the_grace_period(
        options: ServerOptions, managers: list[ServerManager]) -> None:
    stubborn = ["sh", "-c", "trap '' TERM; exec {python} -m societas.llm.testing --port {port} --model {model}"]
    manager = ServerManager("tiny", replace(options, replicas=1, command=tuple(stubborn), shutdown_grace_s=0.5))
    managers.append(manager)
    manager.start()
    r = manager.replicas[0]
    assert r.pid is not None and r.handle is not None
    manager.stop()
    assert r.handle.poll() == -signal.SIGKILL  # SIGTERM was ignored, SIGKILL was not
    assert not group_members(r.pid)


def test_config_section_reaches_the_model_layer() -> None:
    from societas.config import ConfigError, parse_config

    base = {"name": "x", "environment": {"id": "repeated-matrix-game"},
            "population": [{"name": "a", "policy": "scripted:tit_for_tat", "count": 2}]}
    servers = {"replicas": 2, "tensor_parallel_size": 2, "extra_args": ["--enable-prefix-caching"],
               "command": ["vllm", "serve", "{model}", "--port", "{port}", "{args}"], "max_restarts": 1}
    cfg = parse_config({**base, "llm": {"servers": servers}})
    opts = cfg.llm.servers.options()
    assert opts == ServerOptions(replicas=2, tensor_parallel_size=2, extra_args=("--enable-prefix-caching",),
                                 command=("vllm", "serve", "{model}", "--port", "{port}", "{args}"), max_restarts=1)
    with pytest.raises(ConfigError, match=r"llm\.servers\.command: .*must contain \{port\}"):
        parse_config({**base, "llm": {"servers": {"command": "vllm serve {model}"}}})


def test_restart_after_sigkill(options: ServerOptions, managers: list[ServerManager]) -> None:
    manager = ServerManager("tiny", options)
    managers.append(manager)
    manager.start()
    victim = manager.replicas[0]
    old_pid = victim.pid
    assert old_pid is not None
    os.kill(old_pid, signal.SIGKILL)
    wait_for(lambda: victim.state == "ready" and victim.pid != old_pid, what="the restart")
    assert victim.restarts == 1
    assert healthy(victim.host, victim.port)
    assert not pid_alive(old_pid)
    assert manager.replicas[1].restarts == 0


def test_restarts_are_bounded(options: ServerOptions, managers: list[ServerManager]) -> None:
    manager = ServerManager("tiny", replace(options, replicas=1, max_restarts=1))
    managers.append(manager)
    manager.start()
    r = manager.replicas[0]
    for n in (1, 2):
        pid = r.pid
        assert pid is not None
        os.kill(pid, signal.SIGKILL)
        if n == 1:
            wait_for(lambda pid=pid: r.state == "ready" and r.pid != pid, what="the first restart")
    wait_for(lambda: r.state == "failed", what="the replica to be given up")
    assert "exited with code -9" in str(r.error) and "gave up after 1 restart(s)" in str(r.error)
    failure = manager.failure()
    assert failure is not None and "every replica failed" in failure


def test_port_taken_meanwhile_moves_to_another_port(options: ServerOptions, managers: list[ServerManager]) -> None:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as occupant:
        occupant.bind(("127.0.0.1", 0))
        occupant.listen()
        taken = occupant.getsockname()[1]
        manager = ServerManager("tiny", replace(options, replicas=1, port=taken))
        managers.append(manager)
        manager.start()
        r = manager.replicas[0]
        assert r.state == "ready" and r.port != taken and r.restarts == 0
        assert healthy(r.host, r.port)
        log = Path(r.log_path).read_text()
        assert f"on 127.0.0.1:{taken}" in log and "address already in use" in log.lower()


def test_startup_failure_names_replica_command_and_log(options: ServerOptions, tmp_path: Path) -> None:
    bad = STAND_IN + " --responder no-such-responder --api-key sk-live-SECRETSECRET123"
    manager = ServerManager("tiny", replace(options, replicas=1, command=bad))
    with pytest.raises(ServerStartError) as info:
        manager.start()
    msg = str(info.value)
    assert msg.startswith("vllm:tiny: replica 0 exited with code 2 while starting")
    assert "log: " + str(tmp_path / "logs") in msg
    assert "unrecognized arguments" in msg  # the server's own last words
    assert "SECRETSECRET" not in msg
    assert "SECRETSECRET" not in Path(manager.replicas[0].log_path).read_text().splitlines()[0]
    assert manager.replicas[0].pid is not None and not group_alive(manager.replicas[0].pid)


def test_startup_timeout_and_missing_program(options: ServerOptions) -> None:
    slow = ["sh", "-c", "echo loading weights; sleep 120", "sh", "{port}"]  # never listens
    manager = ServerManager("tiny", replace(options, replicas=1, command=tuple(slow), startup_timeout_s=3.0))
    with pytest.raises(ServerStartError, match="did not answer GET /health within 3 s") as info:
        manager.start()
    assert "loading weights" in str(info.value)
    pid = manager.replicas[0].pid
    assert pid is not None and not group_members(pid)  # the shell and its sleep

    missing = ServerManager("tiny", replace(options, replicas=1, command="no-such-vllm-program serve {port}"))
    with pytest.raises(ServerStartError, match="no-such-vllm-program not found"):
        missing.start()


def _child_script(tmp_path: Path, ending: str) -> str:
    return textwrap.dedent(f"""
        import sys, time
        from societas.llm.servers import ServerManager, ServerOptions
        m = ServerManager("tiny", ServerOptions(replicas=1, command={STAND_IN!r}, startup_timeout_s=60,
                                                log_dir={str(tmp_path / "logs")!r}))
        m.start()
        print(m.replicas[0].pid, m.replicas[0].port, flush=True)
        sys.stdin.readline()  # until the test has seen the server
        {ending}
    """)


@pytest.mark.parametrize("ending", ["sys.exit(0)", "time.sleep(300)"], ids=["atexit", "sigkill"])
def test_no_server_outlives_its_interpreter(tmp_path: Path, ending: str) -> None:
    proc = subprocess.Popen([sys.executable, "-c", _child_script(tmp_path, ending)], stdin=subprocess.PIPE,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        assert proc.stdout is not None and proc.stdin is not None
        line = proc.stdout.readline()
        assert line, proc.stderr.read() if proc.stderr else ""
        pid, port = map(int, line.split())
        assert pid_alive(pid) and healthy("127.0.0.1", port)
        proc.stdin.write("go\n")
        proc.stdin.flush()
        if ending.startswith("time.sleep"):
            proc.kill()  # no atexit: the server must notice its parent's death by itself
        proc.wait(timeout=60)
        wait_for(lambda: not pid_alive(pid), what="the server to go with its parent")
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()


# -- Ray -----------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def ray_with_gpus() -> Iterator[None]:
    """A local Ray cluster with two (fake) GPUs, owned by this module."""
    ray = pytest.importorskip("ray")
    if ray.is_initialized():
        pytest.skip("Ray is already initialised by another test in this process")
    ray.init(address="local", num_cpus=2, num_gpus=2, include_dashboard=False, log_to_driver=False)
    try:
        yield
    finally:
        ray.shutdown()


@pytest.mark.slow
def test_ray_actors_host_replicas_with_gpu_placement(
        ray_with_gpus: None, options: ServerOptions, managers: list[ServerManager]) -> None:
    import ray

    manager = ServerManager("tiny", replace(options, replicas=None, placement="auto"))  # auto: Ray is up
    managers.append(manager)
    manager.start()
    assert len(manager.replicas) == 2  # two GPUs, tensor_parallel_size 1
    node_ip = ray.util.get_node_ip_address()
    assert {r.host for r in manager.replicas} == {node_ip}
    assert sorted(str(r.devices) for r in manager.replicas) == ["0", "1"]  # Ray's GPU assignment
    for r in manager.replicas:
        assert healthy(r.host, r.port) and server_stats(r.url)["total"] == 0
    victim = manager.replicas[1]
    old_pid = victim.pid
    assert old_pid is not None
    os.kill(old_pid, signal.SIGKILL)
    wait_for(lambda: victim.state == "ready" and victim.pid != old_pid, what="the restart inside the actor")
    assert victim.restarts == 1 and healthy(victim.host, victim.port)
    pids = [r.pid for r in manager.replicas]
    manager.stop()
    for pid in pids:
        assert pid is not None
        wait_for(lambda pid=pid: not pid_alive(pid), what="the servers to stop")
    wait_for(lambda: ray.available_resources().get("GPU", 0) == 2, what="the placement group to be released")
