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

Usage: python benchmarks/peers/mesa_pd.py [--agents 1000] [--steps 100] [--repeat 5]
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


def mesa_run(n: int, steps: int) -> tuple[float, int, float]:
    t0 = time.perf_counter()
    model = PDModel(n)
    for _ in range(steps):
        model.step()
    wall = time.perf_counter() - t0
    total = sum(a.score for a in model.agents)
    # The score check: every total recomputed from the moves the agents made.
    for a in model.agents:
        assert a.score == sum(PAYOFF[(m, p)][0] for m, p in zip(a.moves, a.partner.moves, strict=True))
    return wall, model.decisions, total


def societas_run(n: int, steps: int, batch: bool) -> tuple[float, int, dict]:
    with tempfile.TemporaryDirectory(prefix="societas-mesa-") as tmp:
        os.environ.setdefault("SOCIETAS_CACHE_DIR", str(Path(tmp) / "cache"))
        t0 = time.perf_counter()
        cfg = make_config(n, steps, tmp, batch)
        rd, summary = run_experiment(cfg, progress=False)
        wall = time.perf_counter() - t0
        check = societas_pd.check_scores(rd.path)
    return wall, summary["decisions"], check


def make_config(n: int, steps: int, out: str, batch: bool):
    base = societas_pd.make_config(n, "scripted", 1, out)
    env = base.environment.model_copy(update={"params": {"game": "prisoners_dilemma", "rounds": steps}})
    return base.model_copy(update={"environment": env,
                                   "runner": base.runner.model_copy(update={"batch_scripted": batch})})


def play_alone(n: int, steps: int) -> tuple[float, int]:
    """The batched play of the same episodes into Arrow tables, without a run directory."""
    cfg = make_config(n, steps, tempfile.gettempdir(), True)
    episodes = make_society(cfg).phase(0)
    ctx = RunContext(run_id="bench", seed=cfg.seed, llm=cfg.llm)
    t0 = time.perf_counter()
    groups, rest = batched.split(episodes)
    rows = sum(out.events.num_rows for out in batched.play(groups, ctx, max_rows=cfg.runner.flush_every_rows))
    assert not rest
    return time.perf_counter() - t0, rows


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--agents", type=int, default=1000)
    ap.add_argument("--steps", type=int, default=100)
    ap.add_argument("--repeat", type=int, default=5)
    args = ap.parse_args()
    print(f"# mesa_pd.py  {datetime.datetime.now(datetime.timezone.utc):%Y-%m-%d %H:%M} UTC  "
          f"{platform.machine()}, {os.cpu_count()} cores, python {platform.python_version()}, "
          f"mesa {mesa.__version__}, societas {societas.__version__}")
    print(f"# iterated PD, {args.agents} agents in {args.agents // 2} fixed pairs, {args.steps} steps; "
          f"{args.repeat} interleaved repetitions after one warm-up each; medians")
    mesa_run(args.agents, 2)
    societas_run(args.agents, 2, True)
    rates: dict[str, list[float]] = {"mesa": [], "batched": [], "alone": [], "one": []}
    checks = []
    for _ in range(args.repeat):
        wall, decisions, _ = mesa_run(args.agents, args.steps)
        rates["mesa"].append(decisions / wall)
        wall, decisions, check = societas_run(args.agents, args.steps, True)
        rates["batched"].append(decisions / wall)
        checks.append(check)
        wall, rows = play_alone(args.agents, args.steps)
        rates["alone"].append(rows / wall)
        wall, decisions, check = societas_run(args.agents, args.steps, False)
        rates["one"].append(decisions / wall)
        checks.append(check)
    med = {k: statistics.median(v) for k, v in rates.items()}
    rows = [
        ("Mesa 3.x, no per-decision log", "mesa"),
        ("societas run, scripted members together, every decision in Parquet", "batched"),
        ("societas batched play alone (events as Arrow tables, no run directory)", "alone"),
        ("societas run, one decision at a time (batch_scripted: false)", "one"),
    ]
    for label, key in rows:
        spread = f"{min(rates[key]):,.0f}-{max(rates[key]):,.0f}"
        print(f"{label:<76} {med[key]:>12,.0f} decisions/s  ({spread})  {med[key] / med['mesa']:.2f}x Mesa")
    bad = [c for c in checks if not c.get("ok", True)]
    print(f"score checks: {len(checks) - len(bad)}/{len(checks)} societas runs with every reward and total "
          f"recomputed right; every Mesa total recomputed right")
    print(f"ratio societas/mesa decisions per second: {med['batched'] / med['mesa']:.2f}")


if __name__ == "__main__":
    main()
