"""The seats people hold in a run: who is asked what, whose turn it is, and the answers.

The hub is plain asyncio (the web server in `server.py` only reads and writes
it), so it runs in the run's own event loop and its rules are tested without a
browser. Its rules:

- Each seat (one member with `policy: human`) has one unguessable token; its
  page is `/seat/TOKEN`.
- A seat plays its episodes one at a time, in schedule order (`schedule`), so
  the order a person meets the games is fixed by the config and seed, never by
  which episode the runner happened to start first; one question at a time.
- A question's clock starts when it becomes the seat's current question; left
  unanswered for the seat's timeout, it is answered with the environment's
  default and recorded as a fallback (`Answer.timed_out`).
- An answer the question cannot take (a number out of range) is refused with
  the reason and counted in `Answer.rejected`; the question stays open.
"""

from __future__ import annotations

import asyncio
import json
import secrets
import time
from collections import deque
from collections.abc import Coroutine, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any, Literal

from societas.types import ActionSpec, InvalidAction

EpisodeKey = tuple[int, int]
QuestionKind = Literal["decision", "debrief"]


class SeatError(LookupError):
    """A request the hub cannot honour: an unknown token, a stale question, an answer it refuses."""

    def __init__(self, message: str, status: int) -> None:
        super().__init__(message)
        self.status = status


@dataclass(frozen=True, slots=True)
class Answer:
    """What the person answered (or the default, when the seat stayed idle past its timeout)."""

    value: Any
    timed_out: bool
    latency_s: float
    rejected: int


@dataclass(slots=True)
class _Question:
    id: int
    episode: EpisodeKey
    kind: QuestionKind
    spec: ActionSpec
    view: Mapping[str, Any]
    shown_at: float
    deadline: float
    future: asyncio.Future[Answer]
    rejected: int = 0
    timer: asyncio.TimerHandle | None = None


@dataclass(slots=True)
class _Seat:
    name: str
    token: str
    timeout_s: float
    order: deque[EpisodeKey] = field(default_factory=deque)
    scheduled: int = 0
    finished: int = 0
    results: list[Mapping[str, Any]] = field(default_factory=list)
    current: _Question | None = None
    polled: bool = False
    told_final: bool = False
    version: int = 0
    changed: asyncio.Event = field(default_factory=asyncio.Event)


def answer_value(spec: ActionSpec, raw: Any) -> Any:
    """A value sent from the page, checked against the question's spec (InvalidAction says why not)."""
    if spec.kind in ("integer", "real") and isinstance(raw, str):
        raw = raw.strip()
        if not raw:
            raise InvalidAction("Enter a number.")
    if spec.kind == "json" and isinstance(raw, str):
        try:
            raw = json.loads(raw)
        except json.JSONDecodeError as exc:
            raise InvalidAction(f"That is not JSON: {exc.msg}.") from None
    return spec.validate(raw)


