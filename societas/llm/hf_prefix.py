"""Prefix reuse for the in-process backend: each conversation's keys and values kept between its requests.

An agent's prompts within an episode share a growing prefix (rules, persona,
the history so far), so `hf:` keeps the key/value cache of a conversation's
last prompt and computes only the tokens after the longest common prefix of
token ids with the new prompt. Keys and values at a position depend only on the
tokens up to it, so matching token ids (never text) makes the reuse exact; a
prompt that tokenises differently where the text still agrees just reuses less.

Entries are keyed by `ChatRequest.conversation` and bounded in bytes. A new
conversation is admitted only into free room and a full store keeps the entries
it has, rather than evicting the least recently used: agents of concurrent
episodes ask in turn, and under such a cyclic pattern LRU evicts exactly the
entry asked for next. An entry that cannot grow keeps its shorter prefix, which
still matches. `end_conversation` (at the end of the agent's episode) and
closing the model free them.

A batch mixes rows with different cached lengths. Each row's cached part is
right-aligned at the end of a shared past segment of width P (the longest
reuse) and its new tokens at the end of the input segment of width N, padding
masked in both and positions counted over real tokens only: one forward pass
(or one `generate`) still serves the whole batch.
"""

from __future__ import annotations

import inspect
import threading
from collections import OrderedDict
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import torch

DEFAULT_PREFIX_CACHE_MB = 1024
"""Default bound on the keys and values held for reuse (`ModelOptions.hf_prefix_cache_mb`; 0 turns reuse off)."""


@dataclass(slots=True)
class PrefixStats:
    """What reuse saved: prompt tokens computed and reused, and why rows reused less than they might.

    `lookups` counts rows that named a conversation; `hits` those that reused a
    token; `truncated` those whose held ids stopped matching before their end
    (the previous prompt is not a prefix of this one: reuse stops at the
    divergence); `missed` those whose held ids shared no token; `refused`
    entries not stored or not grown for want of room.
    """

    lookups: int = 0
    hits: int = 0
    truncated: int = 0
    missed: int = 0
    refused: int = 0
    reused_tokens: int = 0
    computed_tokens: int = 0


@dataclass(slots=True)
class _Entry:
    ids: list[int]
    keys: tuple[torch.Tensor, ...]  # one per layer: [kv_heads, len(ids), head_dim]
    values: tuple[torch.Tensor, ...]
    nbytes: int


def common_prefix(a: Sequence[int], b: Sequence[int]) -> int:
    """Length of the longest common prefix of two id sequences."""
    n = min(len(a), len(b))
    i = 0
    while i < n and a[i] == b[i]:
        i += 1
    return i


def cache_argument(model: Any) -> str:
    """The name the model's forward takes its key/value cache by (`cache` in transformers 5, else `past_key_values`)."""
    params = inspect.signature(model.forward).parameters
    return "cache" if "cache" in params else "past_key_values"


def supports_reuse(model: Any) -> bool:
    """True when the model's dynamic cache is plain full-attention layers (no sliding windows, no recurrent state)."""
    try:
        from transformers import DynamicCache
        from transformers.cache_utils import DynamicLayer
    except ImportError:
        return False
    try:
        layers = DynamicCache(config=model.config).layers
    except Exception:
        return False
    return bool(layers) and all(type(layer) is DynamicLayer for layer in layers)


