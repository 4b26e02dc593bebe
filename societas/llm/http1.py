"""A lean HTTP/1.1 client for plain-HTTP model servers on the same machine or network.

A study against a local server (vLLM, llama.cpp, Ollama, the fake server) spends
more client CPU per model call in a general-purpose HTTP client than in the rest
of the framework: aiohttp's request path (sessions, cookies, redirects, tracing,
multipart payloads, header objects) costs about 250 us a call on a 2-core
machine, this about 90 us (benchmarks/latency.py). It does only what a chat
completion needs: keep-alive connections to one `http://` origin, a request
whose bytes are built once but for the body, and replies framed by
Content-Length, chunked encoding or the connection's end. Anything else (TLS,
proxies) stays on aiohttp.
"""

from __future__ import annotations

import asyncio
from collections.abc import Mapping


class HttpError(OSError):
    """The connection failed or the reply was not HTTP/1.x (a transient failure to the caller)."""


_MAX_HEAD = 64 * 1024


class _Connection(asyncio.Protocol):
    """One keep-alive connection: bytes in, one reply at a time out."""

    def __init__(self) -> None:
        self.transport: asyncio.Transport | None = None
        self.closed = False
        self.used = False  # has carried a reply: a server may have closed it while idle
        self._buf = bytearray()
        self._waiter: asyncio.Future[tuple[int, dict[str, str], bytes, bool]] | None = None
        self._received = False  # any byte of the current reply

    # -- asyncio.Protocol ------------------------------------------------------------

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]

    def data_received(self, data: bytes) -> None:
        self._buf += data
        self._received = True
        if self._waiter is not None and not self._waiter.done():
            self._parse(eof=False)

    def eof_received(self) -> bool:
        return False  # close the transport; connection_lost follows

    def connection_lost(self, exc: Exception | None) -> None:
        self.closed = True
        waiter = self._waiter
        if waiter is not None and not waiter.done():
            if self._received:
                self._parse(eof=True)
            if not waiter.done():
                waiter.set_exception(HttpError(f"connection closed by the server ({type(exc).__name__})"
                                               if exc else "connection closed by the server"))

    # -- one exchange ------------------------------------------------------------------

    def send(self, data: bytes) -> asyncio.Future[tuple[int, dict[str, str], bytes, bool]]:
        assert self.transport is not None
        self._waiter = asyncio.get_running_loop().create_future()
        self._received = False
        self.transport.write(data)
        return self._waiter

    def close(self) -> None:
        self.closed = True
        if self.transport is not None:
            self.transport.close()

    def _parse(self, *, eof: bool) -> None:
        """Resolve the waiter once the buffer holds a whole reply (or fail it on garbage)."""
        buf = self._buf
        end = buf.find(b"\r\n\r\n")
        if end < 0:
            if len(buf) > _MAX_HEAD or eof:
                self._fail("a reply without a complete header")
            return
        lines = bytes(buf[:end]).decode("latin-1").split("\r\n")
        status_line = lines[0].split(" ", 2)
        if len(status_line) < 2 or not status_line[0].startswith("HTTP/1.") or not status_line[1].isdigit():
            self._fail(f"not an HTTP/1.x reply: {lines[0][:60]!r}")
            return
        status = int(status_line[1])
        headers: dict[str, str] = {}
        for line in lines[1:]:
            name, sep, value = line.partition(":")
            if sep:
                key = name.strip().lower()
                value = value.strip()
                headers[key] = f"{headers[key]}, {value}" if key in headers else value
        start = end + 4
        connection = headers.get("connection", "").lower()
        keep = ("close" not in connection) if status_line[0] == "HTTP/1.1" else ("keep-alive" in connection)
        if 100 <= status < 200:  # an interim reply (100 Continue): the real one follows
            del buf[:start]
            if buf:
                self._parse(eof=eof)
            return
        if "chunked" in headers.get("transfer-encoding", "").lower():
            body = self._chunked(start, eof)
            if body is None:
                return
            data, consumed = body
        elif "content-length" in headers:
            try:
                length = int(headers["content-length"])
            except ValueError:
                self._fail("a reply with a bad Content-Length")
                return
            if len(buf) - start < length:
                if eof:
                    self._fail("a reply cut short")
                return
            data, consumed = bytes(buf[start:start + length]), start + length
        elif status in (204, 304):
            data, consumed = b"", start
        else:  # framed by the connection's end
            if not eof:
                return
            data, consumed, keep = bytes(buf[start:]), len(buf), False
        del buf[:consumed]
        waiter = self._waiter
        self._waiter = None
        if waiter is not None and not waiter.done():
            waiter.set_result((status, headers, data, keep))

    def _chunked(self, pos: int, eof: bool) -> tuple[bytes, int] | None:
        """The body of a chunked reply starting at `pos`, and where it ends (None: not all here yet)."""
        buf = self._buf
        parts = []
        while True:
            line_end = buf.find(b"\r\n", pos)
            if line_end < 0:
                break
            try:
                size = int(bytes(buf[pos:line_end]).split(b";", 1)[0].strip(), 16)
            except ValueError:
                self._fail("a chunked reply with a bad chunk size")
                return None
            pos = line_end + 2
            if size == 0:
                trailer_end = buf.find(b"\r\n\r\n", pos - 2)
                if trailer_end < 0:
                    break
                return b"".join(parts), trailer_end + 4
            if len(buf) < pos + size + 2:
                break
            parts.append(bytes(buf[pos:pos + size]))
            pos += size + 2
        if eof:
            self._fail("a chunked reply cut short")
        return None

    def _fail(self, why: str) -> None:
        waiter, self._waiter = self._waiter, None
        self.close()
        if waiter is not None and not waiter.done():
            waiter.set_exception(HttpError(why))


