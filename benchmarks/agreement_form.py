"""The discriminating form of engine agreement: prompts on which the model's choices differ, and its report.

    python benchmarks/engine_agreement.py --form discriminating [--margins]
    from agreement_form import discriminating_requests   # {"akata144": [ChatRequest, ...], ...}

The PD tournament does not tell engines apart: the model cooperates almost everywhere, so two
engines agree even if one of them scored options badly. This set mixes prompts whose temperature-0
choices vary (`FAMILIES`): 2x2 games of many payoff structures with random option letters
(akata144), the Battle of the Sexes (both seats, and predictions of the other's move), the PD with
its letters swapped, the theory-of-mind battery (four colours, several question types), and matrix
questions again with their two options listed in the other order.

The prompts are the bundled studies' own: each study's small form is played once with the
`fake:random` responder (no model, seeded), which gives varied histories, and its distinct choice
requests are kept in first-asked order, a few per system message (one per akata144 game). The set
is the same on every run.
"""

from __future__ import annotations

import asyncio
import json
import math
import re
import tempfile
import time
from collections import Counter
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import yaml

from societas.analysis import load_run
from societas.config import bundled_config, parse_config
from societas.llm.base import ChatRequest, ChatResult
from societas.runners.run import run_experiment
from societas.small_form import LIVE, SmallForm, small_form

AKATA_GAMES = tuple(range(1, 145, 9))
"""The akata144 games kept (every 9th: 16 games over all six Robinson-Goforth families)."""

_QUESTION = re.compile(r"(Which Option do you [^,]+, )Option (\w+) or Option (\w+)\?")


@dataclass(frozen=True, slots=True)
class Family:
    """Prompts from one study's small form: at most `per_system` for each system message, `cap` in all;
    `swaps` of them are asked again with their options listed the other way round."""

    name: str
    study: str
    form: SmallForm
    params: dict[str, Any] = field(default_factory=dict)
    per_system: int = 1
    cap: int = 16
    swaps: int = 0


FAMILIES = (
    Family("akata144", "akata144", replace(LIVE, variants=144, rounds=2), per_system=1, cap=16, swaps=16),
    Family("bos", "bos_tournament", replace(LIVE, rounds=3, scripted=2), per_system=4, cap=8, swaps=4),
    Family("pd-swapped-letters", "pd_tournament", replace(LIVE, rounds=3, scripted=2), {"letters": ["F", "J"]},
           per_system=6, cap=6),
    Family("tom", "tom_battery", replace(LIVE, variants=2), per_system=6, cap=6),
)
"""The set: 16 + 8 + 6 + 6 prompts, and 20 of them with their options swapped (about 10 s a prompt
for hf: on 2 loaded cores, which is what keeps it small)."""


def _harvest(family: Family, out: Path) -> list[ChatRequest]:
    from engine_agreement import request_of

    data = small_form(yaml.safe_load(bundled_config(family.study).read_text()), family.form)
    env = data["environment"]
    env["params"] = {**env.get("params", {}), **family.params}
    if family.study == "akata144":
        env["vary"]["game"] = [f"akata144:{g}" for g in AKATA_GAMES]
    cfg = parse_config({**data, "model": "fake:random", "llm": {**data["llm"], "cache": False},
                        "output_dir": str(out)})
    rd, _ = run_experiment(cfg, progress=False)
    calls = load_run(rd.path).llm_calls
    kept: dict[str, ChatRequest] = {}
    per_system: Counter[str] = Counter()
    for key in zip(calls["messages"], calls["params"], strict=True):
        request = request_of(*key)
        if request.constraint is None or request.constraint.kind != "choice" or _key(request) in kept:
            continue
        system = request.messages[0]["content"] if request.messages[0].get("role") == "system" else ""
        if per_system[system] < family.per_system:
            per_system[system] += 1
            kept[_key(request)] = request
        if len(kept) == family.cap:
            break
    return list(kept.values())


def swapped(request: ChatRequest) -> ChatRequest | None:
    """The request with its question's two options listed the other way round, or None if it has no such question."""
    last = request.messages[-1]
    text = last["content"]
    if _QUESTION.search(text) is None:
        return None
    flipped = _QUESTION.sub(lambda m: f"{m[1]}Option {m[3]} or Option {m[2]}?", text)
    return replace(request, messages=(*request.messages[:-1], {**last, "content": flipped}))


def _key(request: ChatRequest) -> str:
    return json.dumps(request.messages, sort_keys=True)


def discriminating_requests() -> dict[str, list[ChatRequest]]:
    """The set, by family (see the module docstring); "order-swapped" holds the flipped questions."""
    families: dict[str, list[ChatRequest]] = {}
    flipped: list[ChatRequest] = []
    with tempfile.TemporaryDirectory() as tmp:
        for family in FAMILIES:
            families[family.name] = _harvest(family, Path(tmp) / family.name)
            flipped += [s for r in families[family.name][: family.swaps] if (s := swapped(r)) is not None]
    known = {_key(r) for rs in families.values() for r in rs}
    families["order-swapped"] = list({_key(r): r for r in flipped if _key(r) not in known}.values())
    return families


async def _ask(spec: str, requests: list[ChatRequest]) -> list[ChatResult]:
    from societas.llm.specs import make_model

    model = make_model(spec)
    try:
        return list(await asyncio.gather(*(model.complete(r) for r in requests)))
    finally:
        await model.aclose()


