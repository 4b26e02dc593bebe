"""The models a run asks: their options from the config, and a probe before anything is written."""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

from societas.cache_dir import cache_dir
from societas.config import ExperimentConfig
from societas.llm.base import ChatModel
from societas.llm.specs import ModelOptions, parse_model_spec

if TYPE_CHECKING:
    from societas.llm.servers import ServerOptions


async def probe_models(models: Mapping[str, ChatModel]) -> None:
    """Ask every model one tiny question past its cache, so a dead or misnamed endpoint stops a run
    in seconds, before anything is written; each model is probed once per process."""
    for model in models.values():
        inner: Any = model
        while inner is not None and not hasattr(inner, "probe"):
            inner = getattr(inner, "inner", None)
        if inner is not None and not getattr(inner, "probed", False):
            await inner.probe()
            inner.probed = True


def default_cache_path() -> Path:
    """Where model replies are cached unless a config names a file."""
    return cache_dir() / "responses.sqlite"


def model_options(config: ExperimentConfig, spec: str) -> ModelOptions:
    llm = config.llm
    cache: Path | None
    if parse_model_spec(spec).provider == "fake" or llm.cache is False:
        cache = None  # fake responders cost nothing to ask again
    elif llm.cache is True:
        cache = default_cache_path()
    else:
        cache = Path(llm.cache)
    if cache is not None:
        cache.parent.mkdir(parents=True, exist_ok=True)
    return ModelOptions(
        timeout_s=llm.timeout_s, max_retries=llm.max_retries, backoff_base_s=llm.backoff_base_s,
        backoff_max_s=llm.backoff_max_s, breaker_failures=llm.breaker_failures,
        breaker_window_s=llm.breaker_window_s, max_in_flight=llm.max_in_flight,
        min_in_flight=llm.min_in_flight, adaptive_in_flight=llm.adaptive_in_flight,
        structured_outputs=llm.structured_outputs, transport=llm.transport, cache_path=cache,
        send_seed=llm.send_seed, hf_prefix_cache_mb=llm.hf_prefix_cache_mb, servers=_server_options(config),
    )


def _server_options(config: ExperimentConfig) -> ServerOptions:
    """`llm.servers`; on a Ray cluster (`runner.address`) servers go where the shards can reach them.

    Under `placement: auto` a Ray runner joining a cluster places the servers as
    Ray actors on its GPU nodes rather than as subprocesses of the driver.
    """
    options = config.llm.servers.options()
    runner = config.runner
    if runner.kind == "ray" and runner.address is not None and options.placement == "auto":
        options = dataclasses.replace(options, placement="ray", ray_address=runner.address)
    return options
