"""Money so far: the tokens a run was billed for, per model, priced from a table the user gives.

Prices are not part of a run (`societas.analysis.cost`), so `societas view
--prices FILE` takes them: a YAML or JSON mapping of model spec to USD per
million tokens, `[prompt, completion]` or `[prompt, completion, cached
prompt]`. Replies served from the response cache cost nothing; prompt tokens
an engine served from its prefix cache are billed at the cached price
(the prompt price without one), as `analysis.cost.usage_table` bills them.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from pathlib import Path

import pyarrow as pa
import pyarrow.compute as pc
import yaml

from societas.errors import BadInput

Billed = tuple[tuple[str, int, int, int], ...]
"""Per model: (spec, billed prompt tokens, billed completion tokens, engine-cached prompt tokens)."""
Prices = Mapping[str, tuple[float, ...]]


def load_prices(path: str | Path) -> dict[str, tuple[float, ...]]:
    """The price table in `path`; a file that cannot be used is bad input, named with the entry at fault."""
    src = Path(path)
    try:
        data = yaml.safe_load(src.read_text())
    except (OSError, yaml.YAMLError, UnicodeDecodeError) as exc:
        raise BadInput(f"{src}: cannot read the price table ({' '.join(str(exc).split())})") from None
    if not isinstance(data, dict):
        raise BadInput(f"{src}: a price table maps model specs to [prompt, completion] USD per million tokens")
    prices: dict[str, tuple[float, ...]] = {}
    for model, value in data.items():
        ok = (isinstance(value, list) and len(value) in (2, 3)
              and all(isinstance(v, (int, float)) and not isinstance(v, bool) and v >= 0 for v in value))
        if not ok:
            raise BadInput(f"{src}: {model}: expected [prompt, completion] or [prompt, completion, cached] "
                           f"USD per million tokens, got {value!r}")
        prices[str(model)] = tuple(float(v) for v in value)
    return prices


def billed(calls: pa.Table) -> Billed:
    """Tokens billed per model in one llm_calls part (calls answered from the response cache left out)."""
    hit = pc.fill_null(calls.column("cache_hit"), False)
    live = calls.filter(pc.invert(hit))
    if not live.num_rows:
        return ()
    cached = (live.column("cached_tokens") if "cached_tokens" in live.column_names
              else pa.nulls(live.num_rows, pa.int32()))
    grouped = pa.table({"model": live.column("model"), "p": live.column("prompt_tokens"),
                        "c": live.column("completion_tokens"), "k": cached}).group_by("model").aggregate(
        [("p", "sum"), ("c", "sum"), ("k", "sum")]).to_pydict()
    return tuple((str(m), int(p or 0), int(c or 0), int(k or 0))
                 for m, p, c, k in zip(grouped["model"], grouped["p_sum"], grouped["c_sum"], grouped["k_sum"]))


def cost_usd(parts: Iterable[Billed], prices: Prices | None) -> float | None:
    """USD so far over the parts' billed tokens; None without prices or for a model the table lacks."""
    if prices is None:
        return None
    total = 0.0
    for part in parts:
        for model, prompt, completion, cached in part:
            price = prices.get(model)
            if price is None:
                return None
            cached_price = price[2] if len(price) > 2 else price[0]
            total += ((prompt - cached) * price[0] + cached * cached_price + completion * price[1]) / 1e6
    return total
