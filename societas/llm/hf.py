"""In-process transformers backend (`hf:PATH`): batched generation and choice by scoring.

Concurrent `complete` calls are queued and served by one worker thread in
batches of up to `ModelOptions.hf_batch_size`: one left-padded `generate` call
for free replies, one scoring pass for choice constraints. The event loop never
waits on torch. Sampling draws each row's tokens from its own generator, seeded
from the request, inside a single greedy `generate` call, so a reply does not
depend on which other requests happened to share its batch.

The pieces live beside it: checkpoint loading and prompt tokens in hf_load,
generation in hf_generate, choice by scoring in hf_scoring, seeded sampling in
hf_sampling; this module holds the queue and the worker's batches.
"""

from __future__ import annotations

import asyncio
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

try:
    import llguidance  # noqa: F401  (grammars for generated answers)
    import torch
    import transformers  # noqa: F401  (the extra's other half: fail here with the install hint)
except ImportError as exc:  # exercised only without the extra
    from societas.errors import MissingExtra

    raise MissingExtra("hf: model specs (torch, transformers and llguidance)", "hf") from exc

from societas.llm.base import ChatRequest, ChatResult, ModelError
from societas.llm.hf_generate import DEFAULT_MAX_TOKENS, HFGeneration
from societas.llm.hf_load import Outcome, Row, plain_chat_prompt, resolve_device, resolve_dtype
from societas.llm.hf_sampling import pick_option, request_seed
from societas.llm.hf_scoring import HFScoring
from societas.llm.specs import ModelOptions, ModelSpec

__all__ = [
    "BATCH_WINDOW_S",
    "DEFAULT_MAX_TOKENS",
    "HFChatModel",
    "plain_chat_prompt",
    "request_seed",
    "resolve_device",
    "resolve_dtype",
]

_pick_option = pick_option  # the name tests and tools have used

BATCH_WINDOW_S = 0.002
"""How long the worker waits for more requests before starting a batch that is not full."""


@dataclass(slots=True)
class _Pending:
    request: ChatRequest
    future: asyncio.Future[ChatResult]
    t0: float


class HFChatModel(HFGeneration, HFScoring):
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
        super().__init__(spec, options)
        self.batch_window_s = batch_window_s
        self.batches_run = 0
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="societas-hf")
        self._pending: list[_Pending] = []
        self._loop: asyncio.AbstractEventLoop | None = None
        self._dispatcher: asyncio.Task[None] | None = None
        self._closed = False

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
        self._grammar = None
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
                outcomes = [Outcome(error=ModelError(f"{self.name}: {exc}")) for _ in batch]
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

    def _run_batch(self, requests: list[ChatRequest]) -> list[Outcome]:
        """One batch: choice requests scored, the rest generated; errors stay per request."""
        outcomes = [Outcome() for _ in requests]
        try:
            self.load()
        except Exception as exc:
            return [Outcome(error=exc) for _ in requests]
        choice_rows: list[Row] = []
        gen_rows: list[Row] = []
        for i, request in enumerate(requests):
            spec = request.constraint
            is_choice = spec is not None and spec.kind == "choice"
            try:
                row = self._choice_row(i, request) if is_choice else Row(i, request, self.prompt_ids(request.messages))
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
