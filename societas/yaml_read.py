"""YAML reading through libyaml where PyYAML was built with it.

PyYAML's pure-Python loader spends about 0.1 s on one resolved config of a
15-member population (a Python call per token); a runs list of 100 runs
read that way took seconds before it showed anything. libyaml's safe loader
(`yaml.CSafeLoader`) builds the same Python objects from the same text, some
ten times faster; without libyaml this falls back to `yaml.SafeLoader`.
"""

from __future__ import annotations

from typing import Any

import yaml

SAFE_LOADER: type = getattr(yaml, "CSafeLoader", yaml.SafeLoader)


def safe_load(text: str) -> Any:
    """`yaml.safe_load(text)`, through libyaml when it is there."""
    return yaml.load(text, Loader=SAFE_LOADER)
