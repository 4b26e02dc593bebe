"""Configs: valid ones load, every kind of mistake is one clear line and exit code 2."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from societas.config import ConfigError, bundled_configs, load_config

GOOD = """
name: t
environment: {id: repeated-matrix-game, params: {game: prisoners_dilemma, rounds: 3}}
population:
  - {name: a, policy: "scripted:tit_for_tat"}
  - {name: b, policy: "replay:akata2023/pd_gpt4"}
  - {name: c, policy: llm}
"""


def write(tmp_path: Path, text: str) -> Path:
    p = tmp_path / "cfg.yaml"
    p.write_text(text)
    return p


def test_good_config_and_overrides(tmp_path: Path) -> None:
    cfg = load_config(write(tmp_path, GOOD), seed=7, model="fake:first", output_dir="x")
    assert cfg.seed == 7 and cfg.model == "fake:first" and cfg.output_dir == "x"
    assert [a.name for a in cfg.active_population()] == ["a", "b", "c"]
    plain = load_config(write(tmp_path, GOOD))
    assert plain.skipped_members() == ["c"]


@pytest.mark.parametrize("name", bundled_configs())
def test_bundled_configs_validate(name: str) -> None:
    cfg = load_config(name, model="fake:first")
    assert cfg.population


BAD = [
    ("seed: [1]\n" + GOOD, "seed"),
    (GOOD + "colour: blue\n", "colour: unknown key"),
    (GOOD.replace("rounds: 3", "rounds: 3, speed: 2"), "environment.params"),
    (GOOD.replace("repeated-matrix-game", "chess"), "environment.id: unknown environment 'chess'"),
    (GOOD.replace("tit_for_tat", "tit_for_tit"), "population[0].policy: unknown scripted strategy"),
    (GOOD.replace("pd_gpt4", "nope"), "population[1].policy: unknown replay policy"),
    (GOOD.replace("policy: llm", "policy: llm, model: gpt4"), "population[2].model"),
    (GOOD.replace("name: t", "name: t\nmodel: 'openai:x@ftp://h'"), "model:"),
    (GOOD.replace("{name: b,", "{name: a,"), "agent names must be unique"),
    (GOOD.replace("population:", "populatio:"), "population: required field is missing"),
    ("name: t\nenvironment: [\n", "invalid YAML"),
    ("- just\n- a list\n", "expected a mapping"),
]


@pytest.mark.parametrize(("text", "expected"), BAD)
def test_bad_config_is_one_clear_line(tmp_path: Path, text: str, expected: str) -> None:
    path = write(tmp_path, text)
    with pytest.raises(ConfigError) as info:
        load_config(path)
    msg = str(info.value)
    assert msg.startswith(str(path)), msg
    assert expected in msg, msg
    assert "\n" not in msg


def test_missing_file(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="no such config file"):
        load_config(tmp_path / "nope.yaml")


@pytest.mark.parametrize(("text", "field"), [(GOOD + "colour: blue\n", "colour"),
                                             ("name: t\nenvironment: [\n", "line 3")])
def test_cli_exits_2_without_traceback(tmp_path: Path, text: str, field: str) -> None:
    path = write(tmp_path, text)
    proc = subprocess.run([sys.executable, "-m", "societas.cli", "run", str(path)],
                          capture_output=True, text=True, timeout=60)
    assert proc.returncode == 2
    assert "Traceback" not in proc.stderr
    lines = [ln for ln in proc.stderr.splitlines() if ln.strip()]
    assert len(lines) == 1 and str(path) in lines[0] and field in lines[0], proc.stderr


def test_cli_bad_model_flag(tmp_path: Path) -> None:
    proc = subprocess.run([sys.executable, "-m", "societas.cli", "run", str(write(tmp_path, GOOD)),
                           "--model", "nonsense"], capture_output=True, text=True, timeout=60)
    assert proc.returncode == 2 and "model" in proc.stderr and "Traceback" not in proc.stderr


def test_cli_missing_api_key_is_one_line_and_writes_nothing(tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if k != "OPENAI_API_KEY"}
    proc = subprocess.run([sys.executable, "-m", "societas.cli", "run", "pd_tournament", "--model",
                           "openai:gpt-4o-mini", "--out", str(tmp_path / "runs"), "--quiet"],
                          capture_output=True, text=True, timeout=60, env=env)
    assert proc.returncode == 2 and "Traceback" not in proc.stderr
    lines = [ln for ln in proc.stderr.splitlines() if ln.strip()]
    assert len(lines) == 1 and "OPENAI_API_KEY" in lines[0]
    assert not (tmp_path / "runs").exists()


def test_matchmaking_must_fit_the_seats() -> None:
    from societas.config import parse_config

    base = {"name": "m", "environment": {"id": "donor-game", "params": {"num_agents": 4}},
            "population": [{"name": "d", "policy": "scripted:free_rider", "count": 4}]}
    with pytest.raises(ConfigError, match=r"round_robin fills 2 seat.* donor-game has 4; use population"):
        parse_config(base)
    with pytest.raises(ConfigError, match="solo fills 1 seat"):
        parse_config(dict(base, matchmaking={"kind": "solo"}))
    assert parse_config(dict(base, matchmaking={"kind": "population"})).matchmaking.kind == "population"