class Http1Pool:
    """Keep-alive HTTP/1.1 connections to one origin (`host`, `port`), opened as requests need them.

    `headers` are sent with every request. The caller bounds how many requests run at
    once (the endpoint's in-flight gate), so the pool needs no limit of its own.
    """

    def __init__(self, host: str, port: int, *, headers: Mapping[str, str], timeout_s: float) -> None:
        self.host, self.port, self.timeout_s = host, port, timeout_s
        host_header = host if port == 80 else f"{host}:{port}"
        if ":" in host and not host.startswith("["):
            host_header = f"[{host}]:{port}"
        fixed = "".join(f"{k}: {v}\r\n" for k, v in headers.items() if k.lower() not in ("host", "content-length"))
        self._fixed = f"Host: {host_header}\r\n{fixed}".encode("latin-1")
        self._idle: list[_Connection] = []

    async def _connect(self) -> _Connection:
        loop = asyncio.get_running_loop()
        _, conn = await loop.create_connection(_Connection, self.host, self.port)
        return conn

    async def request(self, method: str, path: str, body: bytes | None = None
                      ) -> tuple[int, dict[str, str], bytes]:
        """Status, headers (lower-case names) and body of one request; raises HttpError, OSError,
        or asyncio.TimeoutError after `timeout_s`."""
        head = f"{method} {path} HTTP/1.1\r\n".encode("latin-1") + self._fixed
        data = head + (b"Content-Length: %d\r\n\r\n" % len(body) + body if body is not None else b"\r\n")
        loop = asyncio.get_running_loop()
        deadline = loop.time() + self.timeout_s
        while True:
            conn = None
            while self._idle:
                candidate = self._idle.pop()
                if not candidate.closed:
                    conn = candidate
                    break
            reused = conn is not None
            if conn is None:
                conn = await asyncio.wait_for(self._connect(), max(0.0, deadline - loop.time()))
            waiter = conn.send(data)
            timer = loop.call_at(deadline, _expire, waiter)
            try:
                status, headers, raw, keep = await waiter
            except HttpError:
                conn.close()
                if reused and not conn._received:
                    continue  # the server closed it while it was idle: once more on a new one
                raise
            except BaseException:
                conn.close()  # a timeout or a cancellation: the reply may still come, on a dead line
                raise
            finally:
                timer.cancel()
            conn.used = True
            if keep and not conn.closed:
                self._idle.append(conn)
            else:
                conn.close()
            return status, headers, raw

    def close(self) -> None:
        idle, self._idle = self._idle, []
        for conn in idle:
            conn.close()


def _expire(waiter: asyncio.Future[object]) -> None:
    if not waiter.done():
        waiter.set_exception(asyncio.TimeoutError())
