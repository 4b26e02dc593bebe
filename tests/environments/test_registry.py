"""The environment registry: ids, factories, parameter errors, plug-ins."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Iterator
from importlib import metadata

import pytest

from societas.environments import (
    EnvironmentEntry,
    RepeatedMatrixGame,
    UnknownEnvironmentError,
    make,
    register,
    registered,
)
from societas.environments import registry as registry_module


@pytest.fixture
def clean_registry(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    monkeypatch.setattr(registry_module, "_REGISTRY", dict(registry_module._REGISTRY))
    yield


def test_make_builds_the_registered_class_with_params() -> None:
    env = make("repeated-matrix-game", game="battle_of_the_sexes", rounds=4)
    assert isinstance(env, RepeatedMatrixGame)
    assert env.rounds == 4 and env.game_key == "battle_of_the_sexes"


def test_registered_lists_entries() -> None:
    entry = registered()["repeated-matrix-game"]
    assert isinstance(entry, EnvironmentEntry)
    assert entry.id == "repeated-matrix-game" and entry.description
    assert entry.factory is RepeatedMatrixGame


def test_unknown_id_lists_registered_ids() -> None:
    with pytest.raises(UnknownEnvironmentError) as err:
        make("no-such-game")
    assert isinstance(err.value, KeyError)
    assert "no-such-game" in str(err.value) and "repeated-matrix-game" in str(err.value)


def test_unknown_parameter_is_named() -> None:
    with pytest.raises(TypeError, match=r"unknown parameter 'rouns'; accepted: .*rounds"):
        make("repeated-matrix-game", rouns=3)


@pytest.mark.parametrize(("params", "name"), [
    ({"rounds": 0}, "rounds"),
    ({"rounds": "10"}, "rounds"),
    ({"game": "chess"}, "game"),
    ({"game": "akata144:0"}, "game"),
    ({"letters": ["J", "J"]}, "letters"),
    ({"letters": ["J", ""]}, "letters"),
    ({"letters": "JF"}, "letters"),
    ({"payoffs": [[1, 2], [3, 4]]}, "payoffs"),
    ({"payoffs": [[[1, 2], [3, float("nan")]], [[1, 2], [3, 4]]]}, "payoffs"),
    ({"cooperative_option": 2}, "cooperative_option"),
    ({"random_letters": "yes"}, "random_letters"),
    ({"shuffle_options": 1}, "shuffle_options"),
    ({"render_mode": "human"}, "render_mode"),
])
def test_bad_values_name_the_parameter(params: dict, name: str) -> None:
    with pytest.raises((TypeError, ValueError), match=name):
        make("repeated-matrix-game", **params)


def test_register_refuses_to_replace_unless_asked(clean_registry: None) -> None:
    register("tiny-game", RepeatedMatrixGame, description="a test")
    register("tiny-game", RepeatedMatrixGame)  # the same factory again is harmless
    with pytest.raises(ValueError, match="already registered"):
        register("tiny-game", lambda: RepeatedMatrixGame(rounds=1))
    register("tiny-game", lambda: RepeatedMatrixGame(rounds=1), overwrite=True)
    assert make("tiny-game").rounds == 1
    with pytest.raises(ValueError, match="env_id"):
        register("has space", RepeatedMatrixGame)
    with pytest.raises(TypeError, match="callable"):
        register("not-callable", 42)  # type: ignore[arg-type]


def test_string_factories_load_lazily(clean_registry: None) -> None:
    register("lazy-game", "societas.environments.matrix_game:RepeatedMatrixGame")
    assert isinstance(make("lazy-game", rounds=2), RepeatedMatrixGame)
    register("broken-game", "societas.no_such_module:Env")
    assert "broken-game" in registered()  # listing does not import it
    with pytest.raises(ImportError, match="is the package that provides it installed"):
        make("broken-game")


def test_entry_point_plugins_are_found(clean_registry: None, monkeypatch: pytest.MonkeyPatch) -> None:
    ep = metadata.EntryPoint(
        name="plugin-game", value="societas.environments.matrix_game:RepeatedMatrixGame",
        group="societas.environments",
    )
    monkeypatch.setattr(metadata, "entry_points", lambda group=None: [ep] if group == ep.group else [])
    monkeypatch.setattr(registry_module, "_entry_points_loaded", False)
    assert isinstance(make("plugin-game", rounds=2), RepeatedMatrixGame)
    assert "plugin-game" in registered()


def test_importing_the_package_is_cheap() -> None:
    code = "import sys, societas.environments; print('pettingzoo' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"
