"""Figures of a run, from the DataFrames of `load_run` and the analysis tables.

Every function returns a `matplotlib.figure.Figure` built without pyplot, so
nothing registers with a GUI backend or lingers in pyplot's figure list, and
PNG output goes through Agg. The house style is applied per figure through
`plot_style()`, never by changing matplotlib's global settings at import, so
importing this module leaves other plotting code alone. The style is meant to
read in print: the Okabe-Ito palette (distinguishable with colour-vision
deficiencies), viridis for heatmaps, 10-11 pt text, a light grid and no
top/right spines. `save` writes each figure as PNG (for reports) and SVG (for
papers).
"""

from __future__ import annotations

import math
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import matplotlib as mpl
import numpy as np
import pandas as pd
from cycler import cycler
from matplotlib.axes import Axes
from matplotlib.figure import Figure
from matplotlib.ticker import MaxNLocator, PercentFormatter
from scipy.stats import t as t_dist

from societas.analysis.cooperation import cooperation_by_round as _cooperation_by_round
from societas.analysis.cooperation import payoff_matrix as _payoff_matrix
from societas.analysis.donor import across_societies

# Okabe & Ito (2008), ordered so that the first colours stay apart in greyscale;
# yellow goes last because it fades on white paper.
PALETTE = ("#0072B2", "#E69F00", "#009E73", "#D55E00", "#CC79A7", "#56B4E9", "#000000", "#F0E442")
LINESTYLES = ("-", "--", ":", "-.")
SEQUENTIAL = "viridis"

STYLE: dict[str, Any] = {
    "font.family": "DejaVu Sans",
    "font.size": 10,
    "axes.titlesize": 11,
    "axes.titleweight": "bold",
    "axes.titlelocation": "left",
    "axes.labelsize": 10,
    "xtick.labelsize": 10,
    "ytick.labelsize": 10,
    "legend.fontsize": 10,
    "legend.title_fontsize": 10,
    "legend.frameon": False,
    "axes.spines.top": False,
    "axes.spines.right": False,
    "axes.grid": True,
    "axes.axisbelow": True,
    "grid.color": "#d9d9d9",
    "grid.linewidth": 0.6,
    "axes.prop_cycle": cycler(color=list(PALETTE)),
    "lines.linewidth": 1.8,
    "image.cmap": SEQUENTIAL,
    "figure.dpi": 100,
    "savefig.dpi": 150,
    "savefig.bbox": "tight",
    "savefig.pad_inches": 0.05,
    "svg.fonttype": "path",  # text as outlines: the SVG looks the same without the font installed
}


@contextmanager
def plot_style() -> Iterator[None]:
    """The house style for the figures made (and saved) inside the block; restored afterwards."""
    with mpl.rc_context(STYLE):
        yield


def _figure(width: float = 7.0, height: float = 4.0) -> Figure:
    return Figure(figsize=(width, height), layout="constrained")


