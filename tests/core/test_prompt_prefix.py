"""Prompts are laid out for an engine's prefix cache, in every bundled study.

An agent's consecutive prompts within an episode must share their static part
(rules and persona in the system message) byte for byte, so a prefix-caching
server (vLLM, llama.cpp) reuses it instead of recomputing it every call; in the
repeated games the history grows at the end, so the previous prompt's history
is also part of the next prompt's prefix.
"""

from __future__ import annotations

import itertools
import json
from pathlib import Path

import pytest

from societas.analysis import load_run
from societas.config import ExperimentConfig, bundled_configs, load_config
from societas.runners.run import run_experiment

# Long studies are cut to a few rounds / generations: the layout does not change with length.
_SHORTEN = {"rounds": 4, "generations": 2}
# fake:first asks for half the stock each, which ends a commons in month 1; with no collapse level it goes on.
_KEEP_GOING = {"commons": {"collapse": 0}}


def _lm_studies() -> list[str]:
    return [n for n in bundled_configs()
            if any(m.policy == "llm" for m in load_config(n, model="fake:first").active_population())]


def _short(name: str, out: Path) -> ExperimentConfig:
    cfg = load_config(name, model="fake:first", output_dir=str(out))
    params = {k: min(v, _SHORTEN[k]) if k in _SHORTEN and isinstance(v, int) else v
              for k, v in cfg.environment.params.items()}
    params.update(_KEEP_GOING.get(cfg.environment.id, {}))
    society = cfg.society
    if getattr(society, "generations", None):
        society = society.model_copy(update={"generations": min(society.generations, _SHORTEN["generations"])})
    return cfg.model_copy(update={"environment": cfg.environment.model_copy(update={"params": params}),
                                  "society": society})


def test_every_study_with_language_models_is_checked() -> None:
    assert {"pd_tournament", "donor_game_llm", "lockin_llm", "tom_gridworld"} <= set(_lm_studies())


@pytest.mark.parametrize("name", _lm_studies())
def test_consecutive_prompts_share_their_static_prefix(name: str, tmp_path: Path) -> None:
    rd, _ = run_experiment(_short(name, tmp_path), progress=False)
    calls = load_run(rd.path).llm_calls
    calls = calls[calls["attempt"] == 0]
    env = load_run(rd.path).config["environment"]["id"]
    pairs = 0
    for _, group in calls.groupby(["phase", "episode", "seat", "purpose"]):
        prompts = list(group.sort_values("round")["messages"])
        for before, after in itertools.pairwise(prompts):
            a, b = json.loads(before), json.loads(after)
            pairs += 1
            assert a[0]["role"] == "system" and a[0] == b[0], f"{name}: system message changed within an episode"
            system = json.dumps(a[:1])[:-1]  # the recorded text up to the end of the system message
            assert after.startswith(system) and before.startswith(system)
            if env == "repeated-matrix-game":
                # History first, the question last: the earlier history stays a prefix.
                history = a[1]["content"].split("You are currently playing round")[0]
                assert b[1]["content"].startswith(history), f"{name}: history is not append-only"
    assert pairs > 0, f"{name}: no agent made two consecutive calls"


def test_engine_cached_tokens_reach_llm_calls_and_usage(tmp_path: Path) -> None:
    from societas.analysis.cost import usage_table
    from societas.llm.testing import FakeOpenAIServer

    with FakeOpenAIServer("first", prefix_cache=True) as server:
        cfg = _short("pd_tournament", tmp_path).model_copy(update={"model": f"openai:fake@{server.base_url}"})
        rd, _ = run_experiment(cfg, progress=False)
    calls = load_run(rd.path).llm_calls
    later = calls[(calls["round"] > 1) & ~calls["cache_hit"]]  # response-cache hits never reach the engine
    assert (later["cached_tokens"] > 0).all()  # every later prompt starts with one seen before
    assert (calls["cached_tokens"] <= calls["prompt_tokens"]).all()
    share = usage_table(calls)["cached_share"].iloc[0]
    assert 0.5 < share < 1
