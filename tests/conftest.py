"""Shared fixtures: keep caches and run directories inside pytest's temp folders."""

from __future__ import annotations

from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
SHARED_DATA = REPO.parent / "shared" / "data" / "akata2023"


@pytest.fixture(autouse=True)
def _isolated_cache(tmp_path_factory: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch) -> None:
    """Replies, logs and figures go to a fresh cache; converted models stay where they were built once."""
    from societas.llm.models import cache_dir as model_dir

    monkeypatch.setenv("SOCIETAS_MODEL_DIR", str(model_dir()))
    monkeypatch.setenv("SOCIETAS_CACHE_DIR", str(tmp_path_factory.mktemp("cache")))
