"""Loading a transformers checkpoint for the `hf:` backend, and the token-level pieces
scoring and generation share: prompt ids, option ids, left padding, a batch's rows.

Everything here runs in the backend's worker thread (or directly, in tests and tools).
"""

from __future__ import annotations

import inspect
import threading
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from transformers import AutoModelForCausalLM, AutoTokenizer

from societas.llm.base import ChatRequest, Message, ModelError
from societas.llm.hf_prefix import PrefixReuse, PrefixStore
from societas.llm.specs import ModelOptions, ModelSpec

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


def plain_chat_prompt(messages: Sequence[Message]) -> str:
    """The prompt for tokenizers without a chat template: "role: content" lines, then "assistant:"."""
    lines = [f"{m.get('role', 'user')}: {m.get('content', '')}" for m in messages]
    return "\n".join([*lines, "assistant:"])


@dataclass(slots=True)
class Outcome:
    text: str = ""
    prompt_tokens: int = 0
    completion_tokens: int = 0
    cached_tokens: int = 0
    error: BaseException | None = None
    option_logprobs: tuple[float, ...] | None = None


@dataclass(slots=True)
class Row:
    """One request's place in a batch."""

    index: int
    request: ChatRequest
    prompt_ids: list[int]
    continuations: list[list[int]] = field(default_factory=list)
    lead: str = ""
    cached: int = 0  # prompt tokens whose keys and values came from the conversation's held prefix


class HFModelBase:
    """A local checkpoint (`hf:PATH`), loaded on first use, with what its tokenizer and
    weights say about prompts, padding and the end of a reply.

    `generate_calls` and `score_passes` count the model calls that generation and
    scoring (societas.llm.hf_generate, societas.llm.hf_scoring) make.
    """

    def __init__(self, spec: ModelSpec, options: ModelOptions) -> None:
        self.name = str(spec)
        self.path = spec.name
        self.options = options
        self.batch_size = max(1, int(options.hf_batch_size))
        self.device = resolve_device(options.hf_device)
        self.dtype = resolve_dtype(options.hf_dtype, self.device)
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
        self._grammar: Any = None  # hf_constrain.GrammarTokenizer, built on the first constrained reply
        self._load_lock = threading.Lock()

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

    def _left_pad(self, seqs: list[list[int]]) -> tuple[torch.Tensor, torch.Tensor]:
        width = max(len(s) for s in seqs)
        ids = torch.full((len(seqs), width), self._pad_id, dtype=torch.long)
        mask = torch.zeros((len(seqs), width), dtype=torch.long)
        for r, s in enumerate(seqs):
            if s:
                ids[r, width - len(s) :] = torch.tensor(s, dtype=torch.long)
                mask[r, width - len(s) :] = 1
        return ids.to(self.device), mask.to(self.device)
