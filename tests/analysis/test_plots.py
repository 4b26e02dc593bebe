"""Figures: each plot function returns a Figure, `save` writes PNG and SVG, the style stays local."""

from __future__ import annotations

from pathlib import Path

import matplotlib as mpl
import numpy as np
import pandas as pd
import pytest
from matplotlib.collections import QuadMesh
from matplotlib.figure import Figure

from societas.analysis import plots
from societas.analysis.donor import across_societies

PD = {("C", "C"): (8.0, 8.0), ("C", "D"): (0.0, 10.0), ("D", "C"): (10.0, 0.0), ("D", "D"): (5.0, 5.0)}


def matrix_events(agents: list[str], rounds: int = 5, seed: int = 0) -> pd.DataFrame:
    """A round robin of random PD moves: one episode per ordered pair, seat 0 = the first agent."""
    rng = np.random.default_rng(seed)
    rows = []
    for ep, (a, b) in enumerate((a, b) for a in agents for b in agents):
        for r in range(1, rounds + 1):
            moves = rng.choice(["C", "D"], size=2)
            pay = PD[(moves[0], moves[1])]
            for seat, (me, other) in enumerate(((a, b), (b, a))):
                rows.append({"phase": 0, "episode": ep, "round": r, "seat": seat, "agent": me, "partner": other,
                             "policy_kind": "scripted" if me < "m" else "llm", "option": int(moves[seat] == "D"),
                             "cooperated": moves[seat] == "C", "reward": pay[seat]})
    return pd.DataFrame(rows)


def generation_rows(societies: int = 4, generations: int = 6, seed: int = 0) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    return pd.DataFrame([{"generation": g, "society": s, "resources": 20.0 * g + rng.normal(0, 5),
                          "cooperation_rate": min(1.0, 0.1 * g + rng.uniform(0, 0.2))}
                         for g in range(1, generations + 1) for s in range(societies)])


def saved(fig: Figure, tmp_path: Path, name: str) -> None:
    png, svg = plots.save(fig, tmp_path / "figs" / name)
    assert png == tmp_path / "figs" / f"{name}.png" and svg == tmp_path / "figs" / f"{name}.svg"
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert svg.stat().st_size > 1000 and "<svg" in svg.read_text()


def test_the_style_stays_inside_each_figure(tmp_path: Path) -> None:
    before = {k: mpl.rcParams[k] for k in ("axes.spines.top", "font.size", "axes.grid", "axes.prop_cycle")}
    fig = plots.cooperation_by_round(matrix_events(["a", "b"]))
    assert {k: mpl.rcParams[k] for k in before} == before
    ax = fig.axes[0]
    assert not ax.spines["top"].get_visible() and not ax.spines["right"].get_visible()
    assert ax.title.get_fontsize() == 11 and ax.xaxis.label.get_fontsize() == 10
    assert ax.lines[0].get_color().upper() == plots.PALETTE[0]
    with plots.plot_style():
        assert mpl.rcParams["axes.spines.top"] is False
    assert mpl.rcParams["axes.spines.top"] == before["axes.spines.top"]


def test_cooperation_by_round_lines_or_panels(tmp_path: Path) -> None:
    few = plots.cooperation_by_round(matrix_events(["a", "b", "z"]), group="policy_kind")
    assert len(few.axes) == 1 and len(few.axes[0].lines) == 2  # scripted, llm
    assert [t.get_text() for t in few.axes[0].get_legend().get_texts()] == ["llm", "scripted"]
    saved(few, tmp_path, "coop")
    agents = [f"agent-{i:02d}" for i in range(9)]
    many = plots.cooperation_by_round(matrix_events(agents, rounds=3), group="agent")
    visible = [ax for ax in many.axes if ax.get_visible()]
    assert [ax.get_title(loc="left") for ax in visible] == agents  # one panel each
    pooled = plots.cooperation_by_round(matrix_events(["a", "b"]), group=None)
    y = pooled.axes[0].lines[0].get_ydata()
    assert len(y) == 5 and ((0 <= y) & (y <= 1)).all()
    empty = plots.cooperation_by_round(matrix_events(["a"]).assign(cooperated=None))
    assert isinstance(empty, Figure)


def test_payoff_matrix_is_annotated_and_sorted(tmp_path: Path) -> None:
    ev = matrix_events(["always-d", "b", "c"])
    fig = plots.payoff_matrix(ev)
    ax = fig.axes[0]
    labels = [t.get_text() for t in ax.get_yticklabels()]
    assert labels == ev.groupby("agent")["reward"].mean().sort_values(ascending=False).index.tolist()
    assert len(ax.texts) == 9
    assert "payoff" in fig.axes[1].get_ylabel()  # the colour bar says what the colours are
    saved(fig, tmp_path, "payoff")
    crowd = plots.payoff_matrix(matrix_events([f"a{i:02d}" for i in range(31)], rounds=1))
    assert len(crowd.axes[0].texts) == 0  # too small to read: left out