def _style(i: int) -> dict[str, Any]:
    """Colour and line style of the i-th series: colours first, then dashes, so 32 series stay distinct."""
    return {"color": PALETTE[i % len(PALETTE)], "linestyle": LINESTYLES[(i // len(PALETTE)) % len(LINESTYLES)]}


def _legend(ax: Axes, n: int, title: str | None = None) -> None:
    """A legend inside the axes for a few series, beside them for many (so it hides no data)."""
    if n <= 1 and title is None:
        return
    if n <= 4:
        ax.legend(title=title, loc="best")
    else:
        ax.legend(title=title, loc="upper left", bbox_to_anchor=(1.01, 1.0), ncols=1 if n <= 16 else 2)


def _wilson(successes: np.ndarray, n: np.ndarray, z: float = 1.959964) -> tuple[np.ndarray, np.ndarray]:
    """Wilson score interval of a proportion: stays inside [0, 1] and is sensible at 0% and 100%."""
    n = np.maximum(n.astype(float), 1e-12)
    p = successes / n
    centre = (p + z * z / (2 * n)) / (1 + z * z / n)
    half = z * np.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / (1 + z * z / n)
    return centre - half, centre + half


def _t_interval(x: np.ndarray, confidence: float = 0.95) -> tuple[float, float, float]:
    """Mean and t confidence interval of a sample (half-width 0 for one value)."""
    x = x[~np.isnan(x)]
    if len(x) == 0:
        return math.nan, math.nan, math.nan
    mean = float(x.mean())
    if len(x) < 2:
        return mean, mean, mean
    half = float(t_dist.ppf(0.5 + confidence / 2, len(x) - 1) * x.std(ddof=1) / math.sqrt(len(x)))
    return mean, mean - half, mean + half


def _short_policy(name: str) -> str:
    """'scripted:free_rider' -> 'free rider': legends name the behaviour, not the spec syntax."""
    return name.split(":", 1)[-1].split("/")[-1].replace("_", " ")


def cooperation_by_round(events: pd.DataFrame, group: str | None = "policy_kind",
                         title: str = "Cooperation by round", max_lines: int = 6,
                         ylabel: str = "decisions that cooperated") -> Figure:
    """Share of decisions that cooperated in each round per group, with a 95% Wilson band.

    Shows whether cooperation builds up, decays or collapses at the end of
    the game. Rounds where the game defines no cooperative option are left
    out. `group` is any events column (policy_kind, agent, model, run_id,
    ...); None pools all agents. Up to `max_lines` groups share one axes;
    more get one small panel each, since a dozen overlapping lines and bands
    cannot be told apart. Any boolean per-decision outcome can be drawn the
    same way by putting it in the `cooperated` column (with a fitting `ylabel`).
    """
    stats = _cooperation_by_round(events, by=group)
    if stats.empty:
        with plot_style():
            fig = _figure()
            ax = fig.add_subplot()
            ax.text(0.5, 0.5, "no decisions with a cooperative option", ha="center", va="center",
                    transform=ax.transAxes)
            ax.set_title(title)
        return fig
    stats = stats.assign(sum=stats["cooperation_rate"] * stats["n"], count=stats["n"])
    groups = list(stats.groupby(group, sort=True)) if group else [("all agents", stats)]
    with plot_style():
        if len(groups) <= max_lines:
            fig = _figure()
            ax = fig.add_subplot()
            for i, (name, g) in enumerate(groups):
                _rate_line(ax, g, str(name), _style(i))
            _legend(ax, len(groups), title=group.replace("_", " ") if group else None)
            _rate_axes(ax, ylabel=ylabel)
            ax.set_title(title)
            return fig
        cols = 4
        rows = math.ceil(len(groups) / cols)
        fig = _figure(8.0, 0.4 + 1.75 * rows)
        axes = fig.subplots(rows, cols, sharex=True, sharey=True, squeeze=False).ravel()
        for ax, (name, g) in zip(axes, groups):
            _rate_line(ax, g, None, _style(0))
            ax.set_title(str(name), fontsize=10, fontweight="normal")
            _rate_axes(ax, ylabel=None)
        for ax in axes[len(groups):]:
            ax.set_visible(False)
        for ax in axes[len(groups) - cols:len(groups)]:
            ax.xaxis.set_tick_params(labelbottom=True)
        fig.supxlabel("round", fontsize=10)
        fig.supylabel(ylabel, fontsize=10)
        fig.suptitle(title, x=0.0, ha="left", fontsize=11, fontweight="bold")
    return fig


def _rate_line(ax: Axes, g: pd.DataFrame, label: str | None, st: dict[str, Any]) -> None:
    low, high = _wilson(g["sum"].to_numpy(float), g["count"].to_numpy(float))
    ax.plot(g["round"], g["sum"] / g["count"], marker="o", markersize=3.5, label=label, **st)
    ax.fill_between(g["round"], low, high, color=st["color"], alpha=0.18, linewidth=0)


def _rate_axes(ax: Axes, ylabel: str | None) -> None:
    """Percent axis from 0 to 1 over integer rounds; labelled for a single axes, bare for a panel."""
    ax.set_ylim(-0.03, 1.03)
    ax.yaxis.set_major_formatter(PercentFormatter(1.0, decimals=0))
    ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    if ylabel is None:
        ax.set_yticks([0, 0.5, 1])
    else:
        ax.set_xlabel("round")
        ax.set_ylabel(ylabel)


def payoff_matrix(events: pd.DataFrame, title: str = "Mean payoff per round") -> Figure:
    """Heatmap of the row agent's mean payoff per round against each partner, annotated.

    Rows and columns are sorted by the agent's overall mean payoff, so the
    strongest strategies sit top-left and exploitation shows as an asymmetric
    pair of cells. Pairs that never met stay blank. Cell text shrinks with the
    number of agents and is dropped beyond 30 agents, where it cannot be read.
    """
    ev = events.dropna(subset=["partner"])
    with plot_style():
        matrix = _payoff_matrix(ev)
        order = ev.groupby("agent")["reward"].mean().sort_values(ascending=False).index.tolist()
        partners = [a for a in order if a in matrix.columns] + [c for c in matrix.columns if c not in order]
        matrix = matrix.reindex(index=order, columns=partners)
        n = max(len(matrix.index), len(matrix.columns), 1)
        side = min(11.0, max(4.5, 1.6 + 0.42 * n))
        fig = _figure(side + 1.2, side)
        ax = fig.add_subplot()
        ax.grid(False)
        for spine in ax.spines.values():
            spine.set_visible(False)
        values = matrix.to_numpy(dtype=float)
        image = ax.imshow(np.ma.masked_invalid(values), cmap=SEQUENTIAL, aspect="auto")
        ax.set_xticks(range(len(matrix.columns)), [str(c) for c in matrix.columns], rotation=45, ha="right",
                      rotation_mode="anchor")
        ax.set_yticks(range(len(matrix.index)), [str(r) for r in matrix.index])
        ax.tick_params(length=0)
        ax.set_xlabel("partner")
        ax.set_ylabel("agent")
        if n <= 30 and values.size:
            size = float(np.clip(130 / n, 6.5, 10))
            lo, hi = np.nanmin(values), np.nanmax(values)
            for (r, c), v in np.ndenumerate(values):
                if np.isnan(v):
                    continue
                light = hi > lo and (v - lo) / (hi - lo) > 0.6  # viridis turns light at the top end
                ax.text(c, r, f"{v:.1f}", ha="center", va="center", fontsize=size,
                        color="black" if light else "white")
        bar = fig.colorbar(image, ax=ax, shrink=0.8, pad=0.02)
        bar.set_label("agent's mean payoff per round (points)")
        bar.outline.set_visible(False)
        ax.set_title(title)
    return fig


def resources_by_generation(table: pd.DataFrame, metric: str = "resources", by: str | None = "run",
                            ylabel: str = "mean final resources per game (units)",
                            title: str = "Resources by generation", log: bool | None = None,
                            share: bool = False) -> Figure:
    """Mean of a per-generation metric with its 95% interval band, one line per run or config.

    Accepts `donor.across_societies` output (generation, mean, ci_low,
    ci_high) or a `donor.generation_table` (one row per generation and
    society; the t interval across societies is computed here, and for a
    single line each society is drawn faintly behind the mean, because with
    a handful of societies the spread says more than the band). A `by`
    column (default "run"), when present, gives one line per value, to
    overlay runs or configs. Bands of a non-negative metric are cut at 0;
    `share=True` (for rates such as cooperation_rate) also cuts them at 1
    and labels the axis in percent. `log=None` picks a log scale when the
    means span three orders of magnitude, as compounding donations can.
    """
    frames = list(table.groupby(by, sort=False)) if by and by in table else [(None, table)]
    series = []
    for name, t in frames:
        if {"mean", "ci_low", "ci_high"} <= set(t.columns):
            s = t[["generation", "mean", "ci_low", "ci_high"]].sort_values("generation")
        else:
            s = across_societies(t, metric)
        series.append((name, s, t))
    means = pd.concat([s["mean"] for _, s, _ in series]).dropna() if series else pd.Series(dtype=float)
    non_negative = bool((means >= 0).all()) and (metric not in table or bool((table[metric].dropna() >= 0).all()))
    if log is None:
        log = not share and bool(len(means) and (means > 0).all() and means.max() / means.min() > 1000)
    with plot_style():
        fig = _figure()
        ax = fig.add_subplot()
        for i, (name, s, t) in enumerate(series):
            st = _style(i)
            if len(series) == 1 and "society" in t and metric in t and t["society"].nunique() > 1:
                for j, (_, soc) in enumerate(t.sort_values("generation").groupby("society")):
                    ax.plot(soc["generation"], soc[metric], color=st["color"], alpha=0.3, linewidth=0.8,
                            label="one society" if j == 0 else None)
            low = s["ci_low"].clip(lower=0) if non_negative else s["ci_low"]
            high = s["ci_high"].clip(upper=1) if share else s["ci_high"]
            if log:
                low = low.where(low > 0, means.min() / 2)
            ax.plot(s["generation"], s["mean"], marker="o", markersize=3.5,
                    label=str(name) if name is not None else "mean (95% interval)", **st)
            ax.fill_between(s["generation"], low, high, color=st["color"], alpha=0.15, linewidth=0)
        if log:
            ax.set_yscale("log")
        elif share:
            ax.set_ylim(-0.02, 1.02)
            ax.yaxis.set_major_formatter(PercentFormatter(1.0, decimals=0))
        elif non_negative:
            ax.set_ylim(bottom=0)
        _legend(ax, len(ax.get_legend_handles_labels()[0]))
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))
        ax.set_xlabel("generation")
        ax.set_ylabel(ylabel)
        ax.set_title(title + (" (log scale)" if log else ""))
    return fig


def strategy_shares(shares: pd.DataFrame, title: str = "Share of the population by policy") -> Figure:
    """Stacked areas of each policy's share per generation: the selection dynamics at a glance.

    Input: `donor.strategy_shares` output (a generation column, one column
    of shares per policy).
    """
    data = shares.set_index("generation").sort_index() if "generation" in shares else shares.sort_index()
    data = data.loc[:, (data > 0).any()]
    with plot_style():
        fig = _figure()
        ax = fig.add_subplot()
        colours = [PALETTE[i % len(PALETTE)] for i in range(len(data.columns))]
        ax.stackplot(data.index.to_numpy(), data.T.to_numpy(dtype=float),
                     labels=[_short_policy(str(c)) for c in data.columns], colors=colours, alpha=0.9,
                     edgecolor="white", linewidth=0.5)
        ax.set_xlim(data.index.min(), data.index.max())
        ax.set_ylim(0, 1)
        ax.yaxis.set_major_formatter(PercentFormatter(1.0, decimals=0))
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))
        ax.grid(False)
        handles, labels = ax.get_legend_handles_labels()
        ax.legend(handles[::-1], labels[::-1], title="policy", loc="upper left", bbox_to_anchor=(1.01, 1.0))
        ax.set_xlabel("generation")
        ax.set_ylabel("share of the population")
        ax.set_title(title)
    return fig


