"""Decisions per second of the in-process transformers backend (`hf:`), batch 1 vs batch 64.

Builds a random-weight model with Qwen2.5-0.5B's shape (its published config:
24 layers, hidden 896, 14 query / 2 key-value heads, intermediate 4864,
vocabulary 151,936, tied embeddings; no download) and a byte-level BPE
tokenizer trained on the game's own prompts, writes both to a temporary
folder, and loads them through `hf:PATH` as a run would.

Workload: 64 iterated Prisoner's Dilemma games of 10 rounds played at once by
language-model agents (`LLMAgent`, the same prompts, parsing and retries as a
run) on the `repeated-matrix-game` environment; both players of a game act
together each round. The option letters are a choice constraint, so the
backend answers each decision with one scoring pass over the two options. The
only difference between the measurements is `hf_batch_size`: 1 serves the
queued decisions one at a time, 64 scores up to 64 in one forward pass.
A second pair of figures does the same for free generation (32 new tokens,
no constraint), where batching runs one `generate` call for many requests.

The game loop here is the runner's in miniature, so the script needs only
torch, transformers, numpy, PyYAML, PettingZoo and Gymnasium (no Parquet
stack) on a GPU machine.

Usage: python benchmarks/gpu_hf.py [--device auto|cuda|cpu] [--games 64] [--rounds 10]
       python benchmarks/gpu_hf.py --quick      # a tiny model on the CPU: checks the script runs
"""

from __future__ import annotations

import argparse
import asyncio
import datetime
import platform
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np
import torch
import transformers
from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
from transformers import AutoModelForCausalLM, PreTrainedTokenizerFast, Qwen2Config

from societas.agents.llm_agent import LLMAgent, LLMAgentOptions
from societas.environments.matrix_game import RepeatedMatrixGame
from societas.llm.base import ChatRequest
from societas.llm.hf import HFChatModel
from societas.llm.specs import ModelOptions, parse_model_spec

# Qwen2.5-0.5B's published config.json (shape only; weights here are random).
QWEN25_05B = dict(
    vocab_size=151_936, hidden_size=896, intermediate_size=4_864, num_hidden_layers=24,
    num_attention_heads=14, num_key_value_heads=2, max_position_embeddings=32_768,
    rope_theta=1_000_000.0, rms_norm_eps=1e-6, tie_word_embeddings=True, hidden_act="silu",
)
TINY = dict(
    vocab_size=4_096, hidden_size=64, intermediate_size=128, num_hidden_layers=2,
    num_attention_heads=4, num_key_value_heads=2, max_position_embeddings=4_096,
    rope_theta=10_000.0, rms_norm_eps=1e-6, tie_word_embeddings=True, hidden_act="silu",
)
CHAT_TEMPLATE = (
    "{% for m in messages %}<|im_start|>{{ m['role'] }}\n{{ m['content'] }}<|im_end|>\n{% endfor %}"
    "{% if add_generation_prompt %}<|im_start|>assistant\n{% endif %}"
)
SPECIAL = ["<|endoftext|>", "<|im_start|>", "<|im_end|>"]


def game_texts(rounds: int) -> list[str]:
    """Prompts the environment produces, to train the tokenizer on the words it will see."""
    texts = []
    for seed in range(8):
        env = RepeatedMatrixGame("prisoners_dilemma", rounds=rounds)
        env.reset(seed=seed)
        rng = np.random.default_rng(seed)
        while env.agents:
            obs = {a: env.decision(a) for a in env.agents}
            texts += [o.system + "\n" + o.prompt for o in obs.values()]
            env.step({a: o.spec.choices[int(rng.integers(2))] for a, o in obs.items()})
    return texts


def build_model(path: Path, shape: dict[str, Any], device: str, rounds: int) -> int:
    """Write a trained tokenizer and random weights (bfloat16 on a GPU) to `path`; returns the parameter count."""
    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    tok.train_from_iterator(game_texts(rounds), trainers.BpeTrainer(
        vocab_size=2_048, special_tokens=SPECIAL, show_progress=False,
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet()))
    tokenizer = PreTrainedTokenizerFast(tokenizer_object=tok, eos_token="<|im_end|>", pad_token="<|endoftext|>")
    tokenizer.chat_template = CHAT_TEMPLATE
    tokenizer.save_pretrained(path)
    config = Qwen2Config(**shape, bos_token_id=tokenizer.convert_tokens_to_ids("<|endoftext|>"),
                         eos_token_id=tokenizer.eos_token_id, pad_token_id=tokenizer.pad_token_id)
    dtype = torch.bfloat16 if device.startswith("cuda") else torch.float32
    torch.manual_seed(0)
    with torch.device(device):
        model = AutoModelForCausalLM.from_config(config, dtype=dtype)
    model.save_pretrained(path)
    n_params = sum(p.numel() for p in model.parameters())
    del model
    if device.startswith("cuda"):
        torch.cuda.empty_cache()
    return n_params


