"""Model specs ("openai:gpt-4o-mini", "hf:/path", "fake:first") and the backends behind them.

`make_model` turns a spec string into a ready ChatModel: the provider's
backend, wrapped with retries on transient failures and a response cache.
Backends are imported only when a spec asks for them, so `import societas`
stays light. A new provider is one ChatModel class built as `Class(spec,
options)`: register it with `register_backend`, or from an installed package
through the `societas.models` entry-point group (name = provider, value =
"module:Class"), read once per process when a spec names an unknown provider.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Literal

from societas import plugins
from societas.llm.base import ChatModel

if TYPE_CHECKING:
    from societas.llm.servers import ServerOptions

StructuredOutputs = Literal["auto", "vllm", "json_schema", "llamacpp", "none"]


@dataclass(frozen=True, kw_only=True, slots=True)
class ModelSpec:
    """A parsed model spec. `base_url` is set for `openai:NAME@URL`."""

    provider: str
    name: str
    base_url: str | None = None

    def __str__(self) -> str:
        return f"{self.provider}:{self.name}" + (f"@{self.base_url}" if self.base_url else "")


@dataclass(frozen=True, kw_only=True, slots=True)
class ModelOptions:
    """How to reach and treat a model; the `llm:` section of a config.

    `max_in_flight` bounds concurrent requests per endpoint (base URL), shared
    by every agent using it; between `min_in_flight` and it the limit adapts to
    what the endpoint sustains (societas.llm.limiter), unless `adaptive_in_flight`
    is false, which fixes it at `max_in_flight`. `structured_outputs` picks how action specs become
    output constraints: `auto` asks the endpoint what it is (vLLM lists its
    models as owned by "vllm"; llama.cpp by "llamacpp" or "me"), `vllm` sends
    `structured_outputs` in the body, `json_schema` sends `response_format`,
    `llamacpp` a GBNF grammar or a `json_object` schema, `none` relies on parsing alone.
    `transport` is how requests travel: `direct` (aiohttp without the OpenAI SDK
    in the request path, the least client CPU per call), or the SDK on `aiohttp`
    or `httpx`.
    `servers` says how `vllm:` specs start their servers (None: the defaults).
    `breaker_failures` failed requests spanning `breaker_window_s` with no
    success between them stop the run (the circuit breaker of RetryingModel).
    `hf_prefix_cache_mb` bounds the keys and values `hf:` keeps of each
    conversation's prompt for reuse by its next request (societas.llm.hf_prefix); 0 turns reuse off.
    """

    timeout_s: float = 60.0
    max_retries: int = 6
    backoff_base_s: float = 0.5
    backoff_max_s: float = 30.0
    breaker_failures: int = 8
    breaker_window_s: float = 15.0
    max_in_flight: int = 512
    min_in_flight: int = 4
    adaptive_in_flight: bool = True
    structured_outputs: StructuredOutputs = "auto"
    transport: Literal["aiohttp", "httpx", "direct"] = "direct"
    cache_path: Path | None = None
    send_seed: bool = False
    api_key_env: str = "OPENAI_API_KEY"
    hf_device: str = "auto"
    hf_batch_size: int = 16
    hf_dtype: str = "auto"
    hf_prefix_cache_mb: int = 1024
    servers: ServerOptions | None = None


BackendFactory = Callable[[ModelSpec, ModelOptions], ChatModel]
"""Builds a provider's model: usually the ChatModel class itself, called as Class(spec, options)."""
_BACKENDS: dict[str, BackendFactory] = {}
# Providers that installed packages declare, imported when a spec first names them.
_PLUGIN_BACKENDS: dict[str, plugins.Plugin] = {}
_entry_points_loaded = False


def register_backend(provider: str, factory: BackendFactory) -> None:
    """Make `provider:NAME` specs resolve to models built by `factory(spec, options)`.

    The model it returns is wrapped like every other backend's: retries with
    backoff on TransientModelError, and the response cache when one is set.
    """
    if not isinstance(provider, str) or not provider.isidentifier():
        raise ValueError(f"provider must be an identifier such as 'myprovider', got {provider!r}")
    if not callable(factory):
        raise TypeError(f"provider {provider!r}: factory must be callable, got {factory!r}")
    _BACKENDS[provider] = factory


