"""Small forms of the bundled studies: limits only lower, member order as the form says, input untouched."""

from __future__ import annotations

import copy

import yaml

from societas.config import bundled_config, parse_config
from societas.small_form import LIVE, OFFLINE, SmallForm, llm_configs, small_form

STUDY = {
    "name": "s",
    "environment": {"id": "repeated-matrix-game", "params": {"game": "prisoners_dilemma", "rounds": 3},
                    "vary": {"game": ["prisoners_dilemma", "stag_hunt", "chicken"]}},
    "population": [{"name": "a", "policy": "scripted:always_defect"}, {"name": "m", "policy": "llm"},
                   {"name": "b", "policy": "scripted:tit_for_tat"}, {"name": "c", "policy": "scripted:random"}],
    "matchmaking": {"kind": "round_robin", "repetitions": 4},
    "llm": {"max_attempts": 3},
}


def test_member_order_is_the_forms() -> None:
    first = small_form(STUDY, SmallForm(rounds=2, scripted=2, order="llm_first"))
    written = small_form(STUDY, SmallForm(rounds=2, scripted=2, order="as_written"))
    assert [m["name"] for m in first["population"]] == ["m", "a", "b"]
    assert [m["name"] for m in written["population"]] == ["a", "m", "b"]


def test_limits_lower_and_never_raise_and_leave_the_input_alone() -> None:
    before = copy.deepcopy(STUDY)
    out = small_form(STUDY, SmallForm(rounds=5, variants=2, max_attempts=2))
    assert STUDY == before
    assert out["environment"]["params"]["rounds"] == 3  # the study's own 3, not 5
    assert out["environment"]["vary"]["game"] == ["prisoners_dilemma", "stag_hunt"]
    assert out["matchmaking"]["repetitions"] == 1 and out["llm"]["max_attempts"] == 2
    assert small_form(STUDY, SmallForm(rounds=2))["llm"]["max_attempts"] == 3


def test_every_language_model_study_keeps_its_model_members_in_both_forms() -> None:
    names = llm_configs(live_all=True)
    assert "pd_tournament" in names and set(llm_configs(live_all=False)) <= set(names)
    for name in names:
        data = yaml.safe_load(bundled_config(name).read_text())
        for form in (LIVE, OFFLINE):
            small = small_form(data, form)
            assert any(m.get("policy") == "llm" for m in small["population"]), (name, form)
            parse_config({**small, "model": "fake:first"})


def test_the_commons_months_are_its_rounds() -> None:
    data = yaml.safe_load(bundled_config("commons_llm").read_text())
    params = small_form(data, LIVE)["environment"]["params"]
    assert params["months"] == LIVE.rounds and params["num_agents"] == LIVE.agents
    assert small_form(data, SmallForm(rounds=50))["environment"]["params"]["months"] == 12  # the study's own
