"""The lock-in study end to end: the formal model, the bundled configs, the CLI, and an LLM loop over HTTP."""

from __future__ import annotations

import json
import math
import re
import subprocess
import sys
from pathlib import Path
from typing import Any

import networkx as nx
import numpy as np
import pytest

from societas.analysis import load_run
from societas.analysis.lockin import analyze_run
from societas.config import ConfigError, load_config, parse_config
from societas.llm.testing import FakeOpenAIServer
from societas.runners.local import episode_seed
from societas.runners.run import run_experiment
from societas.societies.lockin import (
    locks_in,
    simulate,
    spectral_radius,
    star_condition,
    star_locks_in,
    summary,
    trust_matrix,
)
from societas.societies.society import make_society

REPO = Path(__file__).resolve().parents[2]

# -- the formal model, by hand -------------------------------------------------------------


def test_spectral_radius_of_small_matrices_by_hand() -> None:
    # [[0, a], [b, 0]]: eigenvalues +-sqrt(ab).
    assert spectral_radius([[0, 0.5], [2.0, 0]]) == pytest.approx(1.0)
    assert spectral_radius([[0, 0.5], [3.0, 0]]) == pytest.approx(math.sqrt(1.5))
    # [[a, b], [b, a]]: eigenvalues a + b and a - b.
    assert spectral_radius([[0.2, 0.5], [0.5, 0.2]]) == pytest.approx(0.7)
    assert not locks_in([[0, 0.5], [2.0, 0]])  # rho = 1 exactly: the knife edge, not lock-in
    assert locks_in([[0, 0.5], [3.0, 0]]) and not locks_in([[0.2, 0.5], [0.5, 0.2]])


def test_three_node_star_by_hand() -> None:
    # Two humans trusting the AI with 0.5, the AI weighing each with 1.2:
    # W = [[0, 0, .5], [0, 0, .5], [1.2, 1.2, 0]]; det(W - x I) = -x^3 + 2 * 0.5 * 1.2 x, so
    # x = 0 or +-sqrt(1.2): rho = sqrt((N-1) lambda1 lambda2) = sqrt(1.2) > 1.
    w = trust_matrix(2, 0.5, 1.2)
    assert np.array_equal(w, [[0, 0, 0.5], [0, 0, 0.5], [1.2, 1.2, 0]])
    assert spectral_radius(w) == pytest.approx(math.sqrt(1.2))
    assert star_condition(3, 0.5, 1.2) == pytest.approx(1.2) and star_locks_in(3, 0.5, 1.2) and locks_in(w)
    assert star_condition(3, 0.5, 0.8) == pytest.approx(0.8) and not star_locks_in(3, 0.5, 0.8)
    assert not locks_in(trust_matrix(2, 0.5, 0.8))
    for n, l1, l2 in [(21, 0.5, 0.09), (21, 0.5, 0.1), (21, 0.5, 0.11), (100, 0.3, 0.04)]:
        assert spectral_radius(trust_matrix(n - 1, l1, l2)) ** 2 == pytest.approx(star_condition(n, l1, l2))
        assert locks_in(trust_matrix(n - 1, l1, l2)) == star_locks_in(n, l1, l2)


def test_trust_matrix_with_peers_and_memory() -> None:
    # A path a - b - c of humans: a and c have one neighbour, b two; peer trust 0.4 split by degree.
    w = trust_matrix(nx.path_graph(["a", "b", "c"]), 0.5, 0.1, human_weight=0.4, self_weight=0.3)
    assert np.allclose(w, [[0.3, 0.4, 0.0, 0.5],
                           [0.2, 0.3, 0.2, 0.5],
                           [0.0, 0.4, 0.3, 0.5],
                           [0.1, 0.1, 0.1, 0.3]])
    with pytest.raises(ValueError, match="lambda1"):
        trust_matrix(3, -0.1, 0.1)


def test_precisions_converge_below_one_and_blow_up_above() -> None:
    sigmas = [1.0] * 20 + [math.inf]
    below = trust_matrix(20, 0.5, 0.09)
    traj = simulate(below, mu=5.0, sigmas=sigmas, rounds=300, seed=0)
    p = np.r_[np.ones(20), 0.0]
    fixed = np.linalg.solve(np.eye(21) - below, p)  # q* = (I - W)^-1 p
    assert np.allclose(traj.precision[-1, :, 0], fixed) and fixed[-1] == pytest.approx(18.0)
    above = trust_matrix(20, 0.5, 0.11)
    q = simulate(above, mu=5.0, sigmas=sigmas, rounds=300, seed=0).precision[:, -1, 0]
    assert q[-1] / q[-3] == pytest.approx(spectral_radius(above) ** 2, rel=1e-6)  # geometric growth, rate rho^2
    assert q[-1] > 1e7


