"""Environment ids -> factories, so configs name games by string.

A factory is any callable returning a PettingZoo `ParallelEnv` (usually the env
class), or a "module:attribute" string imported on first use, which keeps
`import societas.environments` cheap. Third-party packages register games through
the `societas.environments` entry-point group (name = environment id, value =
"module:attribute"); those are discovered lazily, the first time an id is missing
or the registry is listed, and imported only when built. A plug-in game that
fails to import, or builds something that is not a PettingZoo ParallelEnv with
`decision(agent)`, raises a one-line `PluginError` naming the plug-in and its
distribution; the other games are untouched.
"""

from __future__ import annotations

import contextlib
import functools
import importlib
import inspect
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from societas import plugins
from societas.plugins import Plugin, PluginError

if TYPE_CHECKING:
    from pettingzoo import ParallelEnv

ENTRY_POINT_GROUP = plugins.ENVIRONMENTS_GROUP

Factory = Callable[..., "ParallelEnv"]


class UnknownEnvironmentError(KeyError):
    """An environment id nobody registered; the message lists the registered ids."""

    def __str__(self) -> str:
        # KeyError would print the message in quotes.
        return str(self.args[0]) if self.args else "unknown environment"


@dataclass(frozen=True, slots=True)
class EnvironmentEntry:
    """One registered environment: its id, how to build it, and a line for `societas list`.

    `plugin` is set for games that an installed distribution declared through
    the entry-point group.
    """

    id: str
    target: Factory | str
    description: str = ""
    plugin: Plugin | None = None

    @property
    def factory(self) -> Factory:
        """The callable that builds the environment (importing it on first use)."""
        if self.plugin is not None:
            return _load_plugin(self.plugin)
        return _load(self.target) if isinstance(self.target, str) else self.target


_REGISTRY: dict[str, EnvironmentEntry] = {}
_entry_points_loaded = False
# Plug-in games that passed the API check once in this process.
_CHECKED_PLUGINS: set[str] = set()


def register(
    env_id: str,
    factory: Factory | str,
    *,
    description: str = "",
    overwrite: bool = False,
) -> None:
    """Make `make(env_id, **params)` call `factory(**params)`.

    `factory` may be a "module:attribute" string, imported when first needed.
    Registering an id again raises unless `overwrite` is set (or the factory is
    the very same one, so re-running a registration is harmless).
    """
    if not isinstance(env_id, str) or not env_id or env_id != env_id.strip() or " " in env_id:
        raise ValueError(f"env_id must be a non-empty string without spaces, got {env_id!r}")
    if isinstance(factory, str):
        if ":" not in factory:
            raise ValueError(f"{env_id}: a factory string must read 'module:attribute', got {factory!r}")
    elif not callable(factory):
        raise TypeError(f"{env_id}: factory must be callable (or 'module:attribute'), got {factory!r}")
    old = _REGISTRY.get(env_id)
    if old is not None and not overwrite and old.target is not factory and old.target != factory:
        raise ValueError(
            f"environment {env_id!r} is already registered ({_describe(old.target)}); "
            "pass overwrite=True to replace it"
        )
    _REGISTRY[env_id] = EnvironmentEntry(id=env_id, target=factory, description=description)


def registered() -> dict[str, EnvironmentEntry]:
    """Every registered environment by id, entry-point plug-ins included, sorted by id."""
    _load_entry_points()
    return dict(sorted(_REGISTRY.items()))


def world_params(env_id: str, params: dict[str, Any]) -> dict[str, Any]:
    """`params` without those the game declares as timing only (`timing_params`), for seeding.

    A parameter that changes how many decisions overlap but never the events
    (the naming game's `max_pairs`) must not change an episode's draws either.
    """
    entry = _REGISTRY.get(env_id)
    if entry is None or not params:
        return params
    timing = getattr(entry.factory, "timing_params", ())
    return {k: v for k, v in params.items() if k not in timing} if timing else params