def providers() -> list[str]:
    """Every provider a spec may name, plug-ins included (without importing them)."""
    _load_entry_points()
    return sorted(set(_BACKENDS) | set(_PLUGIN_BACKENDS) | {"openai", "hf", "fake", "llamacpp"})


def validate_backend_plugins() -> dict[str, plugins.PluginError]:
    """Import every plug-in provider not yet loaded; failures by provider (for `societas list`)."""
    _load_entry_points()
    broken = {}
    for provider in sorted(_PLUGIN_BACKENDS):
        try:
            _backend(provider)
        except plugins.PluginError as exc:
            broken[provider] = exc
    return broken


def _load_entry_points() -> None:
    global _entry_points_loaded
    if _entry_points_loaded:
        return
    _entry_points_loaded = True
    for plugin in plugins.discover(plugins.MODELS_GROUP):
        if plugin.name not in _BACKENDS:
            _PLUGIN_BACKENDS[plugin.name] = plugin


def _backend(provider: str) -> BackendFactory:
    """The provider's factory, importing a plug-in provider on first use (PluginError if it cannot)."""
    factory = _BACKENDS.get(provider)
    if factory is not None:
        return factory
    plugin = _PLUGIN_BACKENDS[provider]
    factory = plugin.load()
    if not callable(factory):
        raise plugin.error(f"{plugin.value} is not callable (expected a ChatModel class taking (spec, options))")
    _BACKENDS[provider] = factory
    return factory


def parse_model_spec(spec: str) -> ModelSpec:
    """Parse a spec string; raise ValueError with the accepted forms when it is malformed."""
    forms = ("openai:NAME, openai:NAME@http://HOST:PORT/v1, vllm:ORG/NAME, llamacpp:PATH.gguf, hf:PATH, "
             "fake:RESPONDER")
    if not isinstance(spec, str) or ":" not in spec:
        raise ValueError(f"model spec {spec!r} is not PROVIDER:NAME (e.g. {forms})")
    provider, _, rest = spec.partition(":")
    if provider not in providers():
        raise ValueError(f"model spec {spec!r}: unknown provider {provider!r}; known: {', '.join(providers())}")
    if not rest:
        raise ValueError(f"model spec {spec!r} names no model (e.g. {forms})")
    base_url = None
    # openai:NAME@URL; plug-in providers may take an @http(s):// URL the same way.
    if "@" in rest and (provider in ("openai", "vllm", "llamacpp")
                        or (provider not in ("hf", "fake") and "@http" in rest)):
        rest, _, base_url = rest.partition("@")
        if not base_url.startswith(("http://", "https://")):
            raise ValueError(f"model spec {spec!r}: the base URL after @ must start with http:// or https://")
        if not rest:
            raise ValueError(f"model spec {spec!r} names no model before @")
    if provider == "fake":
        from societas.llm.fake import RESPONDERS

        if rest not in RESPONDERS:
            raise ValueError(f"model spec {spec!r}: unknown fake responder; known: {', '.join(sorted(RESPONDERS))}")
    elif provider in _PLUGIN_BACKENDS:
        _backend(provider)  # import a plug-in provider now, so a broken one fails with the config
    return ModelSpec(provider=provider, name=rest, base_url=base_url)


def _openai(spec: ModelSpec, options: ModelOptions) -> ChatModel:
    from societas.llm.openai_backend import OpenAIChatModel

    return OpenAIChatModel(spec, options)


def _vllm(spec: ModelSpec, options: ModelOptions) -> ChatModel:
    """`vllm:NAME`: start and supervise vLLM servers and route over them; `vllm:NAME@URL`: one already running."""
    from dataclasses import replace

    if options.structured_outputs == "auto":
        options = replace(options, structured_outputs="vllm")
    if spec.base_url is not None:
        from societas.llm.openai_backend import OpenAIChatModel

        return OpenAIChatModel(spec, options)
    from societas.llm.router import ReplicaRouter
    from societas.llm.servers import ServerManager

    manager = ServerManager(spec.name, options.servers)
    manager.start()
    return ReplicaRouter(manager, options, name=str(spec))


