"""Every bundled study with language-model members, in its smallest form, on the real model
through hf: (in-process, the GGUF converted once) and llamacpp: (llama.cpp's server on the GGUF).

Every reply is parsed: each decision is recorded valid or invalid with its retries, and the
summary's counts agree with the events. A small model answers badly at times; the tier asserts
that what happened is recorded, not that the model is good.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import yaml

from societas.analysis import load_run
from societas.config import bundled_config, parse_config
from societas.runners.run import run_experiment
from societas.small_form import LIVE, llm_configs, small_form

pytestmark = pytest.mark.live


ENGINES = ("hf", "llamacpp")
LiveRun = Callable[[str, str], tuple[Any, dict[str, Any], Any]]


@pytest.fixture(scope="module")
def live_run(smollm2: Path, tmp_path_factory: pytest.TempPathFactory) -> LiveRun:
    """A study's live form on an engine, run once per module: (loaded run, summary, config)."""
    done: dict[tuple[str, str], tuple[Any, dict[str, Any], Any]] = {}

    def run(name: str, engine: str) -> tuple[Any, dict[str, Any], Any]:
        if engine == "llamacpp":
            pytest.importorskip("llama_cpp")
        if (name, engine) not in done:
            data = small_form(yaml.safe_load(bundled_config(name).read_text()), LIVE)
            out = tmp_path_factory.mktemp(f"{name}-{engine}")
            cfg = parse_config({**data, "model": f"{engine}:{smollm2}", "output_dir": str(out)})
            rd, summary = run_experiment(cfg, progress=False)
            done[(name, engine)] = (load_run(rd.path), summary, cfg)
        return done[(name, engine)]

    return run


@pytest.mark.parametrize("engine", ENGINES)
@pytest.mark.parametrize("name", llm_configs())
def test_small_form_runs_on_the_real_model(name: str, engine: str, live_run: LiveRun) -> None:
    run, summary, cfg = live_run(name, engine)
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


def test_pd_tournament_decides_alike_on_both_engines(live_run: LiveRun) -> None:
    # The same GGUF in-process (option scoring) and in llama.cpp's server (a grammar, greedy):
    # every language-model decision of the tournament is the same, so is each agent's cooperation.
    cols = ["phase", "episode", "round", "agent", "action", "cooperated", "valid"]
    runs = [live_run("pd_tournament", engine)[0] for engine in ENGINES]
    hf, llama = (r.events[r.events["policy"] == "llm"][cols].sort_values(cols[:4]).reset_index(drop=True)
                 for r in runs)
    assert len(hf) > 0 and hf.equals(llama), hf.compare(llama) if len(hf) == len(llama) else (len(hf), len(llama))
    coop = [r.events[r.events["policy"] == "llm"].groupby("agent")["cooperated"].mean().to_dict() for r in runs]
    assert coop[0] == coop[1]


def test_lockin_llm_statements_reach_the_answer_marker_on_llamacpp(smollm2: Path, tmp_path: Path) -> None:
    # Asked to reason, then "Answer: <stance> | <sentence>", the model wrote free text until max_tokens
    # and never the marker: every stance was a fallback. The grammar now bounds the text before it.
    pytest.importorskip("llama_cpp")
    data = small_form(yaml.safe_load(bundled_config("lockin_llm").read_text()), LIVE)
    cfg = parse_config({**data, "model": f"llamacpp:{smollm2}", "llm": {**data["llm"], "cache": False},
                        "output_dir": str(tmp_path)})
    rd, _ = run_experiment(cfg, progress=False)
    run = load_run(rd.path)
    lm = run.events[run.events["policy"] == "llm"]
    assert len(lm) >= 8
    replies = run.llm_calls["reply"].dropna()
    assert (replies.str.contains("Answer:", regex=False)).mean() >= 0.75  # the marker, within max_tokens
    assert (~lm["valid"].astype(bool)).mean() <= 0.25  # 0.75 to 1.0 before