def make(env_id: str, **params: Any) -> ParallelEnv:
    """Build environment `env_id` with `params`.

    Raises UnknownEnvironmentError for an unknown id, TypeError for parameters the
    factory does not take (naming them and listing the accepted ones); the
    environment itself raises TypeError / ValueError for values it cannot use.
    A plug-in game that cannot be imported or breaks the API raises PluginError
    (a ValueError whose message names the plug-in and its distribution); the
    first build of each plug-in game also resets a probe instance and asks it
    for one decision per agent, so such a game fails here and not mid-run.
    """
    entry = _REGISTRY.get(env_id)
    if entry is None:
        _load_entry_points()
        entry = _REGISTRY.get(env_id)
        if entry is None:
            known = ", ".join(sorted(_REGISTRY)) or "none"
            raise UnknownEnvironmentError(f"unknown environment {env_id!r}; registered: {known}")
    factory = entry.factory
    if params:
        _check_params(env_id, factory, params)
    if entry.plugin is None:
        return factory(**params)
    env = _build_plugin(entry.plugin, factory, params)
    if env_id not in _CHECKED_PLUGINS:
        try:
            _smoke_test(entry.plugin, factory, params)
        except PluginError:
            with contextlib.suppress(Exception):
                env.close()
            raise
        _CHECKED_PLUGINS.add(env_id)
    return env


def validate_plugins() -> dict[str, PluginError]:
    """Import every plug-in game and build the ones that need no parameters; failures by id.

    For `societas list`: a game that cannot be imported, or whose environment
    breaks the API, is reported here instead of when a config first names it.
    """
    broken: dict[str, PluginError] = {}
    for env_id, entry in registered().items():
        if entry.plugin is None:
            continue
        try:
            factory = entry.factory
            if _required_parameters(factory):
                continue  # cannot be built without a config's parameters; imported fine
            make(env_id).close()
        except PluginError as exc:
            broken[env_id] = exc
        except Exception as exc:  # built with its own defaults, so any failure is the plug-in's
            broken[env_id] = entry.plugin.error(exc)
    return broken


@functools.cache
def _load_plugin(plugin: Plugin) -> Factory:
    # Cached once loaded (the runner builds a game per episode); a failure is not cached.
    obj = plugin.load()
    if not callable(obj):
        raise plugin.error(f"{plugin.value} is not callable (expected a ParallelEnv class or factory)")
    return obj


def _build_plugin(plugin: Plugin, factory: Factory, params: dict[str, Any]) -> ParallelEnv:
    """Build a plug-in game; TypeError / ValueError stay parameter errors, anything else is the plug-in's."""
    try:
        env = factory(**params)
    except (TypeError, ValueError):
        raise
    except Exception as exc:
        raise plugin.error(exc) from exc
    problem = _api_problem(env)
    if problem:
        raise plugin.error(f"{_describe(type(env))} {problem}")
    return env


def _api_problem(env: Any) -> str | None:
    """What makes `env` unusable by the runner (structure only: nothing is called), or None."""
    agents = getattr(env, "possible_agents", None)
    if not isinstance(agents, (list, tuple)) or not agents:
        return "has no possible_agents list (not a PettingZoo ParallelEnv)"
    missing = [m for m in ("reset", "step", "decision", "observation_space", "action_space", "close")
               if not callable(getattr(env, m, None))]
    if missing:
        methods = ", ".join(f"{m}()" for m in missing)
        return f"lacks {methods} (a societas game is a PettingZoo ParallelEnv with decision(agent))"
    return None


