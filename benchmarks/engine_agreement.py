"""Do `hf:` and llama.cpp's server make the same decisions at temperature 0, on the same GGUF?

    python benchmarks/engine_agreement.py [--rounds 4] [--scripted 4] [--model-file F.gguf] [--vllm]
    python benchmarks/engine_agreement.py --form discriminating [--model-file F.gguf]

1. Plays a small PD tournament (the bundled pd_tournament study in a small form: its two
   language-model members, the first `--scripted` other members, `--rounds` rounds) through
   `hf:F.gguf` and through `llamacpp:F.gguf`, and prints each language-model agent's cooperation
   on each engine, and whether the two runs made the same decisions.
2. Sends every distinct request those two runs made (messages, constraint, temperature 0, as the
   runs' llm_calls tables hold them) to both engines again and compares the choices: the share
   that agree, and for each disagreement hf's margin (log-probability of its best option minus the
   runner-up's), llama.cpp's margin over the same tokens, and the cause:

     chat template        llama.cpp renders the messages into different prompt text than hf
     special tokens       same text, different token ids
     quantisation margin  same tokens; llama.cpp's own scores of the options rank them as its
                          reply does (its quantised arithmetic ranks them apart from hf's float32)
     scoring vs generation  llama.cpp's own scores rank the options as hf does, its reply does not
                          (how the server generates: sampler settings, grammar, stopping)

With --form discriminating no tournament is played: both engines answer the same fixed set of
prompts on which the model's choices differ (`agreement_form`: 2x2 games of many payoff
structures with random letters, the Battle of the Sexes, the PD with its letters swapped, the
theory-of-mind battery, and the matrix questions with their options listed the other way
round). It prints, per family, how hf's choices spread over the listed positions and how often
the engines agree; both engines' margins (hf's from its option scores, llama.cpp's from the
server's token log-probabilities of the same reply); agreement by hf's margin; and the cause of
each disagreement, as above.

With --vllm the tournament is played a third time, through a vLLM server on the GGUF converted
for transformers (`live_table.engine_config`; the server command is $SOCIETAS_VLLM_COMMAND), and
its choices are compared with hf's on every request its run made.

llama.cpp's own scores and rendering come from llama-cpp-python in this process, loaded as the
server loads the file (`societas.llm.llamacpp_server`). Needs the [hf] extra and
llama-cpp-python[server]; the GGUF defaults to SmolLM2-135M-Instruct (`smollm2_path`).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import math
import platform
import sys
import tempfile
import time
from collections import Counter
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import yaml

from societas.analysis import load_run
from societas.config import bundled_config, parse_config
from societas.llm.base import ChatRequest
from societas.llm.hf import HFChatModel
from societas.llm.specs import ModelOptions, make_model, parse_model_spec
from societas.runners.run import run_experiment
from societas.small_form import LIVE, small_form
from societas.types import ActionSpec, InvalidAction

sys.path.insert(0, str(Path(__file__).parent))
from live_table import VLLM_COMMAND, engine_config


def tournament(rounds: int, scripted: int) -> dict[str, Any]:
    """The PD tournament in a small form: its language-model members first, then `scripted` others."""
    form = replace(LIVE, rounds=rounds, scripted=scripted)
    return small_form(yaml.safe_load(bundled_config("pd_tournament").read_text()), form)


def play(data: dict[str, Any], model: str, out: Path) -> tuple[Any, dict[str, Any], float]:
    """One run without the response cache: its loaded tables, summary and wall time."""
    engine, path = model.split(":", 1)
    cfg = parse_config({**data, **engine_config(engine, Path(path), data["llm"]), "output_dir": str(out)})
    t0 = time.perf_counter()
    rd, summary = run_experiment(cfg, progress=False)
    return load_run(rd.path), summary, time.perf_counter() - t0


ENGINES = ("hf", "llamacpp")


def request_of(messages: str, params: str) -> ChatRequest:
    """The request an llm_calls row records (its messages and params columns)."""
    p = json.loads(params)
    c = p.get("constraint")
    spec = None
    if c is not None:
        spec = ActionSpec(**({**c, "choices": tuple(c["choices"])} if "choices" in c else c))
    return ChatRequest(messages=tuple(json.loads(messages)), temperature=p.get("temperature", 0.0),
                       max_tokens=p.get("max_tokens"), top_p=p.get("top_p"), constraint=spec, seed=p.get("seed"))


def replies_of(calls: Any) -> dict[tuple[str, str], str]:
    """Each distinct request of an llm_calls table (messages, params) and the reply it got."""
    ok = calls[calls["reply"].notna()]
    return dict(zip(zip(ok["messages"], ok["params"], strict=True), ok["reply"], strict=True))


def keys_and_requests(runs: dict[str, Any]) -> tuple[list[tuple[str, str]], list[ChatRequest]]:
    """The distinct requests of all runs, in first-asked order."""
    keys: dict[tuple[str, str], ChatRequest] = {}
    for run in runs.values():
        for key in zip(run.llm_calls["messages"], run.llm_calls["params"], strict=True):
            if key not in keys:
                keys[key] = request_of(*key)
    return list(keys), list(keys.values())


async def ask_all(model: Any, requests: list[ChatRequest]) -> list[str]:
    try:
        results = await asyncio.gather(*(model.complete(r) for r in requests))
    finally:
        await model.aclose()
    return [r.text for r in results]


def choice_of(request: ChatRequest, text: str) -> str:
    assert request.constraint is not None
    try:
        return str(request.constraint.parse(text))
    except InvalidAction:
        return f"invalid({text!r})"


class LlamaScorer:
    """llama.cpp in this process, on the file the server loads: prompt text, tokens and option scores."""

    def __init__(self, path: Path) -> None:
        from llama_cpp import Llama
        from llama_cpp.llama_chat_format import Jinja2ChatFormatter

        from societas.llm.llamacpp_server import _no_extra_buffer_types

        _no_extra_buffer_types()
        self.llm = Llama(model_path=str(path), n_ctx=8192, verbose=False)
        meta = self.llm.metadata
        vocab = self.llm._model
        self.formatter = Jinja2ChatFormatter(
            template=meta["tokenizer.chat_template"],
            eos_token=vocab.token_get_text(vocab.token_eos()),
            bos_token=vocab.token_get_text(vocab.token_bos()),
            stop_token_ids=[vocab.token_eos()])
        self.chat_format = self.llm.chat_format

    def render(self, messages: list[dict[str, str]]) -> tuple[str, list[int]]:
        """The prompt text and tokens llama.cpp's chat handler makes of `messages`."""
        result = self.formatter(messages=messages)
        ids = self.llm.tokenize(result.prompt.encode(), add_bos=not result.added_special, special=True)
        return result.prompt, ids

    def scores(self, prompt: list[int], continuations: list[list[int]]) -> list[float]:
        """Sum of log-probabilities of each continuation after `prompt`, by llama.cpp's arithmetic."""
        import numpy as np

        out = []
        for cont in continuations:
            self.llm.reset()
            total = 0.0
            self.llm.eval(prompt)
            for token in cont:  # logits of the last token evaluated
                logits = np.ctypeslib.as_array(self.llm._ctx.get_logits(), shape=(self.llm.n_vocab(),))
                logits = logits.astype(np.float64)
                top = logits.max()
                total += float(logits[token] - top - np.log(np.exp(logits - top).sum()))
                self.llm.eval([token])
            out.append(total)
        return out