@pytest.mark.parametrize("seed", range(4))
def test_beliefs_track_the_truth_below_one_and_lock_in_above(seed: int) -> None:
    # The truth moves from 4 to 6 halfway through 300 rounds.
    mu = np.r_[np.full(150, 4.0), np.full(150, 6.0)][:, None]
    sigmas = [1.0] * 20 + [math.inf]
    tracks = summary(simulate(trust_matrix(20, 0.5, 0.09), mu=mu, sigmas=sigmas, rounds=300, seed=seed))
    locked = summary(simulate(trust_matrix(20, 0.5, 0.11), mu=mu, sigmas=sigmas, rounds=300, seed=seed))
    # rho < 1: the consensus follows the new truth, and people still disagree as their readings do.
    assert tracks["consensus_error"][-20:].max() < 0.3
    assert tracks["diversity"][-50:].min() > 0.03  # about a tenth of the readings' spread
    # rho > 1: diversity collapses and the consensus stays near the old truth while evidence keeps arriving.
    assert locked["diversity"][-1] < 1e-4 * locked["diversity"][0]
    assert locked["consensus_error"][-20:].min() > 1.5


def test_simulate_checks_its_inputs() -> None:
    w = trust_matrix(2, 0.5, 0.5)
    with pytest.raises(ValueError, match="mu"):
        simulate(w, mu=np.ones((3, 2)), sigmas=1.0, rounds=5)
    with pytest.raises(ValueError, match="sigmas"):
        simulate(w, mu=1.0, sigmas=[1.0, 0.0, 1.0], rounds=5)
    with pytest.raises(ValueError, match="non-negative"):
        simulate(-w, mu=1.0, sigmas=1.0, rounds=5)
    traj = simulate(w, mu=[1.0, 2.0], sigmas=1.0, rounds=5, seed=0)
    assert traj.mean.shape == (6, 3, 2) and list(traj.topic) == [0, 1, 0, 1, 0]
    assert np.array_equal(traj.mean[1, :, 0], traj.mean[2, :, 0])  # round 2 concerns topic 1 alone
    assert not np.array_equal(traj.mean[2, :, 0], traj.mean[3, :, 0])


# -- the bundled study through the runner and the CLI ------------------------------------------


def test_society_of_99_bayesian_humans_and_an_aggregator_ai_runs_the_formal_model(tmp_path: Path) -> None:
    cfg = parse_config({
        "name": "lockin-100", "seed": 3,
        "environment": {"id": "feedback-loop", "params": {"num_humans": 99, "rounds": 200, "lambda1": 0.5,
                                                          "lambda2": 0.0223}},
        "population": [{"name": "human", "policy": "scripted:bayesian", "count": 99},
                       {"name": "ai", "policy": "scripted:aggregator"}],
        "matchmaking": {"kind": "population"}, "output_dir": str(tmp_path),
    })
    rd, s = run_experiment(cfg, progress=False)
    assert s["decisions"] == 200 * 100 and s["invalid_actions"] == 0
    run = load_run(rd.path)
    stance = np.array([json.loads(x)["stance"] for x in run.events["info"]]).reshape(200, 100)
    from societas.environments import make

    env = make("feedback-loop", **cfg.environment.params)
    seed = episode_seed(3, make_society(cfg).phase(0)[0].world_key())
    env.reset(seed=seed)
    traj = simulate(env.trust_matrix(), mu=env.truth, sigmas=env.sigmas, rounds=200, seed=seed,
                    bounds=env.scale)
    np.testing.assert_allclose(stance, traj.stated, rtol=1e-12)
    assert star_condition(100, 0.5, 0.0223) > 1 and stance[-1, :-1].std() < 1e-3