class SeatHub:
    """Every human seat of one run; lives in the run's event loop."""

    def __init__(self, timeouts: Mapping[str, float], *, tokens: Mapping[str, str] | None = None) -> None:
        tokens = dict(tokens or {})
        self._seats: dict[str, _Seat] = {}
        for name, timeout in timeouts.items():
            token = tokens.get(name) or secrets.token_urlsafe(18)
            self._seats[name] = _Seat(name=name, token=token, timeout_s=float(timeout))
        self._by_token = {s.token: s for s in self._seats.values()}
        if len(self._by_token) != len(self._seats):
            raise ValueError("two seats were given the same token")
        self._next_id = 1
        self._final = False
        self._closed = False

    @property
    def members(self) -> list[str]:
        return list(self._seats)

    def token(self, member: str) -> str:
        return self._seats[member].token

    def paths(self) -> dict[str, str]:
        """Member -> the path of its page (the server prefixes its address)."""
        return {name: f"/seat/{s.token}" for name, s in self._seats.items()}

    # -- the runner's side ----------------------------------------------------

    def schedule(self, episodes: Iterable[tuple[EpisodeKey, Iterable[str]]], *, final: bool) -> None:
        """The episodes of a phase still to play, in order, with the members in each.

        `final` says no later phase will add any, so a seat that has played all
        of them is done.
        """
        for key, members in episodes:
            for name in members:
                seat = self._seats.get(name)
                if seat is not None:
                    seat.order.append(key)
                    seat.scheduled += 1
        self._final = final
        for seat in self._seats.values():
            self._notify(seat)

    async def ask(self, member: str, episode: EpisodeKey, spec: ActionSpec, view: Mapping[str, Any],
                  kind: QuestionKind = "decision") -> Answer:
        """Show a question on the member's page once it is that episode's turn; wait for the answer."""
        seat = self._seats[member]
        while (seat.order and episode in seat.order and seat.order[0] != episode) or seat.current is not None:
            await self._wait(seat)
        loop = asyncio.get_running_loop()
        now = time.monotonic()
        q = _Question(id=self._next_id, episode=episode, kind=kind, spec=spec, view=view, shown_at=now,
                      deadline=now + seat.timeout_s, future=loop.create_future())
        self._next_id += 1
        q.timer = loop.call_later(seat.timeout_s, self._expire, seat, q)
        seat.current = q
        self._notify(seat)
        try:
            return await q.future
        finally:
            q.timer.cancel()
            if seat.current is q:
                seat.current = None
                self._notify(seat)

    def episode_done(self, member: str, episode: EpisodeKey, result: Mapping[str, Any] | None = None) -> None:
        """The member's part in an episode is over; its next episode may start asking."""
        seat = self._seats[member]
        try:
            seat.order.remove(episode)
        except ValueError:
            pass
        seat.finished += 1
        if result is not None:
            seat.results.append({"game": seat.finished, **result})
        self._notify(seat)

    def close(self) -> None:
        """The run is over (or stopping): pages say so and waiting requests return."""
        self._closed = True
        for seat in self._seats.values():
            self._notify(seat)

    async def told(self, timeout_s: float) -> bool:
        """Wait (at most `timeout_s`) until every open page has been sent its final state; whether all were."""
        deadline = time.monotonic() + timeout_s
        while any(s.polled and not s.told_final for s in self._seats.values()):
            if time.monotonic() >= deadline:
                return False
            await asyncio.sleep(0.02)
        return True

    # -- the pages' side ------------------------------------------------------

    def seat_for(self, token: str) -> _Seat:
        seat = self._by_token.get(token)
        if seat is None:
            raise SeatError("no seat has this link", 404)
        return seat

    def state(self, token: str) -> dict[str, Any]:
        """What the seat's page shows now, as JSON."""
        seat = self.seat_for(token)
        q = seat.current
        if q is None and not seat.order and self._final and seat.finished >= seat.scheduled:
            status = "done"  # kept after the run closes: the page goes on showing the results
        elif self._closed:
            status = "closed"
        elif q is not None:
            status = "question"
        else:
            status = "waiting"
        seat.polled = True
        seat.told_final = seat.told_final or status in ("done", "closed")
        out: dict[str, Any] = {
            "version": seat.version, "seat": seat.name, "status": status,
            "episode": min(seat.finished + 1, seat.scheduled), "episodes": seat.scheduled,
            "results": list(seat.results), "timeout_s": seat.timeout_s,
        }
        if q is not None:
            out["question"] = {
                "id": q.id, "kind": q.kind, "answer": _answer_form(q.spec),
                "remaining_s": max(0.0, round(q.deadline - time.monotonic(), 1)), **q.view,
            }
        return out

    async def wait_state(self, token: str, since: int, timeout_s: float) -> dict[str, Any]:
        """The state once its version is past `since` (or after `timeout_s`): a long poll."""
        seat = self.seat_for(token)
        if seat.version <= since and not self._closed:
            try:
                await asyncio.wait_for(self._wait(seat), timeout_s)
            except asyncio.TimeoutError:
                pass
        return self.state(token)

    def answer(self, token: str, question_id: int, raw: Any) -> dict[str, Any]:
        """Take the person's answer to the current question; refuse a stale or unusable one."""
        seat = self.seat_for(token)
        q = seat.current
        if q is None or q.id != question_id or q.future.done():
            raise SeatError("this question is no longer open; the page shows the current one", 409)
        try:
            value = answer_value(q.spec, raw)
        except InvalidAction as exc:
            q.rejected += 1
            raise SeatError(str(exc), 422) from None
        q.future.set_result(Answer(value=value, timed_out=False, latency_s=time.monotonic() - q.shown_at,
                                   rejected=q.rejected))
        seat.current = None
        self._notify(seat)
        return self.state(token)

    # -- internals --------------------------------------------------------------

    def _expire(self, seat: _Seat, q: _Question) -> None:
        if not q.future.done():
            default = q.spec.default if q.kind == "decision" else None
            q.future.set_result(Answer(value=default, timed_out=True, latency_s=time.monotonic() - q.shown_at,
                                       rejected=q.rejected))
            if seat.current is q:
                seat.current = None
                self._notify(seat)

    @staticmethod
    def _wait(seat: _Seat) -> Coroutine[Any, Any, bool]:
        # The event is read now, not when the awaitable first runs: wait_for starts it as a task a
        # step later, and a change made meanwhile replaces the event and would go unheard.
        return seat.changed.wait()

    @staticmethod
    def _notify(seat: _Seat) -> None:
        seat.version += 1
        seat.changed.set()
        seat.changed = asyncio.Event()


def _answer_form(spec: ActionSpec) -> dict[str, Any]:
    """How the page asks for the answer: buttons for a choice, a field for the rest."""
    if spec.kind == "choice":
        return {"kind": "choice", "choices": list(spec.choices)}
    if spec.kind in ("integer", "real"):
        return {"kind": spec.kind, "minimum": spec.minimum, "maximum": spec.maximum}
    return {"kind": spec.kind, "max_length": spec.max_length, "description": spec.description}
