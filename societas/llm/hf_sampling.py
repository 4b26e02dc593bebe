"""Seeded sampling for the `hf:` backend: each request draws from its own generator.

A request's seed comes from its own fields only, so a reply, or a sampled
choice, does not depend on which other requests shared its batch.
"""

from __future__ import annotations

import hashlib
import json
import math

import torch
from transformers import LogitsProcessor

from societas.llm.base import ChatRequest


def request_seed(request: ChatRequest) -> int:
    """The sampling seed of a request: its seed, replicate and messages, hashed.

    Hashing the messages too keeps two agents that drew the same replicate from
    sharing one stream of random numbers.
    """
    payload = json.dumps(
        [request.seed, request.replicate, [dict(m) for m in request.messages]],
        sort_keys=True,
        ensure_ascii=False,
    )
    return int.from_bytes(hashlib.blake2b(payload.encode(), digest_size=8).digest(), "big") >> 1


class RowSampler(LogitsProcessor):
    """Turns a greedy `generate` into per-row decoding: greedy rows keep their scores,
    sampled rows draw one token from their own generator (inverse CDF, so each step
    costs each row exactly one uniform draw), and rows past their own max_tokens end.
    """

    def __init__(
        self,
        *,
        prompt_width: int,
        temperatures: list[float],
        top_ps: list[float],
        seeds: list[int | None],
        max_new: list[int],
        eos_id: int | None,
    ) -> None:
        self.prompt_width = prompt_width
        self.temperatures = temperatures
        self.top_ps = top_ps
        self.max_new = max_new
        self.eos_id = eos_id
        self.sampled = [i for i, t in enumerate(temperatures) if t > 0]
        self.generators: dict[int, torch.Generator] = {}
        for i in self.sampled:
            g = torch.Generator(device="cpu")
            g.manual_seed(int(seeds[i] or 0))
            self.generators[i] = g

    def __call__(self, input_ids: torch.LongTensor, scores: torch.Tensor) -> torch.Tensor:
        step = input_ids.shape[1] - self.prompt_width
        scores = scores.float()
        if self.sampled:
            rows = torch.tensor(self.sampled, device=scores.device)
            temps = torch.tensor([self.temperatures[i] for i in self.sampled], device=scores.device)
            probs = torch.softmax(scores[rows] / temps[:, None], dim=-1)
            top_p = [self.top_ps[i] for i in self.sampled]
            if min(top_p) < 1.0:
                probs, order = probs.sort(dim=-1, descending=True)
                before = probs.cumsum(dim=-1) - probs
                limit = torch.tensor(top_p, device=scores.device)[:, None]
                probs = probs.masked_fill(before >= limit, 0.0)
            else:
                order = None
            cdf = probs.cumsum(dim=-1)
            u = torch.cat([torch.rand(1, generator=self.generators[i]) for i in self.sampled])
            target = u.to(scores.device)[:, None] * cdf[:, -1:]
            pos = torch.searchsorted(cdf, target, right=True)
            last = (probs > 0).sum(dim=-1, keepdim=True) - 1 if order is not None else probs.shape[-1] - 1
            pos = torch.minimum(pos, torch.as_tensor(last, device=scores.device))
            tokens = pos if order is None else order.gather(1, pos)
            forced = torch.full_like(scores[rows], -math.inf)
            forced.scatter_(1, tokens, 0.0)
            scores[rows] = forced
        if self.eos_id is not None:
            for i, limit in enumerate(self.max_new):
                if step >= limit:
                    scores[i] = -math.inf
                    scores[i, self.eos_id] = 0.0
        return scores


def pick_option(scores: list[float], request: ChatRequest) -> int:
    """Argmax (first of equals) at temperature 0; else a seeded draw from softmax(scores / T), top_p."""
    if request.temperature <= 0:
        return max(range(len(scores)), key=lambda i: (scores[i], -i))
    t = float(request.temperature)
    top = max(scores)
    weights = [math.exp((s - top) / t) for s in scores]
    total = sum(weights)
    probs = [w / total for w in weights]
    top_p = 1.0 if request.top_p is None else float(request.top_p)
    if top_p < 1.0:
        kept: set[int] = set()
        mass = 0.0
        for i in sorted(range(len(probs)), key=lambda i: (-probs[i], i)):
            if mass >= top_p:
                break
            kept.add(i)
            mass += probs[i]
        probs = [p if i in kept else 0.0 for i, p in enumerate(probs)]
    g = torch.Generator(device="cpu")
    g.manual_seed(request_seed(request))
    u = float(torch.rand(1, generator=g)) * sum(probs)
    acc = 0.0
    for i, p in enumerate(probs):
        acc += p
        if p > 0 and u < acc:
            return i
    return max(i for i, p in enumerate(probs) if p > 0)