def belief_distribution(frame: pd.DataFrame, time: str = "round", value: str = "stance", bins: int = 20,
                        value_range: tuple[float, float] | None = None, title: str | None = None) -> Figure:
    """Heatmap of how a numeric belief is distributed over time, with the mean overlaid.

    Each column is one time step; colour is the share of agents whose value
    falls in each bin, so polarisation shows as two bright bands and lock-in
    as one band that stops moving. `frame` needs one row per agent and time.
    """
    data = frame[[time, value]].dropna()
    times = np.sort(data[time].unique())
    lo, hi = value_range if value_range else (float(data[value].min()), float(data[value].max()))
    if not hi > lo:
        lo, hi = lo - 0.5, hi + 0.5
    edges = np.linspace(lo, hi, bins + 1)
    position = {t: i for i, t in enumerate(times)}
    counts = np.zeros((bins, len(times)))
    col = data[time].map(position).to_numpy()
    row = np.clip(np.searchsorted(edges, data[value].to_numpy(float), side="right") - 1, 0, bins - 1)
    np.add.at(counts, (row, col), 1)
    shares = counts / np.maximum(counts.sum(axis=0, keepdims=True), 1)
    with plot_style():
        fig = _figure(7.0, 4.2)
        ax = fig.add_subplot()
        ax.grid(False)
        x_edges = _edges(times.astype(float))
        image = ax.pcolormesh(x_edges, edges, shares, cmap=SEQUENTIAL, vmin=0, shading="flat")
        means = data.groupby(time)[value].mean().reindex(times)
        ax.plot(times, means.to_numpy(float), color="white", linewidth=2.6)
        ax.plot(times, means.to_numpy(float), color=PALETTE[3], linewidth=1.4, label=f"mean {value}")
        ax.legend(loc="upper right", frameon=True, facecolor="white", framealpha=0.85, edgecolor="none")
        bar = fig.colorbar(image, ax=ax, pad=0.02)
        bar.set_label("share of agents")
        bar.formatter = PercentFormatter(1.0, decimals=0)
        bar.update_ticks()
        bar.outline.set_visible(False)
        if np.issubdtype(times.dtype, np.integer):
            ax.xaxis.set_major_locator(MaxNLocator(integer=True))
        ax.set_xlabel(time)
        ax.set_ylabel(value)
        ax.set_title(title or f"Distribution of {value} by {time}")
    return fig


