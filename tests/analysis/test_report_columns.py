"""The report reads only the events columns its parts name: the same report as from every column, clear errors."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pyarrow.parquet as pq
import pytest
from typer.testing import CliRunner

from societas.analysis import figure_cache
from societas.analysis.load import load_run
from societas.analysis.report import comparison_html, load_for_report, report_sections, write_report
from societas.analysis.sections import Section, register, sections
from societas.cli import app
from societas.config import load_config, parse_config
from societas.errors import MissingColumns
from societas.runners.run import run_experiment


def _small(name: str, out: Path, *, model: str | None = None, repetitions: int = 1, **params: object):
    cfg = load_config(name, model=model, output_dir=str(out))
    env = cfg.environment.model_copy(update={"params": {**cfg.environment.params, **params}})
    return cfg.model_copy(update={"sweep": None, "environment": env,
                                  "matchmaking": cfg.matchmaking.model_copy(update={"repetitions": repetitions})})


@pytest.fixture(scope="module")
def runs(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """A run of each study section, small: matrix games with a model that never answers, donors, the rest."""
    out = tmp_path_factory.mktemp("kinds")
    pd_cfg = load_config("pd_tournament", model="fake:echo", output_dir=str(out))
    pd_cfg = pd_cfg.model_copy(update={"population": [m for m in pd_cfg.population
                                                      if m.name in ("llm", "tit-for-tat", "grim-trigger")]})
    configs = {
        "pd": pd_cfg,
        "bos": _small("bos_tournament", out, rounds=5),
        "donor": parse_config({
            "name": "small-donors", "seed": 0, "output_dir": str(out),
            "environment": {"id": "donor-game", "params": {"num_agents": 4, "rounds": 2}},
            "population": [{"name": "free-rider", "policy": "scripted:free_rider", "count": 2},
                           {"name": "reciprocator", "policy": "scripted:reciprocator", "count": 2}],
            "society": {"kind": "evolution", "generations": 3, "societies": 2}}),
        "lockin": _small("lockin_small", out),
        "commons": _small("commons", out, months=4),
        "naming": _small("committed_minority", out, repetitions=2, rounds=4),
        "partner": _small("partner_adaptation", out, model="fake:random"),
        "tom": _small("tom_battery", out, model="fake:random"),
        "actors": _small("tom_gridworld", out, model="fake:random"),
    }
    return {key: run_experiment(cfg, progress=False)[0].path for key, cfg in configs.items()}


def _fresh_figures(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, name: str) -> None:
    """A new, empty figure cache, so the next report draws every figure again."""
    monkeypatch.setenv("SOCIETAS_CACHE_DIR", str(tmp_path / name))


@pytest.mark.parametrize("kind", ["pd", "bos", "donor", "lockin", "commons", "naming", "partner", "tom", "actors"])
def test_the_report_of_a_run_is_the_same_from_its_columns(kind: str, runs: dict[str, Path], tmp_path: Path,
                                                          monkeypatch: pytest.MonkeyPatch) -> None:
    path = runs[kind]
    full = load_run(path)
    _fresh_figures(tmp_path, monkeypatch, "a")
    expected = report_sections(full, transcripts=False)
    _fresh_figures(tmp_path, monkeypatch, "b")
    read = load_for_report(path, transcripts=False)
    assert len(read.events) == len(full.events) and len(read.events.columns) < len(full.events.columns)
    assert "messages" not in read.llm_calls
    assert report_sections(read, transcripts=False) == expected  # tables and the figures' PNG bytes
    if kind in ("pd", "donor"):  # with the transcripts, as `societas report` writes it
        _fresh_figures(tmp_path, monkeypatch, "c")
        assert report_sections(load_for_report(path), transcripts=True) == report_sections(full, transcripts=True)


def test_a_comparison_is_the_same_from_its_columns(runs: dict[str, Path], tmp_path: Path,
                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    paths = [runs["pd"], runs["bos"]]
    _fresh_figures(tmp_path, monkeypatch, "a")
    expected = comparison_html([load_run(p) for p in paths])
    _fresh_figures(tmp_path, monkeypatch, "b")
    read = comparison_html([load_for_report(p, transcripts=False, comparison=True) for p in paths])
    assert read == expected and "Agents across runs" in read


@pytest.fixture
def greedy_section():
    """The matrix games' section asking for a column no run has (replaced by key, restored after)."""
    (original,) = [s for s in sections() if s.key == "agents"]
    register(Section(key="agents", title="Agents", applies=original.applies, build=original.build,
                     columns=(*(original.columns or ()), "no_such_column")))
    yield
    register(original)


