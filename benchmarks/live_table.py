"""Every bundled language-model study in its live form, on the real model through both engines.

    python benchmarks/live_table.py [--all] [--configs pd_tournament,tom_battery] [--engines hf,llamacpp,vllm]

Runs each study's small form (`societas.small_form.LIVE`, the form the live tier runs; the
studies are `small_form.llm_configs()`, all of them with --all or $SOCIETAS_LIVE_ALL) through
`hf:F.gguf` (in-process transformers on the GGUF, converted once) and `llamacpp:F.gguf`
(llama.cpp's server, constrained by grammars), and with `--engines ...,vllm` through
`vllm:DIR` (a vLLM server on the GGUF converted for transformers, constrained by
structured outputs; the server command is $SOCIETAS_VLLM_COMMAND, a `llm.servers.command`
template, default `{python} -m vllm.entrypoints.openai.api_server ...`), one run at a time,
and prints a Markdown table:
language-model decisions, model calls, the share of decisions that were invalid (fallbacks),
retries, and decisions per second. "run s" is the run's own wall time (`summary.json`'s
wall_s: hf loads its weights inside it, on the first batch; llama.cpp's server starts before
it); "total s" adds building the model (the server's start). The GGUF defaults to
SmolLM2-135M-Instruct (`smollm2_path`). The response cache is off. `--out DIR` keeps the runs
(`societas.analysis.transcript` shows why a decision was invalid).
"""

from __future__ import annotations

import argparse
import os
import platform
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import yaml

from societas.analysis import load_run
from societas.config import bundled_config, parse_config
from societas.runners.run import RunStopped, run_experiment
from societas.small_form import LIVE, llm_configs, small_form

ENGINES = ("hf", "llamacpp", "vllm")
DEFAULT_ENGINES = ("hf", "llamacpp")
VLLM_COMMAND = os.environ.get(
    "SOCIETAS_VLLM_COMMAND",
    "{python} -m vllm.entrypoints.openai.api_server --model {model} --host {host} --port {port} {args}")


def engine_config(engine: str, path: Path, llm: dict[str, Any]) -> dict[str, Any]:
    """The `model` and `llm` keys of a config that runs on `engine` over the GGUF `path`, cache off.

    vLLM is given the GGUF converted for transformers (the checkpoint `hf:` loads), in float32 as `hf:` runs it.
    """
    llm = {**llm, "cache": False}
    if engine != "vllm":
        return {"model": f"{engine}:{path}", "llm": llm}
    from societas.llm.models import converted_gguf

    servers = {"replicas": 1, "command": VLLM_COMMAND, "max_model_len": 4096, "dtype": "float32",
               "startup_timeout_s": 900}
    return {"model": f"vllm:{converted_gguf(path)}", "llm": {**llm, "timeout_s": 300, "servers": servers}}


def measure(name: str, engine: str, path: Path, out: Path) -> dict[str, Any]:
    """One live-form run of study `name` on `engine`: the table's figures."""
    data = small_form(yaml.safe_load(bundled_config(name).read_text()), LIVE)
    cfg = parse_config({**data, **engine_config(engine, path, data["llm"]), "output_dir": str(out)})
    t0 = time.perf_counter()
    rd, summary = run_experiment(cfg, progress=False)
    total = time.perf_counter() - t0
    lm = load_run(rd.path).events
    lm = lm[lm["policy"] == "llm"]
    decisions = len(lm)
    invalid = int((~lm["valid"].astype(bool)).sum())
    return {"study": name, "engine": engine, "decisions": decisions, "calls": int(summary["llm_calls"]),
            "invalid": invalid / decisions if decisions else float("nan"), "retries": int(lm["retries"].sum()),
            "run_s": float(summary["wall_s"]), "total_s": total,
            "per_s": decisions / summary["wall_s"] if summary["wall_s"] else float("nan")}


def row(r: dict[str, Any]) -> str:
    label = {"hf": "hf: GGUF", "llamacpp": "llama.cpp server", "vllm": "vLLM server"}[r["engine"]]
    return (f"| {r['study']} | {label} | {r['decisions']} | {r['calls']} | {r['invalid']:.1%} | {r['retries']} "
            f"| {r['per_s']:.2f} | {r['run_s']:.1f} | {r['total_s']:.1f} |")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--all", action="store_true", help="every language-model study (as SOCIETAS_LIVE_ALL=1)")
    parser.add_argument("--configs", default=None, help="comma-separated study names (default: llm_configs())")
    parser.add_argument("--engines", default=",".join(DEFAULT_ENGINES), help=f"of {', '.join(ENGINES)}")
    parser.add_argument("--model-file", type=Path, default=None, help="a GGUF file (default: SmolLM2-135M-Instruct)")
    parser.add_argument("--out", type=Path, default=None,
                        help="keep each run under this folder, for transcripts and analyze (default: a temporary one)")
    args = parser.parse_args()
    from societas.llm.models import smollm2_path

    names = args.configs.split(",") if args.configs else llm_configs(live_all=True if args.all else None)
    engines = [e for e in args.engines.split(",") if e]
    unknown = [e for e in engines if e not in ENGINES]
    if unknown:
        sys.exit(f"--engines takes {', '.join(ENGINES)}; got {', '.join(unknown)}")
    path = (args.model_file or smollm2_path()).resolve()
    print(f"{time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}; {platform.processor() or platform.machine()}, "
          f"Python {platform.python_version()}; model {path.name}; live form {LIVE}\n")
    print("| study | engine | decisions | model calls | invalid | retries | decisions/s | run s | total s |")
    print("| --- | --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: |")
    with tempfile.TemporaryDirectory() as tmp:
        base = args.out or Path(tmp)
        for name in names:
            for engine in engines:
                try:
                    line = row(measure(name, engine, path, base / f"{name}-{engine}"))
                except RunStopped as exc:  # e.g. the model timing out: the row says so, the table goes on
                    line = f"| {name} | {engine} | stopped: {str(exc).split(';')[0]} |"
                print(line, flush=True)


if __name__ == "__main__":
    main()
