"""Checked numeric parameters of scripted strategy families (donor, belief)."""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

import numpy as np


def checked_params(strategy: str, defaults: Mapping[str, float], ranges: Mapping[str, tuple[float, float]],
                   given: Mapping[str, Any] | None = None) -> dict[str, float]:
    """The defaults overridden by `given`; unknown names and out-of-range values raise ValueError."""
    out = dict(defaults)
    for key, value in (given or {}).items():
        if key not in defaults:
            accepted = ", ".join(defaults) or "none"
            raise ValueError(f"scripted:{strategy} has no parameter {key!r}; accepted: {accepted}")
        lo, hi = ranges[key]
        ok = isinstance(value, (int, float, np.integer, np.floating)) and not isinstance(value, (bool, np.bool_))
        if not ok or not math.isfinite(float(value)) or not lo <= float(value) <= hi:
            raise ValueError(f"scripted:{strategy}: {key} must be a number in [{lo:g}, {hi:g}], got {value!r}")
        out[key] = float(value)
    return out