async def play_games(model: HFChatModel, games: int, rounds: int) -> tuple[int, int, float]:
    """Play `games` PD games at once; returns (decisions, invalid decisions, seconds)."""
    decisions = invalid = 0

    async def one(g: int) -> None:
        nonlocal decisions, invalid
        env = RepeatedMatrixGame("prisoners_dilemma", rounds=rounds)
        env.reset(seed=g)
        agents = {a: LLMAgent(f"g{g}-{a}", model, rng=np.random.default_rng([g, i]),
                              options=LLMAgentOptions(max_attempts=1))
                  for i, a in enumerate(env.possible_agents)}
        while env.agents:
            live = list(env.agents)
            obs = [env.decision(a) for a in live]
            acts = await asyncio.gather(*(agents[a].act(o) for a, o in zip(live, obs)))
            env.step({a: act.value for a, act in zip(live, acts)})
            decisions += len(acts)
            invalid += sum(not act.valid for act in acts)

    t0 = time.perf_counter()
    await asyncio.gather(*(one(g) for g in range(games)))
    return decisions, invalid, time.perf_counter() - t0


async def generate(model: HFChatModel, requests: int, max_tokens: int) -> tuple[int, int, float]:
    """Free generation of `requests` replies at once; returns (replies, new tokens, seconds)."""
    texts = game_texts(3)
    reqs = [ChatRequest(messages=({"role": "user", "content": texts[i % len(texts)]},),
                        max_tokens=max_tokens) for i in range(requests)]
    t0 = time.perf_counter()
    results = await asyncio.gather(*(model.complete(r) for r in reqs))
    return len(results), sum(r.completion_tokens for r in results), time.perf_counter() - t0


def measure(path: Path, device: str, batch: int, games: int, rounds: int, gen_requests: int,
            gen_tokens: int) -> dict[str, Any]:
    options = ModelOptions(hf_device=device, hf_batch_size=batch, hf_dtype="auto")
    model = HFChatModel(parse_model_spec(f"hf:{path}"), options)

    async def main() -> dict[str, Any]:
        await play_games(model, min(games, batch) * 1, 1)  # warm-up: load, CUDA kernels
        if device.startswith("cuda"):
            torch.cuda.synchronize()
            torch.cuda.reset_peak_memory_stats()
        batches0 = model.batches_run
        d, bad, s = await play_games(model, games, rounds)
        batches = model.batches_run - batches0
        await generate(model, min(gen_requests, batch), 2)  # warm-up of generate
        n, toks, gs = await generate(model, gen_requests, gen_tokens)
        peak = torch.cuda.max_memory_allocated() / 2**30 if device.startswith("cuda") else float("nan")
        await model.aclose()
        return {"batch": batch, "decisions": d, "invalid": bad, "seconds": s, "decisions_per_s": d / s,
                "mean_batch": d / max(batches, 1), "gen_replies": n, "gen_tokens": toks, "gen_seconds": gs,
                "replies_per_s": n / gs, "tokens_per_s": toks / gs, "peak_gib": peak}

    return asyncio.run(main())


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--device", default="auto")
    ap.add_argument("--games", type=int, default=64)
    ap.add_argument("--rounds", type=int, default=10)
    ap.add_argument("--gen-requests", type=int, default=64)
    ap.add_argument("--gen-tokens", type=int, default=32)
    ap.add_argument("--quick", action="store_true", help="tiny model, 8 games of 3 rounds (checks the script)")
    args = ap.parse_args()
    device = ("cuda" if torch.cuda.is_available() else "cpu") if args.device == "auto" else args.device
    shape = TINY if args.quick else QWEN25_05B
    if args.quick:
        args.games, args.rounds, args.gen_requests, args.gen_tokens = 8, 3, 16, 8
    card = torch.cuda.get_device_name(0) if device.startswith("cuda") else platform.processor() or "cpu"
    print(f"# gpu_hf.py  {datetime.date.today()}  device={device} ({card})  python {platform.python_version()}"
          f"  torch {torch.__version__}  transformers {transformers.__version__}")
    print(f"# model: {'tiny' if args.quick else 'Qwen2.5-0.5B shape'}, random weights; workload: "
          f"{args.games} PD games x {args.rounds} rounds x 2 players at once; generation: "
          f"{args.gen_requests} requests x {args.gen_tokens} new tokens")
    with tempfile.TemporaryDirectory() as tmp:
        t0 = time.perf_counter()
        path = Path(tmp) / "model"
        n_params = build_model(path, shape, device, args.rounds)
        print(f"# built in {time.perf_counter() - t0:.1f} s, {n_params / 1e6:.1f}M parameters")
        rows = [measure(path, device, b, args.games, args.rounds, args.gen_requests, args.gen_tokens)
                for b in (1, 64 if not args.quick else 8)]
    print(f"{'batch':>5} {'decisions':>9} {'invalid':>7} {'s':>7} {'decisions/s':>11} {'mean batch':>10} "
          f"{'gen replies/s':>13} {'gen tokens/s':>12} {'peak GiB':>8}")
    for r in rows:
        print(f"{r['batch']:>5} {r['decisions']:>9} {r['invalid']:>7} {r['seconds']:>7.2f} "
              f"{r['decisions_per_s']:>11.1f} {r['mean_batch']:>10.1f} {r['replies_per_s']:>13.1f} "
              f"{r['tokens_per_s']:>12.0f} {r['peak_gib']:>8.2f}")
    one, many = rows
    print(f"speed-up batch {many['batch']} vs 1: decisions {many['decisions_per_s'] / one['decisions_per_s']:.1f}x, "
          f"generation {many['replies_per_s'] / one['replies_per_s']:.1f}x")
    sys.stdout.flush()


if __name__ == "__main__":
    main()