def test_a_section_asking_for_a_column_the_run_lacks_fails_clearly(runs: dict[str, Path], greedy_section) -> None:
    with pytest.raises(MissingColumns, match=r"no column 'no_such_column', which the report's section 'agents' "
                                             r"reads"):
        load_for_report(runs["pd"])
    result = CliRunner().invoke(app, ["report", str(runs["pd"])])
    assert result.exit_code == 2, result.output
    assert "no_such_column" in result.output and "Traceback" not in result.output
    assert not (runs["pd"] / "report.html").exists()


def test_a_run_without_a_column_the_report_reads_is_named(runs: dict[str, Path], tmp_path: Path) -> None:
    copy = Path(shutil.copytree(runs["bos"], tmp_path / "old"))
    for part in sorted((copy / "events").glob("*.parquet")):  # as if recorded before `retries` existed
        pq.write_table(pq.read_table(part).drop_columns(["retries"]), part)
    with pytest.raises(MissingColumns, match=r"events: no column 'retries', which the report reads"):
        load_for_report(copy)


def test_figures_are_drawn_once_per_complete_run_and_never_for_a_stopped_one(runs: dict[str, Path],
                                                                              tmp_path: Path) -> None:
    cache = tmp_path / "cache"
    env = dict(os.environ, SOCIETAS_CACHE_DIR=str(cache), PYTHONPATH=os.pathsep.join(sys.path))
    script = ("import sys; from societas.analysis.report import write_report; "
              "write_report([sys.argv[1]], out=sys.argv[2]); print('matplotlib' in sys.modules)")

    def report(path: Path, out: Path) -> tuple[str, str]:
        proc = subprocess.run([sys.executable, "-c", script, str(path), str(out)], capture_output=True, text=True,
                              env=env, timeout=300)
        assert proc.returncode == 0, proc.stderr
        return proc.stdout.strip(), out.read_text().split("report written", 1)[1].split("</header>", 1)[1]

    imported, first = report(runs["donor"], tmp_path / "first.html")
    drawn = sorted(cache.rglob("*.png"))
    assert imported == "True" and len(drawn) == 3  # resources, cooperation, policy shares
    imported, again = report(runs["donor"], tmp_path / "again.html")
    assert imported == "False" and again == first  # from the cache: matplotlib not even imported
    stopped = Path(shutil.copytree(runs["donor"], tmp_path / "stopped"))
    (stopped / "summary.json").unlink()
    imported, _ = report(stopped, tmp_path / "stopped.html")
    assert imported == "True" and sorted(cache.rglob("*.png")) == drawn  # drawn afresh, nothing kept
    assert figure_cache.run_key(stopped) is None


def test_importing_the_report_and_its_sections_leaves_matplotlib_and_scipy_unloaded() -> None:
    code = ("import sys; import societas.analysis.report, societas.view.app, societas.cli; "
            "from societas.analysis.sections import sections; sections(); "
            "print(sorted(m for m in ('matplotlib', 'matplotlib.pyplot', 'scipy.stats') if m in sys.modules))")
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120,
                          env=dict(os.environ, PYTHONPATH=os.pathsep.join(sys.path)))
    assert proc.returncode == 0 and proc.stdout.strip() == "[]", proc.stderr


def test_write_report_reads_the_figures_of_a_changed_run_again(runs: dict[str, Path], tmp_path: Path,
                                                               monkeypatch: pytest.MonkeyPatch) -> None:
    copy = Path(shutil.copytree(runs["donor"], tmp_path / "copy"))
    before = figure_cache.run_key(copy)
    write_report([copy])
    assert figure_cache.run_key(copy) == before  # report.html is not one of the run's files
    part = sorted((copy / "events").glob("*.parquet"))[0]
    os.utime(part, ns=(part.stat().st_atime_ns, part.stat().st_mtime_ns + 1))
    assert figure_cache.run_key(copy) != before
