"""Choice by scoring for the `hf:` backend: each option's log-probability as the model
would write it, in batched forward passes; the choice is their argmax, or a seeded draw.
"""

from __future__ import annotations

from typing import Any

import torch

from societas.llm.base import ChatRequest
from societas.llm.constraints import answer_lead
from societas.llm.hf_load import HFModelBase, Outcome, Row
from societas.llm.hf_sampling import pick_option


class HFScoring(HFModelBase):
    """Scoring for a batch's choice rows, and `option_logprobs` for tools that compare engines."""

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

    def _choice_row(self, index: int, request: ChatRequest) -> Row:
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
        return Row(index, request, self.prompt_ids(request.messages) + conts[0][:shared],
                   [c[shared:] for c in conts], lead)

    def _option_logprobs(self, rows: list[Row]) -> list[list[float]]:
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

    def _choose(self, rows: list[Row], outcomes: list[Outcome]) -> None:
        """Greedy: the best-scoring option (first on ties); sampled: drawn from the options' softmax."""
        all_scores = self._option_logprobs(rows)
        for row, scores in zip(rows, all_scores, strict=True):
            spec = row.request.constraint
            assert spec is not None
            best = pick_option(scores, row.request)
            text = f"{row.lead} {spec.choices[best]}" if row.lead else spec.choices[best]
            if spec.answer_marker is not None:
                text = f"{spec.answer_marker} {text}"
            outcomes[row.index].text = text
            outcomes[row.index].prompt_tokens = len(row.prompt_ids)
            outcomes[row.index].cached_tokens = row.cached
            outcomes[row.index].completion_tokens = len(row.continuations[best])
            outcomes[row.index].option_logprobs = tuple(scores)  # the scores behind the choice, always given
