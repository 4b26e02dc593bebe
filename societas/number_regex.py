"""Regular expressions for the numbers in a range, as every engine's constraint and a game's
answer pattern write them.

A small integer range (at most `MAX_ENUMERATED_INTEGERS` values) is listed, which pins it
exactly; a real range with fewer whole numbers has its whole parts listed (0..10 admits "9.75"
and "10.0", not "10.5"), so only the decimals of its ends go unchecked; a larger range bounds
the sign and the number of digits. Parsing still checks the bounds.
"""

from __future__ import annotations

import math

MAX_ENUMERATED_INTEGERS = 200
REAL_DECIMALS = 6
_DECIMALS = r"(?:\.\d{1," + str(REAL_DECIMALS) + "})?"


def range_regex(lo: float, hi: float, *, integer: bool = False) -> str:
    """A regex for the numbers from `lo` to `hi` (see the module docstring)."""
    if integer:
        first, last = math.ceil(lo), math.floor(hi)
        if 0 <= last - first < MAX_ENUMERATED_INTEGERS:
            values = [str(v) for v in range(first, last + 1)]
            return values[0] if len(values) == 1 else "(?:" + "|".join(values) + ")"
    elif hi >= 0 and math.floor(max(hi, -lo)) < MAX_ENUMERATED_INTEGERS:
        if lo >= 0:
            return _magnitudes(lo, hi)
        return "(?:-" + _magnitudes(0.0, -lo) + "|" + _magnitudes(0.0, hi) + ")"
    sign = "-?" if lo < 0 else ""
    width = max(_digits(lo), _digits(hi))
    body = sign + r"\d{1," + str(width) + "}"
    return body if integer else body + _DECIMALS


def _digits(x: float) -> int:
    return max(1, len(str(math.floor(abs(x)))))


def _magnitudes(low: float, top: float) -> str:
    """Decimal numbers from about `low` to `top` (both >= 0): whole parts listed, so the
    integer part is exact; the decimals of the lowest and of a fractional top are not bounded."""
    whole = [str(v) for v in range(math.floor(low), math.floor(top))]
    last = str(math.floor(top)) + (r"(?:\.0{1," + str(REAL_DECIMALS) + "})?" if float(top).is_integer() else _DECIMALS)
    if not whole:
        return last
    return "(?:(?:" + "|".join(whole) + ")" + _DECIMALS + "|" + last + ")"
