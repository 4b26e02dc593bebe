"""Iterated Prisoner's Dilemma in Concordia (gdm-concordia), timed and score-checked.

Concordia's own prefabs do the work: a `generic` Simulation with entity
prefabs (`minimal__Entity` or `basic__Entity`) and the matrix-game game master
`game_theoretic_and_dramaturgic__GameMaster`, on its default sequential engine.
One decision scene seats every player for 10 rounds (one scene round is one
player's move, so the scene has 10 x players rounds); the game master's
`action_to_scores` scores each fixed pair with the Prisoner's Dilemma matrix.

The language model is a counting stand-in that answers at once: a player's
Cooperate/Defect question gets a move picked from a hash of its prompt, any other
multiple-choice question its first option, any free-text question one short
sentence. The embedder returns a constant vector.

Timed: from building the config to the end of `play` (imports excluded; the
engine's step-by-step printing goes to /dev/null; no HTML log is rendered).

Scores are checked: every player's `act` is wrapped to record the move it gave,
`action_to_scores` records the joint action the game master resolved, and the
game master's final scores are compared with those recomputed from the moves given.

Usage (in a virtual environment with gdm-concordia): python concordia_pd.py --players 2 [--games N]
"""

from __future__ import annotations

import argparse
import contextlib
import importlib.metadata
import os
import re
import threading
import time
from collections.abc import Callable, Collection, Mapping, Sequence
from typing import Any

import numpy as np
from common import COOPERATE, DEFECT, ROUNDS, emit, pairs, pick, recompute, rss_mib, score_check
from concordia.language_model import language_model
from concordia.prefabs import entity as entity_prefabs
from concordia.prefabs import game_master as game_master_prefabs
from concordia.prefabs.simulation import generic as simulation_lib
from concordia.typing import entity as entity_lib
from concordia.typing import prefab as prefab_lib
from concordia.typing import scene as scene_lib
from concordia.utils import helper_functions

# The Prisoner's Dilemma of the repeated-games study, as societas plays it.
C, D = COOPERATE, DEFECT
PAYOFF = {(C, C): (8.0, 8.0), (C, D): (0.0, 10.0), (D, C): (10.0, 0.0), (D, D): (5.0, 5.0)}
OPTIONS = {COOPERATE: "Cooperate", DEFECT: "Defect"}
RULES = ("{name} is playing a repeated Prisoner's Dilemma with {partner}. Each round both choose "
         "Cooperate or Defect at the same time. Both cooperate: 8 points each. Both defect: 5 each. "
         "One defects while the other cooperates: the defector gets 10, the cooperator 0.")


_CHOICE = re.compile(r"\(([a-z])\)\s+(Cooperate|Defect)\s*$", re.MULTILINE)
"""An option line of a multiple-choice question, "(a) Cooperate": its letter and option."""


class CountingModel(language_model.LanguageModel):
    """Answers instantly and counts every call (Concordia calls it from several threads)."""

    def __init__(self) -> None:
        self.calls = 0
        self.move_calls = 0
        self._lock = threading.Lock()

    def sample_text(self, prompt: str, *, max_tokens: int = 0, terminators: Collection[str] = (),
                    temperature: float = 0.0, timeout: float = 0.0, seed: int | None = None) -> str:
        with self._lock:
            self.calls += 1
        return "Nothing else happens."

    def sample_choice(self, prompt: str, responses: Sequence[str], *, seed: int | None = None
                      ) -> tuple[int, str, Mapping[str, Any]]:
        letters = {option: letter for letter, option in _CHOICE.findall(prompt[prompt.rfind("Question:"):])}
        move = set(letters) == {"Cooperate", "Defect"}
        idx = responses.index(letters[OPTIONS[pick(prompt)]]) if move else 0
        with self._lock:
            self.calls += 1
            self.move_calls += move
        return idx, responses[idx], {}


def constant_embedder(text: str, _vec: np.ndarray = np.ones(8) / np.sqrt(8)) -> np.ndarray:
    """The same unit vector for every text."""
    return _vec


def parse_move(text: str | None) -> str | None:
    """Cooperate/Defect as the game master resolved it (substring match, as Concordia's examples do)."""
    low = (text or "").lower()
    if "defect" in low and "cooperate" not in low:
        return DEFECT
    if "cooperate" in low and "defect" not in low:
        return COOPERATE
    return None


