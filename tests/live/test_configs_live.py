"""Every bundled study with language-model members, in its smallest form, on the real model
through hf: (in-process, the GGUF converted once) and llamacpp: (llama.cpp's server on the GGUF).

Every reply is parsed: each decision is recorded valid or invalid with its retries, and the
summary's counts agree with the events. A small model answers badly at times; the tier asserts
that what happened is recorded, not that the model is good.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import pytest
import yaml

from societas.analysis import load_run
from societas.config import bundled_config, bundled_configs, parse_config
from societas.runners.run import run_experiment

pytestmark = pytest.mark.live


def live_form(data: dict[str, Any]) -> dict[str, Any]:
    """A study at its smallest that still asks the model everything it asks: its language-model
    members and one scripted member, 2 rounds, 2 agents or 3 humans, one variant, one generation."""
    data = json.loads(json.dumps(data))
    env = data["environment"]
    params = env.setdefault("params", {})
    if "rounds" in params:
        params["rounds"] = 2
    if "games" in params:
        params["games"] = 1
    if "num_humans" in params:
        params["num_humans"] = 3
    if "num_agents" in params:
        params["num_agents"] = 2
    for axis, values in (env.get("vary") or {}).items():
        env["vary"][axis] = values[:1]
    llm = [m for m in data["population"] if m.get("policy") == "llm"]
    scripted = [m for m in data["population"] if m.get("policy") != "llm"][:1]
    for member in llm:
        if "count" in member:
            member["count"] = params.get("num_humans", params.get("num_agents", 1))
    data["population"] = llm + scripted
    if "repetitions" in (data.get("matchmaking") or {}):
        data["matchmaking"]["repetitions"] = 1
    society = data.get("society") or {}
    if society.get("kind") == "evolution":
        society.update(generations=1, societies=1)
    data.pop("sweep", None)
    data["llm"] = {**(data.get("llm") or {}), "max_attempts": 2}
    return data


# The studies whose small form fits CI's time on 2 cores (about a minute each per engine). The rest
# run with SOCIETAS_LIVE_ALL=1: their small forms still take several minutes each on a 135M model.
CI_CONFIGS = ("pd_tournament",)


def _llm_configs() -> list[str]:
    names = [n for n in bundled_configs()
             if any(m.get("policy") == "llm" for m in yaml.safe_load(bundled_config(n).read_text())["population"])]
    return names if os.environ.get("SOCIETAS_LIVE_ALL") else [n for n in names if n in CI_CONFIGS]


@pytest.mark.parametrize("engine", ["hf", "llamacpp"])
@pytest.mark.parametrize("name", _llm_configs())
def test_small_form_runs_on_the_real_model(name: str, engine: str, smollm2: Path, tmp_path: Path) -> None:
    if engine == "llamacpp":
        pytest.importorskip("llama_cpp")
    data = live_form(yaml.safe_load(bundled_config(name).read_text()))
    cfg = parse_config({**data, "model": f"{engine}:{smollm2}", "output_dir": str(tmp_path)})
    rd, summary = run_experiment(cfg, progress=False)
    run = load_run(rd.path)
    lm = run.events[run.events["policy"] == "llm"]
    assert len(lm) > 0, f"{name}: no language-model decision"
    calls = run.llm_calls
    assert len(calls) >= len(lm)  # every decision asked the model at least once
    assert calls["reply"].notna().sum() + calls["error"].notna().sum() >= len(calls)
    invalid = int((~lm["valid"].astype(bool)).sum())
    assert summary["invalid_actions"] >= invalid
    assert lm["retries"].notna().all() and (lm["retries"] >= 0).all()
    assert (lm["retries"] <= cfg.llm.max_attempts - 1).all()
    valid = lm[lm["valid"].astype(bool)]
    assert valid["action"].notna().all()  # a valid decision holds a parsed action
