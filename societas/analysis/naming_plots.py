"""Figures of the naming game in the house style of `plots`: the convention's rise, time to consensus,
and adoption against the size of a committed minority."""

from __future__ import annotations

import numpy as np
import pandas as pd
from matplotlib.figure import Figure
from matplotlib.ticker import MaxNLocator, PercentFormatter

from societas.analysis.plots import PALETTE, _figure, _legend, _style, plot_style


def convention_share(share: pd.DataFrame, group: str = "condition",
                     title: str = "Share of the winning name over time") -> Figure:
    """Per group: the median over runs of the share of answers that were the run's winning name in each
    population round, with the 10-90% band across runs."""
    with plot_style():
        fig = _figure()
        ax = fig.add_subplot()
        groups = sorted(share[group].dropna().unique()) if not share.empty else []
        for i, g in enumerate(groups):
            wide = share[share[group] == g].pivot_table(index="population_round", columns=["phase", "episode"],
                                                        values="share")
            q = wide.quantile([0.1, 0.5, 0.9], axis=1).T
            st = _style(i)
            ax.plot(q.index, q[0.5], label=f"{g} ({wide.shape[1]} runs)", **st)
            ax.fill_between(q.index, q[0.1], q[0.9], color=st["color"], alpha=0.18, linewidth=0)
        _legend(ax, len(groups) + 1)
        ax.set_ylim(0, 1.02)
        ax.yaxis.set_major_formatter(PercentFormatter(1.0, decimals=0))
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))
        ax.set_xlabel("population round (N interactions)")
        ax.set_ylabel("answers naming the winner")
        ax.set_title(title)
    return fig


def consensus_times(times: pd.DataFrame, group: str = "condition",
                    title: str = "Time to consensus") -> Figure:
    """Histogram of the population rounds each run took to reach consensus, per group; runs that never
    did are counted in the legend."""
    with plot_style():
        fig = _figure(7.0, 3.6)
        ax = fig.add_subplot()
        groups = sorted(times[group].dropna().unique()) if not times.empty else []
        reached = times["consensus_rounds"].dropna()
        bins = np.histogram_bin_edges(reached, bins=min(30, max(5, len(reached) // 3))) if len(reached) else 10
        for i, g in enumerate(groups):
            t = times[times[group] == g]
            r = t["consensus_rounds"].dropna()
            missed = len(t) - len(r)
            label = f"{g}: median {r.median():.1f}" if len(r) else f"{g}: none"
            if missed:
                label += f", {missed} of {len(t)} runs without consensus"
            ax.hist(r, bins=bins, color=PALETTE[i % len(PALETTE)], alpha=0.6 if len(groups) > 1 else 0.85,
                    label=label, edgecolor="white", linewidth=0.5)
            if len(r):
                ax.axvline(r.median(), color=PALETTE[i % len(PALETTE)], linestyle="--", linewidth=1.2)
        if groups:
            ax.legend(loc="upper left", bbox_to_anchor=(0.0, -0.2), ncols=1)
        ax.yaxis.set_major_locator(MaxNLocator(integer=True))
        ax.set_xlabel("population rounds to consensus (3N successes in a row)")
        ax.set_ylabel("runs")
        ax.set_title(title)
    return fig


def adoption_curve(curve: pd.DataFrame, critical: float | None = None, new_name: str | None = None,
                   title: str = "Committed minority: adoption and flips") -> Figure:
    """The chance a run's convention flips (adoption >= 95%) against the committed fraction, with its 95%
    interval, the mean adoption, and the critical minority marked."""
    with plot_style():
        fig = _figure(7.0, 4.6)
        ax = fig.add_subplot()
        x = curve["fraction"].to_numpy(float)
        ax.fill_between(x, curve["ci_low"], curve["ci_high"], color=PALETTE[0], alpha=0.18, linewidth=0,
                        label="95% interval of the flip chance")
        ax.plot(x, curve["flip_rate"], marker="o", markersize=4, color=PALETTE[0],
                label="runs ending with >= 95% adoption")
        ax.plot(x, curve["mean_adoption"], marker="s", markersize=3.5, linestyle="--", color=PALETTE[1],
                label=f"mean adoption of {new_name}" if new_name else "mean adoption")
        if critical is not None and critical == critical:
            n = curve.loc[curve["committed"] == critical, "fraction"]
            if len(n):
                ax.axvline(float(n.iloc[0]), color=PALETTE[3], linestyle=":", linewidth=1.4,
                           label=f"critical minority: {int(critical)} ({float(n.iloc[0]):.1%})")
        ax.legend(loc="upper left", bbox_to_anchor=(0.0, -0.2), ncols=2)
        ax.set_ylim(-0.02, 1.02)
        ax.yaxis.set_major_formatter(PercentFormatter(1.0, decimals=0))
        ax.xaxis.set_major_formatter(PercentFormatter(1.0, decimals=0))
        ax.set_xlabel("committed fraction of the population")
        ax.set_ylabel("share of runs / of answers")
        ax.set_title(title)
    return fig
