"""Checks of environment parameters, so every game reports a bad value the same way.

Each raises ValueError naming the parameter and what it accepts; the config
loader turns that into its one-line error.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

import numpy as np


def fmt_number(x: float) -> str:
    """A number as a person writes it: 10, not 10.0."""
    return str(int(x)) if float(x).is_integer() and abs(x) < 1e15 else f"{x:g}"


def check_int(name: str, value: Any, minimum: int) -> int:
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, (int, np.integer)) or value < minimum:
        raise ValueError(f"{name} must be an integer >= {minimum}, got {value!r}")
    return int(value)


def check_real(name: str, value: Any, minimum: float, *, strict: bool = False) -> float:
    """A finite number >= minimum (> minimum when strict; no bound for minimum = -inf)."""
    ok = isinstance(value, (int, float, np.integer, np.floating)) and not isinstance(value, (bool, np.bool_))
    number = float(value) if ok else math.nan
    if not ok or not math.isfinite(number) or number < minimum or (strict and number == minimum):
        bound = f" {'>' if strict else '>='} {fmt_number(minimum)}" if math.isfinite(minimum) else ""
        raise ValueError(f"{name} must be a finite number{bound}, got {value!r}")
    return number


def check_one_of(name: str, value: Any, allowed: tuple[str, ...]) -> str:
    if value not in allowed:
        raise ValueError(f"{name} must be one of {', '.join(allowed)}; got {value!r}")
    return str(value)


def check_flag(name: str, value: Any) -> bool:
    if not isinstance(value, (bool, np.bool_)):
        raise ValueError(f"{name} must be true or false, got {value!r}")
    return bool(value)


def check_graph_params(params: Any, defaults: Mapping[str, Any], *, graph: str, size: int | None,
                       size_name: str, p_may_be_none: bool = False) -> dict[str, Any]:
    """A contact graph's parameters over its defaults: known keys only, `p` a probability and `k`
    (a ring lattice's neighbours) at least 2 and below the population `size` when one is given.

    `graph` names the graph in messages ("graph 'ring'"); `p_may_be_none` lets `p` stay None
    where None means a default computed later.
    """
    if params is None:
        params = {}
    if not isinstance(params, Mapping):
        raise ValueError(f"graph_params must be a mapping such as {{'p': 0.1}}, got {params!r}")
    unknown = [k for k in params if k not in defaults]
    if unknown:
        accepted = ", ".join(defaults) or "none"
        raise ValueError(f"graph_params: unknown key(s) {', '.join(map(repr, unknown))} for {graph}; "
                         f"accepted: {accepted}")
    out = dict(defaults, **params)
    if "p" in out and not (p_may_be_none and out["p"] is None):
        out["p"] = check_real("graph_params['p']", out["p"], 0.0)
        if out["p"] > 1.0:
            raise ValueError(f"graph_params['p'] must be a probability in [0, 1], got {out['p']!r}")
    if "k" in out:
        out["k"] = check_int("graph_params['k']", out["k"], 2)
        if size is not None and out["k"] >= size:
            raise ValueError(f"graph_params['k'] must be below {size_name} ({size}), got {out['k']}")
    return out
