"""The adaptive in-flight limit moves only timing: events equal with it on and with a fixed limit."""

from __future__ import annotations

import pandas as pd
import pytest

from societas.analysis import load_run
from societas.analysis.load import comparable
from societas.config import load_config
from societas.llm.testing import FakeOpenAIServer
from societas.runners.run import run_experiment

pytestmark = pytest.mark.slow

MEMBERS = ("llm", "llm-scot", "tit-for-tat", "random")


def _events(url: str, tmp: str, *, adaptive: bool) -> pd.DataFrame:
    cfg = load_config("pd_tournament", model=f"openai:fake@{url}", output_dir=tmp)
    data = cfg.model_dump(mode="json", exclude_none=True)
    data.pop("societas_version", None)
    data["population"] = [m for m in data["population"] if m["name"] in MEMBERS]
    data["llm"] = {**data.get("llm", {}), "cache": False, "adaptive_in_flight": adaptive,
                   "min_in_flight": 1, "max_in_flight": 6 if not adaptive else 64}
    rd, _ = run_experiment(type(cfg).model_validate(data), progress=False)
    return comparable(load_run(rd.path).events)


def test_events_identical_adaptive_and_fixed(tmp_path) -> None:
    with FakeOpenAIServer("random", latency=0.002, capacity=3) as srv:
        a = _events(srv.base_url, str(tmp_path / "a"), adaptive=True)
        b = _events(srv.base_url, str(tmp_path / "b"), adaptive=False)
    assert len(a) > 0
    pd.testing.assert_frame_equal(a, b)
