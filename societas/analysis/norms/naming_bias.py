"""Individual bias in the naming game: what one player with an empty memory picks, asked many times.

Ashery, Aiello & Baronchelli (2025) separate the bias of a population from
that of its members: a model asked the game's first-round prompt thousands of
times, the names listed in a fresh order each time, may pick every name about
equally often (Q against M: M in 48.7-50.8% of the answers for every model)
while populations of it still settle on M far more often than chance
(`winner_distribution`). This module asks that question of any model spec.

Each trial is the prompt the game itself builds for a player's first
interaction (`societas.environments.naming.env.player_prompt`), the names in an
order drawn from one seeded generator; at temperature > 0 the same generator
draws the trial's replicate, so a response cache keeps the trials apart and a
rerun replays them. A reply is read as the game reads it (the first name it
mentions); one that names none is counted invalid, never asked again, so the
shares are those of first replies.
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence

import numpy as np
import pandas as pd

from societas.config import ExperimentConfig
from societas.environments.naming.env import check_names, player_prompt
from societas.environments.naming.rules import LETTERS
from societas.errors import BadInput
from societas.llm.base import ChatModel, ChatRequest
from societas.llm.specs import ModelOptions, make_model
from societas.types import InvalidAction, split_reasoning

COLUMNS = ["name", "count", "share", "ci_low", "ci_high", "valid", "invalid"]


def trial_orders(names: int, trials: int, seed: int, temperature: float) -> list[tuple[tuple[int, ...], int]]:
    """Per trial, the order the names are listed in (indices into `names`) and the request's replicate.

    Drawn trial by trial from `numpy.random.default_rng(seed)`: a permutation, then
    (only at temperature > 0) a replicate in [0, 2**31).
    """
    rng = np.random.default_rng(seed)
    out = []
    for _ in range(trials):
        order = tuple(int(x) for x in rng.permutation(names))
        out.append((order, int(rng.integers(2**31)) if temperature > 0 else 0))
    return out


async def individual_bias_async(model: str | ChatModel, names: Sequence[str] = LETTERS[:2], trials: int = 1000,
                                seed: int = 0, temperature: float = 0.5, *, max_tokens: int | None = 300,
                                show_rounds: bool = True, options: ModelOptions | None = None,
                                concurrency: int = 32) -> pd.DataFrame:
    """`individual_bias` inside a running event loop."""
    pool = check_names(names)
    if trials < 1 or concurrency < 1:
        raise ValueError(f"trials and concurrency must be at least 1, got {trials} and {concurrency}")
    options = options or ModelOptions()
    own = isinstance(model, str)
    client = make_model(model, options) if isinstance(model, str) else model
    slots = asyncio.Semaphore(concurrency)

    async def ask(order: tuple[int, ...], replicate: int) -> str | None:
        listed = [pool[k] for k in order]
        system, prompt, spec = player_prompt(len(pool), listed, round_no=1 if show_rounds else None)
        request = ChatRequest(
            messages=({"role": "system", "content": system}, {"role": "user", "content": prompt}),
            temperature=temperature, max_tokens=max_tokens, constraint=spec, replicate=replicate,
            seed=replicate if options.send_seed else None)
        async with slots:
            result = await client.complete(request)
        try:
            return str(spec.parse_answer(split_reasoning(result.text)[0]))
        except InvalidAction:
            return None

    try:
        picks = await asyncio.gather(*(ask(o, r) for o, r in trial_orders(len(pool), trials, seed, temperature)))
    finally:
        if own:
            await client.aclose()
    return bias_table(picks, pool)


def individual_bias(model: str | ChatModel, names: Sequence[str] = LETTERS[:2], trials: int = 1000,
                    seed: int = 0, temperature: float = 0.5, **kw: object) -> pd.DataFrame:
    """Ask `model` the naming game's first-round prompt `trials` times, the names shuffled per trial.

    Returns one row per name: how many valid first replies picked it, its share
    of them with a 95% Clopper-Pearson interval, and the valid and invalid counts
    (the same on every row). `model` is a spec (`fake:first`, `hf:PATH`,
    `openai:NAME@URL`, ...) or a ChatModel; keyword options are those of
    `individual_bias_async` (`options` carries the response cache and
    `structured_outputs`; the naming game's configs use `none`).
    """
    return asyncio.run(individual_bias_async(model, names, trials, seed, temperature, **kw))  # type: ignore[arg-type]


def bias_table(picks: Sequence[str | None], names: Sequence[str]) -> pd.DataFrame:
    """The table `individual_bias` returns, from one pick per trial (None for an invalid reply)."""
    from scipy.stats import binomtest  # imported on use: scipy.stats takes seconds
    valid = [p for p in picks if p is not None]
    invalid = len(picks) - len(valid)
    rows = []
    for name in names:
        k = sum(p == name for p in valid)
        ci = binomtest(k, len(valid)).proportion_ci(0.95) if valid else None
        rows.append({"name": name, "count": k, "share": k / len(valid) if valid else np.nan,
                     "ci_low": ci.low if ci else np.nan, "ci_high": ci.high if ci else np.nan,
                     "valid": len(valid), "invalid": invalid})
    return pd.DataFrame(rows, columns=COLUMNS)


def for_run(config: ExperimentConfig, trials: int) -> tuple[str, pd.DataFrame]:
    """`individual_bias` of a naming-game run's model: its names, temperature, seed and response cache.

    Returns the model spec and the table; BadInput for a run of another game or without one model.
    """
    from societas.runners.run import model_options

    if config.environment.id != "naming-game":
        raise BadInput(f"individual bias is measured for naming-game runs; this run plays {config.environment.id}")
    if trials < 1:
        raise BadInput(f"--individual-bias takes a number of trials of at least 1, got {trials}")
    llm = [m for m in config.population if m.policy == "llm"]
    models = sorted({m.model or config.model for m in llm if (m.model or config.model)})
    temps = sorted({config.llm.temperature if m.temperature is None else m.temperature for m in llm})
    if len(models) != 1 or len(temps) != 1:
        raise BadInput(f"individual bias needs the run's players on one model at one temperature; found "
                       f"{len(models)} models and {len(temps)} temperatures")
    params = config.environment.params
    table = individual_bias(models[0], names=params.get("names", LETTERS), trials=trials, seed=config.seed,
                            temperature=temps[0], max_tokens=config.llm.max_tokens,
                            show_rounds=params.get("show_rounds", True),
                            options=model_options(config, models[0]))
    return models[0], table
