"""The three entry-point groups, in-process: games, agents and model backends from installed distributions."""

from __future__ import annotations

import asyncio
import sys

import numpy as np
import pytest

from societas import plugins
from societas.agents import register_policy, register_strategy
from societas.agents.factory import check_policy, make_agent
from societas.config import ConfigError, parse_config
from societas.environments import make, registered
from societas.environments.matrix_game import RepeatedMatrixGame
from societas.environments.registry import validate_plugins
from societas.llm.base import ChatRequest
from societas.llm.specs import make_model, parse_model_spec, providers, validate_backend_plugins
from societas.plugins import PluginError
from societas.types import Observation

ENVS = plugins.ENVIRONMENTS_GROUP
AGENTS = plugins.AGENTS_GROUP
MODELS = plugins.MODELS_GROUP

GOOD_GAME = "from societas.environments.matrix_game import RepeatedMatrixGame as Game\n"
BOOM = "raise RuntimeError('boom at import')\n"
NO_DECISION = """
    from pettingzoo import ParallelEnv

    class Game(ParallelEnv):
        possible_agents = ["a", "b"]

        def reset(self, seed=None, options=None):
            self.agents = list(self.possible_agents)
            return {a: 0 for a in self.agents}, {a: {} for a in self.agents}

        def step(self, actions):
            self.agents = []
            return {}, {}, {}, {}, {}

        def observation_space(self, agent):
            return None

        def action_space(self, agent):
            return None
"""
BAD_DECISION = NO_DECISION + """
        def decision(self, agent):
            return {"prompt": "choose"}
"""


def small_config(env_id: str, **extra: object) -> dict:
    return {
        "name": "tiny",
        "environment": {"id": env_id, "params": {"rounds": 2}},
        "population": [{"name": "a", "policy": "scripted:tit_for_tat"}, {"name": "b", "policy": "scripted:random"}],
        **extra,
    }


# -- games --------------------------------------------------------------------------------------


def test_plugin_game_is_listed_without_import_and_built_on_make(install) -> None:
    install("tplug-good", {ENVS: {"good-game": "tplug_good:Game"}}, {"tplug_good.py": GOOD_GAME},
            summary="A good test game.")
    entry = registered()["good-game"]
    assert entry.plugin is not None and entry.plugin.distribution == "tplug-good"
    assert entry.description == "A good test game. (plug-in from tplug-good)"
    assert "tplug_good" not in sys.modules  # listing imports nothing
    env = make("good-game", rounds=3)
    assert isinstance(env, RepeatedMatrixGame) and env.rounds == 3
    assert validate_plugins() == {}


def test_game_that_fails_to_import_is_one_line_and_contained(install) -> None:
    install("tplug-boom", {ENVS: {"boom-game": "tplug_boom:Game"}}, {"tplug_boom.py": BOOM})
    with pytest.raises(PluginError) as err:
        make("boom-game")
    line = "plug-in 'boom-game' from distribution 'tplug-boom' failed: RuntimeError: boom at import"
    assert str(err.value) == line
    assert [str(f) for f in plugins.failures()] == [line]
    assert isinstance(make("repeated-matrix-game"), RepeatedMatrixGame)  # bundled games unaffected
    assert "repeated-matrix-game" in registered()


@pytest.mark.parametrize(("source", "problem"), [
    (NO_DECISION, "lacks decision()"),
    (BAD_DECISION, "decision('a') must return a societas.types.Observation, got dict"),
    ("class Game:\n    pass\n", "has no possible_agents list"),
    ("Game = 42\n", "is not callable"),
], ids=["no-decision", "decision-not-observation", "not-an-env", "not-callable"])
def test_game_that_breaks_the_api_is_one_line(install, source: str, problem: str) -> None:
    install("tplug-bad", {ENVS: {"bad-game": "tplug_bad:Game"}}, {"tplug_bad.py": source})
    with pytest.raises(PluginError, match=r"^plug-in 'bad-game' from distribution 'tplug-bad' failed: ") as err:
        make("bad-game")
    assert problem in str(err.value) and "\n" not in str(err.value)
    assert set(validate_plugins()) == {"bad-game"}


def test_parameter_errors_of_plugin_games_stay_parameter_errors(install) -> None:
    install("tplug-good", {ENVS: {"good-game": "tplug_good:Game"}}, {"tplug_good.py": GOOD_GAME})
    with pytest.raises(TypeError, match="unknown parameter 'rouns'"):
        make("good-game", rouns=2)
    with pytest.raises(ValueError, match="rounds must be a positive integer") as err:
        make("good-game", rounds=0)
    assert not isinstance(err.value, PluginError) and plugins.failures() == []


def test_config_naming_a_broken_game_fails_in_one_line(install) -> None:
    install("tplug-boom", {ENVS: {"boom-game": "tplug_boom:Game"}}, {"tplug_boom.py": BOOM})
    with pytest.raises(ConfigError) as err:
        parse_config(small_config("boom-game"), source="tiny.yaml")
    message = str(err.value)
    assert message.startswith("tiny.yaml: ") and "\n" not in message
    assert "plug-in 'boom-game' from distribution 'tplug-boom' failed: RuntimeError: boom at import" in message
    parse_config(small_config("repeated-matrix-game"), source="tiny.yaml")  # bundled game still loads


# -- agents -------------------------------------------------------------------------------------

