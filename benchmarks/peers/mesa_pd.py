"""Mesa beside societas: a 1,000-agent iterated Prisoner's Dilemma, 100 steps, in one process.

Mesa (`pip install "mesa==3.3.*"`): a `mesa.Model` with 1,000 `mesa.Agent`s in
500 fixed pairs (0-1, 2-3, ...), the strategy mix of `societas_pd.py`
(tit-for-tat, always defect, random, win-stay-lose-shift, grim trigger,
alternating); each step every agent decides (`agents.do("decide")`) and then
every pair is scored (`agents.do("advance")`), with the Prisoner's Dilemma of
the repeated-games study (8/8, 0/10, 10/0, 5/5). No DataCollector: nothing is
logged per decision, only each agent's history and score in memory. Timed from
the model's construction to its last step.

societas: the same population and pairs as a normal run (`parse_config` +
`run_experiment`, `repeated-matrix-game`, 100 rounds), every decision written
to the run directory's Parquet events (plus episodes, checkpoint, summary).
Its scripted members decide together (`runner.batch_scripted`, the default);
the run is also timed one decision at a time (`batch_scripted: false`) and the
batched play alone (episodes to Arrow tables, no run directory). Every
societas reward and episode total is recomputed from the recorded options.

Repetitions are interleaved (Mesa, societas, societas one at a time, ...);
medians are printed with their ratios.

A run's fixed costs (config and run directory written, checkpoint and summary,
each with an fsync) weigh on 100,000 decisions; the steady-state rows repeat the
pairs `--games` times in one run (Mesa: as many models one after another), so
the per-decision costs show.

Usage: python benchmarks/peers/mesa_pd.py [--agents 1000] [--steps 100] [--repeat 5] [--games 10]
"""

from __future__ import annotations

import argparse
import datetime
import os
import platform
import statistics
import sys
import tempfile
import time
from pathlib import Path

import mesa

sys.path.insert(0, str(Path(__file__).resolve().parent))
import pandas  # noqa: F401  (imported before timing, as in societas_pd.py)
import pyarrow.dataset  # noqa: F401
import societas_pd

import societas
from societas.runners import batched
from societas.runners.local import RunContext
from societas.runners.run import run_experiment
from societas.societies.society import make_society

COOPERATE, DEFECT = 0, 1
PAYOFF = {(0, 0): (8.0, 8.0), (0, 1): (0.0, 10.0), (1, 0): (10.0, 0.0), (1, 1): (5.0, 5.0)}


class Player(mesa.Agent):
    """One member: a strategy over its own and its partner's history."""

    def __init__(self, model: PDModel, strategy: str) -> None:
        super().__init__(model)
        self.strategy = strategy
        self.partner: Player | None = None
        self.moves: list[int] = []
        self.rewards: list[float] = []
        self.score = 0.0
        self.next_move = COOPERATE

    def decide(self) -> None:
        partner = self.partner.moves
        s = self.strategy
        if s == "tit_for_tat":
            move = partner[-1] if partner else COOPERATE
        elif s == "always_defect":
            move = DEFECT
        elif s == "random":
            move = COOPERATE if self.random.random() < 0.5 else DEFECT
        elif s == "win_stay_lose_shift":
            move = COOPERATE if not self.moves else (
                self.moves[-1] if self.rewards[-1] >= 8.0 else 1 - self.moves[-1])
        elif s == "grim_trigger":
            move = DEFECT if DEFECT in partner else COOPERATE
        else:  # alternating
            move = len(self.moves) % 2
        self.next_move = move

    def advance(self) -> None:
        self.moves.append(self.next_move)

    def score_round(self) -> None:
        reward = PAYOFF[(self.moves[-1], self.partner.moves[-1])][0]
        self.rewards.append(reward)
        self.score += reward


class PDModel(mesa.Model):
    def __init__(self, n: int, seed: int = 0) -> None:
        super().__init__(seed=seed)
        players = [Player(self, societas_pd.STRATEGIES[i % len(societas_pd.STRATEGIES)]) for i in range(n)]
        for a, b in zip(players[0::2], players[1::2], strict=True):
            a.partner, b.partner = b, a
        self.decisions = 0

    def step(self) -> None:
        self.agents.do("decide")
        self.agents.do("advance")
        self.agents.do("score_round")
        self.decisions += len(self.agents)


def mesa_run(n: int, steps: int, games: int = 1) -> tuple[float, float, int]:
    """`games` models one after another (as `games` repetitions of the pairs in one societas run)."""
    models = []
    t0, c0 = time.perf_counter(), time.process_time()
    for g in range(games):
        model = PDModel(n, seed=g)
        for _ in range(steps):
            model.step()
        models.append(model)
    wall, cpu = time.perf_counter() - t0, time.process_time() - c0
    # The score check: every total recomputed from the moves the agents made.
    for model in models:
        for a in model.agents:
            if a.score != sum(PAYOFF[(m, p)][0] for m, p in zip(a.moves, a.partner.moves, strict=True)):
                raise SystemExit(f"Mesa misscored {a}")
    return wall, cpu, sum(m.decisions for m in models)