def _smoke_test(plugin: Plugin, factory: Factory, params: dict[str, Any]) -> None:
    """Reset a second instance and ask each acting agent for its decision, once per game and process.

    A separate instance, so the environment handed to the caller is untouched.
    """
    from societas.types import Observation

    try:
        probe = factory(**params)
    except Exception as exc:
        raise plugin.error(exc) from exc
    try:
        result = probe.reset(seed=0)
        if not (isinstance(result, tuple) and len(result) == 2 and all(isinstance(x, dict) for x in result)):
            raise plugin.error(f"{_describe(type(probe))}.reset() must return (observations, infos) dicts, "
                               f"got {type(result).__name__}")
        acting = getattr(probe, "acting_agents", None)
        for agent in acting() if callable(acting) else list(probe.agents):
            obs = probe.decision(agent)
            if not isinstance(obs, Observation):
                raise plugin.error(f"{_describe(type(probe))}.decision({agent!r}) must return a "
                                   f"societas.types.Observation, got {type(obs).__name__}")
    except PluginError:
        raise
    except Exception as exc:
        raise plugin.error(exc) from exc
    finally:
        with contextlib.suppress(Exception):  # closing a probe must not hide the real outcome
            probe.close()


def _required_parameters(factory: Factory) -> list[str]:
    try:
        sig = inspect.signature(factory)
    except (TypeError, ValueError):
        return []
    return [p.name for p in sig.parameters.values()
            if p.default is p.empty and p.kind in (p.POSITIONAL_OR_KEYWORD, p.KEYWORD_ONLY)]


def _check_params(env_id: str, factory: Factory, params: dict[str, Any]) -> None:
    accepted = _keywords(factory)
    if accepted is None or accepted.issuperset(params):
        return
    unknown = [k for k in params if k not in accepted]
    names = ", ".join(repr(k) for k in unknown)
    raise TypeError(
        f"{env_id}: unknown parameter{'s' if len(unknown) > 1 else ''} {names}; "
        f"accepted: {', '.join(sorted(accepted)) or 'none'}"
    )


@functools.cache
def _keywords(factory: Factory) -> frozenset[str] | None:
    """The keyword parameters `factory` takes, or None when it takes any (**kwargs) or cannot tell."""
    try:
        sig = inspect.signature(factory)
    except (TypeError, ValueError):  # some builtins and C callables have none
        return None
    if any(p.kind is p.VAR_KEYWORD for p in sig.parameters.values()):
        return None
    return frozenset(
        p.name for p in sig.parameters.values() if p.kind in (p.POSITIONAL_OR_KEYWORD, p.KEYWORD_ONLY)
    )


@functools.cache
def _load(target: str) -> Factory:
    module_name, _, attr = target.partition(":")
    try:
        obj: Any = importlib.import_module(module_name)
        for part in attr.split("."):
            obj = getattr(obj, part)
    except (ImportError, AttributeError) as exc:
        raise ImportError(
            f"cannot load environment factory {target!r}: {exc}; is the package that provides it installed?"
        ) from exc
    if not callable(obj):
        raise TypeError(f"environment factory {target!r} is not callable")
    return obj


def _load_entry_points() -> None:
    """Add environments that installed packages declare, without importing them."""
    global _entry_points_loaded
    if _entry_points_loaded:
        return
    _entry_points_loaded = True
    for plugin in plugins.discover(ENTRY_POINT_GROUP):
        if plugin.name not in _REGISTRY:
            _REGISTRY[plugin.name] = EnvironmentEntry(
                id=plugin.name, target=plugin.value, description=_plugin_description(plugin), plugin=plugin,
            )


def _plugin_description(plugin: Plugin) -> str:
    """The plug-in's own summary line (its distribution's metadata), for `societas list`."""
    summary = ""
    if plugin.distribution:
        from importlib import metadata

        try:
            summary = metadata.metadata(plugin.distribution).get("Summary") or ""
        except metadata.PackageNotFoundError:
            summary = ""
    return f"{summary} (plug-in from {plugin.source})" if summary else f"plug-in from {plugin.source}"


def _describe(target: Factory | str) -> str:
    if isinstance(target, str):
        return target
    return f"{getattr(target, '__module__', '?')}.{getattr(target, '__qualname__', repr(target))}"
