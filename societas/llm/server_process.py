"""One model-server subprocess: command line, environment, log file, process group, ports.

A `ServerProcess` runs in a process group of its own, so stopping it also stops
whatever it started (vLLM's engine processes). On Linux it also receives
SIGTERM when the thread that started it dies, so a killed parent leaves no
server behind. Output goes to a log file, whose first line of each launch is
the command with secret-looking values masked. The same class runs inside a
Ray actor on another node (`societas.llm.ray_servers`), so it uses nothing but
the standard library.
"""

from __future__ import annotations

import contextlib
import ctypes
import errno
import http.client
import os
import re
import shlex
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

PLACEHOLDERS = ("{model}", "{host}", "{port}", "{python}", "{replica}")
ARGS_TOKEN = "{args}"
_LOG_TAIL_BYTES = 16_384
_SECRET_ARG = re.compile(r"(key|token|secret|password)", re.IGNORECASE)
_SECRET_VALUE = re.compile(r"\b(?:sk|rk|pk|hf)[-_][A-Za-z0-9_\-*.]{6,}")
_PR_SET_PDEATHSIG = 1


def command_tokens(command: str | Sequence[str]) -> list[str]:
    """A command template as tokens; a string is split like a shell would (no shell runs it)."""
    tokens = shlex.split(command) if isinstance(command, str) else [str(t) for t in command]
    if not tokens:
        raise ValueError("command is empty")
    if not any("{port}" in t for t in tokens):
        raise ValueError(f"command must contain {{port}} (where the server listens), got {shlex.join(tokens)!r}")
    return tokens


def build_argv(template: Sequence[str], *, model: str, host: str, port: int, args: Sequence[str],
               replica: int, python: str | None = None) -> list[str]:
    """Fill a command template: `{args}` alone expands to the server options, the rest is substituted.

    Substitution is literal (no `str.format`), so braces in other tokens, such
    as a JSON argument, pass through untouched.
    """
    values = {"{model}": model, "{host}": host, "{port}": str(port), "{python}": python or sys.executable,
              "{replica}": str(replica)}
    argv: list[str] = []
    for token in template:
        if token == ARGS_TOKEN:
            argv.extend(args)
            continue
        for name, value in values.items():
            token = token.replace(name, value)
        argv.append(token)
    return argv


def redact_argv(argv: Sequence[str]) -> str:
    """The command line for logs and errors, with values of key/token/secret options masked."""
    out: list[str] = []
    hide_next = False
    for token in argv:
        if hide_next:
            out.append("***")
            hide_next = False
            continue
        if token.startswith("-") and _SECRET_ARG.search(token):
            if "=" in token:
                out.append(token.split("=", 1)[0] + "=***")
            else:
                out.append(token)
                hide_next = True
            continue
        out.append(_SECRET_VALUE.sub("***", token))
    return shlex.join(out)


def scrub(text: str) -> str:
    """Mask secret-looking tokens in server output before it reaches an error message."""
    return _SECRET_VALUE.sub("***", text)


def free_port(host: str = "127.0.0.1") -> int:
    """A port nobody listens on now (the kernel's pick); another process may still take it first."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind((host, 0))
        return int(s.getsockname()[1])


def port_taken(host: str, port: int) -> bool:
    """Whether something else holds `host:port` (binding it fails with EADDRINUSE)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        try:
            s.bind((host, port))
        except OSError as exc:
            return exc.errno == errno.EADDRINUSE
    return False


def healthy(host: str, port: int, timeout_s: float = 2.0) -> bool:
    """Whether `GET /health` on the server answers 200."""
    conn = http.client.HTTPConnection(host, port, timeout=timeout_s)
    try:
        conn.request("GET", "/health")
        return conn.getresponse().status == 200
    except (OSError, http.client.HTTPException):
        return False
    finally:
        conn.close()


def _die_with_parent_hook() -> Callable[[], None] | None:
    """A preexec function asking Linux to SIGTERM the child when its parent thread dies, or None."""
    if not sys.platform.startswith("linux"):
        return None
    try:
        prctl = ctypes.CDLL(None, use_errno=True).prctl
    except (OSError, AttributeError):
        return None
    parent = os.getpid()

    def hook() -> None:
        prctl(_PR_SET_PDEATHSIG, signal.SIGTERM, 0, 0, 0)
        if os.getppid() != parent:  # the parent died before the request took effect
            os._exit(1)

    return hook