def societas_run(n: int, steps: int, batch: bool, games: int = 1) -> tuple[float, float, int, dict]:
    with tempfile.TemporaryDirectory(prefix="societas-mesa-") as tmp:
        os.environ.setdefault("SOCIETAS_CACHE_DIR", str(Path(tmp) / "cache"))
        t0, c0 = time.perf_counter(), time.process_time()
        cfg = make_config(n, steps, tmp, batch, games)
        rd, summary = run_experiment(cfg, progress=False)
        wall, cpu = time.perf_counter() - t0, time.process_time() - c0
        check = societas_pd.check_scores(rd.path)
    return wall, cpu, summary["decisions"], check


def make_config(n: int, steps: int, out: str, batch: bool, games: int = 1):
    base = societas_pd.make_config(n, "scripted", games, out)
    env = base.environment.model_copy(update={"params": {"game": "prisoners_dilemma", "rounds": steps}})
    return base.model_copy(update={"environment": env,
                                   "runner": base.runner.model_copy(update={"batch_scripted": batch})})


def play_alone(n: int, steps: int) -> tuple[float, float, int]:
    """The batched play of the same episodes into Arrow tables, without a run directory."""
    cfg = make_config(n, steps, tempfile.gettempdir(), True)
    episodes = make_society(cfg).phase(0)
    ctx = RunContext(run_id="bench", seed=cfg.seed, llm=cfg.llm)
    t0, c0 = time.perf_counter(), time.process_time()
    groups, rest = batched.split(episodes)
    rows = sum(out.events.num_rows for out in batched.play(groups, ctx, max_rows=cfg.runner.flush_every_rows))
    assert not rest
    return time.perf_counter() - t0, time.process_time() - c0, rows


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--agents", type=int, default=1000)
    ap.add_argument("--steps", type=int, default=100)
    ap.add_argument("--repeat", type=int, default=5)
    ap.add_argument("--games", type=int, default=10, help="repetitions for the steady-state rows (1: none)")
    ap.add_argument("--skip-one", action="store_true", help="leave out the one-decision-at-a-time run")
    args = ap.parse_args()
    print(f"# mesa_pd.py  {datetime.datetime.now(datetime.timezone.utc):%Y-%m-%d %H:%M} UTC  "
          f"{platform.machine()}, {os.cpu_count()} cores, python {platform.python_version()}, "
          f"mesa {mesa.__version__}, societas {societas.__version__}")
    print(f"# iterated PD, {args.agents} agents in {args.agents // 2} fixed pairs, {args.steps} steps; "
          f"{args.repeat} interleaved repetitions after one warm-up each; medians")
    mesa_run(args.agents, 2)
    societas_run(args.agents, 2, True)
    rates: dict[str, list[float]] = {}
    cpu_rates: dict[str, list[float]] = {}
    checks = []

    def add(key: str, wall: float, cpu: float, decisions: int) -> None:
        rates.setdefault(key, []).append(decisions / wall)
        cpu_rates.setdefault(key, []).append(decisions / cpu)

    for _ in range(args.repeat):
        add("mesa", *mesa_run(args.agents, args.steps))
        wall, cpu, decisions, check = societas_run(args.agents, args.steps, True)
        add("batched", wall, cpu, decisions)
        checks.append(check)
        add("alone", *play_alone(args.agents, args.steps))
        if not args.skip_one:
            wall, cpu, decisions, check = societas_run(args.agents, args.steps, False)
            add("one", wall, cpu, decisions)
            checks.append(check)
        if args.games > 1:
            add("mesa_g", *mesa_run(args.agents, args.steps, args.games))
            wall, cpu, decisions, check = societas_run(args.agents, args.steps, True, args.games)
            add("batched_g", wall, cpu, decisions)
            checks.append(check)
    med = {k: statistics.median(v) for k, v in rates.items()}
    cpu_med = {k: statistics.median(v) for k, v in cpu_rates.items()}
    rows = [
        ("Mesa, no per-decision log", "mesa", "mesa"),
        ("societas run, scripted members together, every decision in Parquet", "batched", "mesa"),
        ("societas batched play alone (events as Arrow tables, no run directory)", "alone", "mesa"),
        ("societas run, one decision at a time (batch_scripted: false)", "one", "mesa"),
        (f"Mesa, {args.games} models one after another", "mesa_g", "mesa_g"),
        (f"societas run, the pairs {args.games} times in one run, every decision in Parquet", "batched_g", "mesa_g"),
    ]
    print(f"{'':<80} {'decisions/s (range)':>30} {'/ Mesa':>6} {'per CPU s':>11} {'/ Mesa':>6}")
    for label, key, base in rows:
        if key not in med:
            continue
        spread = f"{med[key]:,.0f} ({min(rates[key]):,.0f}-{max(rates[key]):,.0f})"
        print(f"{label:<80} {spread:>30} {med[key] / med[base]:>6.2f} {cpu_med[key]:>11,.0f} "
              f"{cpu_med[key] / cpu_med[base]:>6.2f}")
    bad = [c for c in checks if not c.get("ok", True)]
    print(f"score checks: {len(checks) - len(bad)}/{len(checks)} societas runs with every reward and total "
          f"recomputed right; every Mesa total recomputed right")
    print(f"ratio societas/mesa decisions per second: {med['batched'] / med['mesa']:.2f} (one 100-step run)"
          + (f", {med['batched_g'] / med['mesa_g']:.2f} ({args.games} repetitions)" if "batched_g" in med else ""))


if __name__ == "__main__":
    main()
