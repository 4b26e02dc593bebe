"""Environment ids -> factories, so configs name games by string.

A factory is any callable returning a PettingZoo `ParallelEnv` (usually the env
class), or a "module:attribute" string imported on first use, which keeps
`import societas.environments` cheap. Third-party packages register games through
the `societas.environments` entry-point group (name = environment id, value =
"module:attribute"); those are discovered lazily, the first time an id is missing
or the registry is listed.
"""

from __future__ import annotations

import functools
import importlib
import inspect
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from pettingzoo import ParallelEnv

ENTRY_POINT_GROUP = "societas.environments"

Factory = Callable[..., "ParallelEnv"]


class UnknownEnvironmentError(KeyError):
    """An environment id nobody registered; the message lists the registered ids."""

    def __str__(self) -> str:
        # KeyError would print the message in quotes.
        return str(self.args[0]) if self.args else "unknown environment"


@dataclass(frozen=True, slots=True)
class EnvironmentEntry:
    """One registered environment: its id, how to build it, and a line for `societas list`."""

    id: str
    target: Factory | str
    description: str = ""

    @property
    def factory(self) -> Factory:
        """The callable that builds the environment (importing it on first use)."""
        return _load(self.target) if isinstance(self.target, str) else self.target


_REGISTRY: dict[str, EnvironmentEntry] = {}
_entry_points_loaded = False


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


def make(env_id: str, **params: Any) -> ParallelEnv:
    """Build environment `env_id` with `params`.

    Raises UnknownEnvironmentError for an unknown id, TypeError for parameters the
    factory does not take (naming them and listing the accepted ones); the
    environment itself raises TypeError / ValueError for values it cannot use.
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
    return factory(**params)


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
    from importlib import metadata  # costs ~20 ms: only when a plug-in may be needed

    for ep in metadata.entry_points(group=ENTRY_POINT_GROUP):
        if ep.name not in _REGISTRY:
            dist = getattr(ep, "dist", None)
            source = f" (from {dist.name})" if dist is not None else ""
            _REGISTRY[ep.name] = EnvironmentEntry(id=ep.name, target=ep.value, description=f"plug-in{source}")


def _describe(target: Factory | str) -> str:
    if isinstance(target, str):
        return target
    return f"{getattr(target, '__module__', '?')}.{getattr(target, '__qualname__', repr(target))}"
