"""Every bundled study with language-model members, in its smallest form, on the real model
through hf: (in-process, the GGUF converted once) and llamacpp: (llama.cpp's server on the GGUF).

Every reply is parsed: each decision is recorded valid or invalid with its retries, and the
summary's counts agree with the events. A small model answers badly at times; the tier asserts
that what happened is recorded, not that the model is good.
"""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from societas.analysis import load_run
from societas.config import bundled_config, parse_config
from societas.runners.run import run_experiment
from societas.small_form import LIVE, llm_configs, small_form

pytestmark = pytest.mark.live


@pytest.mark.parametrize("engine", ["hf", "llamacpp"])
@pytest.mark.parametrize("name", llm_configs())
def test_small_form_runs_on_the_real_model(name: str, engine: str, smollm2: Path, tmp_path: Path) -> None:
    if engine == "llamacpp":
        pytest.importorskip("llama_cpp")
    data = small_form(yaml.safe_load(bundled_config(name).read_text()), LIVE)
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
