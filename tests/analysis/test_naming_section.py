"""The naming game's section in `analyze` and the report: exact values on scripted runs, a committed-minority
sweep read across its runs, and language-model players over HTTP with their invalid share."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml

from societas.analysis import load_run
from societas.analysis.report import write_report
from societas.analysis.sections.naming import build, winner_share
from societas.config import bundled_config, parse_config
from societas.llm.base import ChatRequest
from societas.llm.testing import FakeOpenAIServer
from societas.runners.run import run_experiment
from societas.small_form import OFFLINE, small_form
from societas.sweeps import run_sweep


def _cli(*args: str) -> str:
    proc = subprocess.run([sys.executable, "-m", "societas.cli", *args], capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    return proc.stdout


def _config(tmp: Path, members: list[dict], **params: Any) -> dict:
    n = sum(m.get("count", 1) for m in members)
    return {"name": "naming-t", "seed": 1, "output_dir": str(tmp),
            "environment": {"id": "naming-game", "params": {"num_agents": n, "names": ["Q", "M"], **params}},
            "population": members, "matchmaking": {"kind": "population", "repetitions": 3}}


@pytest.fixture(scope="module")
def agreed(tmp_path_factory: pytest.TempPathFactory):
    """Four players who all say Q: consensus after exactly 3N = 12 interactions, 3 population rounds."""
    cfg = _config(tmp_path_factory.mktemp("agreed"), [{"name": "q", "policy": "scripted:committed", "count": 4,
                                                       "params": {"name": "Q"}}])
    rd, _ = run_experiment(parse_config(cfg), progress=False)
    return load_run(rd.path)


def test_exact_consensus_figures(agreed) -> None:
    view = build(agreed)
    table = view.tables[0].frame.iloc[0]
    assert table["runs"] == 3 and table["consensus"] == 1.0 and table["median"] == 3.0 and table["success"] == 1.0
    assert table["condition"] == "W=2: committed"
    winners = view.tables[1].frame
    assert winners["convention"].tolist() == ["Q"] and winners["runs"].tolist() == [3]
    share = winner_share(agreed.events)
    assert (share["share"] == 1.0).all() and sorted(share["population_round"].unique()) == [0, 1, 2]
    minority = view.tables[2].frame  # everyone is committed: no others to adopt
    assert minority["committed"].tolist() == [4] and minority["mean_adoption"].isna().all()


def test_analyze_and_report_show_the_naming_game(agreed, tmp_path: Path) -> None:
    out = _cli("analyze", str(agreed.path))
    assert "time to consensus per condition" in out and "winning names across runs" in out
    assert re.search(r"W=2: committed\s*│\s*4\s*│\s*3\s*│\s*100%\s*│\s*3\.0", out), out
    html = write_report([agreed.path], tmp_path / "r.html").read_text()
    assert "Naming game" in html and html.count("data:image/png;base64") >= 3
    for alt in ("convention share over time", "time to consensus", "winning names"):
        assert f'alt="{alt}"' in html


def test_committed_minority_sweep_across_runs(tmp_path: Path) -> None:
    member = {"name": "p", "policy": "scripted:best_response"}
    committed = {"name": "c", "policy": "scripted:committed", "params": {"name": "M"}}
    cfg = _config(tmp_path, [{**committed, "count": 1}, {**member, "count": 5}], prefill="Q", rounds=15)
    cfg["matchmaking"]["repetitions"] = 4
    cfg["sweep"] = {"grid": {"population": [[{**member, "count": 6}],
                                            [{**committed, "count": 1}, {**member, "count": 5}],
                                            [{**committed, "count": 3}, {**member, "count": 3}]]}}
    sweep = run_sweep(parse_config(cfg)).path
    out = _cli("analyze", str(sweep))
    assert "adoption against the committed minority" in out and "Critical minority" in out
    assert "c x3 + p x3" in out  # the grid's populations as members and counts
    rows = re.findall(r"│\s*(\d+)\s*│\s*([\d.]+)%\s*│\s*4\s*│", out)
    assert [r[0] for r in rows] == ["0", "1", "3"] and rows[0][1] == "0.0"  # sizes, and no committed: no flips
    _cli("report", str(sweep), "-o", str(tmp_path / "sweep.html"))
    html = (tmp_path / "sweep.html").read_text()
    assert "Committed minority across runs" in html and 'alt="adoption against the committed minority"' in html


def _paper_reply(request: ChatRequest) -> str:
    """A reply as the paper asks for it: a dictionary, its value first, the reasoning naming other names."""
    listed = re.search(r"pick from are: ([^.]+)\.", request.messages[-1]["content"]).group(1).split(", ")
    return f"{{'value': '{listed[-1]}', 'reason': 'not {listed[0]}, my partners said {listed[-1]}'}}"


@pytest.mark.parametrize(("responder", "invalid"), [(_paper_reply, 0.0), ("random", 1.0)])
def test_naming_game_llm_over_http_reports_its_invalid_share(tmp_path: Path, responder: Any,
                                                              invalid: float) -> None:
    data = small_form(yaml.safe_load(bundled_config("naming_game_llm").read_text()), OFFLINE)
    with FakeOpenAIServer(responder) as server:
        cfg = parse_config({**data, "model": f"openai:fake@{server.base_url}", "output_dir": str(tmp_path),
                            "llm": {**data["llm"], "max_attempts": 2}})
        rd, summary = run_experiment(cfg, progress=False)
    run = load_run(rd.path)
    lm = run.events[run.events["policy"] == "llm"]
    assert len(lm) == 4 * 4 * 2 and (~lm["valid"]).mean() == invalid
    assert summary["invalid_actions"] == int(invalid * len(lm))
    out = _cli("analyze", str(rd.path))
    assert f"invalid fallbacks (no usable answer, the environment's default played): {invalid:.0%}" in out
    assert ("not interpretable" in out) == (invalid > 0.2)
