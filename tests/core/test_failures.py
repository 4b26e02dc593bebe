"""Every failure is one line with the exit code that says whose it is (README, "Exit codes").

2: bad input (paths, arguments, a missing extra, a damaged run directory);
3: the world failing at run time (an endpoint down, a full disk, a cluster out of reach).
"""

from __future__ import annotations

import errno
import shutil
import sys
from pathlib import Path

import pytest
from typer.testing import CliRunner

from societas.cli import app
from societas.config import load_config
from societas.runners.run import RunInterrupted, run_experiment

SMALL = ["gpt4", "tit-for-tat", "random"]


def cli(*args: str):
    result = CliRunner().invoke(app, list(args))
    lines = result.stderr.strip().splitlines()
    return result.exit_code, lines


def one_line(lines: list[str], *needles: str) -> None:
    assert len(lines) == 1, lines
    assert lines[0].startswith("error: ") and "Traceback" not in lines[0]
    for n in needles:
        assert n in lines[0], lines[0]


@pytest.fixture(scope="module")
def done_run(tmp_path_factory: pytest.TempPathFactory) -> Path:
    tmp = tmp_path_factory.mktemp("done")
    cfg = load_config("pd_tournament", output_dir=str(tmp))
    cfg = cfg.model_copy(update={"population": [m for m in cfg.population if m.name in SMALL]})
    rd, _ = run_experiment(cfg, progress=False)
    return rd.path


def copy_run(src: Path, tmp_path: Path) -> Path:
    dst = tmp_path / src.name
    shutil.copytree(src, dst)
    return dst


def test_dead_endpoint_stops_before_anything_is_written(tmp_path: Path) -> None:
    code, lines = cli("run", "pd_tournament", "--model", "openai:m@http://127.0.0.1:9/v1", "--out",
                      str(tmp_path / "runs"), "--quiet")
    assert code == 3
    one_line(lines, "openai:m@http://127.0.0.1:9/v1", "ConnectionRefused", "nothing was written")
    assert not (tmp_path / "runs").exists()


def test_out_naming_a_file(tmp_path: Path) -> None:
    target = tmp_path / "a-file"
    target.write_text("x")
    code, lines = cli("run", "pd_tournament", "--out", str(target), "--quiet")
    assert code == 2
    one_line(lines, str(target))


def test_out_on_a_read_only_filesystem(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    def read_only(self: Path, *args: object, **kwargs: object) -> None:
        raise OSError(errno.EROFS, "Read-only file system", str(self))

    monkeypatch.setattr(Path, "mkdir", read_only)
    code, lines = cli("run", "pd_tournament", "--out", str(tmp_path / "ro"), "--quiet")
    assert code == 2
    one_line(lines, "Read-only file system", str(tmp_path / "ro"))


def test_report_to_an_unwritable_place(done_run: Path, tmp_path: Path) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("x")
    code, lines = cli("report", str(done_run), "-o", str(blocker / "sub" / "r.html"))
    assert code == 2
    one_line(lines)


def test_hf_without_torch_names_the_extra(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "torch", None)  # import torch -> ImportError
    monkeypatch.delitem(sys.modules, "societas.llm.hf", raising=False)
    code, lines = cli("run", "pd_tournament", "--model", "hf:/x", "--out", str(tmp_path), "--quiet")
    assert code == 2
    one_line(lines, "[hf]", "pip install 'societas[hf]'")


def test_hf_path_without_a_model(tmp_path: Path) -> None:
    pytest.importorskip("transformers")
    code, lines = cli("run", "pd_tournament", "--model", f"hf:{tmp_path / 'nothing'}", "--out", str(tmp_path),
                      "--quiet")
    assert code == 2
    one_line(lines, "no model directory")


def test_unreachable_ray_address_fails_fast_and_writes_nothing(tmp_path: Path) -> None:
    code, lines = cli("run", "pd_tournament", "--runner", "ray", "--address", "127.0.0.1:1", "--out",
                      str(tmp_path / "runs"), "--quiet")
    assert code == 3
    one_line(lines, "127.0.0.1:1", "cannot reach Ray")
    assert not (tmp_path / "runs").exists()


@pytest.mark.parametrize("command", ["analyze", "report", "resume"])
def test_a_damaged_events_part_is_named(done_run: Path, tmp_path: Path, command: str) -> None:
    run = copy_run(done_run, tmp_path)
    part = sorted((run / "events").glob("part-*.parquet"))[0]
    part.write_bytes(b"not parquet at all")
    (run / "summary.json").unlink()  # so resume has work to do
    code, lines = cli(command, str(run))
    assert code == 2
    one_line(lines, part.name)


@pytest.mark.parametrize("name", ["summary.json", "config.yaml"])
@pytest.mark.parametrize("command", ["analyze", "report", "resume"])
def test_a_damaged_json_or_yaml_is_named(done_run: Path, tmp_path: Path, name: str, command: str) -> None:
    run = copy_run(done_run, tmp_path)
    (run / name).write_text("{{{: not [valid")
    code, lines = cli(command, str(run))
    assert code == 2
    one_line(lines, name)


def test_resume_of_a_complete_run_changes_nothing(done_run: Path, tmp_path: Path) -> None:
    run = copy_run(done_run, tmp_path)
    before = {p: p.read_bytes() for p in run.rglob("*") if p.is_file()}
    result = CliRunner().invoke(app, ["resume", str(run)])
    assert result.exit_code == 0 and "already complete" in result.stdout
    after = {p: p.read_bytes() for p in run.rglob("*") if p.is_file() and p.name != ".lock"}
    assert after == {p: b for p, b in before.items() if p.name != ".lock"}


def test_analyze_and_report_treat_an_empty_run_alike(done_run: Path, tmp_path: Path) -> None:
    run = copy_run(done_run, tmp_path)
    for folder in ("events", "llm_calls", "episodes"):
        for p in (run / folder).glob("*.parquet"):
            p.unlink()
    (run / "summary.json").unlink()
    results = [cli(c, str(run)) for c in ("analyze", "report")]
    for code, lines in results:
        assert code == 2
        one_line(lines, "no events yet", f"societas resume {run}")
    assert not (run / "report.html").exists()


def test_report_accepts_a_sweep_directory(tmp_path: Path) -> None:
    cfg_path = tmp_path / "sweep.yaml"
    cfg = load_config("pd_tournament")
    data = cfg.model_dump(mode="json", exclude_none=True)
    data.pop("societas_version", None)
    data["population"] = [m for m in data["population"] if m["name"] in SMALL]
    data["sweep"] = {"seeds": [0, 1]}
    import yaml

    cfg_path.write_text(yaml.safe_dump(data))
    ran = CliRunner().invoke(app, ["run", str(cfg_path), "--out", str(tmp_path / "runs"), "--quiet"])
    assert ran.exit_code == 0, ran.stderr
    sweep = next((tmp_path / "runs").iterdir())
    result = CliRunner().invoke(app, ["report", str(sweep)])
    assert result.exit_code == 0, result.stderr
    assert Path(result.stdout.strip()) == sweep / "report.html"
    assert "Comparison of 2 runs" in (sweep / "report.html").read_text()
    assert CliRunner().invoke(app, ["analyze", str(sweep)]).exit_code == 0


def test_interrupted_message_names_the_run_directory(tmp_path: Path) -> None:
    assert str(tmp_path) in str(RunInterrupted(tmp_path)) and "RUN_DIR" not in str(RunInterrupted(tmp_path))


