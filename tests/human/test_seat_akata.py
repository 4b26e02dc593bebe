"""The human experiment of Akata et al. (2023) as a config: people meet Base or Prompted GPT-4 in both
games, say whether the partner was a human, and the study's comparisons run on the runs."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pytest
import yaml
from seat_helpers import run_with_seats

from societas.analysis.akata import human_comparisons, load_human_experiment, load_human_runs, participant_means
from societas.config import bundled_config, parse_config
from societas.societies.society import Society

pytest.importorskip("fastapi")

SHARED_DATA = Path(__file__).resolve().parents[2].parent / "shared" / "data" / "akata2023"


def _config(out: Path, count: int) -> Any:
    data = yaml.safe_load(bundled_config("akata_human").read_text())
    data["population"][0]["count"] = count
    data["output_dir"] = str(out)
    return parse_config(data)


def _person(index: int) -> Any:
    """Participant k cooperates in the first k rounds, then plays F; says 'a human' when k is odd."""

    def choose(q: dict[str, Any]) -> str:
        if q["kind"] == "debrief":
            assert q["result"]["history_rows"] and len(q["result"]["history_rows"]) == 10
            return "a human" if index % 2 else "an AI"
        return "J" if q["round"] <= index + 3 else "F"

    return choose


def test_human_experiment_runs_and_its_analysis(tmp_path: Path) -> None:
    cfg = _config(tmp_path, count=4)
    assignment = Society(cfg).assignment()
    assert sorted(p for p, _ in assignment.values()) == ["gpt4-base", "gpt4-base", "gpt4-prompted", "gpt4-prompted"]
    run_dir, logs = run_with_seats(cfg, {f"participant-{k}": _person(k) for k in range(1, 5)})
    for log in logs.values():  # 10 + 1 debrief per game, the games in the member's own order
        assert [a.kind for a in log] == (["decision"] * 10 + ["debrief"]) * 2
    human = load_human_runs([run_dir])
    assert len(human) == 80 and human["participant"].nunique() == 4
    games = ["prisoners_dilemma", "battle_of_the_sexes"]
    for name, (partner, order) in assignment.items():
        mine = human[human["agent"] == name]
        assert mine["game"].drop_duplicates().tolist() == [games[i] for i in order]
        assert set(mine["opponent"]) == {"Base" if partner == "gpt4-base" else "Prompted"}
        assert mine["guessed_human"].tolist() == [name[-1] in "13"] * 20
    means = participant_means(human)
    released_csv = SHARED_DATA / "human_experiment" / "analysis" / "repgames.csv"
    if released_csv.is_file():  # the same measures as on the study's own data
        assert list(means.columns) == list(participant_means(load_human_experiment(released_csv)).columns)
    pd_coop = dict(zip(means["participant"].str.rsplit("/", n=1).str[1], means["pd_cooperation"]))
    assert pd_coop == {f"participant-{k}": (k + 3) / 10 for k in range(1, 5)}
    comp = human_comparisons(human)
    assert comp["measure"].tolist() == ["bos_score", "pd_score", "guessed_human", "bos_coordination",
                                        "pd_cooperation"]
    assert (comp["n_prompted"] == 2).all() and (comp["n_base"] == 2).all()
    finite = comp.dropna(subset=["bf10_greater"])
    assert len(finite) >= 3 and np.isfinite(finite["bf10_greater"]).all() and (finite["bf10_greater"] > 0).all()


def test_the_assignment_is_balanced_and_seeded() -> None:
    for seed in range(6):
        cfg = _config(Path("unused"), count=6).model_copy(update={"seed": seed})
        a = Society(cfg).assignment()
        assert Society(cfg).assignment() == a
        partners = [p for p, _ in a.values()]
        assert partners.count("gpt4-base") == partners.count("gpt4-prompted") == 3
        assert {tuple(o) for _, o in a.values()} <= {(0, 1), (1, 0)}
