"""`societas view` over HTTP: the real command line serving a folder of runs on 127.0.0.1."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
from pathlib import Path

import pytest

from societas.analysis.transcript import invalid_decisions
from societas.view.transcripts import PAGE_DECISIONS

httpx = pytest.importorskip("httpx", reason="needs httpx (the [dev] extra)")
pytest.importorskip("fastapi", reason="societas view needs the [view] extra")


def _tree(root: Path) -> dict[str, tuple[int, int]]:
    """Every file below root with its size and modification time."""
    return {str(p.relative_to(root)): (p.stat().st_size, p.stat().st_mtime_ns)
            for p in sorted(root.rglob("*")) if p.is_file()}


@pytest.fixture(scope="module")
def client(view_server) -> httpx.Client:
    with httpx.Client(base_url=view_server.url, timeout=120) as c:
        yield c


def test_the_runs_list_shows_every_run_and_sweep(client: httpx.Client, runs_folder: dict[str, Path]) -> None:
    page = client.get("/")
    assert page.status_code == 200
    for key in ("scripted", "echo", "stopped"):
        assert f'href="/run/{runs_folder[key].name}"' in page.text
    assert runs_folder["sweep"].name in page.text
    assert "model endpoint failed" in page.text  # the stopped run's error, on the list
    data = client.get("/api/runs").json()
    statuses = {r["rel"]: r["status"] for r in data["runs"]}
    assert statuses[runs_folder["stopped"].name] == "stopped"
    assert statuses[runs_folder["echo"].name] == "complete"
    (sweep,) = data["sweeps"]
    assert len(sweep["runs"]) == 2 and all(r["status"] == "complete" for r in sweep["runs"])


def test_a_run_page_has_the_reports_tables_and_figures(client: httpx.Client, runs_folder: dict[str, Path]) -> None:
    page = client.get(f"/run/{runs_folder['echo'].name}")
    assert page.status_code == 200 and 'data-version=""' in page.text  # not drawn yet: the fragment follows
    fragment = client.get(f"/fragment/run/{runs_folder['echo'].name}/report")
    for title in ("Models and tokens", "Invalid actions and retries", "Agents"):
        assert f"<h2>{title}</h2>" in fragment.text
    assert fragment.text.count("<img src=\"data:image/png;base64,") >= 2
    state = client.get(f"/api/run/{runs_folder['echo'].name}").json()
    assert fragment.headers["X-Version"] == state["version"]
    again = client.get(f"/run/{runs_folder['echo'].name}")  # drawn once, the page carries it
    assert f'data-version="{state["version"]}"' in again.text and "<h2>Agents</h2>" in again.text
    sweep_run = client.get("/api/runs").json()["sweeps"][0]["runs"][0]["rel"]
    assert client.get(f"/run/{sweep_run}").status_code == 200  # a run inside a sweep


def test_the_transcript_filtered_to_invalid_decisions(client: httpx.Client, runs_folder: dict[str, Path]) -> None:
    run = runs_folder["echo"]
    want = invalid_decisions(run)
    page = client.get(f"/run/{run.name}/transcript", params={"invalid": 1})
    assert page.status_code == 200
    assert f"<b>{len(want):,}</b> decisions with an unusable reply" in page.text
    shown = min(PAGE_DECISIONS, len(want))
    assert page.text.count('class="turn fell"') + page.text.count('class="turn bad"') == shown
    one = want[want["agent"] == "llm-scot"]
    filtered = client.get(f"/run/{run.name}/transcript", params={"invalid": 1, "agent": "llm-scot", "round": 3})
    assert f"<b>{(one['round'] == 3).sum():,}</b> decisions" in filtered.text
    assert "prediction question" in filtered.text  # social chain of thought asks for a prediction first
    last = client.get(f"/run/{run.name}/transcript", params={"invalid": 1, "page": 10_000})
    assert f"of {len(want):,}" not in last.text and "next ›" not in last.text
    scripted = client.get(f"/run/{runs_folder['scripted'].name}/transcript", params={"episode": 0})
    assert 'class="turn scripted"' in scripted.text


def test_comparison_of_picked_runs(client: httpx.Client, runs_folder: dict[str, Path]) -> None:
    picked = [runs_folder["scripted"].name, runs_folder["echo"].name]
    page = client.get("/compare", params=[("run", r) for r in picked])
    assert page.status_code == 200
    assert "Agents across runs" in page.text and "alt=\"cooperation by round per run\"" in page.text
    assert client.get("/compare", params={"run": picked[0]}).status_code == 400


def test_nothing_outside_the_folder_is_served(client: httpx.Client, runs_folder: dict[str, Path]) -> None:
    assert client.get("/run/../../etc").status_code == 404
    assert client.get("/run/%2e%2e/%2e%2e/etc/transcript").status_code == 404
    assert client.get("/run/nonexistent").status_code == 404
    assert client.get(f"/run/{runs_folder['echo'].name}/transcript", params={"round": "x"}).status_code == 400


def test_reading_never_writes_to_a_run_directory(client: httpx.Client, runs_folder: dict[str, Path]) -> None:
    root = runs_folder["root"]
    before = _tree(root)
    for path in ("/", "/fragment/runs", "/api/runs", f"/run/{runs_folder['stopped'].name}",
                 f"/run/{runs_folder['scripted'].name}/transcript?invalid=1"):
        assert client.get(path).status_code == 200
    assert _tree(root) == before


def test_the_command_line_refuses_what_it_cannot_serve(tmp_path: Path) -> None:
    env = dict(os.environ)
    missing = subprocess.run([sys.executable, "-m", "societas.cli", "view", str(tmp_path / "nope")],
                             capture_output=True, text=True, env=env, timeout=60)
    assert missing.returncode == 2 and "not a folder" in missing.stderr and "Traceback" not in missing.stderr
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        taken = subprocess.run([sys.executable, "-m", "societas.cli", "view", str(tmp_path), "--port", str(port)],
                               capture_output=True, text=True, env=env, timeout=60)
    assert taken.returncode == 2 and f"port {port}" in taken.stderr and "--port" in taken.stderr
    assert len(taken.stderr.strip().splitlines()) == 1
    prices = tmp_path / "prices.yaml"
    prices.write_text("fake:echo: cheap\n")
    unpriced = subprocess.run([sys.executable, "-m", "societas.cli", "view", str(tmp_path), "--prices", str(prices)],
                              capture_output=True, text=True, env=env, timeout=60)
    assert unpriced.returncode == 2 and "fake:echo: expected" in unpriced.stderr


def test_with_prices_the_list_and_the_run_show_the_cost(runs_folder: dict[str, Path], tmp_path: Path) -> None:
    from served import ViewServer

    prices = tmp_path / "prices.json"
    prices.write_text('{"fake:echo": [2.5, 10.0], "fake:random": [0.15, 0.6]}')
    server = ViewServer(runs_folder["root"], "--prices", str(prices))
    try:
        with httpx.Client(base_url=server.url, timeout=120) as c:
            runs = {r["rel"]: r for r in c.get("/api/runs").json()["runs"]}
            echo = runs[runs_folder["echo"].name]
            assert echo["cost_usd"] > 0 and runs[runs_folder["stopped"].name]["cost_usd"] is None  # not priced
            assert f"${echo['cost_usd']:,.2f}" in c.get("/").text
            assert "cost so far (USD)" in c.get(f"/fragment/run/{runs_folder['echo'].name}/head").text
    finally:
        server.stop()
