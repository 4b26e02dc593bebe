"""The PD tournament's small form on the real model through a real vLLM server (opt-in).

Runs with `SOCIETAS_TEST_VLLM=1 pytest -q -m "live and vllm" tests/live/test_vllm_live.py`, either
from an environment with vLLM installed or with $SOCIETAS_TEST_VLLM_COMMAND naming the server
command of another one (docs/guides/vllm.md). vLLM serves the GGUF converted for transformers, the
checkpoint `hf:` loads; the choice constraint goes with every request, so every reply is an option
(after the answer lead the prompt implies, such as "Option").
"""

from __future__ import annotations

import importlib.util
import json
import os
from pathlib import Path

import pytest
import yaml

from societas.analysis import load_run
from societas.config import bundled_config, parse_config
from societas.runners.run import run_experiment
from societas.small_form import LIVE, small_form

COMMAND = os.environ.get(
    "SOCIETAS_TEST_VLLM_COMMAND",
    "{python} -m vllm.entrypoints.openai.api_server --model {model} --host {host} --port {port} {args}")

pytestmark = [
    pytest.mark.live, pytest.mark.vllm,
    pytest.mark.skipif(os.environ.get("SOCIETAS_TEST_VLLM") != "1" or (
        importlib.util.find_spec("vllm") is None and "SOCIETAS_TEST_VLLM_COMMAND" not in os.environ),
        reason="opt-in: needs SOCIETAS_TEST_VLLM=1 and vllm installed (or SOCIETAS_TEST_VLLM_COMMAND)"),
]


def test_pd_small_form_on_the_real_model_through_vllm(smollm2: Path, tmp_path: Path) -> None:
    from societas.llm.models import converted_gguf

    data = small_form(yaml.safe_load(bundled_config("pd_tournament").read_text()), LIVE)
    servers = {"replicas": 1, "command": COMMAND, "max_model_len": 4096, "dtype": "float32",
               "startup_timeout_s": 900, "log_dir": str(tmp_path / "logs")}
    cfg = parse_config({**data, "model": f"vllm:{converted_gguf(smollm2)}", "output_dir": str(tmp_path),
                        "llm": {**data["llm"], "cache": False, "timeout_s": 300, "servers": servers}})
    rd, summary = run_experiment(cfg, progress=False)
    run = load_run(rd.path)
    lm = run.events[run.events["policy"] == "llm"]
    calls = run.llm_calls
    assert len(lm) > 0 and len(calls) == summary["llm_calls"] and calls["error"].isna().all()
    choice = [json.loads(p).get("constraint") or {} for p in calls["params"]]
    constrained = [c.get("kind") == "choice" for c in choice]
    assert any(constrained)
    # The server's constraint held on the real model: each constrained reply is one of its options, written
    # after the prompt's answer lead where it has one ("Option J"), as the regex sent to vLLM allows.
    for reply, c, on in zip(calls["reply"], choice, constrained, strict=True):
        assert not on or (reply.rsplit(" ", 1)[-1] in c["choices"] and len(reply.split()) <= 2), reply
    assert lm["valid"].astype(bool).all() and summary["invalid_actions"] == 0
    assert set(lm["action"]) <= {"J", "F"}