def _llamacpp(spec: ModelSpec, options: ModelOptions) -> ChatModel:
    """`llamacpp:PATH.gguf`: start and supervise llama.cpp's server on the file; `llamacpp:NAME@URL`: one running."""
    from dataclasses import replace

    if options.structured_outputs == "auto":
        options = replace(options, structured_outputs="llamacpp")
    if spec.base_url is not None:
        from societas.llm.openai_backend import OpenAIChatModel

        return OpenAIChatModel(spec, options)
    from societas.llm.llamacpp import LOCAL_TIMEOUT_S, server_options
    from societas.llm.router import ReplicaRouter
    from societas.llm.servers import ServerManager

    # The server is this run's own: a slow reply is the CPU's pace, a dead server its supervisor's to find.
    options = replace(options, timeout_s=max(options.timeout_s, LOCAL_TIMEOUT_S))
    path = Path(spec.name).expanduser()
    if not path.is_file():
        from societas.errors import BadInput

        raise BadInput(f"{spec}: no GGUF file at {path} (llamacpp: takes the path of a .gguf file)")
    manager = ServerManager(str(path.resolve()), server_options(options.servers))
    manager.name = str(spec)
    manager.start()
    return ReplicaRouter(manager, options, name=str(spec))


def _hf(spec: ModelSpec, options: ModelOptions) -> ChatModel:
    from societas.errors import BadInput
    from societas.llm.hf import HFChatModel

    try:
        return HFChatModel(spec, options)
    except OSError as exc:  # no model files there (or a hub id with no hub to reach)
        first = (str(exc).strip().splitlines() or [type(exc).__name__])[0]
        raise BadInput(f"hf:{spec.name}: cannot load the model: {first}") from None


def _fake(spec: ModelSpec, options: ModelOptions) -> ChatModel:
    from societas.llm.fake import FakeModel, get_responder

    return FakeModel(str(spec), get_responder(spec.name))


register_backend("openai", _openai)
register_backend("vllm", _vllm)
register_backend("llamacpp", _llamacpp)
register_backend("hf", _hf)
register_backend("fake", _fake)


def cache_salt(spec: ModelSpec, options: ModelOptions) -> str:
    """What beyond the request shapes a reply, for the response cache's key.

    The constraint mode decides whether an endpoint is constrained at all, so a run
    without constraints never replays one with them. `auto` (the default) keeps the
    plain key, so caches written before stay valid for it. `hf:` scores choices the
    same way in every mode and holds generated answers to a grammar unless the mode
    is `none`: its constrained replies get their own key, apart from the unconstrained
    ones its earlier versions cached.
    """
    if spec.provider == "hf":
        return "" if options.structured_outputs == "none" else "hf_grammar=1"
    if spec.provider == "fake" or options.structured_outputs == "auto":
        return ""
    return f"structured_outputs={options.structured_outputs}"


def make_model(spec: str | ModelSpec, options: ModelOptions | None = None) -> ChatModel:
    """Build the model a spec names, with retries and (when `cache_path` is set) a response cache."""
    options = options or ModelOptions()
    parsed = parse_model_spec(spec) if isinstance(spec, str) else spec
    model: ChatModel = _backend(parsed.provider)(parsed, options)
    if parsed.provider != "fake":
        from societas.llm.retry import RetryingModel

        model = RetryingModel(
            model,
            max_retries=options.max_retries,
            backoff_base_s=options.backoff_base_s,
            backoff_max_s=options.backoff_max_s,
            breaker_failures=options.breaker_failures,
            breaker_window_s=options.breaker_window_s,
        )
    if options.cache_path is not None:
        from societas.llm.cache import CachedModel, ResponseCache

        model = CachedModel(model, ResponseCache(options.cache_path), salt=cache_salt(parsed, options))
    return model
