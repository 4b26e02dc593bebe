"""Every bundled config with language-model members, played by `fake:random`, gets only valid answers.

The fake responder reads each request's ActionSpec and answers it in kind
(choices, numbers behind "Answer:", statements matching the feedback loop's
pattern, refusals and punishments in the donor game, predictions, strategies
"My strategy will be ..."), so every environment's language-model path is
exercised offline. The configs are shrunk (few rounds, agents, generations) to
keep the test fast; what they ask the model is unchanged.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
import yaml

from societas.analysis import load_run
from societas.config import bundled_config, bundled_configs, parse_config
from societas.runners.run import run_experiment


def _has_llm(data: dict[str, Any]) -> bool:
    return any(p.get("policy") == "llm" for p in data.get("population", ()))


def _configs() -> list[str]:
    return [n for n in bundled_configs() if _has_llm(yaml.safe_load(bundled_config(n).read_text()))]


def shrink(data: dict[str, Any]) -> dict[str, Any]:
    """The same study in miniature: 2 variants per axis, a few rounds, agents and generations."""
    data = json.loads(json.dumps(data))
    env = data["environment"]
    params = env.setdefault("params", {})
    if "rounds" in params:
        params["rounds"] = min(params["rounds"], 8 if "topics" in params else 4)
    if "num_humans" in params:
        params["num_humans"] = 6
    if "num_agents" in params:
        params["num_agents"] = 4
    for axis, values in (env.get("vary") or {}).items():
        env["vary"][axis] = values[:2]
    population = []
    for member in data["population"]:
        if "count" in member:
            member["count"] = params.get("num_humans", params.get("num_agents", 2))
        population.append(member)
    scripted = [m for m in population if m.get("policy") != "llm"][:2]
    data["population"] = [m for m in population if m.get("policy") == "llm" or m in scripted]
    if "repetitions" in (data.get("matchmaking") or {}):
        data["matchmaking"]["repetitions"] = 1
    society = data.get("society") or {}
    if society.get("kind") == "evolution":
        society.update(generations=2, societies=1)
    data.pop("sweep", None)
    return data


@pytest.mark.parametrize("name", _configs())
def test_fake_random_answers_every_bundled_config_validly(name: str, tmp_path: Path) -> None:
    data = shrink(yaml.safe_load(bundled_config(name).read_text()))
    cfg = parse_config({**data, "model": "fake:random", "output_dir": str(tmp_path)})
    rd, summary = run_experiment(cfg, progress=False)
    run = load_run(rd.path)
    lm = run.events[run.events["policy"] == "llm"]
    assert len(lm) > 0, f"{name}: no language-model decision"
    invalid = lm[~lm["valid"].astype(bool)]
    assert invalid.empty, f"{name}: {len(invalid)} of {len(lm)} invalid; first reply errors: " + "; ".join(
        run.llm_calls["error"].dropna().unique()[:3])
    assert summary["invalid_actions"] == 0
    assert run.llm_calls["error"].isna().all()  # not even a retry was needed
    infos = [json.loads(x) for x in lm["info"].dropna()]
    variant = (data["environment"].get("params") or {}).get("variant")
    if variant == "partner_choice":  # the path the old responder never took
        kinds = {i.get("kind") for i in infos}
        assert {"refuse", "donate"} <= kinds, kinds
    if variant == "punishment":
        assert "punish" in {i.get("kind") for i in infos}
    if run.events["env"].iloc[0] == "donor-game":
        strategies = [json.loads(x).get("strategy") for x in run.episodes["summary"]]
        assert strategies and all(s and s.startswith("My strategy will be") for s in strategies), strategies[:2]
    if run.events["env"].iloc[0] == "feedback-loop" and (data["environment"]["params"].get("statements")):
        said = [i.get("statement") for i in infos if i.get("role", "human") == "human"]
        assert any(said), "no statement made"
    if any(m.get("social_chain_of_thought") for m in data["population"]) and "prediction" in lm:
        assert lm["prediction"].notna().any(), "no prediction made"
    if lm["value"].notna().any() and lm["value"].dtype.kind in "fi":
        assert lm["value"].nunique() > 1  # random, not one constant answer


def test_retry_reasons_for_patterns_are_words_not_regular_expressions() -> None:
    from societas.environments import make
    from societas.environments.donor_game import REFUSE_PATTERN
    from societas.environments.feedback_loop import STATEMENT_PATTERN
    from societas.types import ActionSpec, InvalidAction

    loop = make("feedback-loop", statements=True, num_humans=3)
    loop.reset(seed=0)
    donor = make("donor-game", variant="partner_choice", num_agents=4)
    donor.reset(seed=0)
    for spec, pattern, words in ((loop._spec, STATEMENT_PATTERN, "|"),
                                 (donor._spec(10.0), REFUSE_PATTERN, "Refuse to play")):
        assert spec.kind == "regex" and spec.pattern == pattern
        with pytest.raises(InvalidAction) as err:
            spec.parse("Answer: ???")
        assert pattern not in str(err.value) and "[" not in str(err.value) and words in str(err.value), err.value
    with pytest.raises(InvalidAction, match="form the question asks for"):  # no description: still no pattern
        ActionSpec(kind="regex", pattern=r"[a-z]{3}\d").parse("x")
