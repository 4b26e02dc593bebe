"""libyaml's safe loader reads every bundled config, and awkward values, as PyYAML's Python one does."""

from __future__ import annotations

import yaml

from societas.config import bundled_config, bundled_configs
from societas.yaml_read import safe_load
from societas.yaml_writer import dump


def test_bundled_configs_read_the_same() -> None:
    names = bundled_configs()
    assert names
    for name in names:
        text = bundled_config(name).read_text()
        assert safe_load(text) == yaml.safe_load(text), name


def test_awkward_values_read_the_same() -> None:
    data = {"s": ["yes", "no", "on", "null", "1e3", "0x10", "a: b", "tab\there", ""], "n": [1, -0.0, 1e300, None],
            "b": [True, False], "nested": {"list": [{"k": [1, [2, 3]]}], "empty": {}, "none": []}}
    for text in (dump(data), yaml.safe_dump(data), "a: 2024-01-01\nb: 1_000\nc: .inf\nd: ~\ne: 012\nf: \"é ✓\"\n"):
        assert safe_load(text) == yaml.safe_load(text), text