def test_run_then_analyze_lockin_formal(tmp_path: Path) -> None:
    cli = [sys.executable, "-m", "societas.cli"]
    done = subprocess.run([*cli, "run", "lockin_formal", "--out", str(tmp_path), "--quiet"], cwd=REPO,
                          capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    assert "not language models" in done.stdout and "scripted:bayesian" in done.stdout
    run_dir = next(tmp_path.glob("lockin-formal-*"))
    shown = subprocess.run([*cli, "analyze", str(run_dir)], cwd=REPO, capture_output=True, text=True, timeout=120)
    assert shown.returncode == 0, shown.stderr
    out = shown.stdout
    assert "stance spread / reading spread by round" in out and "r200" in out and "r21" in out
    settings = {"0.9": "λ2=0.09 ", "1": "λ2=0.1 ", "1.1": "λ2=0.11 "}
    for coupling, label in settings.items():
        assert f"(N-1)λ1λ2={coupling} " in out
        rows = [line for line in out.splitlines() if label in line and re.search(r"│ \d+ +│ 1 +│", line)]
        assert len(rows) == 5, out  # five seeds per setting
        locked = [("│ yes" in line) for line in rows]
        assert all(locked) if coupling == "1.1" else not any(locked)
    run = load_run(run_dir)
    _, lock, params = analyze_run(run.events, run.episodes)
    assert sorted(params["coupling"].round(3).unique()) == [0.9, 1.0, 1.1]
    assert lock.loc[lock["coupling"] > 1, "lockin_round"].between(50, 150).all()


def test_bundled_lockin_configs() -> None:
    small = load_config("lockin_small")
    assert small.environment.params["release_every"] == 5
    llm = load_config("lockin_llm", model="fake:first")
    assert sum(a.count for a in llm.population) == 101 and llm.environment.params["topics"] == 4
    with pytest.raises(ConfigError, match="need a model"):
        load_config("lockin_llm")


# -- language-model humans and AI over HTTP ---------------------------------------------------

_NUM = r"([-+]?\d+(?:\.\d+)?)"


def toward_the_ai(request: Any) -> str:
    """Humans move halfway from their stance (or reading) toward the AI's answer; the AI repeats the
    confidence-weighted average it is shown."""
    text = request.messages[-1]["content"]
    if text.startswith("Release"):
        m = re.search(r"weighted by confidence " + _NUM, text)
        return f"Answer: {float(m.group(1)) if m else 5.0:.2f} | This is what people say."
    own = re.search(r"Your current stance: " + _NUM, text) or re.search(r"Your new reading: " + _NUM, text)
    x = float(own.group(1))
    ai = re.search(r"The AI assistant's answer: " + _NUM, text)
    if ai:
        x += 0.5 * (float(ai.group(1)) - x)
    return f"I weigh it up.\nAnswer: {x:.2f} | I moved toward the assistant's answer."


def test_llm_feedback_loop_against_the_fake_server(tmp_path: Path) -> None:
    with FakeOpenAIServer(toward_the_ai) as server:
        cfg = parse_config({
            "name": "lockin-llm-small", "seed": 1, "model": f"openai:fake@{server.base_url}",
            "environment": {"id": "feedback-loop", "params": {"num_humans": 6, "rounds": 16, "topics": 2,
                                                              "statements": True}},
            "population": [{"name": "human", "policy": "llm", "count": 6}, {"name": "ai", "policy": "llm"}],
            "matchmaking": {"kind": "population"}, "llm": {"cache": False}, "output_dir": str(tmp_path),
        })
        rd, s = run_experiment(cfg, progress=False)
    assert s["decisions"] == 16 * 7 and s["llm_calls"] == 16 * 7 and s["invalid_actions"] == 0
    run = load_run(rd.path)
    records = [json.loads(x) for x in run.events["info"]]
    humans = [r for r in records if r["role"] == "human"]
    assert all(r["statement"] == "I moved toward the assistant's answer." for r in humans)
    # Once the AI has an answer on a question (its third step), every human stated halfway between its own
    # stance and the AI's answer, as the two appear in its prompt (two decimals).
    last: dict[tuple[str, int], float] = {}
    checked = 0
    for r, agent in zip(records, run.events["agent"]):
        key = (agent, r["topic"])
        if r["role"] == "human" and r["step"] > 2:
            own, ai = float(f"{last[key]:.2f}"), float(f"{r['ai_answer']:.2f}")
            assert r["stance"] == pytest.approx(own + 0.5 * (ai - own), abs=0.006)
            checked += 1
        last[key] = r["stance"]
    assert checked == 6 * (16 - 2 * 2)
    prompts = run.llm_calls[run.llm_calls["agent"] != "ai"]["messages"].map(json.loads)
    assert prompts.map(lambda m: "The AI assistant's answer:" in m[-1]["content"]).any()
    rounds, lock, _ = analyze_run(run.events, run.episodes)
    # Everyone converges on the AI's answer: the spread of stances shrinks on both questions.
    for _, g in rounds.groupby("topic"):
        assert g["std"].iloc[-1] < 0.5 * g["std"].iloc[0]
    assert len(lock) == 2
