"""The GGUF converted for transformers is a plain float32 checkpoint that other engines can load."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from societas.llm.models import converted_gguf

pytestmark = pytest.mark.live


def test_converted_checkpoint_does_not_claim_gguf_quantisation(smollm2: Path) -> None:
    out = converted_gguf(smollm2)
    config = json.loads((out / "config.json").read_text())
    # vLLM reads quantization_config and refuses quant_method "gguf" on a directory of safetensors.
    assert "quantization_config" not in config and config["dtype"] == "float32"
    assert converted_gguf(smollm2) == out  # converted once, then reused
