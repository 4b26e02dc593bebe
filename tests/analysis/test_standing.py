"""Analyses say what they stand on, and `analyze` and the report show the same figures under the same names.

A model whose replies never parse leaves the environment's default in every
decision: the lock-in table must not claim anything about it without "not
interpretable" beside the claim, in the command line, the report and the run
summary alike.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

import pandas as pd
import pytest
from typer.testing import CliRunner

from societas.analysis import load_run
from societas.analysis.report import write_report
from societas.analysis.sections import section_for
from societas.analysis.validity import FALLBACK_LIMIT, standing
from societas.cli import app
from societas.config import load_config, parse_config
from societas.llm import fake
from societas.runners.run import run_experiment


def _lockin(tmp_path: Path, model: str) -> Path:
    cfg = parse_config({
        "name": "lockin-tiny", "seed": 1, "model": model, "output_dir": str(tmp_path),
        "environment": {"id": "feedback-loop", "params": {"num_humans": 4, "topics": 2, "rounds": 8,
                                                           "lambda1": 0.5, "lambda2": 0.022, "statements": True}},
        "population": [{"name": "human", "policy": "llm", "count": 4}, {"name": "ai", "policy": "llm"}],
        "matchmaking": {"kind": "population"}, "llm": {"max_attempts": 2},
    })
    return run_experiment(cfg, progress=False)[0].path


def _text(html: str) -> str:
    return re.sub(r"\s+", " ", re.sub(r"<[^>]+>", " ", html)).replace("&#x27;", "'")


def test_fallbacks_are_named_beside_the_finding(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(fake.RESPONDERS, "nonsense", lambda request: "I cannot say.")
    path = _lockin(tmp_path, "fake:nonsense")
    summary = json.loads((path / "summary.json").read_text())
    assert summary["fallbacks"]["share"] == 1.0 and summary["fallbacks"]["limit"] == FALLBACK_LIMIT
    assert set(summary["fallbacks"]["not_interpretable"]) == {"ai", "human-1", "human-2", "human-3", "human-4"}
    shown = CliRunner().invoke(app, ["analyze", str(path)])
    assert shown.exit_code == 0, shown.output
    assert "not interpretable: 100% of human-1's decisions are fallbacks" in shown.output
    # Every lock-in verdict carries its caveat in the cell itself.
    verdicts = re.findall(r"│\s*(yes|no)( \(not interpretable\))?\s*│", shown.output)
    assert verdicts and all(caveat for _, caveat in verdicts)
    report = _text(write_report([path]).read_text())
    section = report[report.index("Diversity and lock-in Feedback loop"):]
    assert "not interpretable: 100% of ai's decisions are fallbacks" in section
    assert "(not interpretable)" in section


def test_a_valid_run_is_not_flagged(tmp_path: Path) -> None:
    path = _lockin(tmp_path, "fake:random")
    shown = CliRunner().invoke(app, ["analyze", str(path)])
    assert shown.exit_code == 0 and "not interpretable" not in shown.output
    assert "invalid fallbacks (no usable answer, the environment's default played): 0% of 40 decisions" in shown.output
    assert "not interpretable" not in write_report([path]).read_text()
    assert json.loads((path / "summary.json").read_text())["fallbacks"]["not_interpretable"] == {}


def test_standing_groups_many_members_and_names_only_those_above_the_limit() -> None:
    import pandas as pd

    rows = [{"agent": f"human-{i}", "valid": i > 3, "model": "m"} for i in range(1, 11)]
    rows += [{"agent": "ai", "valid": True, "model": "m"}] * 10
    st = standing(pd.DataFrame(rows))
    assert dict(zip(st.shares["who"], st.shares["share"], strict=True)) == {"ai": 0.0, "human": 0.3}
    assert st.warnings() == ["not interpretable: 30% of human's decisions are fallbacks (limit 20%)"]
    assert st.verdict("ai") == "" and st.verdict("human") == "not interpretable (30% fallbacks)"


def _analyze_and_report(path: Path) -> tuple[str, str]:
    shown = CliRunner().invoke(app, ["analyze", str(path)])
    assert shown.exit_code == 0, shown.output
    return shown.output, _text(write_report([path]).read_text())


def test_donor_intervals_are_the_same_in_analyze_and_the_report(tmp_path: Path) -> None:
    cfg = load_config("donor_free_riders", output_dir=str(tmp_path))
    path = run_experiment(cfg.model_copy(update={"society": cfg.society.model_copy(update={"generations": 3})}),
                          progress=False)[0].path
    run = load_run(path)
    table = section_for(run).build(run).tables[0]
    assert (table.frame["ci_low"] >= 0).all()  # resources cannot be negative: cut at 0 everywhere
    cli, html = _analyze_and_report(path)
    for cells in table.cells():
        # generation and "resources [low, high]": the same strings in both
        assert re.search(r"\s*│\s*".join(map(re.escape, cells[:2])), cli), cells
        assert " ".join(cells[:2]) in html
    assert "resources (95% CI)" in cli and "resources (95% CI)" in html


def test_battle_of_the_sexes_shows_coordination_in_both(tmp_path: Path) -> None:
    path = run_experiment(load_config("bos_tournament", output_dir=str(tmp_path)), progress=False)[0].path
    cli, html = _analyze_and_report(path)
    assert "coordination" in cli and "coordination" in html
    assert "cooperation" not in cli


def test_partner_adaptation_says_total_regret_in_both(tmp_path: Path) -> None:
    path = run_experiment(load_config("partner_adaptation", output_dir=str(tmp_path)), progress=False)[0].path
    cli, html = _analyze_and_report(path)
    assert "total regret" in cli and "total regret" in html
    assert "final regret" not in cli and "final regret" not in html


def test_member_groups_are_the_names_without_their_number() -> None:
    from societas.analysis.validity import who

    names = [f"human-{i}" for i in range(6)] + [f"ai-{i}" for i in range(4)] + ["referee", "x-1-2"]
    events = pd.DataFrame({"agent": [names[i % len(names)] for i in range(50)]}, index=range(100, 150))
    expected = events["agent"].astype(str).str.replace(r"-\d+$", "", regex=True)  # the pattern, row by row
    pd.testing.assert_series_equal(who(events), expected)
    assert set(who(events)) == {"human", "ai", "referee", "x-1"}