def _margin_of(scores: tuple[float, ...] | None, best: int) -> float | None:
    if not scores or len(scores) < 2 or not math.isfinite(scores[best]):
        return None
    rest = max(x for i, x in enumerate(scores) if i != best)
    return scores[best] - rest if math.isfinite(rest) else math.inf


def _spread(values: list[float]) -> str:
    v = sorted(values)
    if not v:
        return "none"
    q = [v[min(len(v) - 1, int(f * len(v)))] for f in (0.25, 0.5, 0.75)]
    return (f"min {v[0]:.3f}, quartiles {q[0]:.3f} / {q[1]:.3f} / {q[2]:.3f}, max {v[-1]:.3f}; "
            f"under 0.1: {sum(x < 0.1 for x in v)}, under 0.5: {sum(x < 0.5 for x in v)}")


BUCKETS = ((0.0, 0.1), (0.1, 0.5), (0.5, 1.0), (1.0, math.inf))


def run(path: Path, *, diagnose_all: bool = False) -> None:
    """Ask both engines the discriminating set and print the report (see engine_agreement's docstring)."""
    from engine_agreement import LlamaScorer, choice_of, diagnose

    from societas.llm.hf import HFChatModel
    from societas.llm.specs import ModelOptions, parse_model_spec

    t0 = time.perf_counter()
    families = discriminating_requests()
    names = [f for f, rs in families.items() for _ in rs]
    requests = [r for rs in families.values() for r in rs]
    print(f"{len(requests)} prompts (" + ", ".join(f"{f} {len(rs)}" for f, rs in families.items())
          + f"), gathered in {time.perf_counter() - t0:.1f} s", flush=True)
    results: dict[str, list[ChatResult]] = {}
    for engine in ("llamacpp", "hf"):  # the server first: it is the quick one
        t0 = time.perf_counter()
        asked = [replace(r, option_logprobs=True) for r in requests]
        results[engine] = asyncio.run(_ask(f"{engine}:{path}", asked))
        print(f"{engine:9s} answered in {time.perf_counter() - t0:.1f} s", flush=True)
    hf_choice = [choice_of(r, x.text) for r, x in zip(requests, results["hf"], strict=True)]
    ll_choice = [choice_of(r, x.text) for r, x in zip(requests, results["llamacpp"], strict=True)]
    agree = [a == b for a, b in zip(hf_choice, ll_choice, strict=True)]
    hf_margin: list[float | None] = []
    ll_margin: list[float | None] = []
    for r, a, h, x in zip(requests, hf_choice, results["hf"], results["llamacpp"], strict=True):
        assert r.constraint is not None
        best = r.constraint.choices.index(a) if a in r.constraint.choices else 0
        hf_margin.append(_margin_of(h.option_logprobs, best))
        ll_margin.append(_margin_of(x.option_logprobs, best))

    print("\n| family | prompts | hf's choice by listed position | minority share | agree |")
    print("| --- | ---: | --- | ---: | ---: |")
    for family in families:
        idx = [i for i, f in enumerate(names) if f == family]
        pos = Counter(requests[i].constraint.choices.index(hf_choice[i])  # type: ignore[union-attr]
                      for i in idx if hf_choice[i] in requests[i].constraint.choices)  # type: ignore[union-attr]
        spread = ", ".join(f"{k + 1}st {n}" if k == 0 else f"{k + 1}{'nd' if k == 1 else 'th'} {n}"
                           for k, n in sorted(pos.items()))
        minority = 1 - max(pos.values()) / len(idx) if pos else math.nan
        print(f"| {family} | {len(idx)} | {spread} | {minority:.2f} | {sum(agree[i] for i in idx)}/{len(idx)} |")
    n = len(requests)
    print(f"\nagreement: {sum(agree)}/{n} = {sum(agree) / max(1, n):.3f}")
    print("hf margins (nats, its choice over the runner-up): "
          + _spread([m for m in hf_margin if m is not None]))
    given = [m for m in ll_margin if m is not None]
    print(f"llama.cpp margins (same option over the runner-up, from the server's logprobs; {len(given)}/{n} "
          "replies gave them): " + _spread([abs(m) for m in given]))
    print("agreement by hf margin: " + ", ".join(
        f"[{lo:g}, {hi:g}) {sum(agree[i] for i in ks)}/{len(ks)}" for lo, hi in BUCKETS
        if (ks := [i for i, m in enumerate(hf_margin) if m is not None and lo <= m < hi])))

    differ = [i for i in range(n) if not agree[i]]
    if not differ and not diagnose_all:
        print("causes: none")
        return
    hf = HFChatModel(parse_model_spec(f"hf:{path}"), ModelOptions())
    scorer = LlamaScorer(path)
    verdicts = {i: diagnose(hf, scorer, requests[i], results["hf"][i].text, results["llamacpp"][i].text,
                            margins=True) for i in (range(n) if diagnose_all else differ)}
    causes = Counter(v.cause for v in verdicts.values() if v.hf != v.llama)
    print("causes: " + (", ".join(f"{c} {k}" for c, k in causes.most_common()) or "none"))
    for i in differ:
        v = verdicts[i]
        last = requests[i].messages[-1]["content"].replace("\n", " | ")
        lm = "" if v.llama_margin is None else f", llama.cpp margin {v.llama_margin:+.3f} (in-process, hf's tokens)"
        print(f"  [{names[i]}] hf {v.hf} / llama.cpp {v.llama}: hf margin {v.hf_margin:+.3f}{lm}; {v.cause}; "
              f"...{last[-80:]}")
