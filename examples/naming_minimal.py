"""The minimal naming game at N=24: time to consensus for W=10 and W=2, and the
committed-minority curve on the swap setup, with figures.

    python examples/naming_minimal.py OUT_DIR [--runs 200] [--minority-runs 100]
"""

from __future__ import annotations

import argparse
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
import pandas as pd

from societas.analysis.norms import adoption, convention_share, critical_minority, time_to_consensus
from societas.environments.naming import LETTERS, MinimalNamingGame, simulate


def runs(game: MinimalNamingGame, count: int) -> pd.DataFrame:
    return pd.concat([simulate(game, seed=s, episode=s) for s in range(count)], ignore_index=True)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("out", type=Path)
    parser.add_argument("--runs", type=int, default=200)
    parser.add_argument("--minority-runs", type=int, default=100)
    parser.add_argument("--budget", type=int, default=1000)
    args = parser.parse_args()
    args.out.mkdir(parents=True, exist_ok=True)

    fig, (hist, curves) = plt.subplots(1, 2, figsize=(11, 4))
    for w, names in ((10, LETTERS), (2, ("F", "J"))):
        ev = runs(MinimalNamingGame(n_agents=24, names=names), args.runs)
        t = time_to_consensus(ev)["consensus_rounds"]
        print(f"W={w}: {args.runs} runs, consensus in all: {t.notna().all()}, population rounds "
              f"median {t.median():.1f}, mean {t.mean():.1f}, 10-90% {t.quantile(.1):.1f}-{t.quantile(.9):.1f}, "
              f"max {t.max():.1f}")
        hist.hist(t, bins=30, alpha=0.6, label=f"W={w}")
        share = convention_share(ev).pivot(index="population_round", columns="episode", values="share")
        share = share.ffill().fillna(1.0)
        q = share.quantile([0.1, 0.5, 0.9], axis=1).T
        curves.plot(q.index, q[0.5], label=f"W={w} median")
        curves.fill_between(q.index, q[0.1], q[0.9], alpha=0.25)
    hist.set(xlabel="time to consensus (population rounds)", ylabel="runs", title="Minimal model, N=24")
    hist.legend()
    curves.set(xlabel="population round", ylabel="convention share", title="Convention share (10-90% band)")
    curves.legend()
    fig.tight_layout()
    fig.savefig(args.out / "naming_consensus.png", dpi=110)

    tables = []
    for cm in range(0, 13):
        game = MinimalNamingGame(n_agents=24, names=("Q", "M"), committed=cm, committed_name="M",
                                 swap=True, established="Q", budget=args.budget)
        tables.append(adoption(runs(game, args.minority_runs), "M").assign(committed=cm))
    table = pd.concat(tables, ignore_index=True)
    curve, critical = critical_minority(table)
    curve["fraction"] = curve["committed"] / 24
    print(curve.to_string(index=False, float_format=lambda x: f"{x:.3f}"))
    print(f"critical minority (flip chance >= 0.5): {critical['critical']:.0f} agents "
          f"({critical['critical'] / 24:.1%}), interval {critical['low']:.0f}-{critical['high']:.0f}")
    fig, ax = plt.subplots(figsize=(6, 4))
    ax.plot(curve["fraction"], curve["flip_rate"], "o-", label="flip chance (adoption >= 95%)")
    ax.fill_between(curve["fraction"], curve["ci_low"], curve["ci_high"], alpha=0.25)
    ax.plot(curve["fraction"], curve["mean_adoption"], "s--", label="mean adoption")
    ax.set(xlabel="committed fraction", ylabel="share of runs / adoption",
           title=f"Swap setup, N=24, {args.budget} interactions")
    ax.legend()
    fig.tight_layout()
    fig.savefig(args.out / "naming_committed_minority.png", dpi=110)


if __name__ == "__main__":
    main()
