"""In-process transformers backend (`hf:PATH`): batched generation and choice by scoring.

Concurrent `complete` calls are queued and served by one worker thread in
batches of up to `ModelOptions.hf_batch_size`: one left-padded `generate` call
for free replies, one scoring pass for choice constraints. The event loop never
waits on torch. Sampling draws each row's tokens from its own generator, seeded
from the request, inside a single greedy `generate` call, so a reply does not
depend on which other requests happened to share its batch.
"""

from __future__ import annotations

import asyncio
import hashlib
import inspect
import json
import math
import threading
import time
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

try:
    import torch
    from transformers import (
        AutoModelForCausalLM,
        AutoTokenizer,
        GenerationConfig,
        LogitsProcessor,
        LogitsProcessorList,
    )
except ImportError as exc:  # exercised only without the extra
    from societas.errors import MissingExtra

    raise MissingExtra("hf: model specs (torch and transformers)", "hf") from exc

from societas.llm.base import ChatRequest, ChatResult, Message, ModelError
from societas.llm.constraints import answer_lead
from societas.llm.hf_prefix import PrefixReuse, PrefixStore
from societas.llm.specs import ModelOptions, ModelSpec

DEFAULT_MAX_TOKENS = 256
"""Reply length when a request sets no max_tokens: room to reason before an answer marker."""

BATCH_WINDOW_S = 0.002
"""How long the worker waits for more requests before starting a batch that is not full."""

_DTYPES: dict[str, torch.dtype] = {
    "float32": torch.float32,
    "fp32": torch.float32,
    "float": torch.float32,
    "bfloat16": torch.bfloat16,
    "bf16": torch.bfloat16,
    "float16": torch.float16,
    "fp16": torch.float16,
    "half": torch.float16,
}


def resolve_device(name: str) -> str:
    """`auto` means the first CUDA GPU when torch sees one, else the CPU; other names pass through."""
    if name == "auto":
        return "cuda" if torch.cuda.is_available() else "cpu"
    return name


def resolve_dtype(name: str, device: str) -> torch.dtype:
    """`auto` is bfloat16 (float16 on GPUs without it) on CUDA and float32 elsewhere."""
    if name == "auto":
        if device.startswith("cuda"):
            return torch.bfloat16 if torch.cuda.is_bf16_supported() else torch.float16
        return torch.float32
    try:
        return _DTYPES[name]
    except KeyError:
        raise ValueError(
            f"ModelOptions.hf_dtype {name!r} is not one of: auto, {', '.join(sorted(_DTYPES))}"
        ) from None


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


def plain_chat_prompt(messages: Sequence[Message]) -> str:
    """The prompt for tokenizers without a chat template: "role: content" lines, then "assistant:"."""
    lines = [f"{m.get('role', 'user')}: {m.get('content', '')}" for m in messages]
    return "\n".join([*lines, "assistant:"])


@dataclass(slots=True)
class _Pending:
    request: ChatRequest
    future: asyncio.Future[ChatResult]
    t0: float


@dataclass(slots=True)
class _Outcome:
    text: str = ""
    prompt_tokens: int = 0
    completion_tokens: int = 0
    cached_tokens: int = 0
    error: BaseException | None = None
    option_logprobs: tuple[float, ...] | None = None


@dataclass(slots=True)
class _Row:
    """One request's place in a batch."""

    index: int
    request: ChatRequest
    prompt_ids: list[int]
    continuations: list[list[int]] = field(default_factory=list)
    lead: str = ""
    cached: int = 0  # prompt tokens whose keys and values came from the conversation's held prefix


class _RowSampler(LogitsProcessor):
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


