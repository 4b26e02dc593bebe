"""What the runs list says about each run comes from its files: status, error, progress and totals."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pyarrow.parquet as pq

from societas.analysis.transcript import invalid_decisions
from societas.runners.rundir import RunDirectory
from societas.view import liveness
from societas.view.catalog import Catalog


def _by_rel(catalog: Catalog) -> dict[str, object]:
    runs, sweeps = catalog.scan()
    return {r.rel: r for r in [*runs, *(r for s in sweeps for r in s.runs)]}


def test_complete_runs_add_up_to_their_summary(runs_folder: dict[str, Path]) -> None:
    catalog = Catalog(runs_folder["root"])
    info = catalog.run(runs_folder["echo"].name)
    summary = json.loads((runs_folder["echo"] / "summary.json").read_text())
    assert info.status == "complete" and info.error is None and info.progress == 1.0
    assert (info.decisions, info.llm_calls, info.invalid) == (summary["decisions"], summary["llm_calls"],
                                                              summary["invalid_actions"])
    assert info.invalid > 0 and info.invalid_share == summary["invalid_actions"] / summary["decisions"]
    assert info.tokens == sum(pq.read_table(runs_folder["echo"] / "llm_calls").column(c).to_numpy().sum()
                              for c in ("prompt_tokens", "completion_tokens"))
    assert info.models == ["fake:echo"]
    assert catalog.run(runs_folder["scripted"].name).models == []
    assert len(invalid_decisions(runs_folder["echo"])) >= info.invalid


def test_a_stopped_run_shows_its_error_and_how_far_it_got(runs_folder: dict[str, Path]) -> None:
    info = Catalog(runs_folder["root"]).run(runs_folder["stopped"].name)
    checkpoint = json.loads((runs_folder["stopped"] / "checkpoint.json").read_text())
    assert info.status == "stopped" and info.error == checkpoint["error"]
    assert "model endpoint failed" in info.error
    assert 0 < info.progress < 1 and info.progress_text == (
        f"{checkpoint['phase_done']} of {checkpoint['phase_episodes']} episodes")


def test_playing_killed_and_pending_runs_are_told_apart(runs_folder: dict[str, Path], tmp_path: Path) -> None:
    root = tmp_path / "runs"
    copy = shutil.copytree(runs_folder["stopped"], root / "copy")
    status = json.loads((copy / "checkpoint.json").read_text())
    status.update(status="running")
    status.pop("error")
    (copy / "checkpoint.json").write_text(json.dumps(status))
    catalog = Catalog(root)
    with RunDirectory(copy).lock():  # as a playing process holds it
        assert catalog.run("copy").status == "running"
    killed = catalog.run("copy")  # a checkpoint saying running, and no process: killed
    assert killed.status == "stopped" and "killed" in killed.error
    pending = root / "pending"
    pending.mkdir()
    shutil.copy(copy / "config.yaml", pending / "config.yaml")
    assert catalog.run("pending").status == "pending"


def test_the_kernel_lock_table_is_read_without_taking_a_lock(tmp_path: Path) -> None:
    rd = RunDirectory(tmp_path)
    assert liveness.is_playing(tmp_path, liveness.held_inodes()) is False  # no .lock file
    with rd.lock():
        held = liveness.held_inodes()
        assert held is not None and liveness.is_playing(tmp_path, held) is True
    assert liveness.is_playing(tmp_path, liveness.held_inodes()) is False
    assert liveness.is_playing(tmp_path, None) is None  # where the kernel does not say


def test_a_sweep_lists_its_runs_in_index_order(runs_folder: dict[str, Path]) -> None:
    _, sweeps = Catalog(runs_folder["root"]).scan()
    (sweep,) = sweeps
    index = pq.read_table(runs_folder["sweep"] / "index.parquet").to_pydict()
    assert [r.path.name for r in sweep.runs] == index["run_dir"]
    assert sweep.status == "complete" and all(r.sweep == sweep.rel for r in sweep.runs)
    assert sweep.total("decisions") == sum(index["decisions"])


def test_paths_outside_the_folder_are_not_runs(runs_folder: dict[str, Path]) -> None:
    catalog = Catalog(runs_folder["echo"].parent / runs_folder["echo"].name / "events")
    assert catalog.run("..") is None and catalog.run("../..") is None
    assert Catalog(runs_folder["root"]).run("../" + runs_folder["root"].name) is None


def test_cost_so_far_matches_the_analysis_price_formula(runs_folder: dict[str, Path], tmp_path: Path) -> None:
    from societas.analysis.cost import usage_table
    from societas.analysis.load import load_run
    from societas.view.cost import load_prices

    table = tmp_path / "prices.yaml"
    table.write_text("fake:echo: [2.5, 10.0, 1.25]\n")
    prices = load_prices(table)
    info = Catalog(runs_folder["root"], prices).run(runs_folder["echo"].name)
    want = usage_table(load_run(runs_folder["echo"]).llm_calls, prices=prices)["cost_usd"].sum()
    assert info.cost_usd is not None and abs(info.cost_usd - want) < 1e-9 and want > 0
    assert Catalog(runs_folder["root"], {}).run(runs_folder["echo"].name).cost_usd is None  # model not priced
    assert Catalog(runs_folder["root"]).run(runs_folder["echo"].name).cost_usd is None  # no table at all
    assert Catalog(runs_folder["root"], prices).run(runs_folder["scripted"].name).cost_usd == 0.0  # no calls


def test_a_price_table_that_cannot_be_used_is_named(tmp_path: Path) -> None:
    import pytest

    from societas.errors import BadInput
    from societas.view.cost import load_prices

    bad = tmp_path / "prices.yaml"
    bad.write_text("openai:gpt-4o: [2.5]\n")
    with pytest.raises(BadInput, match=r"prices.yaml: openai:gpt-4o: expected \[prompt, completion\]"):
        load_prices(bad)
    with pytest.raises(BadInput, match="cannot read"):
        load_prices(tmp_path / "none.yaml")
