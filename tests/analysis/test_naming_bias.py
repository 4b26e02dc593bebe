"""Individual bias in the naming game: the game's own first-round prompt, shuffled per trial, over a socket."""

from __future__ import annotations

import re

import numpy as np
import pytest
import yaml
from typer.testing import CliRunner

from societas.analysis.norms.naming_bias import individual_bias, trial_orders
from societas.cli import app
from societas.config import bundled_config, parse_config
from societas.environments.naming import LETTERS, NamingGame
from societas.environments.naming.env import player_prompt
from societas.llm.base import ChatRequest
from societas.llm.specs import ModelOptions
from societas.llm.testing import FakeOpenAIServer
from societas.runners.run import run_experiment
from societas.small_form import OFFLINE, small_form

_LISTED = re.compile(r"The names you can pick from are: (.*)\.\n")


def _listed(request: ChatRequest) -> list[str]:
    return _LISTED.search(request.messages[-1]["content"]).group(1).split(", ")


def _leaning(p_m: float, p_invalid: float = 0.0):
    """A responder that picks M with probability `p_m` (else the other name listed), seeded by the request's seed,
    and answers as the game asks: the choice first, a reason naming both names after it."""
    def respond(request: ChatRequest) -> str:
        rng = np.random.default_rng(request.seed)
        options = _listed(request)
        if rng.random() < p_invalid:
            return "I would rather not say."
        other = next(o for o in options if o != "M")
        pick, rest = ("M", other) if rng.random() < p_m else (other, "M")
        return f"{{'value': '{pick}', 'reason': '{pick} over {rest}, as {rest} seems less likely'}}"
    return respond


def _expected_first_listed(names: list[str], trials: int, seed: int) -> list[int]:
    rng = np.random.default_rng(seed)
    firsts = [names[int(rng.permutation(len(names))[0])] for _ in range(trials)]  # temperature 0: no replicates
    return [firsts.count(n) for n in names]


def test_first_listed_responder_over_http_counts_each_name_shown_first() -> None:
    # A purely positional model: the share of each name is how often the seeded shuffle listed it first.
    def first_listed(request: ChatRequest) -> str:
        a, b = _listed(request)[:2]
        return f"{{'value': '{a}', 'reason': 'not {b}'}}"

    with FakeOpenAIServer(responder=first_listed, record_bodies=500) as srv:
        table = individual_bias(f"openai:fake@{srv.base_url}", names=["Q", "M", "X"], trials=300, seed=7,
                                temperature=0.0, options=ModelOptions(structured_outputs="none"))
        bodies = srv.bodies
    assert table["count"].tolist() == _expected_first_listed(["Q", "M", "X"], 300, 7)
    assert table["valid"].tolist() == [300] * 3 and table["invalid"].tolist() == [0] * 3
    assert len(bodies) == 300
    # The request is the game's own first-round prompt, system message and all.
    order = tuple(["Q", "M", "X"][k] for k in trial_orders(3, 1, 7, 0.0)[0][0])
    system, prompt, _ = player_prompt(3, order)
    assert {(b["messages"][0]["content"], b["messages"][1]["content"]) for b in bodies} >= {(system, prompt)}


def test_biased_responder_exact_counts_for_a_seed_and_its_interval() -> None:
    options = ModelOptions(structured_outputs="none", send_seed=True)
    with FakeOpenAIServer(responder=_leaning(0.7, p_invalid=0.05)) as srv:
        url = f"openai:fake@{srv.base_url}"
        table = individual_bias(url, names=["Q", "M"], trials=400, seed=3, temperature=0.5, options=options)
        again = individual_bias(url, names=["Q", "M"], trials=400, seed=3, temperature=0.5, options=options)
        other = individual_bias(url, names=["Q", "M"], trials=400, seed=4, temperature=0.5, options=options)
    # The expected picks, from the same draws: per trial an order, then a replicate sent as the seed.
    picks = []
    for _, replicate in trial_orders(2, 400, 3, 0.5):
        rng = np.random.default_rng(replicate)
        picks.append(None if rng.random() < 0.05 else ("M" if rng.random() < 0.7 else "Q"))
    m = table.set_index("name")
    assert m.loc["M", "count"] == picks.count("M") and m.loc["Q", "count"] == picks.count("Q")
    assert m.loc["M", "invalid"] == picks.count(None) > 0
    assert m.loc["M", "ci_low"] < 0.7 < m.loc["M", "ci_high"]
    assert m.loc["M", "share"] == pytest.approx(picks.count("M") / (400 - picks.count(None)))
    assert table.equals(again)
    assert not table.equals(other)