@dataclass(kw_only=True)
class LaunchSpec:
    """What to run for one replica; plain data, so it can travel to a Ray actor."""

    model: str
    template: tuple[str, ...]
    args: tuple[str, ...] = ()
    env: Mapping[str, str] = field(default_factory=dict)
    log_path: str = ""


class ServerProcess:
    """A server subprocess in its own process group, output appended to `spec.log_path`."""

    def __init__(self, spec: LaunchSpec, *, replica: int, host: str, port: int) -> None:
        self.spec = spec
        self.replica = replica
        self.host = host
        self.port = port
        self.argv = build_argv(spec.template, model=spec.model, host=host, port=port, args=spec.args,
                               replica=replica)
        self.devices = spec.env.get("CUDA_VISIBLE_DEVICES", os.environ.get("CUDA_VISIBLE_DEVICES"))
        self._proc: subprocess.Popen[bytes] | None = None

    @property
    def pid(self) -> int:
        assert self._proc is not None, "not started"
        return self._proc.pid

    def start(self) -> None:
        """Launch the command; FileNotFoundError if its program does not exist."""
        path = Path(self.spec.log_path)
        path.parent.mkdir(parents=True, exist_ok=True)
        env = {**os.environ, **self.spec.env}
        with open(path, "ab") as log:
            stamp = time.strftime("%Y-%m-%d %H:%M:%S")
            log.write(f"# {stamp} replica {self.replica} on {self.host}:{self.port}: "
                      f"{redact_argv(self.argv)}\n".encode())
            log.flush()
            self._proc = subprocess.Popen(
                self.argv, stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT, env=env,
                start_new_session=True, close_fds=True,
                preexec_fn=_die_with_parent_hook(),
            )
            log.write(f"# pid {self._proc.pid}\n".encode())

    def poll(self) -> int | None:
        """The exit code, or None while it runs."""
        return None if self._proc is None else self._proc.poll()

    def port_clash(self) -> bool:
        """After an exit: did it fail because another process holds its port?"""
        if "address already in use" in self.log_tail(lines=40).lower():
            return True
        return port_taken(self.host, self.port)

    def log_tail(self, lines: int = 20) -> str:
        """The last lines of the log, secrets masked."""
        try:
            with open(self.spec.log_path, "rb") as f:
                f.seek(0, os.SEEK_END)
                size = f.tell()
                f.seek(max(0, size - _LOG_TAIL_BYTES))
                text = f.read().decode(errors="replace")
        except OSError:
            return ""
        return scrub("\n".join(text.splitlines()[-lines:]))

    def _signal_group(self, sig: int) -> None:
        if self._proc is None:
            return
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(self._proc.pid, sig)

    def group_alive(self) -> bool:
        """Whether any process of its group (the server or its children) is still running."""
        if self._proc is None:
            return False
        try:
            os.killpg(self._proc.pid, 0)
        except ProcessLookupError:
            return False
        except PermissionError:
            return True
        return True

    def terminate(self) -> None:
        """Ask the whole process group to stop (SIGTERM)."""
        self._signal_group(signal.SIGTERM)

    def wait(self, timeout_s: float) -> bool:
        """Wait until the server is reaped and its group is empty; False when time ran out."""
        if self._proc is None:
            return True
        deadline = time.monotonic() + max(0.0, timeout_s)
        try:
            self._proc.wait(timeout=max(0.0, timeout_s))
        except subprocess.TimeoutExpired:
            return False
        while self.group_alive():
            if time.monotonic() >= deadline:
                return False
            time.sleep(0.02)
        return True

    def kill(self) -> None:
        """SIGKILL the whole process group and reap the server."""
        self._signal_group(signal.SIGKILL)
        if self._proc is not None:
            with contextlib.suppress(subprocess.TimeoutExpired):
                self._proc.wait(timeout=5)

    def stop(self, grace_s: float) -> None:
        """SIGTERM, then SIGKILL after `grace_s` seconds."""
        if self._proc is None:
            return
        self.terminate()
        if not self.wait(grace_s):
            self.kill()