def _edges(centres: np.ndarray) -> np.ndarray:
    """Cell edges halfway between consecutive time points (unit width for a single point)."""
    if len(centres) == 1:
        return np.array([centres[0] - 0.5, centres[0] + 0.5])
    mid = (centres[1:] + centres[:-1]) / 2
    return np.concatenate([[centres[0] - (mid[0] - centres[0])], mid, [centres[-1] + (centres[-1] - mid[-1])]])


def diversity_curve(frame: pd.DataFrame, time: str, value: str,
                    releases: Sequence[float] | Mapping[float, str] | None = None, group: str | None = None,
                    ylabel: str | None = None, title: str | None = None) -> Figure:
    """A diversity measure over time with dashed vertical markers at release points.

    Several rows per time step (seeds, societies) are averaged with a 95% t
    band. `releases` marks when something was released into the population
    (a list of times, or a mapping time -> label), so a drop right after a
    marker reads as lock-in. `group` draws one line per value of a column.
    """
    groups = list(frame.groupby(group, sort=True)) if group else [(None, frame)]
    with plot_style():
        fig = _figure()
        ax = fig.add_subplot()
        for i, (name, g) in enumerate(groups):
            rows = [(t, *_t_interval(d[value].to_numpy(dtype=float))) for t, d in g.groupby(time, sort=True)]
            s = pd.DataFrame(rows, columns=[time, "mean", "low", "high"])
            st = _style(i)
            ax.plot(s[time], s["mean"], label=None if name is None else str(name), **st)
            if (s["high"] > s["low"]).any():
                ax.fill_between(s[time], s["low"], s["high"], color=st["color"], alpha=0.15, linewidth=0)
        marks = releases.items() if isinstance(releases, Mapping) else [(t, "release") for t in (releases or [])]
        for t, text in marks:
            ax.axvline(t, color="#555555", linestyle="--", linewidth=1.0, zorder=1)
            if text:
                ax.annotate(text, xy=(t, 1.0), xycoords=("data", "axes fraction"), xytext=(3, -3),
                            textcoords="offset points", ha="left", va="top", fontsize=9, color="#333333")
        handles, _ = ax.get_legend_handles_labels()
        if handles:
            _legend(ax, len(handles), title=group)
        if pd.api.types.is_integer_dtype(frame[time]):
            ax.xaxis.set_major_locator(MaxNLocator(integer=True))
        ax.set_xlabel(time)
        ax.set_ylabel(ylabel or value)
        ax.set_title(title or f"{value} by {time}".capitalize())
    return fig


