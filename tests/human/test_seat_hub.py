"""The seat hub's rules, without a web server: turns, one question at a time, timeouts, refusals."""

from __future__ import annotations

import asyncio

import pytest

from societas.human.hub import SeatError, SeatHub
from societas.types import ActionSpec

CHOICE = ActionSpec.choice(["J", "F"])


async def _until(predicate, timeout: float = 5.0) -> None:
    async with asyncio.timeout(timeout):
        while not predicate():
            await asyncio.sleep(0.001)


async def test_episodes_take_turns_in_schedule_order_whoever_asks_first() -> None:
    hub = SeatHub({"p": 60.0}, tokens={"p": "tok"})
    hub.schedule([((0, 0), ["p", "x"]), ((0, 1), ["p", "y"])], final=True)
    second = asyncio.create_task(hub.ask("p", (0, 1), CHOICE, {"question": "second"}))
    await asyncio.sleep(0.01)
    assert hub.state("tok")["status"] == "waiting"  # episode 1 asked first but episode 0 has the turn
    first = asyncio.create_task(hub.ask("p", (0, 0), CHOICE, {"question": "first"}))
    await _until(lambda: hub.state("tok")["status"] == "question")
    q = hub.state("tok")["question"]
    assert q["question"] == "first" and q["answer"] == {"kind": "choice", "choices": ["J", "F"]}
    hub.answer("tok", q["id"], "F")
    assert (await first).value == "F"
    await asyncio.sleep(0.01)
    assert not second.done() and hub.state("tok")["status"] == "waiting"  # still episode 0's turn
    hub.episode_done("p", (0, 0), {"total": 3})
    await _until(lambda: hub.state("tok")["status"] == "question")
    state = hub.state("tok")
    assert state["question"]["question"] == "second" and state["episode"] == 2 and state["episodes"] == 2
    assert state["results"] == [{"game": 1, "total": 3}]
    hub.answer("tok", state["question"]["id"], "J")
    answer = await second
    assert (answer.value, answer.timed_out, answer.rejected) == ("J", False, 0) and answer.latency_s >= 0
    hub.episode_done("p", (0, 1))
    assert hub.state("tok")["status"] == "done"
    hub.close()
    assert hub.state("tok")["status"] == "done"  # a finished seat keeps showing its results
    assert await hub.told(0.1)


async def test_closing_tells_unfinished_seats_and_waits_for_open_pages() -> None:
    hub = SeatHub({"p": 60.0, "q": 60.0}, tokens={"p": "tp", "q": "tq"})
    hub.schedule([((0, 0), ["p", "q"])], final=True)
    assert hub.state("tp")["status"] == "waiting"  # p's page is open; q's never was
    hub.close()
    assert not await hub.told(0.05)  # p has not heard yet
    waiter = asyncio.create_task(hub.told(5.0))
    assert hub.state("tp")["status"] == "closed"
    assert await waiter


async def test_an_idle_seat_gets_the_default_after_its_timeout() -> None:
    hub = SeatHub({"p": 0.05}, tokens={"p": "tok"})
    answer = await hub.ask("p", (0, 0), ActionSpec.choice(["F", "J"], default="J"), {})
    assert (answer.value, answer.timed_out) == ("J", True) and answer.latency_s >= 0.04
    debrief = await hub.ask("p", (0, 0), CHOICE, {}, kind="debrief")
    assert (debrief.value, debrief.timed_out) == (None, True)  # a question with no default records nothing
    assert hub.state("tok")["status"] == "waiting"


async def test_stale_unusable_and_unknown_answers_are_refused_and_counted() -> None:
    hub = SeatHub({"p": 60.0}, tokens={"p": "tok"})
    task = asyncio.create_task(hub.ask("p", (0, 0), ActionSpec.integer(0, 10), {}))
    await _until(lambda: hub.state("tok")["status"] == "question")
    qid = hub.state("tok")["question"]["id"]
    with pytest.raises(SeatError, match="no seat") as unknown:
        hub.answer("nope", qid, 3)
    assert unknown.value.status == 404
    with pytest.raises(SeatError, match="no longer open") as stale:
        hub.answer("tok", qid + 1, 3)
    assert stale.value.status == 409
    for bad in ("11", "2.5", "", "many"):
        with pytest.raises(SeatError) as refused:
            hub.answer("tok", qid, bad)
        assert refused.value.status == 422
    hub.answer("tok", qid, "7")
    answer = await task
    assert (answer.value, answer.rejected, answer.timed_out) == (7, 4, False)
    with pytest.raises(SeatError, match="no longer open"):
        hub.answer("tok", qid, "7")


async def test_long_poll_returns_on_change_and_after_its_timeout() -> None:
    hub = SeatHub({"p": 60.0}, tokens={"p": "tok"})
    v = hub.state("tok")["version"]
    quiet = await hub.wait_state("tok", v, 0.02)
    assert quiet["version"] == v and quiet["status"] == "waiting"
    poll = asyncio.create_task(hub.wait_state("tok", v, 5.0))
    ask = asyncio.create_task(hub.ask("p", (0, 0), CHOICE, {"question": "q"}))
    state = await poll
    assert state["status"] == "question" and state["version"] > v
    ask.cancel()
    with pytest.raises(asyncio.CancelledError):
        await ask
    assert hub.state("tok")["status"] == "waiting"  # a cancelled question leaves the page


def test_each_seat_gets_its_own_unguessable_token() -> None:
    hub = SeatHub({"a": 1.0, "b": 1.0})
    tokens = {hub.token("a"), hub.token("b")}
    assert len(tokens) == 2 and all(len(t) >= 24 for t in tokens)
    assert hub.paths() == {"a": f"/seat/{hub.token('a')}", "b": f"/seat/{hub.token('b')}"}


async def test_a_change_between_the_check_and_the_wait_is_not_missed() -> None:
    """A long poll that starts as a change lands still returns (the question is never missed)."""
    hub = SeatHub({"p": 60.0}, tokens={"p": "tok"})
    spec = ActionSpec.choice(["J", "F"])

    async def person(n: int) -> None:
        version, answered = -1, 0
        while answered < n:
            state = await hub.wait_state("tok", version, 60.0)
            version = state["version"]
            if state["status"] == "question":
                hub.answer("tok", state["question"]["id"], "J")
                answered += 1

    async with asyncio.timeout(30):  # a missed change would hold a poll for its whole 60 s
        clicker = asyncio.create_task(person(50))
        for _ in range(50):
            assert (await hub.ask("p", (0, 0), spec, {})).value == "J"
        await clicker


def test_links_name_a_reachable_host() -> None:
    import socket

    from societas.human.server import SeatServer

    hub = SeatHub({"a": 1.0}, tokens={"a": "tok"})
    assert SeatServer(hub, host="127.0.0.1", port=8765).urls() == {"a": "http://127.0.0.1:8765/seat/tok"}
    assert SeatServer(hub, host="0.0.0.0", port=80).base_url == f"http://{socket.getfqdn()}:80"
    assert SeatServer(hub, host="::1", port=81).base_url == "http://[::1]:81"