def test_resources_by_generation_from_either_table(tmp_path: Path) -> None:
    table = generation_rows()
    per_society = plots.resources_by_generation(table)
    ax = per_society.axes[0]
    assert len(ax.lines) == 4 + 1  # each society faintly, then the mean
    assert ax.get_ylim()[0] == 0 and ax.get_yscale() == "linear"
    saved(per_society, tmp_path, "resources")
    summary = across_societies(table, "resources")
    both = pd.concat([summary.assign(run="one"), summary.assign(run="two", mean=summary["mean"] * 2)])
    overlaid = plots.resources_by_generation(both)
    assert [t.get_text() for t in overlaid.axes[0].get_legend().get_texts()] == ["one", "two"]
    rate = plots.resources_by_generation(table, metric="cooperation_rate", share=True)
    assert rate.axes[0].get_ylim()[1] <= 1.05
    growth = pd.DataFrame({"generation": [1, 2, 3], "mean": [1.0, 100.0, 10000.0], "ci_low": [0.5, 50.0, 5e3],
                           "ci_high": [2.0, 200.0, 2e4]})
    assert plots.resources_by_generation(growth).axes[0].get_yscale() == "log"


def test_strategy_shares_stack_to_one(tmp_path: Path) -> None:
    shares = pd.DataFrame({"generation": [1, 2, 3], "scripted:free_rider": [0.5, 0.25, 0.0],
                           "scripted:reciprocator": [0.5, 0.75, 1.0], "scripted:gone": [0.0, 0.0, 0.0]})
    fig = plots.strategy_shares(shares)
    ax = fig.axes[0]
    assert [t.get_text() for t in ax.get_legend().get_texts()] == ["reciprocator", "free rider"]
    assert ax.get_ylim() == (0.0, 1.0)
    saved(fig, tmp_path, "shares")


def test_belief_distribution_of_a_synthetic_frame(tmp_path: Path) -> None:
    rng = np.random.default_rng(1)
    frame = pd.DataFrame([{"agent": a, "round": r, "stance": float(np.clip(rng.normal(0.6 if a % 2 else -0.6, 0.2),
                                                                          -1, 1))}
                          for a in range(40) for r in range(12)])
    fig = plots.belief_distribution(frame, bins=10)
    mesh = next(c for c in fig.axes[0].collections if isinstance(c, QuadMesh))
    shares = np.asarray(mesh.get_array()).reshape(10, 12)
    assert np.allclose(shares.sum(axis=0), 1.0)  # each time step is a distribution over the bins
    assert shares[:5].sum() == pytest.approx(shares[5:].sum(), abs=1.0)  # two camps
    assert fig.axes[0].get_ylabel() == "stance"
    saved(fig, tmp_path, "belief")
    other = plots.belief_distribution(frame.rename(columns={"round": "step", "stance": "trust"}), time="step",
                                      value="trust", value_range=(-1, 1))
    assert other.axes[0].get_ylim() == (-1.0, 1.0)


def test_diversity_curve_marks_releases(tmp_path: Path) -> None:
    frame = pd.DataFrame([{"seed": s, "step": t, "entropy": 1.0 - 0.02 * t + 0.01 * s}
                          for s in range(3) for t in range(30)])
    fig = plots.diversity_curve(frame, "step", "entropy", releases=[10, 20])
    ax = fig.axes[0]
    vertical = [ln for ln in ax.lines if len(set(ln.get_xdata())) == 1]
    assert sorted(ln.get_xdata()[0] for ln in vertical) == [10, 20]
    assert [t.get_text() for t in ax.texts] == ["release", "release"]
    assert len(ax.collections) == 1  # the band over seeds
    saved(fig, tmp_path, "diversity")
    named = plots.diversity_curve(frame, "step", "entropy", releases={5: "v2"}, group="seed")
    assert [t.get_text() for t in named.axes[0].texts] == ["v2"] and named.axes[0].get_legend() is not None


def test_accuracy_bars_with_intervals_and_chance(tmp_path: Path) -> None:
    frame = pd.DataFrame({"question": ["first-order belief", "second-order belief", "intention"],
                          "accuracy": [0.9, 0.6, 0.35], "low": [0.8, 0.5, 0.25], "high": [0.97, 0.7, 0.45]})
    fig = plots.accuracy_bars(frame, "question", "accuracy", low="low", high="high", chance=0.5)
    ax = fig.axes[0]
    position = {t.get_text(): y for t, y in zip(ax.get_yticklabels(), ax.get_yticks())}
    assert position["first-order belief"] > position["second-order belief"] > position["intention"]  # in order
    assert [t.get_text() for t in ax.texts] == ["90%", "60%", "35%"]
    assert ax.get_legend() is not None  # the chance line is named
    saved(fig, tmp_path, "accuracy")
    assert isinstance(plots.accuracy_bars(frame, "question", "accuracy"), Figure)