class HFChatModel:
    """A local transformers checkpoint served in-process (`hf:PATH`), loaded on first use.

    `batches_run` counts the batches the worker has run (each one `generate`
    call and/or one scoring pass), `generate_calls` and `score_passes` the model
    calls inside them: fewer batches than requests means batching worked.
    A result's `latency_s` counts from the call, queueing included, as a client sees it.
    `prefix` holds each conversation's prompt keys and values for reuse
    (societas.llm.hf_prefix); a result's `cached_tokens` says how many it reused.
    """

    def __init__(
        self, spec: ModelSpec, options: ModelOptions, *, batch_window_s: float = BATCH_WINDOW_S
    ) -> None:
        self.name = str(spec)
        self.path = spec.name
        self.options = options
        self.batch_size = max(1, int(options.hf_batch_size))
        self.batch_window_s = batch_window_s
        self.device = resolve_device(options.hf_device)
        self.dtype = resolve_dtype(options.hf_dtype, self.device)
        self.batches_run = 0
        self.generate_calls = 0
        self.score_passes = 0
        self.tokenizer: Any = None
        self.model: Any = None
        self._eos_ids: list[int] = []
        self._pad_id = 0
        self._keeps_logits = False
        self._max_positions: int | None = None
        self.prefix = PrefixStore(int(options.hf_prefix_cache_mb) * 2**20)
        self._reuse: PrefixReuse | None = None
        self._load_lock = threading.Lock()
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="societas-hf")
        self._pending: list[_Pending] = []
        self._loop: asyncio.AbstractEventLoop | None = None
        self._dispatcher: asyncio.Task[None] | None = None
        self._closed = False

    # Loading and prompt building (run in the worker thread, or directly by tests and tools).

    def load(self) -> None:
        """Load tokenizer and weights if not yet done; blocking, so `complete` calls it off the loop."""
        with self._load_lock:
            if self.model is not None:
                return
            path = Path(self.path).expanduser()
            if not path.exists():
                from societas.errors import BadInput

                raise BadInput(f"{self.name}: no model directory at {path} (hf: takes a local path)")
            from societas.llm.models import converted_gguf, gguf_file

            try:
                gguf = gguf_file(path)
                if gguf is not None:  # a GGUF file: converted into the cache once, then loaded from there
                    path = converted_gguf(gguf)
                tokenizer = AutoTokenizer.from_pretrained(path)
                model = AutoModelForCausalLM.from_pretrained(path, dtype=self.dtype)
            except Exception as exc:
                raise ModelError(f"{self.name}: cannot load a causal LM from {path}: {exc}") from exc
            tokenizer.padding_side = "left"
            if tokenizer.pad_token_id is None and tokenizer.eos_token_id is not None:
                tokenizer.pad_token = tokenizer.eos_token
            model.to(self.device)
            model.eval()
            self._eos_ids = self._find_eos_ids(tokenizer, model)
            self._pad_id = (
                tokenizer.pad_token_id
                if tokenizer.pad_token_id is not None
                else (self._eos_ids[0] if self._eos_ids else 0)
            )
            self._keeps_logits = "logits_to_keep" in inspect.signature(model.forward).parameters
            self._max_positions = getattr(model.config, "max_position_embeddings", None)
            self._reuse = PrefixReuse(self.prefix, model, pad_id=self._pad_id, device=self.device)
            self.tokenizer, self.model = tokenizer, model

    @staticmethod
    def _find_eos_ids(tokenizer: Any, model: Any) -> list[int]:
        ids: list[int] = []
        gen_eos = getattr(model.generation_config, "eos_token_id", None)
        for value in (tokenizer.eos_token_id, gen_eos):
            for i in value if isinstance(value, (list, tuple)) else [value]:
                if i is not None and int(i) not in ids:
                    ids.append(int(i))
        return ids

    @property
    def has_chat_template(self) -> bool:
        return bool(getattr(self.tokenizer, "chat_template", None))

    def format_prompt(self, messages: Sequence[Message]) -> str:
        """The prompt text: the tokenizer's chat template, else `plain_chat_prompt`."""
        self.load()
        if self.has_chat_template:
            return self.tokenizer.apply_chat_template(
                [dict(m) for m in messages], tokenize=False, add_generation_prompt=True
            )
        return plain_chat_prompt(messages)

    def prompt_ids(self, messages: Sequence[Message]) -> list[int]:
        """Token ids of the prompt; a chat template brings its own special tokens."""
        text = self.format_prompt(messages)
        ids = self.tokenizer(text, add_special_tokens=not self.has_chat_template)["input_ids"]
        return list(ids)

    def continuation_ids(self, option: str, lead: str = "") -> list[int]:
        """Token ids of an option as the reply's start (after "assistant:" a space comes first).

        With a `lead` (see `constraints.answer_lead`) the reply is written as "LEAD OPTION".
        """
        self.load()
        text = f"{lead} {option}" if lead else option
        text = text if self.has_chat_template else " " + text
        return list(self.tokenizer(text, add_special_tokens=False)["input_ids"])

    def option_logprobs(self, request: ChatRequest) -> list[float]:
        """Log-probability of each of a choice request's options, as the model would write it
        (blocking; for sampling over options, or to compare engines)."""
        self.load()
        spec = request.constraint
        if spec is None or spec.kind != "choice":
            raise ValueError("option_logprobs needs a request with a choice constraint")
        row = self._choice_row(0, request)
        with torch.inference_mode():
            return self._option_logprobs([row])[0]

    def _choice_row(self, index: int, request: ChatRequest) -> _Row:
        """A choice request's row: the options' shared first tokens join the prompt, so the
        usual one-token options are scored in one pass; what they share scores alike for all."""
        spec = request.constraint
        assert spec is not None
        lead = answer_lead(request.messages) if spec.answer_marker is None else ""
        conts = [self.continuation_ids(c, lead) for c in spec.choices]
        shared = 0
        while (shared < min(len(c) for c in conts) - 1
               and all(c[shared] == conts[0][shared] for c in conts)):
            shared += 1
        return _Row(index, request, self.prompt_ids(request.messages) + conts[0][:shared],
                    [c[shared:] for c in conts], lead)

    # The ChatModel protocol.

    async def complete(self, request: ChatRequest) -> ChatResult:
        if self._closed:
            raise ModelError(f"{self.name}: the model was closed")
        loop = asyncio.get_running_loop()
        if self._loop is not loop:
            # A new event loop (e.g. a second asyncio.run): requests of the old one are dead.
            self._loop = loop
            self._pending = []
            self._dispatcher = None
        pending = _Pending(request, loop.create_future(), time.perf_counter())
        self._pending.append(pending)
        if self._dispatcher is None or self._dispatcher.done():
            self._dispatcher = loop.create_task(self._dispatch())
        return await pending.future

    def end_conversation(self, conversation: str) -> None:
        """Free the keys and values held for a conversation (its agent's episode ended)."""
        self.prefix.release(conversation)

    async def aclose(self) -> None:
        """Fail queued requests, let a running batch finish, and free the weights and held prefixes."""
        self._closed = True
        pending, self._pending = self._pending, []
        for p in pending:
            if not p.future.done():
                p.future.set_exception(ModelError(f"{self.name}: the model was closed"))
        dispatcher = self._dispatcher
        if dispatcher is not None and not dispatcher.done():
            try:
                if dispatcher.get_loop() is asyncio.get_running_loop():
                    await dispatcher
            except Exception:
                pass  # its requests already got their outcome
        self._executor.shutdown(wait=False, cancel_futures=True)
        self.model = None
        self.tokenizer = None
        self._reuse = None
        self.prefix.clear()
        if self.device.startswith("cuda") and torch.cuda.is_available():
            torch.cuda.empty_cache()

    async def _dispatch(self) -> None:
        """Serve queued requests in batches until the queue is empty, then end (restarted on demand)."""
        loop = asyncio.get_running_loop()
        while self._pending:
            if len(self._pending) < self.batch_size and self.batch_window_s > 0:
                await asyncio.sleep(self.batch_window_s)
            live = [p for p in self._pending if not p.future.done()]
            batch, self._pending = live[: self.batch_size], live[self.batch_size :]
            if not batch:
                continue
            try:
                outcomes = await loop.run_in_executor(
                    self._executor, self._run_batch, [p.request for p in batch]
                )
            except RuntimeError as exc:  # the executor was shut down by aclose
                outcomes = [_Outcome(error=ModelError(f"{self.name}: {exc}")) for _ in batch]
            now = time.perf_counter()
            for p, out in zip(batch, outcomes, strict=True):
                if p.future.done():
                    continue
                if out.error is not None:
                    p.future.set_exception(out.error)
                else:
                    p.future.set_result(
                        ChatResult(
                            text=out.text,
                            model=self.name,
                            prompt_tokens=out.prompt_tokens,
                            completion_tokens=out.completion_tokens,
                            cached_tokens=out.cached_tokens,
                            latency_s=now - p.t0,
                            option_logprobs=out.option_logprobs,
                        )
                    )

    # The worker thread.

    def _run_batch(self, requests: list[ChatRequest]) -> list[_Outcome]:
        """One batch: choice requests scored, the rest generated; errors stay per request."""
        outcomes = [_Outcome() for _ in requests]
        try:
            self.load()
        except Exception as exc:
            return [_Outcome(error=exc) for _ in requests]
        choice_rows: list[_Row] = []
        gen_rows: list[_Row] = []
        for i, request in enumerate(requests):
            spec = request.constraint
            is_choice = spec is not None and spec.kind == "choice"
            try:
                row = self._choice_row(i, request) if is_choice else _Row(i, request, self.prompt_ids(request.messages))
            except Exception as exc:
                outcomes[i].error = ModelError(f"{self.name}: cannot build the prompt: {exc}")
                continue
            needed = len(row.prompt_ids) + max((len(c) for c in row.continuations), default=1)
            if self._max_positions and needed > self._max_positions:
                outcomes[i].error = ModelError(
                    f"{self.name}: the prompt has {len(row.prompt_ids)} tokens; "
                    f"the model reads at most {self._max_positions}"
                )
                continue
            (choice_rows if is_choice else gen_rows).append(row)
        with torch.inference_mode():
            for rows, run in ((choice_rows, self._choose), (gen_rows, self._generate)):
                if not rows:
                    continue
                try:
                    run(rows, outcomes)
                except Exception as exc:
                    for row in rows:
                        outcomes[row.index].error = ModelError(f"{self.name}: {type(exc).__name__}: {exc}")
        self.batches_run += 1
        return outcomes

    def _left_pad(self, seqs: list[list[int]]) -> tuple[torch.Tensor, torch.Tensor]:
        width = max(len(s) for s in seqs)
        ids = torch.full((len(seqs), width), self._pad_id, dtype=torch.long)
        mask = torch.zeros((len(seqs), width), dtype=torch.long)
        for r, s in enumerate(seqs):
            if s:
                ids[r, width - len(s) :] = torch.tensor(s, dtype=torch.long)
                mask[r, width - len(s) :] = 1
        return ids.to(self.device), mask.to(self.device)

    def _generate(self, rows: list[_Row], outcomes: list[_Outcome]) -> None:
        reuse, conversations = self._reuse, [r.request.conversation for r in rows]
        seqs = [r.prompt_ids for r in rows]
        batch = reuse.prepare(seqs, conversations) if reuse is not None and reuse.wanted(conversations) else None
        if batch is not None:
            assert reuse is not None
            inputs = reuse.generate_kwargs(batch)
            ids = batch.input_ids
            for row, cached in zip(rows, batch.reused, strict=True):
                row.cached = cached
        else:
            ids, mask = self._left_pad(seqs)
            inputs = {"input_ids": ids, "attention_mask": mask}
        max_new = [
            max(1, r.request.max_tokens if r.request.max_tokens is not None else DEFAULT_MAX_TOKENS)
            for r in rows
        ]
        if self._max_positions:  # a reply ends where the model's context does
            room = [self._max_positions - len(r.prompt_ids) for r in rows]
            max_new = [min(n, k) for n, k in zip(max_new, room, strict=True)]
        sampler = _RowSampler(
            prompt_width=ids.shape[1],
            temperatures=[max(0.0, float(r.request.temperature)) for r in rows],
            top_ps=[1.0 if r.request.top_p is None else float(r.request.top_p) for r in rows],
            seeds=[request_seed(r.request) for r in rows],
            max_new=max_new,
            eos_id=self._eos_ids[0] if self._eos_ids else None,
        )
        config = GenerationConfig(
            max_new_tokens=max(max_new),
            do_sample=False,
            num_beams=1,
            temperature=1.0,
            top_p=1.0,
            pad_token_id=self._pad_id,
            eos_token_id=self._eos_ids or None,
        )
        out = self.model.generate(
            **inputs, generation_config=config, logits_processor=LogitsProcessorList([sampler])
        )
        self.generate_calls += 1
        new_tokens = out[:, ids.shape[1] :].tolist()
        eos = set(self._eos_ids)
        replies: list[list[int]] = []
        for tokens, limit in zip(new_tokens, max_new, strict=True):
            reply: list[int] = []
            for t in tokens[:limit]:
                if t in eos:
                    break
                reply.append(t)
            replies.append(reply)
        if batch is not None:
            assert reuse is not None
            reuse.keep(batch, conversations, seqs, [len(s) for s in seqs], replies)
        for row, reply in zip(rows, replies, strict=True):
            outcomes[row.index].text = self.tokenizer.decode(reply, skip_special_tokens=True).strip()
            outcomes[row.index].prompt_tokens = len(row.prompt_ids)
            outcomes[row.index].cached_tokens = row.cached
            outcomes[row.index].completion_tokens = len(reply)

    def _option_logprobs(self, rows: list[_Row]) -> list[list[float]]:
        """Sum of token log-probabilities of each row's continuations after its prompt, batched.

        When every option of a request is one token (the usual letters and digits),
        one pass over the prompt scores them all at its last position; longer options
        get a row each. Scores leave the device once per chunk, not once per option.
        """
        scores = [[0.0] * len(r.continuations) for r in rows]
        reuse = self._reuse
        single = [n for n, r in enumerate(rows) if r.continuations and all(len(c) == 1 for c in r.continuations)]
        for start in range(0, len(single), self.batch_size):
            chunk = single[start : start + self.batch_size]
            seqs = [rows[n].prompt_ids for n in chunk]
            conversations = [rows[n].request.conversation for n in chunk]
            if reuse is not None and reuse.wanted(conversations):
                batch = reuse.prepare(seqs, conversations)
                logits = reuse.forward(batch, 1 if self._keeps_logits else None)
                reuse.keep(batch, conversations, seqs, [len(s) for s in seqs])
                for n, cached in zip(chunk, batch.reused, strict=True):
                    rows[n].cached = cached
            else:
                ids, mask = self._left_pad(seqs)
                positions = (mask.cumsum(-1) - 1).clamp(min=0)
                kwargs: dict[str, Any] = {"logits_to_keep": 1} if self._keeps_logits else {}
                logits = self.model(input_ids=ids, attention_mask=mask, position_ids=positions, **kwargs).logits
            self.score_passes += 1
            logprobs = torch.log_softmax(logits[:, -1].float(), dim=-1)
            which = [(b, c[0]) for b, n in enumerate(chunk) for c in rows[n].continuations]
            b_idx = torch.tensor([b for b, _ in which], device=logprobs.device)
            t_idx = torch.tensor([t for _, t in which], device=logprobs.device)
            values = iter(logprobs[b_idx, t_idx].tolist())
            for n in chunk:
                scores[n] = [next(values) for _ in rows[n].continuations]
        in_single = set(single)
        seqs = [(n, k) for n, r in enumerate(rows) if n not in in_single for k in range(len(r.continuations))]
        counted: set[int] = set()
        for start in range(0, len(seqs), self.batch_size):
            chunk2 = seqs[start : start + self.batch_size]
            full = [rows[n].prompt_ids + rows[n].continuations[k] for n, k in chunk2]
            longest = max(len(rows[n].continuations[k]) for n, k in chunk2)
            conversations = [rows[n].request.conversation for n, _ in chunk2]
            if reuse is not None and reuse.wanted(conversations):
                # Each option row reuses its conversation's prefix up to the prompt's last token;
                # the prompt's keys and values are kept once per request.
                batch = reuse.prepare(full, conversations, [len(rows[n].prompt_ids) - 1 for n, _ in chunk2])
                logits = reuse.forward(batch, longest + 1 if self._keeps_logits else None)
                firsts = {n: b for b, (n, _) in reversed(list(enumerate(chunk2)))}
                reuse.keep(batch, [c if firsts[n] == b else None for b, (c, (n, _)) in
                                   enumerate(zip(conversations, chunk2, strict=True))],
                           full, [len(rows[n].prompt_ids) for n, _ in chunk2])
                for n, b in firsts.items():
                    if n not in counted:  # a request's figure is its first row's
                        counted.add(n)
                        rows[n].cached = batch.reused[b]
            else:
                ids, mask = self._left_pad(full)
                positions = (mask.cumsum(-1) - 1).clamp(min=0)
                kwargs = {"logits_to_keep": longest + 1} if self._keeps_logits else {}
                logits = self.model(input_ids=ids, attention_mask=mask, position_ids=positions, **kwargs).logits
            self.score_passes += 1
            logprobs = torch.log_softmax(logits[:, -(longest + 1) :].float(), dim=-1)
            sums: list[torch.Tensor] = []
            for b, (n, k) in enumerate(chunk2):
                cont = rows[n].continuations[k]
                if not cont:
                    sums.append(logprobs.new_zeros(()))
                    continue
                # Logits at kept position j predict the token after it; the last one is unused.
                preds = logprobs[b, longest - len(cont) : longest]
                target = torch.tensor(cont, device=preds.device)[:, None]
                sums.append(preds.gather(1, target).sum())
            for (n, k), value in zip(chunk2, torch.stack(sums).tolist(), strict=True):
                scores[n][k] = value
        return scores

    def _choose(self, rows: list[_Row], outcomes: list[_Outcome]) -> None:
        """Greedy: the best-scoring option (first on ties); sampled: drawn from the options' softmax."""
        all_scores = self._option_logprobs(rows)
        for row, scores in zip(rows, all_scores, strict=True):
            spec = row.request.constraint
            assert spec is not None
            best = _pick_option(scores, row.request)
            text = f"{row.lead} {spec.choices[best]}" if row.lead else spec.choices[best]
            if spec.answer_marker is not None:
                text = f"{spec.answer_marker} {text}"
            outcomes[row.index].text = text
            outcomes[row.index].prompt_tokens = len(row.prompt_ids)
            outcomes[row.index].cached_tokens = row.cached
            outcomes[row.index].completion_tokens = len(row.continuations[best])
            outcomes[row.index].option_logprobs = tuple(scores)  # the scores behind the choice, always given


def _pick_option(scores: list[float], request: ChatRequest) -> int:
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
