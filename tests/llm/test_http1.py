"""The lean HTTP/1.1 client against real sockets: every framing a server may use, and its failures."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable

import pytest

from societas.llm.http1 import Http1Pool, HttpError

Handler = Callable[[asyncio.StreamReader, asyncio.StreamWriter], Awaitable[None]]


async def _read_request(reader: asyncio.StreamReader) -> bytes:
    head = await reader.readuntil(b"\r\n\r\n")
    length = 0
    for line in head.decode("latin-1").split("\r\n"):
        if line.lower().startswith("content-length:"):
            length = int(line.split(":", 1)[1])
    return head + (await reader.readexactly(length) if length else b"")


async def _serve(handler: Handler, body: Callable[[Http1Pool], Awaitable[object]], *, timeout_s: float = 5.0
                 ) -> object:
    server = await asyncio.start_server(handler, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    pool = Http1Pool("127.0.0.1", port, headers={"Authorization": "Bearer k"}, timeout_s=timeout_s)
    try:
        return await body(pool)
    finally:
        pool.close()
        server.close()
        await server.wait_closed()


def _replies(*raw: bytes, close_after: bool = False) -> tuple[Handler, list[bytes]]:
    """A server answering the requests of each connection with `raw` in turn; it records what it got."""
    seen: list[bytes] = []

    async def handler(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            for reply in raw:
                seen.append(await _read_request(reader))
                writer.write(reply)
                await writer.drain()
                if close_after:
                    break
        except (asyncio.IncompleteReadError, ConnectionError):
            pass
        finally:
            writer.close()

    return handler, seen


def test_content_length_replies_reuse_one_connection() -> None:
    reply = b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: 2\r\n\r\n{}"
    handler, seen = _replies(reply, reply, reply)
    connections = []

    async def counting(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        connections.append(1)
        await handler(reader, writer)

    async def body(pool: Http1Pool) -> list[tuple[int, dict[str, str], bytes]]:
        return [await pool.request("POST", "/v1/chat/completions", b'{"a": 1}') for _ in range(3)]

    out = asyncio.run(_serve(counting, body))
    assert out == [(200, {"content-type": "application/json", "content-length": "2"}, b"{}")] * 3
    assert len(connections) == 1
    assert seen[0].startswith(b"POST /v1/chat/completions HTTP/1.1\r\nHost: 127.0.0.1:")
    assert b"Authorization: Bearer k\r\n" in seen[0] and seen[0].endswith(b'Content-Length: 8\r\n\r\n{"a": 1}')


def test_chunked_and_close_framed_replies() -> None:
    chunked = (b"HTTP/1.1 429 Too Many Requests\r\nTransfer-Encoding: chunked\r\nRetry-After: 2\r\n\r\n"
               b"3;ext=1\r\nabc\r\n2\r\nde\r\n0\r\n\r\n")
    until_close = b"HTTP/1.0 200 OK\r\nContent-Type: text/plain\r\n\r\nall of it"
    handler, _ = _replies(chunked, until_close)

    async def body(pool: Http1Pool) -> list[tuple[int, dict[str, str], bytes]]:
        return [await pool.request("GET", "/models"), await pool.request("GET", "/models")]

    (s1, h1, b1), (s2, _, b2) = asyncio.run(_serve(handler, body))  # type: ignore[misc]
    assert (s1, h1["retry-after"], b1) == (429, "2", b"abcde")
    assert (s2, b2) == (200, b"all of it")


def test_a_connection_the_server_closed_while_idle_is_replaced() -> None:
    reply = b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok"
    handler, seen = _replies(reply, close_after=True)  # one request per connection, closed without saying so

    async def body(pool: Http1Pool) -> list[bytes]:
        first = await pool.request("GET", "/x")
        await asyncio.sleep(0.05)
        second = await pool.request("GET", "/x")
        return [first[2], second[2]]

    assert asyncio.run(_serve(handler, body)) == [b"ok", b"ok"]
    assert len(seen) == 2


def test_connection_close_is_honoured() -> None:
    reply = b"HTTP/1.1 200 OK\r\nConnection: close\r\nContent-Length: 2\r\n\r\nok"
    handler, _ = _replies(reply, reply)  # the server would go on; the client must not
    connections = []

    async def counting(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        connections.append(1)
        await handler(reader, writer)

    async def body(pool: Http1Pool) -> list[bytes]:
        return [(await pool.request("GET", "/x"))[2] for _ in range(2)]

    assert asyncio.run(_serve(counting, body)) == [b"ok", b"ok"]
    assert len(connections) == 2


@pytest.mark.parametrize("raw", [b"SSH-2.0-OpenSSH\r\n\r\n", b"HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\nshort"])
def test_garbage_and_short_replies_fail(raw: bytes) -> None:
    handler, _ = _replies(raw, close_after=True)

    async def body(pool: Http1Pool) -> object:
        return await pool.request("GET", "/x")

    with pytest.raises(HttpError):
        asyncio.run(_serve(handler, body))


def test_a_server_that_never_answers_times_out_and_a_closed_port_refuses() -> None:
    async def silent(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await asyncio.sleep(5)

    async def body(pool: Http1Pool) -> object:
        return await pool.request("GET", "/x")

    with pytest.raises(asyncio.TimeoutError):
        asyncio.run(_serve(silent, body, timeout_s=0.2))

    async def refused() -> object:
        server = await asyncio.start_server(silent, "127.0.0.1", 0)
        port = server.sockets[0].getsockname()[1]
        server.close()
        await server.wait_closed()
        return await Http1Pool("127.0.0.1", port, headers={}, timeout_s=1.0).request("GET", "/x")

    with pytest.raises(ConnectionRefusedError):
        asyncio.run(refused())
