"""The web app: FastAPI routes over a `Catalog` of runs, Jinja2 pages, served by uvicorn on 127.0.0.1.

Every route reads; none writes to a run directory or takes a run's lock, so a
run never waits for the viewer. Handlers are plain functions, which FastAPI
runs on its thread pool: a slow render (a big run's figures) holds one thread
and the runs list stays quick. Pages poll small JSON or HTML fragments to
stay current (`static/view.js`), so no page needs a reload while a run plays.
"""

from __future__ import annotations

import errno
import socket
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

from fastapi import FastAPI, HTTPException, Query, Request
from fastapi.responses import HTMLResponse, JSONResponse, Response
from fastapi.staticfiles import StaticFiles
from fastapi.templating import Jinja2Templates

from societas.errors import BadInput, CorruptRun
from societas.view.catalog import Catalog, RunInfo, age
from societas.view.cost import Prices
from societas.view.render import Renderer  # its report and matplotlib imports wait for the first run page

HERE = Path(__file__).parent
MAX_COMPARE = 8
"""Runs one comparison page takes (the first ones picked)."""


def _pct(x: Any, digits: int = 1) -> str:
    return "–" if x is None else f"{x:.{digits}%}"


def _usd(x: Any) -> str:
    return "–" if x is None else f"${x:,.2f}" if x >= 0.01 or x == 0 else f"${x:.4f}"


def _num(x: Any) -> str:
    return "–" if x is None else f"{int(x):,}"


def _templates() -> Jinja2Templates:
    templates = Jinja2Templates(directory=str(HERE / "templates"))
    env = templates.env
    env.filters.update(pct=_pct, num=_num, usd=_usd, age=age)
    env.globals["urlencode"] = urlencode
    return templates


