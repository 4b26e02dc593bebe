"""The fast YAML writer reads back exactly what it was given, or declines."""

from __future__ import annotations

import math
from typing import Any

import pytest
import yaml

from societas import yaml_writer
from societas.config import bundled_config, bundled_configs, dump_config, load_config, parse_config


@pytest.mark.parametrize("name", bundled_configs())
def test_every_bundled_config_reads_back_the_same(name: str) -> None:
    config = load_config(bundled_config(name), model="fake:first")
    data = config.model_dump(mode="json")
    text = dump_config(config)
    assert yaml.safe_load(text) == data
    assert parse_config(yaml.safe_load(text), source=name) == config


AWKWARD: dict[str, Any] = {
    "strings": ["", " ", "yes", "No", "null", "~", "true", "1", "1.0", "1e3", "0x10", "- x", "a: b", "#c",
                "'q'", '"dq"', "back\\slash", "tab\there", "new\nline", "bell\x07", "cr\r", "{x}", "[y]",
                "&a", "*b", "!t", "%p", "@", "`", "...", "---", "a #b", " lead", "trail "],
    "numbers": [0, -1, 10**30, 0.5, -0.0, 1e-05, 1e20, 1.5e300, float("inf"), float("-inf"), 3.0],
    "flags": [True, False, None],
    "empty": {"d": {}, "l": [], "s": ""},
    "nested": [[1, [2, []]], [{"a": [{"b": {}}]}], {"y": "n", "on": 1, "Off": 2, "key with space": 3, "9k": 4}],
    "yes": "reserved key", "1": "numeric key",
}


def test_awkward_values_read_back_the_same() -> None:
    assert yaml.safe_load(yaml_writer.dump(AWKWARD)) == AWKWARD
    assert math.isnan(yaml.safe_load(yaml_writer.dump({"x": float("nan")}))["x"])


@pytest.mark.parametrize("data", [{"s": "é"}, {"s": "\x7f"}, {1: "int key"}, {"t": (1, 2)}, {}, [1]])
def test_what_it_does_not_write_it_declines(data: Any) -> None:
    with pytest.raises(yaml_writer.Unsupported):
        yaml_writer.dump(data)


def test_a_config_it_declines_is_written_by_pyyaml() -> None:
    config = load_config(bundled_config("pd_tournament"))
    config = config.model_copy(update={"description": "Café, naïve players"})
    assert yaml.safe_load(dump_config(config))["description"] == "Café, naïve players"
