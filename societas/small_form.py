"""Bundled studies in miniature: the same questions to the model, in fewer rounds, agents and variants.

    from societas.small_form import LIVE, small_form
    data = small_form(yaml.safe_load(bundled_config("pd_tournament").read_text()), LIVE)

Tests and benchmarks run a study's small form to exercise everything it asks a
language model without paying for its full size. `LIVE` is the form the real-model
tier and its benchmarks run (two rounds, the language-model members and one scripted
member); `OFFLINE` is the larger form the fake responders play. Which members stay,
and in which order, is part of the form (`SmallForm.order`): the round robin pairs
members in population order, so the order decides which episodes come first and
which seeds they draw.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from typing import Any, Literal

import yaml

MemberOrder = Literal["llm_first", "as_written"]


@dataclass(frozen=True, kw_only=True, slots=True)
class SmallForm:
    """How far a study is shrunk. Limits only lower a study's own numbers, never raise them.

    `order`: "llm_first" lists the language-model members, then the kept scripted ones;
    "as_written" keeps the study's own order among the kept members.
    """

    rounds: int  # rounds of a game, months of the commons
    topic_rounds: int | None = None  # rounds for a study with debate topics (None: `rounds`)
    games: int | None = None  # games per generation (None: as written)
    humans: int = 3
    agents: int = 2
    variants: int = 1  # values kept per `vary` axis
    scripted: int = 1  # scripted (non-model) members kept
    generations: int = 1
    order: MemberOrder = "llm_first"
    max_attempts: int | None = None  # llm.max_attempts (None: as written)


LIVE = SmallForm(rounds=2, games=1, humans=3, agents=2, variants=1, scripted=1, generations=1,
                 order="llm_first", max_attempts=2)
"""The real-model tier's form: 2 rounds, 1 game, 2 agents or 3 humans, one variant, one generation."""

OFFLINE = SmallForm(rounds=4, topic_rounds=8, humans=6, agents=4, variants=2, scripted=2, generations=2,
                    order="as_written")
"""The fake responders' form: enough rounds, agents and generations to reach every code path."""

CI_LIVE_CONFIGS = ("pd_tournament",)
"""Studies whose live form fits CI's time on 2 cores (about a minute each per engine)."""


def small_form(data: dict[str, Any], form: SmallForm) -> dict[str, Any]:
    """A copy of a study's config data (as loaded from YAML) shrunk to `form`; `data` is not changed."""
    data = json.loads(json.dumps(data))
    env = data["environment"]
    params = env.setdefault("params", {})
    if "rounds" in params:
        limit = form.topic_rounds if form.topic_rounds is not None and "topics" in params else form.rounds
        params["rounds"] = min(params["rounds"], limit)
    if "months" in params:  # the commons' rounds
        params["months"] = min(params["months"], form.rounds)
    if "games" in params and form.games is not None:
        params["games"] = min(params["games"], form.games)
    if "num_humans" in params:
        params["num_humans"] = form.humans
    if "num_agents" in params:
        params["num_agents"] = form.agents
    for axis, values in (env.get("vary") or {}).items():
        env["vary"][axis] = values[: form.variants]
    members = data["population"]
    for member in members:
        if "count" in member:
            member["count"] = params.get("num_humans", params.get("num_agents", form.agents))
    scripted = [m for m in members if m.get("policy") != "llm"][: form.scripted]
    if form.order == "llm_first":
        data["population"] = [m for m in members if m.get("policy") == "llm"] + scripted
    else:
        data["population"] = [m for m in members if m.get("policy") == "llm" or m in scripted]
    if "repetitions" in (data.get("matchmaking") or {}):
        data["matchmaking"]["repetitions"] = 1
    society = data.get("society") or {}
    if society.get("kind") == "evolution":
        society.update(generations=form.generations, societies=1)
    data.pop("sweep", None)
    if form.max_attempts is not None:
        data["llm"] = {**(data.get("llm") or {}), "max_attempts": form.max_attempts}
    return data


def has_llm_members(data: dict[str, Any]) -> bool:
    return any(m.get("policy") == "llm" for m in data.get("population", ()))


def llm_configs(*, live_all: bool | None = None) -> list[str]:
    """The bundled studies with language-model members: all of them with `live_all` (default:
    $SOCIETAS_LIVE_ALL set), else those in `CI_LIVE_CONFIGS`."""
    from societas.config import bundled_config, bundled_configs

    names = [n for n in bundled_configs() if has_llm_members(yaml.safe_load(bundled_config(n).read_text()))]
    if live_all is None:
        live_all = bool(os.environ.get("SOCIETAS_LIVE_ALL"))
    return names if live_all else [n for n in names if n in CI_LIVE_CONFIGS]
