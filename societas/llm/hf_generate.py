"""Free replies for the `hf:` backend: one left-padded greedy `generate` call per batch,
with each sampled row drawing its tokens from its own seeded generator (RowSampler), and
number, pattern and JSON answers held to their grammar (GrammarMask, societas.llm.hf_constrain).
"""

from __future__ import annotations

from transformers import GenerationConfig, LogitsProcessorList

from societas.llm.hf_constrain import GrammarMask, GrammarTokenizer, answer_grammar
from societas.llm.hf_load import HFModelBase, Outcome, Row
from societas.llm.hf_sampling import RowSampler, request_seed

DEFAULT_MAX_TOKENS = 256
"""Reply length when a request sets no max_tokens: room to reason before an answer marker."""


class HFGeneration(HFModelBase):
    """Generation for a batch's rows that are not choices."""

    def _generate(self, rows: list[Row], outcomes: list[Outcome]) -> None:
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
        sampler = RowSampler(
            prompt_width=ids.shape[1],
            temperatures=[max(0.0, float(r.request.temperature)) for r in rows],
            top_ps=[1.0 if r.request.top_p is None else float(r.request.top_p) for r in rows],
            seeds=[request_seed(r.request) for r in rows],
            max_new=max_new,
            eos_id=self._eos_ids[0] if self._eos_ids else None,
        )
        processors = [sampler]
        grammar = self._grammar_mask(rows, ids.shape[1])
        if grammar is not None:
            processors.insert(0, grammar)
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
            **inputs, generation_config=config, logits_processor=LogitsProcessorList(processors)
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

    def _grammar_mask(self, rows: list[Row], prompt_width: int) -> GrammarMask | None:
        """The grammar mask for a batch's constrained rows; None when no row has a grammar
        (or `llm.structured_outputs: none` asks for unconstrained replies)."""
        if self.options.structured_outputs == "none":
            return None
        grammars = [answer_grammar(r.request.constraint, r.request.max_tokens) for r in rows]
        if not any(grammars):
            return None
        if self._grammar is None:
            vocab = int(self.model.get_output_embeddings().weight.shape[0])
            self._grammar = GrammarTokenizer(self.tokenizer, vocab, self._eos_ids)
        matchers = [None if g is None else self._grammar.matcher(g) for g in grammars]
        if not any(m is not None for m in matchers):
            return None
        return GrammarMask(prompt_width=prompt_width, matchers=matchers, eos_ids=self._eos_ids,
                           vocab_size=self._grammar.vocab_size)