def accuracy_bars(frame: pd.DataFrame, category: str, accuracy: str, low: str | None = None,
                  high: str | None = None, chance: float | None = None,
                  title: str = "Accuracy by category") -> Figure:
    """Horizontal bars of an accuracy (0-1) per category with interval whiskers and value labels.

    Horizontal, so long category names (models, question types) stay
    readable; `low`/`high` columns give the interval ends, `chance` draws the
    chance level as a dashed line.
    """
    data = frame.reset_index(drop=True)
    n = len(data)
    with plot_style():
        fig = _figure(7.0, max(2.2, 0.9 + 0.38 * n))
        ax = fig.add_subplot()
        y = np.arange(n)[::-1]
        acc = data[accuracy].to_numpy(float)
        err = None
        if low is not None and high is not None:
            err = np.vstack([acc - data[low].to_numpy(float), data[high].to_numpy(float) - acc])
            err = np.clip(err, 0, None)
        ax.barh(y, acc, color=PALETTE[0], height=0.65, xerr=err,
                error_kw={"ecolor": "#333333", "elinewidth": 1.0, "capsize": 3})
        right = data[high].to_numpy(float) if high is not None else acc
        for yi, a, r in zip(y, acc, right):
            if not np.isnan(a):
                ax.text(min(np.nan_to_num(r, nan=a), 1.0) + 0.015, yi, f"{a:.0%}", va="center", fontsize=9,
                        bbox={"facecolor": "white", "edgecolor": "none", "pad": 0.5, "alpha": 0.8})
        if chance is not None:
            ax.axvline(chance, color=PALETTE[3], linestyle="--", linewidth=1.2, label=f"chance ({chance:.0%})")
            ax.legend(loc="lower right", frameon=True, facecolor="white", edgecolor="none")
        ax.set_yticks(y, [str(c) for c in data[category]])
        ax.set_xlim(0, 1.1)
        ax.set_xticks(np.linspace(0, 1, 6))
        ax.xaxis.set_major_formatter(PercentFormatter(1.0, decimals=0))
        ax.grid(axis="y", visible=False)
        ax.set_xlabel(accuracy.replace("_", " "))
        ax.set_title(title)
    return fig


