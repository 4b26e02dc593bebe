"""Running totals of the events a run wrote: the summary without reading the run back.

Every events part is tallied as it is written (and, on a resume, every part an
earlier process wrote, read once); summary.json is computed from the tallies.
Rewards are summed exactly: the same decisions give the same mean reward
whatever parts they were written in and in whatever order episodes finished,
so a resumed run's summary is an uninterrupted one's. Integer and dyadic
rewards (payoff matrices) are summed in float64 held below 2**53, where
addition is exact; other values through their integer mantissas.
"""

from __future__ import annotations

import math
from fractions import Fraction
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from societas.errors import CorruptRun

TALLY_COLUMNS = ["phase", "episode", "agent", "reward", "cooperated", "valid", "prediction_valid", "retries",
                 "prompt_tokens", "completion_tokens"]

_EXACT = 2.0 ** 52  # float64 sums of integers stay exact below this
_BIAS = 1126  # every finite double is an integer times 2**-1126 (the smallest subnormal's mantissa is 2**52)
_LOW = (1 << 26) - 1


class RunTally:
    """What the summary needs of the events, accumulated part by part."""

    def __init__(self) -> None:
        self.decisions = 0
        self.llm_calls = 0
        self.prompt_tokens = 0
        self.completion_tokens = 0
        self.retries = 0
        self.invalid_predictions = 0
        self._episodes: set[int] = set()
        self._index: dict[str, int] = {}
        self._names: list[str] = []
        # Per agent (by index): rewards counted, cooperated true, cooperated not null, invalid.
        self._counts = np.zeros((0, 4), dtype=np.int64)
        self._scale = 0
        self._sums = np.zeros(0)  # per agent, rewards * 2**_scale: whole numbers below _EXACT
        self._exact: dict[int, int] = {}  # per agent, rewards * 2**_BIAS that are not in _sums
        self._special: dict[int, float] = {}  # per agent, the sum of its infinite or NaN rewards

    @property
    def episodes(self) -> int:
        return len(self._episodes)

    def add_parts(self, events_dir: Path, calls_dir: Path) -> None:
        """Every part already on disk (a resumed run's earlier processes); a damaged one is a CorruptRun."""
        for p in sorted(events_dir.glob("part-*.parquet")):
            try:
                self.add_events(pq.read_table(p, columns=TALLY_COLUMNS))
            except (pa.ArrowInvalid, OSError) as exc:
                raise CorruptRun(p, exc) from None
        for p in sorted(calls_dir.glob("part-*.parquet")):
            try:
                self.llm_calls += pq.ParquetFile(p).metadata.num_rows
            except (pa.ArrowInvalid, OSError) as exc:
                raise CorruptRun(p, exc) from None

    def add_events(self, ev: pa.Table) -> None:
        """One part's events (at least the `TALLY_COLUMNS`)."""
        if not ev.num_rows:
            return
        self.decisions += ev.num_rows
        key = (_numpy(ev["phase"]).astype(np.int64) << 32) | _numpy(ev["episode"]).astype(np.int64)
        self._episodes.update(np.unique(key[np.r_[True, key[1:] != key[:-1]]]).tolist())
        for column in ("prompt_tokens", "completion_tokens", "retries"):
            setattr(self, column, getattr(self, column) + int(pc.sum(ev[column]).as_py() or 0))
        self.invalid_predictions += int(np.count_nonzero(_is_false(ev["prediction_valid"])))
        who = self._who(ev["agent"])
        width = len(self._names)
        reward = ev["reward"]
        rewarded = who if not reward.null_count else who[_numpy(pc.is_valid(reward))]
        cooperated = ev["cooperated"]
        counts = [rewarded, who[_numpy(pc.fill_null(cooperated, False))],
                  who if not cooperated.null_count else who[_numpy(pc.is_valid(cooperated))],
                  who[_is_false(ev["valid"])]]
        self._counts += np.stack([np.bincount(c, minlength=width) for c in counts], axis=1)
        values = _numpy(pc.fill_null(reward, 0.0)).astype(np.float64)
        scale = _scale(values, len(rewarded))
        if scale is None:
            self._add_exact(who, values)
        else:
            self._add_scaled(np.bincount(who, weights=np.ldexp(values, scale), minlength=width), scale)

    def _who(self, agents: pa.ChunkedArray) -> np.ndarray:
        """Each event's agent as its row in the tallies (new agents get rows)."""
        column = agents.combine_chunks() if agents.num_chunks != 1 else agents.chunk(0)
        if column.null_count:
            column = pc.fill_null(column, "None")
        encoded = pc.dictionary_encode(column)
        index = self._index
        rows = []
        for name in encoded.dictionary.to_pylist():
            row = index.get(name)
            if row is None:
                row = index[name] = len(self._names)
                self._names.append(name)
            rows.append(row)
        grow = len(self._names) - len(self._counts)
        if grow:
            self._counts = np.concatenate([self._counts, np.zeros((grow, 4), dtype=np.int64)])
            self._sums = np.concatenate([self._sums, np.zeros(grow)])
        return np.array(rows, dtype=np.intp)[_numpy(encoded.indices)]

    def _add_scaled(self, part: np.ndarray, scale: int) -> None:
        """Add one part's sums at `scale`, both brought to the finer scale where that stays exact."""
        target = max(scale, self._scale)
        held = np.ldexp(self._sums, target - self._scale)
        part = np.ldexp(part, target - scale)
        if _peak(held) >= _EXACT or _peak(part) >= _EXACT:
            self._spill(self._sums, self._scale)
            self._spill(part, target)
            self._sums, self._scale = np.zeros(len(self._sums)), target
            return
        self._sums, self._scale = held + part, target  # each below 2**52: their sum is exact
        if _peak(self._sums) >= _EXACT:
            self._spill(self._sums, self._scale)
            self._sums = np.zeros(len(self._sums))

    def _spill(self, sums: np.ndarray, scale: int) -> None:
        """Float sums of whole numbers (at `scale`) into the exact integers."""
        exact = self._exact
        for row in np.flatnonzero(sums).tolist():
            exact[row] = exact.get(row, 0) + (int(sums[row]) << (_BIAS - scale))

    def _add_exact(self, who: np.ndarray, values: np.ndarray) -> None:
        """Rewards that are not small dyadic numbers: summed through their 53-bit integer mantissas."""
        finite = np.isfinite(values)
        mantissa, exponent = np.frexp(np.where(finite, values, 0.0))
        whole = np.ldexp(mantissa, 53).astype(np.int64)  # value = whole * 2**(exponent - 53)
        buckets, inverse = np.unique(who.astype(np.int64) * 4096 + exponent + 2048, return_inverse=True)
        high = np.bincount(inverse, weights=whole >> 26)  # whole numbers below 2**27 each: exact sums
        low = np.bincount(inverse, weights=whole & _LOW)
        exact = self._exact
        for bucket, h, lo in zip(buckets.tolist(), high.tolist(), low.tolist(), strict=True):
            row, e = divmod(bucket, 4096)
            exact[row] = exact.get(row, 0) + (((int(h) << 26) + int(lo)) << (e - 2048 - 53 + _BIAS))
        for i in np.flatnonzero(~finite).tolist():
            self._special[int(who[i])] = self._special.get(int(who[i]), 0.0) + float(values[i])

    def per_agent(self) -> dict[str, dict[str, Any]]:
        """summary.json's `agents`: by name, decisions, mean reward, cooperation rate and invalid actions."""
        rewarded, coop, coop_n, invalid = (self._counts[:, i] for i in range(4))
        with np.errstate(divide="ignore", invalid="ignore"):
            means = np.ldexp(self._sums / rewarded, -self._scale).tolist()  # exact sums: rounded once
            rates = (coop / coop_n).tolist()
        rewarded, coop_n, invalid = rewarded.tolist(), coop_n.tolist(), invalid.tolist()
        out: dict[str, dict[str, Any]] = {}
        for name in sorted(self._index):
            row = self._index[name]
            n = rewarded[row]
            mean = means[row]
            if row in self._special:
                mean = self._special[row]  # inf or NaN, as a float sum gives
            elif n and row in self._exact:
                total = self._exact[row] + (int(self._sums[row]) << (_BIAS - self._scale))
                mean = float(Fraction(total, n << _BIAS))
            out[name] = {
                "decisions": n,
                "mean_reward": round(mean, 6) if n else None,
                "cooperation_rate": round(rates[row], 6) if coop_n[row] else None,
                "invalid": invalid[row],
            }
        return out