def play_one(players: int, entity_prefab: str) -> dict[str, Any]:
    """Build and play one simulation; return its counts, timing and score check."""
    names = [f"Agent{i:04d}" for i in range(players)]
    partner = {names[a]: names[b] for a, b in pairs(players)} | {names[b]: names[a] for a, b in pairs(players)}
    joint_actions: list[dict[str, str]] = []

    def action_to_scores(joint_action: Mapping[str, str]) -> Mapping[str, float]:
        joint_actions.append(dict(joint_action))
        scores = {}
        for a, b in pairs(players):
            ma = parse_move(joint_action[names[a]]) or DEFECT
            mb = parse_move(joint_action[names[b]]) or DEFECT
            scores[names[a]], scores[names[b]] = PAYOFF[(ma, mb)]
        return scores

    def scores_to_observation(scores: Mapping[str, float]) -> Mapping[str, str]:
        return {n: f"{n} has {s:g} points in total." for n, s in scores.items()}

    t0, c0 = time.perf_counter(), time.process_time()
    decision = scene_lib.SceneTypeSpec(
        name="decision", game_master_name="decision rules",
        action_spec=entity_lib.choice_action_spec(
            call_to_action="Which option does {name} choose this round?", options=["Cooperate", "Defect"]),
    )
    scene = scene_lib.SceneSpec(
        scene_type=decision, participants=names, num_rounds=ROUNDS * players,
        premise={n: [RULES.format(name=n, partner=partner[n])] for n in names},
    )
    prefabs = {**helper_functions.get_package_classes(entity_prefabs),
               **helper_functions.get_package_classes(game_master_prefabs)}
    instances = [prefab_lib.InstanceConfig(prefab=entity_prefab, role=prefab_lib.Role.ENTITY,
                                           params={"name": n, "goal": "score as many points as possible"})
                 for n in names]
    instances.append(prefab_lib.InstanceConfig(
        prefab="game_theoretic_and_dramaturgic__GameMaster", role=prefab_lib.Role.GAME_MASTER,
        params={"name": "decision rules", "scenes": [scene], "action_to_scores": action_to_scores,
                "scores_to_observation": scores_to_observation}))
    config = prefab_lib.Config(default_premise="", default_max_steps=ROUNDS * players,
                               prefabs=prefabs, instances=instances)
    model = CountingModel()
    given: dict[str, list[str]] = {n: [] for n in names}
    with open(os.devnull, "w") as devnull, contextlib.redirect_stdout(devnull):  # the engine prints every step
        sim = simulation_lib.Simulation(config=config, model=model, embedder=constant_embedder)
        for entity in sim.entities:
            entity.act = _recording(entity.act, given[entity.name])
        sim.play(return_html_log=False)
    wall, cpu = time.perf_counter() - t0, time.process_time() - c0

    payoff_matrix = sim.game_masters[0].get_component("payoff_matrix")
    reported = dict(payoff_matrix.get_scores())
    moves = {(a, b): [] for a, b in pairs(players)}
    misattributed = 0
    examples = []
    for stage in range(ROUNDS):
        for a, b in pairs(players):
            ga, gb = given[names[a]][stage], given[names[b]][stage]
            moves[(a, b)].append((parse_move(ga), parse_move(gb)))
        resolved = joint_actions[stage] if stage < len(joint_actions) else {}
        for n in names:
            if parse_move(resolved.get(n)) != parse_move(given[n][stage]):
                misattributed += 1
                examples.append(f"round {stage + 1}, {n} gave {given[n][stage].strip()!r}, "
                                f"game master scored {(resolved.get(n) or '').strip()!r}")
    expected = recompute(moves, PAYOFF)
    return {
        "wall_s": wall,
        "cpu_s": cpu,
        "decisions": sum(len(v) for v in given.values()),
        "model_calls": model.calls,
        "move_calls": model.move_calls,
        "expected": {names[i]: v for i, v in expected.items()},
        "reported": reported,
        "misattributed": misattributed,
        "examples": examples[:3],
        "stages_scored": len(joint_actions),
    }


def _recording(act: Callable[..., str], into: list[str]) -> Callable[..., str]:
    def act_and_record(*args: Any, **kwargs: Any) -> str:
        action = act(*args, **kwargs)
        into.append(action)
        return action

    return act_and_record


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--players", type=int, required=True)
    ap.add_argument("--games", type=int, default=1, help="independent simulations, played one after another")
    ap.add_argument("--entity", default="minimal__Entity", choices=["minimal__Entity", "basic__Entity"])
    ap.add_argument("--workload", default=None, help="workload label for the record (default: players)")
    ap.add_argument("--out", default=None)
    args = ap.parse_args()
    rss_import = rss_mib()
    runs = [play_one(args.players, args.entity) for _ in range(args.games)]
    expected = {f"{g}:{k}": v for g, r in enumerate(runs) for k, v in r["expected"].items()}
    reported = {f"{g}:{k}": v for g, r in enumerate(runs) for k, v in r["reported"].items()}
    stages = sorted({r["stages_scored"] for r in runs})
    check = score_check(expected, reported, misattributed=sum(r["misattributed"] for r in runs),
                        checked_moves=sum(r["decisions"] for r in runs),
                        note=f"game-master stages scored per game: {stages} of {ROUNDS}")
    check["misattributed_examples"] = [e for r in runs for e in r["examples"]][:3]
    emit({
        "framework": "concordia",
        "version": importlib.metadata.version("gdm-concordia"),
        "variant": f"{args.entity.split('__')[0]} players, counting mock model",
        "engine": "sequential (the Simulation default)",
        "workload": args.workload or str(args.players),
        "players": args.players,
        "games": args.games,
        "decisions": sum(r["decisions"] for r in runs),
        "model_calls": sum(r["model_calls"] for r in runs),
        "move_calls": sum(r["move_calls"] for r in runs),
        "wall_s": sum(r["wall_s"] for r in runs),
        "cpu_s": sum(r["cpu_s"] for r in runs),
        "logging": "in-memory raw log (no HTML, nothing written to disk)",
        "rss_after_import_mib": rss_import,
        "rss_peak_mib": rss_mib(),
        "scores": check,
    }, args.out)


if __name__ == "__main__":
    main()