def save(fig: Figure, path_stem: str | Path) -> list[Path]:
    """Write `<stem>.png` and `<stem>.svg` (creating the folder) and return both paths."""
    stem = Path(path_stem)
    stem.parent.mkdir(parents=True, exist_ok=True)
    paths = [stem.with_name(stem.name + ".png"), stem.with_name(stem.name + ".svg")]
    with plot_style():
        for p in paths:
            fig.savefig(p)
    return paths


def stock_over_months(table: pd.DataFrame, collapse: float | None = None, title: str = "Stock over months") -> Figure:
    """One line per run of the commons: the stock at the start of each month, and what the last harvest left.

    Runs are coloured by their members (policies); a dotted line marks the collapse level.
    """
    with plot_style():
        fig = _figure()
        ax = fig.add_subplot()
        groups = sorted(table["members"].unique()) if not table.empty else []
        colour = {g: _style(i) for i, g in enumerate(groups)}
        labelled: set[str] = set()
        for (_, _), run in table.groupby(["phase", "episode"], sort=True):
            members = run["members"].iloc[0]
            label = None if members in labelled else " + ".join(_short_policy(m) for m in members.split(" + "))
            labelled.add(members)
            ax.plot(run["month"], run["stock"], marker="o", markersize=3, alpha=0.8, label=label, **colour[members])
        if collapse is not None:
            ax.axhline(collapse, color="#555555", linestyle=":", linewidth=1.0)
        handles, _ = ax.get_legend_handles_labels()
        if handles:
            _legend(ax, len(handles), title="members")
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))
        ax.set_xlabel("month")
        ax.set_ylabel("stock")
        ax.set_ylim(bottom=0)
        ax.set_title(title)
    return fig