AGENT_HOOK = """
    from societas.agents import register_policy, register_strategy
    from societas.types import Action

    def second(data, rng):
        return 1

    class Fixed:
        kind = "fixed"
        model = None

        def __init__(self, name, index):
            self.name, self.index, self.policy = name, index, f"fixed:{index}"

        async def act(self, observation):
            return Action(value=observation.spec.validate(observation.data["options"][self.index]),
                          policy=self.policy)

    def make_fixed(ident, *, name, rng, model, llm_options, params):
        return Fixed(name, int(ident))

    def register():
        register_strategy("tplug_second", second, description="Always the second option.")
        register_policy("fixed", make_fixed, names={"0": "first option", "1": "second option"})
"""


def test_agents_plugin_adds_strategies_and_policy_kinds_lazily(install, tmp_path) -> None:
    install("tplug-agents", {AGENTS: {"tplug-agents": "tplug_agents:register"}}, {"tplug_agents.py": AGENT_HOOK})
    check_policy("scripted:tit_for_tat")
    assert "tplug_agents" not in sys.modules  # built-in names never read the group
    check_policy("scripted:tplug_second")
    check_policy("fixed:1")
    with pytest.raises(ValueError, match=r"unknown fixed policy '2'; known: 0, 1"):
        check_policy("fixed:2")
    with pytest.raises(ValueError, match=r"is not one of scripted:NAME, replay:ID, .*fixed:NAME.*, llm or human"):
        check_policy("nokind:x")
    agent = make_agent("fixed:0", name="f", rng=np.random.default_rng(0))
    assert agent.policy == "fixed:0"

    from societas.runners.run import run_experiment

    cfg = parse_config({**small_config("repeated-matrix-game"), "output_dir": str(tmp_path / "runs"),
                        "population": [{"name": "second", "policy": "scripted:tplug_second"},
                                       {"name": "first", "policy": "fixed:0"}]})
    _, summary = run_experiment(cfg, progress=False)
    assert summary["agents"]["second"]["cooperation_rate"] == 0.0
    assert summary["agents"]["first"]["cooperation_rate"] == 1.0


def test_broken_agents_plugin_is_named_where_its_policy_is_missing(install) -> None:
    install("tplug-agents-boom", {AGENTS: {"boomer": "tplug_agents_boom:register"}},
            {"tplug_agents_boom.py": "def register():\n    raise RuntimeError('no strategies today')\n"})
    check_policy("scripted:tit_for_tat")  # bundled policies are untouched
    with pytest.raises(ValueError) as err:
        check_policy("scripted:from_the_broken_plugin")
    assert ("plug-in 'boomer' from distribution 'tplug-agents-boom' failed: RuntimeError: no strategies today"
            in str(err.value))


def test_registration_guards(fresh_plugins) -> None:
    with pytest.raises(ValueError, match="built in"):
        register_policy("scripted", lambda ident, **kw: None)
    with pytest.raises(ValueError, match="already registered"):
        register_strategy("tit_for_tat", lambda data, rng: 0, description="clash")
    with pytest.raises(ValueError, match="identifier"):
        register_policy("not a kind", lambda ident, **kw: None)


# -- model backends -----------------------------------------------------------------------------

BACKEND = """
    from societas.llm.base import ChatResult

    class ConstantModel:
        '''Always answers the first allowed option: a whole provider in one class.'''

        def __init__(self, spec, options):
            self.name = str(spec)

        async def complete(self, request):
            return ChatResult(text=request.constraint.choices[0], model=self.name)

        async def aclose(self):
            return None
"""


def test_models_plugin_adds_a_provider(install) -> None:
    install("tplug-model", {MODELS: {"constant": "tplug_model:ConstantModel"}}, {"tplug_model.py": BACKEND})
    assert "constant" in providers()
    assert "tplug_model" not in sys.modules
    assert parse_model_spec("constant:any").provider == "constant"
    model = make_model("constant:any")
    from societas.types import ActionSpec

    request = ChatRequest(messages=({"role": "user", "content": "J or F?"},), constraint=ActionSpec.choice(["J", "F"]))
    assert asyncio.run(model.complete(request)).text == "J"


def test_broken_models_plugin_fails_where_named(install) -> None:
    install("tplug-model-boom", {MODELS: {"boomprov": "tplug_model_boom:Model"}}, {"tplug_model_boom.py": BOOM})
    assert "boomprov" in providers()  # listed without import
    with pytest.raises(PluginError, match=r"^plug-in 'boomprov' from distribution 'tplug-model-boom' failed: "):
        parse_model_spec("boomprov:x")
    assert set(validate_backend_plugins()) == {"boomprov"}
    assert parse_model_spec("fake:first").provider == "fake"
    with pytest.raises(ConfigError, match="plug-in 'boomprov'"):
        parse_config({**small_config("repeated-matrix-game"), "model": "boomprov:x"})


def test_decisions_of_plugin_games_are_observations(install) -> None:
    install("tplug-good", {ENVS: {"good-game": "tplug_good:Game"}}, {"tplug_good.py": GOOD_GAME})
    env = make("good-game")
    env.reset(seed=1)
    assert isinstance(env.decision("player_0"), Observation)


def test_each_group_is_read_once_per_process(fresh_plugins, monkeypatch: pytest.MonkeyPatch) -> None:
    calls: list[str] = []
    real = plugins.discover

    def counting(group: str) -> tuple[plugins.Plugin, ...]:
        calls.append(group)
        return real(group)

    monkeypatch.setattr(plugins, "discover", counting)
    for _ in range(3):
        registered()
        with pytest.raises(KeyError):
            make("no-such-game")
        with pytest.raises(ValueError):
            check_policy("scripted:no_such_strategy")
        providers()
    assert sorted(calls) == sorted([ENVS, AGENTS, MODELS])