class PrefixStore:
    """Per-conversation keys and values, at most `max_bytes` in all; safe to call from any thread."""

    def __init__(self, max_bytes: int) -> None:
        self.max_bytes = max(0, int(max_bytes))
        self.bytes_held = 0
        self.stats = PrefixStats()
        self._entries: OrderedDict[str, _Entry] = OrderedDict()
        self._lock = threading.Lock()

    def __len__(self) -> int:
        return len(self._entries)

    def match(self, conversation: str | None, ids: Sequence[int],
              limit: int | None = None) -> tuple[_Entry | None, int]:
        """The held entry for a conversation and how many of `ids` it covers, at most `limit`.

        `limit` defaults to all but the last token: the last position's logits are
        what a request asks for, so it is always computed.
        """
        if conversation is None or self.max_bytes == 0:
            return None, 0
        with self._lock:
            stats = self.stats
            stats.lookups += 1
            entry = self._entries.get(conversation)
            if entry is None:
                return None, 0
            self._entries.move_to_end(conversation)
            shared = common_prefix(entry.ids, ids)
            if shared == 0:
                stats.missed += 1
                return None, 0
            if shared < len(entry.ids) and shared < len(ids):
                stats.truncated += 1
            reuse = min(shared, len(ids) - 1 if limit is None else limit)
            if reuse <= 0:
                return None, 0
            stats.hits += 1
            return entry, reuse

    def put(self, conversation: str, ids: list[int], keys: tuple[torch.Tensor, ...],
            values: tuple[torch.Tensor, ...]) -> bool:
        """Hold a conversation's keys and values in place of its older entry, if they fit; False if not."""
        nbytes = sum(t.numel() * t.element_size() for t in (*keys, *values))
        with self._lock:
            old = self._entries.get(conversation)
            free = self.max_bytes - self.bytes_held + (old.nbytes if old is not None else 0)
            if nbytes > free:
                self.stats.refused += 1
                return False
            if old is not None:
                self.bytes_held -= old.nbytes
            self._entries[conversation] = _Entry(ids, keys, values, nbytes)
            self._entries.move_to_end(conversation)
            self.bytes_held += nbytes
            return True

    def release(self, conversation: str) -> bool:
        """Drop a conversation's entry (its episode ended); False if none was held."""
        with self._lock:
            entry = self._entries.pop(conversation, None)
            if entry is None:
                return False
            self.bytes_held -= entry.nbytes
            return True

    def clear(self) -> None:
        with self._lock:
            self._entries.clear()
            self.bytes_held = 0


@dataclass(slots=True)
class ReuseBatch:
    """Rows laid out over a shared past segment: the model's inputs and where each row's tokens sit.

    `input_ids` and `attention_mask` span past and new segments ([B, P + N]);
    the forward pass takes `input_ids[:, P:]` with the cache, `generate` the full width.
    """

    input_ids: torch.Tensor
    attention_mask: torch.Tensor
    past: int
    reused: list[int]
    lengths: list[int]
    cache: Any

    @property
    def width(self) -> int:
        return int(self.input_ids.shape[1])

    def positions(self) -> torch.Tensor:
        """Position ids of the new segment, counted over each row's real tokens."""
        pos = (self.attention_mask.cumsum(-1) - 1).clamp(min=0)
        return pos[:, self.past :]

    def row_columns(self, row: int, keep: int) -> torch.Tensor:
        """Columns of the row's first `keep` tokens in the batch's key/value layout."""
        r, n = self.reused[row], self.lengths[row] - self.reused[row]
        cols = torch.cat([torch.arange(self.past - r, self.past), torch.arange(self.width - n, self.width)])
        return cols[:keep]


def layout(
    seqs: Sequence[Sequence[int]],
    matches: Sequence[tuple[_Entry | None, int]],
    *,
    pad_id: int,
    device: str | torch.device,
    config: Any,
) -> ReuseBatch:
    """Inputs and a pre-filled cache for rows whose first `reuse` tokens come from held entries."""
    from transformers import DynamicCache

    reused = [r if e is not None else 0 for e, r in matches]
    lengths = [len(s) for s in seqs]
    past = max(reused, default=0)
    new = max(n - r for n, r in zip(lengths, reused, strict=True))
    width = past + new
    ids = torch.full((len(seqs), width), pad_id, dtype=torch.long)
    mask = torch.zeros((len(seqs), width), dtype=torch.long)
    for i, (s, r) in enumerate(zip(seqs, reused, strict=True)):
        if r:
            ids[i, past - r : past] = torch.tensor(s[:r], dtype=torch.long)
            mask[i, past - r : past] = 1
        rest = len(s) - r
        ids[i, width - rest :] = torch.tensor(s[r:], dtype=torch.long)
        mask[i, width - rest :] = 1
    if past == 0:
        cache = DynamicCache(config=config)
    else:
        first = next(e for e, r in matches if e is not None and r)
        data = []
        for layer in range(len(first.keys)):
            shape = (len(seqs), first.keys[layer].shape[0], past, first.keys[layer].shape[-1])
            k = first.keys[layer].new_zeros(shape)
            v = first.values[layer].new_zeros(shape)
            for i, (entry, r) in enumerate(matches):
                if entry is not None and r:
                    k[i, :, past - r :] = entry.keys[layer][:, :r]
                    v[i, :, past - r :] = entry.values[layer][:, :r]
            data.append((k, v))
        cache = DynamicCache(ddp_cache_data=data, config=config)
    return ReuseBatch(ids.to(device), mask.to(device), past, reused, lengths, cache)


