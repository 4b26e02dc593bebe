"""Registries reset around each test, and throwaway plug-in distributions put on sys.path."""

from __future__ import annotations

import sys
from collections.abc import Iterator, Mapping
from pathlib import Path

import pytest

from societas import plugins
from societas.agents import registry as agent_registry
from societas.agents import scripted
from societas.environments import registry as env_registry
from societas.llm import specs

try:
    from tests.plugins.plugin_dists import MakeDist, write_dist
except ImportError:  # run from inside tests/
    from plugin_dists import MakeDist, write_dist  # type: ignore[no-redef]


@pytest.fixture
def fresh_plugins(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """Registries as if no entry point had been read yet; restored after the test."""
    monkeypatch.setattr(env_registry, "_REGISTRY", dict(env_registry._REGISTRY))
    monkeypatch.setattr(env_registry, "_entry_points_loaded", False)
    monkeypatch.setattr(env_registry, "_CHECKED_PLUGINS", set())
    monkeypatch.setattr(agent_registry, "_KINDS", dict(agent_registry._KINDS))
    monkeypatch.setattr(agent_registry, "_plugins_loaded", False)
    monkeypatch.setattr(scripted, "STRATEGIES", dict(scripted.STRATEGIES))
    monkeypatch.setattr(scripted, "_DESCRIPTIONS", dict(scripted._DESCRIPTIONS))
    monkeypatch.setattr(specs, "_BACKENDS", dict(specs._BACKENDS))
    monkeypatch.setattr(specs, "_PLUGIN_BACKENDS", {})
    monkeypatch.setattr(specs, "_entry_points_loaded", False)
    monkeypatch.setattr(plugins, "_FAILURES", {})
    env_registry._load_plugin.cache_clear()
    before = set(sys.modules)
    yield
    env_registry._load_plugin.cache_clear()
    for name in set(sys.modules) - before:
        if name.startswith("tplug_"):
            del sys.modules[name]


@pytest.fixture
def install(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, fresh_plugins: None) -> MakeDist:
    """install(name, entry_points, modules): a throwaway distribution on sys.path for this test."""

    def add(name: str, entry_points: Mapping[str, Mapping[str, str]], modules: Mapping[str, str] | None = None,
            **kw: str) -> Path:
        root = write_dist(tmp_path / name, name, entry_points, modules, **kw)
        monkeypatch.syspath_prepend(str(root))
        return root

    return add
