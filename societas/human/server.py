"""The web server of the human seats: one page per seat, served in the run's own event loop.

FastAPI routes over a `SeatHub`, run by uvicorn as a task of the run's loop
(so an answer resolves the waiting agent's future directly, with no threads).
Each seat's page is `/seat/TOKEN`; it long-polls `/seat/TOKEN/state` and posts
its answers to `/seat/TOKEN/answer`. Ctrl-C stays the run's: uvicorn's signal
handlers are not installed.
"""

from __future__ import annotations

import asyncio
import contextlib
import socket
from collections.abc import Iterator
from importlib import resources
from typing import Any

from societas.errors import BadInput, MissingExtra
from societas.human.hub import SeatError, SeatHub

LONG_POLL_S = 20.0
_PAGES = resources.files("societas.human") / "pages"
_ASSETS = {"seat.css": "text/css; charset=utf-8", "seat.js": "text/javascript; charset=utf-8"}


def _page(name: str) -> str:
    return (_PAGES / name).read_text(encoding="utf-8")


def create_app(hub: SeatHub) -> Any:
    """The FastAPI application of one run's seats."""
    try:
        from fastapi import Body, FastAPI, Request
        from fastapi.responses import HTMLResponse, JSONResponse, Response
    except ImportError:
        raise MissingExtra("a human seat (policy: human)", "view") from None

    app = FastAPI(docs_url=None, redoc_url=None, openapi_url=None)
    no_store = {"Cache-Control": "no-store"}

    @app.exception_handler(SeatError)
    async def _seat_error(_: Request, exc: SeatError) -> JSONResponse:
        return JSONResponse({"error": str(exc)}, status_code=exc.status, headers=no_store)

    @app.get("/", response_class=HTMLResponse)
    async def index() -> str:
        return _page("index.html")

    @app.get("/assets/{name}")
    async def asset(name: str) -> Response:
        if name not in _ASSETS:
            return Response(status_code=404)
        return Response(_page(name), media_type=_ASSETS[name])

    @app.get("/seat/{token}", response_class=HTMLResponse)
    async def seat_page(token: str) -> HTMLResponse:
        hub.seat_for(token)
        return HTMLResponse(_page("seat.html"), headers=no_store)

    @app.get("/seat/{token}/state")
    async def state(token: str, since: int | None = None) -> JSONResponse:
        data = hub.state(token) if since is None else await hub.wait_state(token, since, LONG_POLL_S)
        return JSONResponse(data, headers=no_store)

    @app.post("/seat/{token}/answer")
    async def answer(token: str, question: int = Body(...), value: Any = Body(...)) -> JSONResponse:
        return JSONResponse(hub.answer(token, question, value), headers=no_store)

    return app


class SeatServer:
    """Serves a hub's pages on HOST:PORT (0 = any free port) until `stop`."""

    def __init__(self, hub: SeatHub, *, host: str = "127.0.0.1", port: int = 0) -> None:
        self.hub = hub
        self.host = host
        self.port = port
        self._server: Any = None
        self._task: asyncio.Task[None] | None = None

    @property
    def base_url(self) -> str:
        """The address people open: a server on every interface is named by this machine's host name."""
        host = socket.getfqdn() if self.host in ("0.0.0.0", "::", "") else self.host
        host = f"[{host}]" if ":" in host else host
        return f"http://{host}:{self.port}"

    def urls(self) -> dict[str, str]:
        """Member -> the link its person opens."""
        return {name: self.base_url + path for name, path in self.hub.paths().items()}

    async def start(self) -> None:
        try:
            import uvicorn
        except ImportError:
            raise MissingExtra("a human seat (policy: human)", "view") from None

        class _Server(uvicorn.Server):
            @contextlib.contextmanager
            def capture_signals(self) -> Iterator[None]:  # the run handles Ctrl-C
                yield

        app = create_app(self.hub)
        sock = _listen(self.host, self.port)
        self.port = sock.getsockname()[1]
        config = uvicorn.Config(app, log_level="warning", lifespan="off", access_log=False,
                                timeout_graceful_shutdown=2)
        self._server = _Server(config)
        self._task = asyncio.create_task(self._server.serve(sockets=[sock]))
        while not self._server.started:
            if self._task.done():
                self._task.result()  # a failure to start raises here
                raise BadInput(f"the seat server on {self.base_url} stopped while starting")
            await asyncio.sleep(0.01)

    async def stop(self, linger_s: float = 3.0) -> None:
        """Tell the pages the run is over (waiting up to `linger_s` for open ones to hear it) and shut down."""
        self.hub.close()
        if self._server is not None and self._task is not None:
            if self._server.started:
                await self.hub.told(linger_s)
            self._server.should_exit = True
            with contextlib.suppress(asyncio.CancelledError):
                await self._task


def _listen(host: str, port: int) -> socket.socket:
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    # proto named, so asyncio sets TCP_NODELAY on each connection (it checks the proto): without it a
    # response's headers and body, written apart, wait out the client's delayed ACK (~40 ms a request).
    sock = socket.socket(family, socket.SOCK_STREAM, socket.IPPROTO_TCP)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind((host, port))
    except OSError as exc:
        sock.close()
        raise BadInput(f"human.host/port: cannot listen on {host}:{port}: {exc.strerror or exc}") from None
    sock.set_inheritable(True)
    return sock
