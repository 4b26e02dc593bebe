"""Agent extension points: scripted strategies and policy kinds that plug-ins add.

A policy spec names how a seat decides. Besides the built-in forms
(`scripted:NAME`, `replay:ID`, `llm`) a package can add:

- a **scripted strategy** (`register_strategy`): a pure function of the
  observation's `data` and the seat's generator returning an index into
  `data["options"]`, played by the same ScriptedAgent as the bundled
  strategies, so `scripted:NAME` works in configs at once;
- a **policy kind** (`register_policy`): `KIND:NAME` specs resolved by a
  factory that builds any Agent, for agents that are not index strategies.

Installed packages do this from a function declared in the `societas.agents`
entry-point group; the group is read the first time a policy spec names
something unknown (or `societas list` asks), once per process. A plug-in
whose hook fails is recorded and skipped: the other policies keep working.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Protocol

from societas import plugins

if TYPE_CHECKING:
    import numpy as np

    from societas.agents.base import Agent
    from societas.agents.llm_agent import LLMAgentOptions
    from societas.agents.scripted import Strategy
    from societas.llm.base import ChatModel

BUILTIN_KINDS = ("scripted", "replay", "llm", "human")


class AgentFactory(Protocol):
    """Builds the agent of one seat of one episode for a `KIND:NAME` policy spec.

    `ident` is the NAME part; `rng` is the seat's generator (seeded by run seed,
    phase, episode and seat, so draws from it replay exactly); `params` are the
    member's `params` from the config.
    """

    def __call__(
        self,
        ident: str,
        *,
        name: str,
        rng: np.random.Generator,
        model: ChatModel | None,
        llm_options: LLMAgentOptions | None,
        params: Mapping[str, Any],
    ) -> Agent: ...


@dataclass(frozen=True, kw_only=True, slots=True)
class PolicyKind:
    """A policy kind a plug-in added: `KIND:NAME` specs are built by `factory`.

    `names` maps each NAME the kind accepts to a one-line description (checked
    when a config loads, listed by `societas list`); None accepts any NAME and
    leaves checking to the factory.
    """

    kind: str
    factory: AgentFactory
    names: Mapping[str, str] | None = None
    description: str = ""

    def check(self, ident: str) -> None:
        """Raise ValueError, listing the accepted names, if `ident` is not one of them."""
        if not ident:
            raise ValueError(f"policy {self.kind}: names no {self.kind} policy (write {self.kind}:NAME)")
        if self.names is not None and ident not in self.names:
            raise ValueError(f"unknown {self.kind} policy {ident!r}; known: {', '.join(sorted(self.names))}")


_KINDS: dict[str, PolicyKind] = {}
_plugins_loaded = False


def register_policy(
    kind: str,
    factory: AgentFactory,
    *,
    names: Mapping[str, str] | None = None,
    description: str = "",
    overwrite: bool = False,
) -> None:
    """Make `KIND:NAME` policy specs build agents with `factory(NAME, name=..., rng=..., ...)`.

    The built-in kinds cannot be replaced; registering a kind again raises
    unless `overwrite` is set or the factory is the same one.
    """
    if not isinstance(kind, str) or not kind.isidentifier():
        raise ValueError(f"policy kind must be an identifier such as 'myplugin', got {kind!r}")
    if kind in BUILTIN_KINDS:
        raise ValueError(f"policy kind {kind!r} is built in and cannot be registered")
    if not callable(factory):
        raise TypeError(f"policy kind {kind!r}: factory must be callable, got {factory!r}")
    old = _KINDS.get(kind)
    if old is not None and not overwrite and old.factory is not factory:
        raise ValueError(f"policy kind {kind!r} is already registered; pass overwrite=True to replace it")
    _KINDS[kind] = PolicyKind(kind=kind, factory=factory, names=None if names is None else dict(names),
                              description=description)


def unregister_policy(kind: str) -> None:
    """Forget a plug-in policy kind (for tests and tools that register one for a while)."""
    _KINDS.pop(kind, None)


def register_strategy(name: str, strategy: Strategy, *, description: str, overwrite: bool = False) -> None:
    """Make `scripted:NAME` play `strategy` (data, rng) -> index into `data["options"]`.

    The strategy runs in the bundled ScriptedAgent, so it must be a pure function
    of the observation's structured data and the generator it is given.
    """
    from societas.agents import scripted

    if not isinstance(name, str) or not name.isidentifier():
        raise ValueError(f"strategy name must be an identifier such as 'stag_first', got {name!r}")
    if not callable(strategy):
        raise TypeError(f"strategy {name!r} must be callable, got {strategy!r}")
    old = scripted.STRATEGIES.get(name)
    if old is not None and not overwrite and old is not strategy:
        raise ValueError(f"scripted strategy {name!r} is already registered; pass overwrite=True to replace it")
    # The bundled strategies' own tables: `scripted:NAME` and `societas list` read them.
    scripted.STRATEGIES[name] = strategy
    scripted._DESCRIPTIONS[name] = description


def find_policy(kind: str) -> PolicyKind | None:
    """The plug-in policy kind named `kind`, reading the entry-point group on a miss."""
    found = _KINDS.get(kind)
    if found is None and not _plugins_loaded:
        load_plugins()
        found = _KINDS.get(kind)
    return found


def policy_kinds() -> dict[str, PolicyKind]:
    """Every plug-in policy kind, entry-point plug-ins included, sorted by kind."""
    load_plugins()
    return dict(sorted(_KINDS.items()))


def policy_forms() -> str:
    """The policy spec forms that exist, for error messages."""
    extra = [f"{k}:NAME" for k in sorted(_KINDS)]
    forms = ["scripted:NAME", "replay:ID", *extra]
    return ", ".join(forms) + ", llm or human"


def failure_note() -> str:
    """'; plug-in X from distribution Y failed: ...' for each broken agents plug-in, or ''."""
    broken = [str(e) for e in plugins.failures() if e.plugin.group == plugins.AGENTS_GROUP]
    return "".join(f"; {line}" for line in broken)


def load_plugins() -> None:
    """Call every `societas.agents` entry point's hook, once per process.

    A hook that cannot be imported, is not callable or raises is recorded as a
    plug-in failure and skipped; the others still load.
    """
    global _plugins_loaded
    if _plugins_loaded:
        return
    _plugins_loaded = True
    for plugin in plugins.discover(plugins.AGENTS_GROUP):
        _run_hook(plugin)


def _run_hook(plugin: plugins.Plugin) -> None:
    try:
        hook: Callable[[], object] = plugin.load()
        if not callable(hook):
            raise plugin.error(f"{plugin.value} is not callable (expected a function that registers "
                               "strategies or policy kinds)")
        hook()
    except plugins.PluginError:
        return  # recorded by plugin.error()
    except Exception as exc:  # a broken hook must not break the bundled policies
        plugin.error(exc)
