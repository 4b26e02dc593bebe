"""`sampling: distribution` on the real model: hf: scores and llama.cpp's logprobs give one distribution.

Both engines read the same GGUF (hf: dequantised to float32), so the options'
probabilities agree to within what quantisation moves them; a run draws every
decision from them with one model call per distinct prompt.
"""

from __future__ import annotations

import asyncio
import math
from pathlib import Path

import pytest

from societas.agents.llm_agent import LLMAgent, LLMAgentOptions
from societas.llm.specs import ModelOptions, make_model
from societas.types import ActionSpec, Observation

pytestmark = pytest.mark.live

SPEC = ActionSpec.choice(("F", "J"))
SYSTEM = ("You are playing a game repeatedly with another player. If you choose Option J and the other "
          "player chooses Option J, you each win 8 points.")
PROMPT = "You are currently playing round 1.\nQ: Which Option do you choose, Option F or Option J?\nA: Option"


def _probabilities(spec: str, n: int) -> tuple[list[float], list[str], int]:
    import numpy as np

    async def play() -> tuple[list[float], list[str], int]:
        model = make_model(spec, ModelOptions(hf_device="cpu"))
        options = LLMAgentOptions(sampling="distribution", temperature=1.0)
        obs = Observation(agent="player_0", round=1, system=SYSTEM, prompt=PROMPT, spec=SPEC)
        try:
            actions = await asyncio.gather(*(LLMAgent(f"a{i}", model, rng=np.random.default_rng(i),
                                                      options=options).act(obs) for i in range(n)))
        finally:
            await model.aclose()
        p = {a.value: a.sampled_p for a in actions}
        asked = sum(len(a.calls) for a in actions)
        return [p.get(c, 0.0) for c in SPEC.choices], [a.value for a in actions], asked

    return asyncio.run(play())


def test_engines_agree_on_the_distribution_and_one_call_serves_all(smollm2: Path) -> None:
    pytest.importorskip("llama_cpp")
    hf, hf_draws, hf_calls = _probabilities(f"hf:{smollm2}", 500)
    cpp, cpp_draws, cpp_calls = _probabilities(f"llamacpp:{smollm2}", 500)
    assert hf_calls == cpp_calls == 1
    assert math.isclose(sum(hf), 1.0) and math.isclose(sum(cpp), 1.0)
    assert hf == pytest.approx(cpp, abs=0.05)
    assert 0.05 < hf[0] < 0.95  # the question leaves the small model undecided: both options are drawn
    # Same seeds, (nearly) the same probabilities: the draws differ only where a seed falls between them.
    assert sum(a != b for a, b in zip(hf_draws, cpp_draws, strict=True)) <= 0.1 * len(hf_draws)
