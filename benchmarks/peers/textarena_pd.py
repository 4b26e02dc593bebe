"""Iterated Prisoner's Dilemma in TextArena, timed and score-checked.

TextArena's registered `IteratedPrisonersDilemma-v0` (10 rounds, its default
observation wrappers) is a two-player game: each round is one free-text turn per
player, then one move per player ("[Cooperate]" or "[Defect]"). Players are
instant Python callables that answer every turn with a move picked from a hash
of the observation they were given; only decision-phase answers are moves.
The 8- and 1,000-player workloads are 4 and 500 independent games (fixed
disjoint pairs), played one after another. Nothing is written to disk.

Scores are checked: the moves given in the decision phase are recorded, and the
environment's final scores are compared with those recomputed from TextArena's
own payoff matrix.

Usage (in a virtual environment with textarena): python textarena_pd.py --players 2 [--games N]
"""

from __future__ import annotations

import argparse
import importlib.metadata
import time
from typing import Any

import textarena as ta
import textarena.envs.IteratedPrisonersDilemma.env  # imported before timing, as for the others
from common import COOPERATE, DEFECT, ROUNDS, emit, pairs, pick, recompute, rss_mib, score_check

ENV_ID = "IteratedPrisonersDilemma-v0"
MOVE_TEXT = {COOPERATE: "I choose [Cooperate].", DEFECT: "I choose [Defect]."}


def player(observation: str) -> str:
    """An instant player: a move read off a hash of what it was shown."""
    return MOVE_TEXT[pick(observation)]


def play_game(seed: int) -> dict[str, Any]:
    """One 10-round game between two players; moves given, scores reported, turns taken."""
    env = ta.make(env_id=ENV_ID)
    env.reset(num_players=2, seed=seed)
    state = env.state  # the wrappers forward attribute access to the environment
    moves: list[list[str]] = [[], []]
    turns = 0
    done = False
    while not done:
        pid, observation = env.get_observation()
        deciding = state.game_state["phase"] == "decision"  # read by the harness only, to record moves
        action = player(observation)
        turns += 1
        if deciding:
            moves[pid].append(COOPERATE if "[Cooperate]" in action else DEFECT)
        done, _ = env.step(action=action)
    env.close()
    cc, dc, cd, dd = env.cooperate_reward, env.defect_reward, env.sucker_reward, env.mutual_defect_reward
    payoff = {(COOPERATE, COOPERATE): (cc, cc), (COOPERATE, DEFECT): (cd, dc),
              (DEFECT, COOPERATE): (dc, cd), (DEFECT, DEFECT): (dd, dd)}
    return {"moves": list(zip(moves[0], moves[1], strict=True)), "reported": dict(state.game_state["scores"]),
            "turns": turns, "payoff": payoff}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--players", type=int, required=True)
    ap.add_argument("--games", type=int, default=1, help="repetitions of the whole workload")
    ap.add_argument("--workload", default=None)
    ap.add_argument("--out", default=None)
    args = ap.parse_args()
    rss_import = rss_mib()
    n_pairs = len(pairs(args.players))
    t0, c0 = time.perf_counter(), time.process_time()
    games = [play_game(seed) for seed in range(args.games * n_pairs)]
    wall, cpu = time.perf_counter() - t0, time.process_time() - c0
    expected: dict[str, float] = {}
    reported: dict[str, float] = {}
    decisions = turns = 0
    for g, game in enumerate(games):
        totals = recompute({(0, 1): game["moves"]}, game["payoff"])
        for pid in (0, 1):
            expected[f"{g}:{pid}"] = totals.get(pid, 0.0)
            reported[f"{g}:{pid}"] = float(game["reported"][pid])
        decisions += 2 * len(game["moves"])
        turns += game["turns"]
    short = sum(len(g["moves"]) != ROUNDS for g in games)
    check = score_check(expected, reported, checked_moves=decisions,
                        note=f"{len(games)} games; games with other than {ROUNDS} rounds: {short}")
    emit({
        "framework": "textarena",
        "version": importlib.metadata.version("textarena"),
        "variant": "instant callables (chat turn + move a round)",
        "workload": args.workload or str(args.players),
        "players": args.players,
        "games": args.games,
        "decisions": decisions,
        "model_calls": turns,
        "wall_s": wall,
        "cpu_s": cpu,
        "logging": "none (observations kept in memory)",
        "rss_after_import_mib": rss_import,
        "rss_peak_mib": rss_mib(),
        "scores": check,
    }, args.out)


if __name__ == "__main__":
    main()