def row_kv(batch: ReuseBatch, row: int, keep: int,
           generated: int = 0) -> tuple[tuple[torch.Tensor, ...], tuple[torch.Tensor, ...]]:
    """Copies of a row's keys and values for its first `keep` tokens, out of the batch's filled cache,
    and for the first `generated` tokens `generate` appended after the prompt (`keep` is then all of it)."""
    cols = batch.row_columns(row, keep)
    if generated:
        cols = torch.cat([cols, torch.arange(batch.width, batch.width + generated)])
    cols = cols.to(batch.input_ids.device)
    keys = tuple(layer.keys[row].index_select(1, cols) for layer in batch.cache.layers)
    values = tuple(layer.values[row].index_select(1, cols) for layer in batch.cache.layers)
    return keys, values


class PrefixReuse:
    """A loaded model's prefix reuse: lays batches out over held entries and keeps what they computed.

    Used by `HFChatModel` from its worker thread; `enabled` is false when the
    bound is 0 or the model's cache layers are not plain full attention.
    """

    def __init__(self, store: PrefixStore, model: Any, *, pad_id: int, device: str) -> None:
        self.store = store
        self.model = model
        self.pad_id = pad_id
        self.device = device
        self.cache_arg = cache_argument(model)
        self.enabled = store.max_bytes > 0 and supports_reuse(model)

    def wanted(self, conversations: Sequence[str | None]) -> bool:
        """Whether a chunk goes through reuse: some row names a conversation and reuse is on."""
        return self.enabled and any(c is not None for c in conversations)

    def prepare(self, seqs: Sequence[Sequence[int]], conversations: Sequence[str | None],
                limits: Sequence[int] | None = None) -> ReuseBatch:
        """Match each row against its conversation's entry (reusing at most `limits`) and lay the batch out."""
        caps = limits if limits is not None else [len(s) - 1 for s in seqs]
        matches = [self.store.match(c, s, cap) for c, s, cap in zip(conversations, seqs, caps, strict=True)]
        batch = layout(seqs, matches, pad_id=self.pad_id, device=self.device, config=self.model.config)
        stats = self.store.stats
        stats.reused_tokens += sum(batch.reused)
        stats.computed_tokens += sum(batch.lengths) - sum(batch.reused)
        return batch

    def forward(self, batch: ReuseBatch, logits_to_keep: int | None) -> torch.Tensor:
        """Logits of the new segment's last `logits_to_keep` positions (all when None)."""
        kwargs: dict[str, Any] = {self.cache_arg: batch.cache, "use_cache": True}
        if logits_to_keep is not None:
            kwargs["logits_to_keep"] = logits_to_keep
        out = self.model(
            input_ids=batch.input_ids[:, batch.past :],
            attention_mask=batch.attention_mask,
            position_ids=batch.positions(),
            **kwargs,
        )
        return out.logits

    def generate_kwargs(self, batch: ReuseBatch) -> dict[str, Any]:
        """What `generate` takes besides its config: full-width ids and mask, and the pre-filled cache."""
        return {"input_ids": batch.input_ids, "attention_mask": batch.attention_mask, self.cache_arg: batch.cache}

    def keep(self, batch: ReuseBatch, conversations: Sequence[str | None], seqs: Sequence[Sequence[int]],
             keep: Sequence[int], generated: Sequence[Sequence[int]] | None = None) -> None:
        """Hold each named conversation's first `keep` tokens, then what it generated (its reply, which
        the conversation's next prompt usually quotes); rows of one conversation: the last wins."""
        # The last token `generate` made was never fed back, so it has no keys and values.
        fed = batch.cache.get_seq_length() - batch.width
        for row, (conversation, seq, n) in enumerate(zip(conversations, seqs, keep, strict=True)):
            if conversation is None or n <= 0:
                continue
            reply = list(generated[row][:fed]) if generated is not None and n == len(seq) else []
            keys, values = row_kv(batch, row, n, len(reply))
            self.store.put(conversation, [*seq[:n], *reply], keys, values)
