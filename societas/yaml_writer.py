"""Block-style YAML for JSON-shaped data, written without PyYAML's Python representer.

A resolved config lists every member and edge of the population; at 1,000
members PyYAML spends ~0.2 s on it (a Python call per node), more than the
rest of a scripted run's fixed costs together. This writer covers what
`model_dump(mode="json")` gives: mappings with string keys, lists, ASCII
strings (always double-quoted, JSON escapes, which YAML reads the same),
ints, floats, booleans and null. Anything else raises `Unsupported`, and the
caller falls back to PyYAML. `yaml.safe_load` of the text gives the data back
exactly (the tests check every bundled config and awkward values).
"""

from __future__ import annotations

import json
import math
import re
from typing import Any

_PLAIN_KEY = re.compile(r"[A-Za-z_][A-Za-z0-9_]*\Z")
# Words YAML 1.1 reads as booleans or null when unquoted.
_RESERVED = {"y", "n", "yes", "no", "on", "off", "true", "false", "null"}
# JSON escapes control characters (\n, \t, \u0001) in ways YAML reads back; DEL it leaves raw.
_ASCII = re.compile(r"[\x00-\x7e]*\Z")


class Unsupported(ValueError):
    """A value this writer does not render; use PyYAML."""


def _string(s: str) -> str:
    if not _ASCII.match(s):
        raise Unsupported("a string with characters beyond ASCII")
    return json.dumps(s)


def _scalar(v: Any) -> str:
    if v is None:
        return "null"
    if v is True:
        return "true"
    if v is False:
        return "false"
    if type(v) is int:
        return str(v)
    if type(v) is float:
        if math.isnan(v):
            return ".nan"
        if math.isinf(v):
            return ".inf" if v > 0 else "-.inf"
        text = repr(v)
        # YAML 1.1 reads a float only with a dot: 1e-05 would come back a string.
        return text.replace("e", ".0e", 1) if "." not in text and "e" in text else text
    if type(v) is str:
        return _string(v)
    raise Unsupported(f"a value of type {type(v).__name__}")


def _key(k: Any) -> str:
    if type(k) is not str:
        raise Unsupported("a mapping key that is not a string")
    return k if _PLAIN_KEY.match(k) and k.lower() not in _RESERVED else _string(k)


def _lines(value: Any, indent: str, out: list[str]) -> None:
    """Append the block lines of a non-empty mapping or list at `indent`."""
    if type(value) is dict:
        for k, v in value.items():
            head = f"{indent}{_key(k)}:"
            if type(v) in (dict, list) and v:
                out.append(head)
                _lines(v, indent + "  ", out)
            else:
                out.append(f"{head} {_inline(v)}")
        return
    for item in value:
        if type(item) in (dict, list) and item:
            start = len(out)
            _lines(item, indent + "  ", out)
            out[start] = f"{indent}- {out[start][len(indent) + 2:]}"
        else:
            out.append(f"{indent}- {_inline(item)}")


def _inline(v: Any) -> str:
    if type(v) is dict:
        return "{}"
    if type(v) is list:
        return "[]"
    return _scalar(v)


def dump(data: dict[str, Any]) -> str:
    """`data` (JSON-shaped, a non-empty mapping) as block YAML; raises Unsupported otherwise."""
    if type(data) is not dict or not data:
        raise Unsupported("the document must be a non-empty mapping")
    out: list[str] = []
    _lines(data, "", out)
    return "\n".join(out) + "\n"
