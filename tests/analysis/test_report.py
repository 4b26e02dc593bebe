"""The HTML report on real run directories: self-contained, the expected tables and figures, the CLI."""

from __future__ import annotations

import base64
import re
import shutil
from pathlib import Path

import pytest
from typer.testing import CliRunner

from societas.analysis import load_run
from societas.analysis.report import write_report
from societas.cli import app
from societas.config import load_config, parse_config
from societas.llm.base import ChatRequest
from societas.llm.testing import FakeOpenAIServer
from societas.runners.run import run_experiment


@pytest.fixture(scope="module")
def runs(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    out = tmp_path_factory.mktemp("runs")
    pd_run, _ = run_experiment(load_config("pd_tournament", output_dir=str(out)), progress=False)
    llm_run, _ = run_experiment(load_config("pd_tournament", model="fake:random", output_dir=str(out)),
                                progress=False)
    donor = parse_config({
        "name": "small-donors", "seed": 0, "output_dir": str(out),
        "environment": {"id": "donor-game", "params": {"num_agents": 4, "rounds": 2}},
        "population": [{"name": "free-rider", "policy": "scripted:free_rider", "count": 2},
                       {"name": "reciprocator", "policy": "scripted:reciprocator", "count": 2}],
        "society": {"kind": "evolution", "generations": 3, "societies": 2},
    })
    donor_run, _ = run_experiment(donor, progress=False)
    return {"pd": pd_run.path, "llm": llm_run.path, "donor": donor_run.path}


def self_contained(text: str) -> None:
    """Nothing the page would fetch: images inline, links only to its own anchors, no scripts."""
    for url in re.findall(r'\b(?:src|href)\s*=\s*"([^"]*)"', text):
        assert url.startswith(("data:", "#")), url
    assert "<script" not in text and "@import" not in text and "url(" not in text
    assert "http:" not in text and "https:" not in text and "<link" not in text


def images(text: str) -> list[bytes]:
    return [base64.b64decode(b) for b in re.findall(r'src="data:image/png;base64,([^"]+)"', text)]


def test_pd_report(runs: dict[str, Path]) -> None:
    path = write_report([runs["pd"]])
    assert path == runs["pd"] / "report.html"
    text = path.read_text()
    self_contained(text)
    pngs = images(text)
    assert len(pngs) == 2 and all(p.startswith(b"\x89PNG") for p in pngs)  # cooperation by round, payoffs
    assert text.count('<table class="data') >= 2 and "tit-for-tat" in text and "grim-trigger" in text
    assert "P(C | partner C)" in text and "No model calls" in text and "llm, llm-scot" in text
    assert "pd-tournament" in text and "seed 0" in text and "Resolved config (YAML)" in text
    assert "Incomplete run" not in text


def test_report_on_model_calls(runs: dict[str, Path], tmp_path: Path) -> None:
    text = write_report([runs["llm"]], out=tmp_path / "llm.html").read_text()
    self_contained(text)
    assert "fake:random" in text and "prompt tokens" in text and "Tokens per decision" in text
    assert re.search(r"<td>llm-scot</td>\s*<td>fake:random</td>", text)  # per agent and model


def test_donor_report(runs: dict[str, Path], tmp_path: Path) -> None:
    path = write_report([runs["donor"]], out=tmp_path)
    assert path == tmp_path / "report.html"
    text = path.read_text()
    self_contained(text)
    assert len(images(text)) == 3  # resources, cooperation, policy shares
    assert "2 independent societies, 3 generations" in text
    assert "scripted:reciprocator" in text and "survived selection" in text and "reciprocity" in text
    assert "free-rider-1" not in text  # no per-agent table for evolving populations


def test_incomplete_run_says_so(runs: dict[str, Path], tmp_path: Path) -> None:
    copy = Path(shutil.copytree(runs["donor"], tmp_path / "stopped"))
    (copy / "summary.json").unlink()
    text = write_report([copy]).read_text()
    assert "Incomplete run" in text and "societas resume" in text


def careless_donor(request: ChatRequest) -> str:
    """Writes a strategy, then never answers a donation in the required form."""
    if "sentence that starts" in request.messages[-1]["content"]:
        return "My strategy will be to give a little to those who give."
    return "I give 3 units."


def test_invalid_actions_and_failed_requests(tmp_path: Path) -> None:
    with FakeOpenAIServer(careless_donor) as server:
        cfg = parse_config({
            "name": "careless", "model": f"openai:fake@{server.base_url}", "output_dir": str(tmp_path),
            "environment": {"id": "donor-game", "params": {"num_agents": 4, "rounds": 2}},
            "population": [{"name": "donor", "policy": "llm", "count": 4}],
            "society": {"kind": "evolution", "generations": 1},
            "llm": {"max_attempts": 2, "structured_outputs": "none"},
        })
        rd, _ = run_experiment(cfg, progress=False)
    invalid = int((~load_run(rd.path).events["valid"]).sum())
    text = write_report([rd.path]).read_text()
    assert invalid > 0 and f"{invalid} of " in text
    assert "Failed model requests" in text and "unusable replies" in text


def test_comparison_of_two_runs(runs: dict[str, Path], tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    path = write_report([runs["pd"], runs["llm"]])
    assert path.parent == runs["pd"].parent and path.name.startswith("comparison-2-runs-")  # beside the runs
    assert write_report([runs["llm"], runs["pd"]]) == path  # named after the set of runs, not their order
    text = path.read_text()
    self_contained(text)
    assert "Comparison of 2 runs" in text and runs["pd"].name in text and runs["llm"].name in text
    assert "Agents across runs" in text and ">no model<" in text and ">fake:random<" in text  # labels tell them apart
    assert len(images(text)) == 1 + 2 + 2  # overlaid curves, then each run's figures
    assert 'href="#run1"' in text and 'href="#run2"' in text


def test_cli_report(runs: dict[str, Path], tmp_path: Path) -> None:
    runner = CliRunner()
    target = tmp_path / "out" / "pd.html"
    result = runner.invoke(app, ["report", str(runs["pd"]), "-o", str(target)])
    assert result.exit_code == 0, result.output
    assert result.stdout.strip() == str(target) and target.stat().st_size > 10_000
    missing = runner.invoke(app, ["report", str(runs["pd"]), str(tmp_path / "nowhere")])
    assert missing.exit_code == 2
    assert len(missing.stderr.strip().splitlines()) == 1 and "not a run or sweep directory" in missing.stderr


@pytest.mark.parametrize(("config", "section"), [("lockin_small", "Diversity and lock-in"),
                                                 ("tom_battery", "Theory of mind"),
                                                 ("partner_adaptation", "Partner adaptation")])
def test_study_sections(tmp_path: Path, config: str, section: str) -> None:
    from societas.config import load_config
    from societas.runners.run import run_experiment

    rd, _ = run_experiment(load_config(config, output_dir=str(tmp_path)), progress=False)
    html_text = write_report([rd.path]).read_text()
    assert f">{section}</h2>" in html_text and "<table" in html_text
    assert "data:image/png;base64," in html_text
