"""Converted models live in the societas cache directory unless $SOCIETAS_MODEL_DIR says otherwise."""

from __future__ import annotations

from pathlib import Path

import pytest

from societas.llm.models import cache_dir


def test_models_follow_the_societas_cache_dir(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.delenv("SOCIETAS_MODEL_DIR", raising=False)
    monkeypatch.setenv("SOCIETAS_CACHE_DIR", str(tmp_path / "c"))
    assert cache_dir() == tmp_path / "c"


def test_model_dir_overrides(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("SOCIETAS_CACHE_DIR", str(tmp_path / "c"))
    monkeypatch.setenv("SOCIETAS_MODEL_DIR", str(tmp_path / "m"))
    assert cache_dir() == tmp_path / "m"
