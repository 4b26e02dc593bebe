"""Iterated Prisoner's Dilemma in societas, timed and score-checked.

Each measurement is one normal run, timed from the config mapping to the
finished run (imports excluded, as for the peers): config validation, run
directory, every decision written to Parquet (events; with language-model
agents also every model request, prompt included), episodes table and
summary. The environment is `repeated-matrix-game` (Prisoner's Dilemma, 10
rounds); the players of a workload are paired as in `common.py` (fixed
disjoint pairs) by a round robin restricted to a graph of those pairs, with
neither self-play nor the reversed seat order; `--games N` repeats the pairs N
times (matchmaking repetitions).

Agents, by `--agents`:
- `llm`: language-model agents on the in-process `fake:random` responder (a
  hash of the request picks the option): plain prompting, one model call per
  decision;
- `scripted`: a mix of scripted strategies (tit-for-tat, always defect, random,
  win-stay-lose-shift, grim trigger, alternating).

Scores are checked from what the run wrote: each decision's reward and each
seat's episode total are recomputed from the options recorded for both seats
with the game's payoff matrix; with language-model agents, each recorded move
is also compared with the reply the model gave.

Usage: python societas_pd.py --players 2 --agents llm [--games N]
"""

from __future__ import annotations

import argparse
import importlib.metadata
import os
import tempfile
import time
from pathlib import Path
from typing import Any

import pandas  # noqa: F401  (imported before timing: the run reads its summary with it)
import pyarrow.dataset  # noqa: F401  (likewise: the run reads its parts back with it)
import pyarrow.parquet as pq
from common import ROUNDS, emit, pairs, rss_mib, score_check

import societas.environments.matrix_game  # noqa: F401  (imports stay outside the timed region, as for the peers)
from societas.config import ExperimentConfig, parse_config
from societas.environments.catalog import lookup
from societas.runners.run import run_experiment

STRATEGIES = ("tit_for_tat", "always_defect", "random", "win_stay_lose_shift", "grim_trigger", "alternating")


def make_config(players: int, agents: str, games: int, out: str) -> ExperimentConfig:
    """The workload as a societas config: fixed disjoint pairs, repeated `games` times."""
    names = [f"a{i:04d}" for i in range(players)]
    population = [{"name": n, "policy": "llm" if agents == "llm" else f"scripted:{STRATEGIES[i % len(STRATEGIES)]}"}
                  for i, n in enumerate(names)]
    edges = [[names[a], names[b]] for a, b in pairs(players)]
    return parse_config({
        "name": f"peers-pd-{players}-{agents}",
        "seed": 0,
        "model": "fake:random" if agents == "llm" else None,
        "environment": {"id": "repeated-matrix-game", "params": {"game": "prisoners_dilemma", "rounds": ROUNDS}},
        "population": population,
        "matchmaking": {"kind": "round_robin", "self_play": False, "both_orders": False, "repetitions": games,
                        "graph": {"kind": "edges", "edges": edges}},
        "output_dir": out,
    }, source="societas_pd")


def check_scores(run_dir: Path) -> dict[str, Any]:
    """Recompute every reward and every episode total from the recorded options."""
    payoffs = lookup("prisoners_dilemma").payoffs
    ev = pq.read_table(run_dir / "events", columns=["episode", "round", "seat", "option", "action", "reward"]
                       ).to_pandas()
    eps = pq.read_table(run_dir / "episodes", columns=["episode", "seat", "total_reward"]).to_pandas()
    wide = ev.pivot_table(index=["episode", "round"], columns="seat", values="option", aggfunc="first")
    p0 = [payoffs[int(a)][int(b)][0] for a, b in zip(wide[0], wide[1], strict=True)]
    p1 = [payoffs[int(a)][int(b)][1] for a, b in zip(wide[0], wide[1], strict=True)]
    wide["r0"], wide["r1"] = p0, p1
    expected = wide.groupby(level="episode")[["r0", "r1"]].sum()
    expected_totals = {(int(e), s): float(expected.loc[e, f"r{s}"]) for e in expected.index for s in (0, 1)}
    reported = {(int(e), int(s)): float(t)
                for e, s, t in eps[["episode", "seat", "total_reward"]].itertuples(index=False)}
    # Per-decision rewards as recorded, against the matrix.
    ev = ev.join(wide[["r0", "r1"]], on=["episode", "round"])
    wrong_rewards = int(((ev["seat"] == 0) & (ev["reward"] != ev["r0"])).sum()
                        + ((ev["seat"] == 1) & (ev["reward"] != ev["r1"])).sum())
    misattributed = wrong_rewards
    note = "rewards and episode totals recomputed from recorded options"
    calls_dir = run_dir / "llm_calls"
    if any(calls_dir.glob("part-*.parquet")):
        calls = pq.read_table(calls_dir, columns=["episode", "round", "seat", "reply", "error"]).to_pandas()
        calls = calls[calls["error"].isna()].drop_duplicates(["episode", "round", "seat"], keep="last")
        moved = ev.merge(calls, on=["episode", "round", "seat"], how="left")
        misattributed += int((moved["reply"].str.strip() != moved["action"]).sum())
        note += "; recorded moves compared with the model's replies"
    return score_check({str(k): v for k, v in expected_totals.items()}, {str(k): v for k, v in reported.items()},
                       misattributed=misattributed, checked_moves=len(ev), note=note)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--players", type=int, required=True)
    ap.add_argument("--agents", choices=["llm", "scripted"], required=True)
    ap.add_argument("--games", type=int, default=1, help="repetitions of the workload's pairs in the one run")
    ap.add_argument("--workload", default=None)
    ap.add_argument("--out", default=None)
    args = ap.parse_args()
    rss_import = rss_mib()
    with tempfile.TemporaryDirectory(prefix="societas-peers-") as tmp:
        os.environ.setdefault("SOCIETAS_CACHE_DIR", str(Path(tmp) / "cache"))
        t0, c0 = time.perf_counter(), time.process_time()
        cfg = make_config(args.players, args.agents, args.games, tmp)
        rd, summary = run_experiment(cfg, progress=False)
        wall, cpu = time.perf_counter() - t0, time.process_time() - c0
        check = check_scores(rd.path)
        written = sum(f.stat().st_size for f in rd.path.rglob("*") if f.is_file())
    variant = "LLM agents, fake:random responder" if args.agents == "llm" else "scripted agents"
    emit({
        "framework": "societas",
        "version": importlib.metadata.version("societas"),
        "variant": variant,
        "agents": args.agents,
        "workload": args.workload or str(args.players),
        "players": args.players,
        "games": args.games,
        "decisions": summary["decisions"],
        "model_calls": summary["llm_calls"],
        "wall_s": wall,
        "cpu_s": cpu,
        "logging": "run directory: every decision in Parquet" + (", every model request with its prompt"
                                                                  if args.agents == "llm" else ""),
        "written_mib": written / 2**20,
        "rss_after_import_mib": rss_import,
        "rss_peak_mib": rss_mib(),
        "scores": check,
    }, args.out)


if __name__ == "__main__":
    main()