def test_first_name_in_the_reply_is_the_answer_as_in_the_game() -> None:
    # "{'value': 'Q', 'reason': '... M ...'}" is Q, not invalid: read as the game reads it.
    def always_q(request: ChatRequest) -> str:
        return "{'value': 'Q', 'reason': 'Q rather than M'}"

    with FakeOpenAIServer(responder=always_q) as srv:
        table = individual_bias(f"openai:fake@{srv.base_url}", trials=50, seed=0, temperature=0.0,
                                options=ModelOptions(structured_outputs="none"))
    assert table.set_index("name")["count"].to_dict() == {"Q": 50, "M": 0}
    assert table.loc[table["name"] == "M", "ci_high"].item() > 0  # a zero count still has an interval


def test_fake_specs_and_the_games_prompt() -> None:
    # fake:first answers the first option listed, so its counts are those of the shuffle alone.
    table = individual_bias("fake:first", names=["Q", "M"], trials=200, seed=1, temperature=0.0)
    assert table["count"].tolist() == _expected_first_listed(["Q", "M"], 200, 1)
    assert individual_bias("fake:random", names=["Q", "M"], trials=200, seed=1)["count"].sum() == 200
    # player_prompt is what the game asks a player in its first interaction.
    env = NamingGame(num_agents=2, names=["Q", "M"])
    env.reset(seed=0)
    agent = env.acting_agents()[0]
    obs = env.decision(agent)
    assert (obs.system, obs.prompt, obs.spec) == player_prompt(2, obs.data["options"])


def test_bad_input() -> None:
    with pytest.raises(ValueError, match="names"):
        individual_bias("fake:first", names=["Q"], trials=10)
    with pytest.raises(ValueError, match="trials"):
        individual_bias("fake:first", trials=0)


def test_analyze_individual_bias_uses_the_runs_model_names_and_seed(tmp_path) -> None:
    data = small_form(yaml.safe_load(bundled_config("naming_game_llm").read_text()), OFFLINE)
    cfg = parse_config({**data, "model": "fake:first", "output_dir": str(tmp_path)})
    rd, _ = run_experiment(cfg, progress=False)
    shown = CliRunner().invoke(app, ["analyze", str(rd.path), "--individual-bias", "60"])
    assert shown.exit_code == 0, shown.output
    assert ("individual bias of fake:first: 60 first-round prompts, names shuffled (0 invalid)"
            in " ".join(shown.output.split()))
    # fake:first answers the first name listed: the counts are the shuffle's, drawn from the run's seed.
    firsts = [LETTERS[order[0]] for order, _ in trial_orders(len(LETTERS), 60, cfg.seed, cfg.llm.temperature)]
    for name in LETTERS:
        assert re.search(rf"│ {name}\s+│\s+{firsts.count(name)} │", shown.output), (name, shown.output)


def test_analyze_individual_bias_refuses_other_games(tmp_path) -> None:
    cfg = parse_config({"name": "pd", "output_dir": str(tmp_path), "environment": {"id": "repeated-matrix-game"},
                        "population": [{"name": "a", "policy": "scripted:always_cooperate"},
                                       {"name": "b", "policy": "scripted:always_defect"}]})
    rd, _ = run_experiment(cfg, progress=False)
    shown = CliRunner().invoke(app, ["analyze", str(rd.path), "--individual-bias", "10"])
    assert shown.exit_code == 2 and "naming-game runs" in shown.output
    assert "cooperation" not in shown.output  # refused before any table is printed
