"""A tiny random-weight causal LM built on the fly, so `hf:` tests need no downloads.

The tokenizer is a byte-level BPE trained on a few hundred game-like sentences
(so words such as "Option", "J", "F" and digits are single tokens) with a small
chat template; the model is a 2-layer Llama with a fixed seed. Weights are
initialised with a wide spread so next-token distributions are peaked: greedy
decoding and option scores then do not hinge on float noise.
"""

from __future__ import annotations

import random
from pathlib import Path

CHAT_TEMPLATE = (
    "{% for m in messages %}<|{{ m['role'] }}|>{{ m['content'] }}<|end|>{% endfor %}"
    "{% if add_generation_prompt %}<|assistant|>{% endif %}"
)
SPECIAL_TOKENS = ["<pad>", "<bos>", "<|end|>", "<|system|>", "<|user|>", "<|assistant|>"]

_WORDS = (
    "you play a repeated game with another player each round choose Option J or Option F "
    "the payoff is points if both cooperate defect your partner chose in round answer with "
    "one letter predict next move donor gives receives resources reputation score total "
    "agent society norm trust fair share keep give split offer accept reject"
).split()


def _corpus(n: int = 400, seed: int = 0) -> list[str]:
    rng = random.Random(seed)
    lines = []
    for i in range(n):
        words = [rng.choice(_WORDS) for _ in range(rng.randint(4, 12))]
        words.insert(rng.randint(0, len(words)), str(rng.randint(0, 100)))
        lines.append(" ".join(words) + (". Answer: J" if i % 2 else ". Answer: F"))
    return lines


def build_tiny_model(
    path: str | Path, *, chat_template: bool = True, seed: int = 0, vocab_size: int = 384,
    max_positions: int = 512,
) -> Path:
    """Write a tokenizer and a tiny random Llama to `path`; return the path (seconds at most)."""
    import torch
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
    from transformers import AutoModelForCausalLM, LlamaConfig, PreTrainedTokenizerFast

    path = Path(path)
    path.mkdir(parents=True, exist_ok=True)

    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=vocab_size,
        special_tokens=SPECIAL_TOKENS,
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        show_progress=False,
    )
    tok.train_from_iterator(_corpus(), trainer=trainer)
    tokenizer = PreTrainedTokenizerFast(
        tokenizer_object=tok,
        pad_token="<pad>",
        bos_token="<bos>",
        eos_token="<|end|>",
    )
    if chat_template:
        tokenizer.chat_template = CHAT_TEMPLATE
    tokenizer.save_pretrained(path)

    config = LlamaConfig(
        vocab_size=len(tokenizer),
        hidden_size=64,
        intermediate_size=128,
        num_hidden_layers=2,
        num_attention_heads=4,
        num_key_value_heads=2,
        max_position_embeddings=max_positions,
        initializer_range=0.3,
        pad_token_id=tokenizer.pad_token_id,
        bos_token_id=tokenizer.bos_token_id,
        eos_token_id=tokenizer.eos_token_id,
        tie_word_embeddings=False,
    )
    torch.manual_seed(seed)
    model = AutoModelForCausalLM.from_config(config)
    model.save_pretrained(path)
    return path
