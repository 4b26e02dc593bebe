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

import pytest
import yaml

from societas.analysis import load_run
from societas.config import bundled_config, parse_config
from societas.runners.run import run_experiment
from societas.small_form import OFFLINE, llm_configs, small_form


@pytest.mark.parametrize("name", llm_configs(live_all=True))
def test_fake_random_answers_every_bundled_config_validly(name: str, tmp_path: Path) -> None:
    data = small_form(yaml.safe_load(bundled_config(name).read_text()), OFFLINE)
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
    from societas.environments.donor_game.params import refuse_pattern
    from societas.environments.feedback_loop import STATEMENT_PATTERN
    from societas.types import ActionSpec, InvalidAction

    loop = make("feedback-loop", statements=True, num_humans=3)
    loop.reset(seed=0)
    donor = make("donor-game", variant="partner_choice", num_agents=4)
    donor.reset(seed=0)
    for spec, pattern, words in ((loop._spec, STATEMENT_PATTERN, "|"),
                                 (donor._spec(10.0), refuse_pattern(10.0), "Refuse to play")):
        assert spec.kind == "regex" and spec.pattern == pattern
        with pytest.raises(InvalidAction) as err:
            spec.parse("Answer: ???")
        assert pattern not in str(err.value) and "[" not in str(err.value) and words in str(err.value), err.value
    with pytest.raises(InvalidAction, match="form the question asks for"):  # no description: still no pattern
        ActionSpec(kind="regex", pattern=r"[a-z]{3}\d").parse("x")


def test_partner_choice_amounts_beyond_the_resources_are_retried_not_clipped() -> None:
    from societas.environments import make
    from societas.types import InvalidAction

    donor = make("donor-game", variant="partner_choice", num_agents=4)
    donor.reset(seed=0)
    spec = donor._spec(10.0)
    assert spec.parse("Answer: 7.5") == "7.5" and spec.parse("Answer: Refuse to play") == "Refuse to play"
    assert spec.parse("Answer: 10.") == "10."
    with pytest.raises(InvalidAction) as err:
        spec.parse("Answer: 30.")
    assert "from 0 to 10" in str(err.value)
