"""Entry-point plug-ins: how installed packages add games, agents and model backends.

Three entry-point groups extend societas:

    societas.environments   name = environment id, value = "module:Factory" (a PettingZoo ParallelEnv)
    societas.agents         name = plug-in name,   value = "module:function", called once with no
                            arguments to register scripted strategies and/or policy kinds
    societas.models         name = provider,       value = "module:Class", a backend built as
                            Class(ModelSpec, ModelOptions)

Each registry asks for its group the first time it needs something it does not
know (never at import), so a process that only uses bundled games never imports
a plug-in. A plug-in that cannot be used becomes a `PluginError` whose message
is one line naming the plug-in and the distribution that installed it; the
failure is remembered here so `societas list` can report it, and it never
touches the other plug-ins or the bundled games.

This module imports nothing of societas, so every layer may use it.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

ENVIRONMENTS_GROUP = "societas.environments"
AGENTS_GROUP = "societas.agents"
MODELS_GROUP = "societas.models"
GROUPS = (ENVIRONMENTS_GROUP, AGENTS_GROUP, MODELS_GROUP)


@dataclass(frozen=True, kw_only=True, slots=True)
class Plugin:
    """One entry point: which group, its name, what it points to and who installed it."""

    group: str
    name: str
    value: str
    distribution: str | None = None

    @property
    def source(self) -> str:
        """The distribution that declared the entry point, for messages."""
        return self.distribution or "unknown"

    def error(self, reason: str | BaseException) -> PluginError:
        """A PluginError for this plug-in, recorded for `failures()`."""
        err = PluginError(self, reason if isinstance(reason, str) else describe_exception(reason))
        _FAILURES[(self.group, self.name)] = err
        return err

    def load(self) -> Any:
        """Import the object the entry point names; any failure becomes a one-line PluginError."""
        module_name, _, attr = self.value.partition(":")
        try:
            import importlib

            obj: Any = importlib.import_module(module_name.strip())
            for part in attr.strip().split(".") if attr.strip() else ():
                obj = getattr(obj, part)
        except Exception as exc:  # a plug-in may raise anything on import; none of it may escape
            raise self.error(exc) from exc
        return obj


class PluginError(ValueError):
    """A plug-in that cannot be used. `str()` is one line naming the plug-in and its distribution.

    A ValueError, like every other "this config names something unusable" error,
    so config validation reports it as a one-line config error.
    """

    def __init__(self, plugin: Plugin, reason: str) -> None:
        self.plugin = plugin
        self.reason = reason
        super().__init__(f"plug-in {plugin.name!r} from distribution {plugin.source!r} failed: {reason}")


_FAILURES: dict[tuple[str, str], PluginError] = {}


def discover(group: str) -> tuple[Plugin, ...]:
    """The entry points installed for `group`, without importing anything they name.

    Callers cache the answer (each registry reads its group once per process);
    this function itself rereads the installed metadata on every call.
    """
    from importlib import metadata  # ~20 ms: only when a plug-in may be needed

    found: dict[str, Plugin] = {}
    for ep in metadata.entry_points(group=group):
        dist = getattr(ep, "dist", None)
        name = getattr(dist, "name", None) if dist is not None else None
        # The same distribution can be visible twice (e.g. an editable install and a
        # copy on sys.path); the first one on sys.path wins, as for imports.
        found.setdefault(ep.name, Plugin(group=group, name=ep.name, value=ep.value, distribution=name))
    return tuple(found.values())


def failures() -> list[PluginError]:
    """Every plug-in failure seen in this process, in the order they happened."""
    return list(_FAILURES.values())


def forget_failures() -> None:
    """Clear the failures seen so far (for tests that install and remove plug-ins)."""
    _FAILURES.clear()


def describe_exception(exc: BaseException) -> str:
    """`Type: first line of the message`, so a failure fits on one line."""
    lines = str(exc).strip().splitlines()
    return f"{type(exc).__name__}: {lines[0]}" if lines else type(exc).__name__