@dataclass(frozen=True, slots=True)
class Verdict:
    hf: str
    llama: str
    hf_margin: float
    llama_margin: float | None
    cause: str


def margin(scores: list[float], best: int) -> float:
    """How far option `best` leads (or trails, when negative) the best of the others."""
    return scores[best] - max(s for i, s in enumerate(scores) if i != best)


def diagnose(hf: Any, scorer: LlamaScorer | None, request: ChatRequest, hf_text: str, llama_text: str, *,
             margins: bool = False) -> Verdict:
    """Both choices of one request; when they differ (or with `margins`), both margins; the cause of a difference."""
    spec = request.constraint
    assert spec is not None
    a, b = choice_of(request, hf_text), choice_of(request, llama_text)
    if a == b and not margins:
        return Verdict(a, b, math.nan, None, "")
    hf_scores = hf.option_logprobs(request)
    best = spec.choices.index(a) if a in spec.choices else max(range(len(hf_scores)), key=hf_scores.__getitem__)
    if scorer is None:
        return Verdict(a, b, margin(hf_scores, best), None, "unknown (not diagnosed)" if a != b else "")
    messages = [dict(m) for m in request.messages]
    text, ids = scorer.render(messages)
    if text != hf.format_prompt(messages):
        return Verdict(a, b, margin(hf_scores, best), None, "chat template" if a != b else "")
    row = hf._choice_row(0, request)
    shared = len(row.prompt_ids) - len(hf.prompt_ids(messages))
    if ids != row.prompt_ids[: len(row.prompt_ids) - shared]:
        return Verdict(a, b, margin(hf_scores, best), None, "special tokens" if a != b else "")
    llama_scores = scorer.scores(row.prompt_ids, row.continuations)
    llama_best = max(range(len(llama_scores)), key=lambda i: (llama_scores[i], -i))
    if a == b:
        cause = ""
    else:
        cause = "quantisation margin" if spec.choices[llama_best] == b else "scoring vs generation"
    return Verdict(a, b, margin(hf_scores, best), margin(llama_scores, best), cause)