def _numpy(column: pa.ChunkedArray | pa.Array) -> np.ndarray:
    return column.to_numpy(zero_copy_only=False)


def _is_false(column: pa.ChunkedArray) -> np.ndarray:
    """Where a boolean column holds False (not where it is null)."""
    return _numpy(pc.fill_null(pc.invert(column), False))


def _peak(values: np.ndarray) -> float:
    return float(np.abs(values).max(initial=0.0))


def _scale(values: np.ndarray, n: int) -> int | None:
    """The s with every value * 2**s a whole number and every sum of up to n of them below 2**52.

    None where there is none (values like 0.1, or too large), and the rewards take the exact path.
    """
    peak = _peak(values)
    if not math.isfinite(peak) or peak * n >= _EXACT:
        return None
    if peak == 0.0 or (np.floor(values) == values).all():
        return 0
    mantissa, exponent = np.frexp(values)
    whole = np.ldexp(mantissa, 53).astype(np.int64)
    nonzero = whole != 0
    lowest = whole[nonzero] & -whole[nonzero]  # each mantissa's lowest set bit
    bit = (np.frexp(lowest.astype(np.float64))[1] - 1) + exponent[nonzero] - 53
    scale = max(0, -int(bit.min()))
    if scale > 1000 or peak * math.ldexp(1.0, scale) * n >= _EXACT:
        return None
    return scale
