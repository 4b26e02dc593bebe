"""Play a seat's page over HTTP from a script: for tests, demos and checking a config end to end.

`play_seat` does what the page's script does (long-poll the state, post an
answer to each question) with a function in place of the person, over a real
socket, so a run with human seats is tested without a browser.
"""

from __future__ import annotations

import socket
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

import httpx

Chooser = Callable[[Mapping[str, Any]], Any]
"""Given the open question (as the page gets it), the answer to send, or SKIP to let it time out."""

SKIP = object()


@dataclass(frozen=True, slots=True)
class Answered:
    """One question the script saw and what it did about it."""

    question: int
    kind: str
    round: int | None
    value: Any
    skipped: bool


def play_seat(url: str, choose: Chooser, *, timeout_s: float = 300.0) -> list[Answered]:
    """Answer the seat at `url` until its games are done (or the run ends); the questions met, in order."""
    log: list[Answered] = []
    seen: set[int] = set()
    version = -1
    deadline = time.monotonic() + timeout_s
    # A POST's body goes out behind its headers at once, as a browser sends it (no Nagle wait).
    transport = httpx.HTTPTransport(socket_options=[(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)])
    with httpx.Client(timeout=60.0, transport=transport) as client:
        while time.monotonic() < deadline:
            try:
                state = client.get(f"{url}/state", params={"since": version}).json()
            except httpx.TransportError:
                break  # the run is over and its server gone
            version = state["version"]
            if state["status"] in ("done", "closed"):
                break
            q = state.get("question")
            if state["status"] != "question" or q is None or q["id"] in seen:
                continue
            seen.add(q["id"])
            value = choose(q)
            log.append(Answered(question=q["id"], kind=q["kind"], round=q.get("round"),
                                value=None if value is SKIP else value, skipped=value is SKIP))
            if value is not SKIP:
                reply = client.post(f"{url}/answer", json={"question": q["id"], "value": value})
                reply.raise_for_status()
                version = -1  # read the state afresh: the answer's reply may already be past the next change
    return log