def cooperation(run: Any) -> dict[str, float]:
    lm = run.events[run.events["policy"] == "llm"]
    return {agent: float(group["cooperated"].astype(float).mean()) for agent, group in lm.groupby("agent")}


def conditions(path: Path, data: dict[str, Any] | None) -> str:
    import os

    import llama_cpp
    import torch
    import transformers

    head = (f"{time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}; {platform.processor() or platform.machine()}, "
            f"Python {platform.python_version()}, torch {torch.__version__}, transformers "
            f"{transformers.__version__}, llama-cpp-python {llama_cpp.__version__}; load average "
            + " ".join(f"{x:.1f}" for x in os.getloadavg()) + f"\nmodel {path.name}; ")
    if data is None:
        return head + "discriminating form, temperature 0"
    pop = ", ".join(m["name"] for m in data["population"])
    return head + (f"PD tournament, {data['environment']['params']['rounds']} rounds, "
                   f"members: {pop}; temperature {data['llm'].get('temperature', 0)}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--form", choices=("pd", "discriminating"), default="pd",
                        help="pd: play the PD tournament; discriminating: a fixed prompt set whose choices differ")
    parser.add_argument("--rounds", type=int, default=4)
    parser.add_argument("--scripted", type=int, default=4, help="scripted/replay members kept beside the two LLMs")
    parser.add_argument("--model-file", type=Path, default=None, help="a GGUF file (default: SmolLM2-135M-Instruct)")
    parser.add_argument("--vllm", action="store_true", help="play through vLLM too and compare it with hf")
    parser.add_argument("--no-diagnosis", action="store_true", help="skip llama.cpp's in-process scoring")
    parser.add_argument("--margins", action="store_true", help="both engines' margins on every request, not only "
                        "on disagreements (slow: one scoring pass per request and engine)")
    args = parser.parse_args()
    from societas.llm.models import smollm2_path

    path = (args.model_file or smollm2_path()).resolve()
    if args.form == "discriminating":
        from agreement_form import run

        print(conditions(path, None))
        run(path, diagnose_all=args.margins)
        return
    data = tournament(args.rounds, args.scripted)
    print(conditions(path, data))
    if args.vllm:
        print(f"vllm server command: {VLLM_COMMAND}")
    with tempfile.TemporaryDirectory() as tmp:
        runs = {}
        for engine in (*ENGINES, "vllm") if args.vllm else ENGINES:
            run, summary, wall = play(data, f"{engine}:{path}", Path(tmp) / engine)
            runs[engine] = run
            lm = run.events[run.events["policy"] == "llm"]
            invalid = float((~lm["valid"].astype(bool)).mean()) if len(lm) else math.nan
            print(f"{engine:9s} run: {len(lm)} decisions, {summary['llm_calls']} model calls, {wall:.1f} s, "
                  f"{summary['llm_calls'] / summary['wall_s']:.2f} calls/s in the run, invalid {invalid:.1%}; "
                  f"cooperation " + ", ".join(f"{a} {c:.3f}" for a, c in cooperation(run).items()))
    cols = ["phase", "episode", "round", "agent", "action"]
    same = (runs["hf"].events[cols].sort_values(cols[:4]).reset_index(drop=True)
            .equals(runs["llamacpp"].events[cols].sort_values(cols[:4]).reset_index(drop=True)))
    print(f"the two runs made {'the same' if same else 'different'} decisions")
    if args.vllm:
        same = (runs["hf"].events[cols].sort_values(cols[:4]).reset_index(drop=True)
                .equals(runs["vllm"].events[cols].sort_values(cols[:4]).reset_index(drop=True)))
        print(f"the vllm run made {'the same' if same else 'different'} decisions as the hf run")

    # What each engine answered in its own run; the requests only the other run made are asked now.
    answers = {e: replies_of(run.llm_calls) for e, run in runs.items()}
    keyed = {k: r for k, r in zip(*keys_and_requests(runs), strict=True)
             if r.constraint is not None and r.constraint.kind == "choice"}
    asked = {}
    for engine in ENGINES:
        missing = [k for k in keyed if k not in answers[engine]]
        t0 = time.perf_counter()
        texts = asyncio.run(ask_all(make_model(f"{engine}:{path}"), [keyed[k] for k in missing])) if missing else []
        answers[engine].update(zip(missing, texts, strict=True))
        asked[engine] = (len(missing), time.perf_counter() - t0)
    requests = list(keyed.values())
    hf_texts = [answers["hf"][k] for k in keyed]
    llama_texts = [answers["llamacpp"][k] for k in keyed]
    hf = HFChatModel(parse_model_spec(f"hf:{path}"), ModelOptions())
    differ = any(choice_of(r, a) != choice_of(r, b) for r, a, b in zip(requests, hf_texts, llama_texts, strict=True))
    scorer = None if args.no_diagnosis or not (differ or args.margins) else LlamaScorer(path)
    verdicts = [diagnose(hf, scorer, r, a, b, margins=args.margins)
                for r, a, b in zip(requests, hf_texts, llama_texts, strict=True)]
    agree = sum(v.hf == v.llama for v in verdicts)
    if args.vllm:  # vLLM is compared on its own run's requests, which hf has answered above
        own = [k for k in keyed if k in answers["vllm"]]
        same_choice = sum(choice_of(keyed[k], answers["hf"][k]) == choice_of(keyed[k], answers["vllm"][k])
                          for k in own)
        print(f"vllm agreement with hf on its run's {len(own)} choice requests: {same_choice}/{len(own)}")
    print(f"\n{len(requests)} distinct choice requests; asked again: " + ", ".join(
        f"{e} {n} ({t:.1f} s)" for e, (n, t) in asked.items()) + "; "
          f"llama.cpp chat format: {scorer.chat_format if scorer else 'not loaded'}")
    print(f"agreement: {agree}/{len(verdicts)} = {agree / max(1, len(verdicts)):.3f}")
    if args.margins:
        for name, values in (("hf", [v.hf_margin for v in verdicts]),
                             ("llama.cpp", [v.llama_margin for v in verdicts if v.llama_margin is not None])):
            values = sorted(abs(x) for x in values)
            if values:
                print(f"{name} margins (nats): min {values[0]:.3f}, median {values[len(values) // 2]:.3f}, "
                      f"under 0.1: {sum(x < 0.1 for x in values)}")
    causes = Counter(v.cause for v in verdicts if v.hf != v.llama)
    print("causes: " + (", ".join(f"{c} {n}" for c, n in causes.most_common()) or "none"))
    for r, v in zip(requests, verdicts, strict=True):
        if v.hf == v.llama:
            continue
        last = r.messages[-1]["content"].replace("\n", " | ")
        lm = "" if v.llama_margin is None else f", llama.cpp margin {v.llama_margin:+.3f}"
        print(f"  hf {v.hf} / llama.cpp {v.llama}: hf margin {v.hf_margin:+.3f}{lm}; {v.cause}; "
              f"...{last[-90:]}")
    sys.stdout.flush()


if __name__ == "__main__":
    main()