def create_app(root: str | Path, prices: Prices | None = None) -> FastAPI:
    """The app over the runs and sweeps below `root` (a runs folder, a sweep or one run directory).

    `prices` (model spec -> USD per million prompt, completion[, cached] tokens) adds money so far.
    """
    catalog = Catalog(Path(root), prices)
    renderer = Renderer()
    templates = _templates()
    app = FastAPI(title="societas view", docs_url=None, redoc_url=None, openapi_url=None)

    def page(request: Request, name: str, **context: Any) -> HTMLResponse:
        return templates.TemplateResponse(request, name, {"root": catalog.root, "priced": prices is not None,
                                                          **context})

    def find(rel: str) -> RunInfo:
        info = catalog.run(rel)
        if info is None:
            raise HTTPException(404, f"{rel}: no run directory of that name below {catalog.root}")
        return info

    @app.get("/static/report.css")  # before the mount, which would answer for it
    def report_css() -> Response:
        from societas.analysis.report import CSS

        return Response(CSS, media_type="text/css")

    app.mount("/static", StaticFiles(directory=str(HERE / "static")), name="static")

    @app.get("/", response_class=HTMLResponse)
    def runs_page(request: Request) -> HTMLResponse:
        return page(request, "runs.html", entries=catalog.newest_first())

    @app.get("/fragment/runs", response_class=HTMLResponse)
    def runs_fragment(request: Request) -> HTMLResponse:
        return page(request, "_runs_table.html", entries=catalog.newest_first())

    @app.get("/api/runs")
    def runs_json() -> JSONResponse:
        runs, sweeps = catalog.scan()
        return JSONResponse({"root": str(catalog.root), "runs": [r.as_dict() for r in runs],
                             "sweeps": [{"rel": s.rel, "name": s.name, "status": s.status,
                                         "runs": [r.as_dict() for r in s.runs]} for s in sweeps]})

    @app.get("/compare", response_class=HTMLResponse)
    def compare(request: Request, run: list[str] = Query(default=[])) -> HTMLResponse:
        picked = [find(r) for r in dict.fromkeys(run)][:MAX_COMPARE]
        if len(picked) < 2:
            raise HTTPException(400, "pick at least two runs to compare")
        try:
            body = renderer.comparison([r.path for r in picked], [r.version for r in picked])
        except (CorruptRun, FileNotFoundError) as exc:
            body = f'<div class="banner">Cannot read the runs now: {exc}</div>'
        return page(request, "compare.html", runs=picked, body=body, dropped=len(set(run)) - len(picked))

    @app.get("/run/{rel:path}/transcript", response_class=HTMLResponse)
    def transcript_page(request: Request, rel: str, agent: str | None = None, phase: str | None = None,
                        episode: str | None = None, round: str | None = None, invalid: str | None = None,
                        page_number: int = Query(1, alias="page")) -> HTMLResponse:
        from societas.view import transcripts

        info = find(rel)
        flt = transcripts.Filter(agent=agent or None, phase=_int(phase, "phase"), episode=_int(episode, "episode"),
                                 round=_int(round, "round"), invalid=invalid not in (None, "", "0"))
        try:
            shown = transcripts.page(info.path, flt, page_number)
            choices = transcripts.choices(info.path)
        except (CorruptRun, OSError) as exc:
            raise HTTPException(503, f"cannot read the run now: {exc}") from None
        return page(request, "transcript.html", run=info, flt=flt, shown=shown, choices=choices)

    @app.get("/fragment/run/{rel:path}/head", response_class=HTMLResponse)
    def run_head(request: Request, rel: str) -> HTMLResponse:
        return page(request, "_run_head.html", run=find(rel))

    @app.get("/fragment/run/{rel:path}/report", response_class=HTMLResponse)
    def run_report(request: Request, rel: str) -> HTMLResponse:
        info = find(rel)
        rendered, problem = _render(renderer, info)
        response = page(request, "_run_report.html", run=info, rendered=rendered, problem=problem)
        response.headers["X-Version"] = rendered.version if rendered is not None else ""
        return response

    @app.get("/api/run/{rel:path}")
    def run_json(rel: str) -> JSONResponse:
        return JSONResponse(find(rel).as_dict())

    @app.get("/run/{rel:path}", response_class=HTMLResponse)
    def run_page(request: Request, rel: str) -> HTMLResponse:
        # The header at once; the report comes in its fragment when it is not drawn yet (a big run takes seconds).
        info = find(rel)
        return page(request, "run.html", run=info, rendered=renderer.peek(info.path, info.version), problem=None)

    return app


def _render(renderer: Renderer, info: RunInfo) -> tuple[Any, str | None]:
    try:
        return renderer.run(info.path, info.version, live=info.status == "running"), None
    except (CorruptRun, FileNotFoundError, OSError) as exc:  # a part replaced under us: the next poll retries
        return None, str(exc)


def _int(text: str | None, name: str) -> int | None:
    if text is None or text.strip() == "":
        return None
    try:
        return int(text)
    except ValueError:
        raise HTTPException(400, f"{name} must be a whole number, got {text!r}") from None


def bind(port: int) -> socket.socket:
    """A listening socket on 127.0.0.1:`port` (0: any free port); a port in use is bad input."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind(("127.0.0.1", port))
    except OSError as exc:
        sock.close()
        if exc.errno in (errno.EADDRINUSE, errno.EACCES):
            raise BadInput(f"port {port} on 127.0.0.1: {exc.strerror}; pass --port N (0: any free port)") from None
        raise
    sock.listen(128)
    return sock


def serve(root: str | Path, port: int = 8765, *, prices: Prices | None = None, announce: Any = print) -> None:
    """Serve the app on 127.0.0.1 until interrupted; `announce` gets the URL once the port is bound."""
    import uvicorn

    root = Path(root)
    sock = bind(port)
    config = uvicorn.Config(create_app(root, prices), log_level="warning", access_log=False, lifespan="off")
    server = uvicorn.Server(config)
    announce(f"http://127.0.0.1:{sock.getsockname()[1]}/")
    server.run(sockets=[sock])
