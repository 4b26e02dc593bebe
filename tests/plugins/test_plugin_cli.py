"""Plug-ins seen from the command line: the example stag hunt installed, and broken plug-ins contained.

Each distribution is installed into a temporary folder (`pip install --target`,
or a hand-written dist-info) that only the child processes see through
PYTHONPATH, so nothing stays installed for the other tests.
"""

from __future__ import annotations

import importlib.metadata
import importlib.util
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from societas import plugins

try:
    from tests.plugins.plugin_dists import write_dist
except ImportError:  # run from inside tests/
    from plugin_dists import write_dist  # type: ignore[no-redef]

REPO = Path(__file__).resolve().parents[2]
EXAMPLE = REPO / "examples" / "plugin-stag-hunt"


def societas(*args: str, site: Path, cwd: Path) -> subprocess.CompletedProcess[str]:
    env = dict(os.environ, PYTHONPATH=os.pathsep.join(filter(None, [str(site), os.environ.get("PYTHONPATH")])))
    return subprocess.run([sys.executable, "-m", "societas.cli", *args], cwd=cwd, env=env,
                          capture_output=True, text=True, timeout=120)


def _setuptools_major() -> int:
    if importlib.util.find_spec("setuptools") is None:
        return 0
    return int(importlib.metadata.version("setuptools").split(".")[0])


@pytest.fixture(scope="module")
def stag_hunt_site(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The example plug-in, installed into a folder of its own.

    pip builds it from a copy (a build leaves files beside its source), offline
    and without build isolation; where setuptools is missing or too old to build it, the
    package and the entry points its pyproject.toml declares are laid out by
    hand, as pip would.
    """
    tmp = tmp_path_factory.mktemp("stag-hunt")
    site = tmp / "site"
    if _setuptools_major() >= 77:  # PEP 639 licence strings, as the example's pyproject.toml uses
        src = shutil.copytree(EXAMPLE, tmp / "src", ignore=shutil.ignore_patterns("build", "*.egg-info",
                                                                                  "__pycache__"))
        subprocess.run([sys.executable, "-m", "pip", "install", "--quiet", "--no-deps", "--no-build-isolation",
                        "--no-index", "--disable-pip-version-check", "--target", str(site), str(src)],
                       check=True, capture_output=True, text=True, timeout=300)
        return site
    tomllib = pytest.importorskip("tomllib")
    project = tomllib.loads((EXAMPLE / "pyproject.toml").read_text())["project"]
    write_dist(site, project["name"], project["entry-points"], summary=project["description"])
    shutil.copytree(EXAMPLE / "societas_stag_hunt", site / "societas_stag_hunt")
    return site


def test_example_plugin_lists_runs_and_analyzes(stag_hunt_site: Path, tmp_path: Path) -> None:
    listed = societas("list", site=stag_hunt_site, cwd=tmp_path)
    assert listed.returncode == 0, listed.stderr
    assert "stag-hunt" in listed.stdout and "plug-in from societas-stag-hunt" in listed.stdout
    assert "scripted:stag_if_all_stag" in listed.stdout and "hunter:threshold" in listed.stdout
    assert "repeated-matrix-game" in listed.stdout and "failed" not in listed.stdout

    ran = societas("run", str(EXAMPLE / "stag_hunt.yaml"), "--model", "fake:random", "--out", "runs", "--quiet",
                   site=stag_hunt_site, cwd=tmp_path)
    assert ran.returncode == 0, ran.stderr
    (run_dir,) = (tmp_path / "runs").glob("stag-hunt-*")
    assert list((run_dir / "events").glob("part-*.parquet"))
    assert (run_dir / "summary.json").is_file()
    assert "language-model agents: llm" in ran.stdout

    analyzed = societas("analyze", str(run_dir), site=stag_hunt_site, cwd=tmp_path)
    assert analyzed.returncode == 0, analyzed.stderr
    for name in ("stag-if-all-stag", "cautious", "tit-for-tat", "llm"):
        assert name in analyzed.stdout


@pytest.fixture(scope="module")
def broken_site(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Two installed plug-ins: one that raises on import, one whose environment has no decision()."""
    site = tmp_path_factory.mktemp("broken-site")
    write_dist(site, "societas-broken-import", {plugins.ENVIRONMENTS_GROUP: {"broken-import": "tplug_raises:Game"}},
               {"tplug_raises.py": "raise RuntimeError('this plug-in cannot be imported')\n"})
    write_dist(site, "societas-broken-api", {plugins.ENVIRONMENTS_GROUP: {"broken-api": "tplug_noapi:Game"}},
               {"tplug_noapi.py": "class Game:\n    possible_agents = ['a', 'b']\n"
                                  "    def reset(self, seed=None, options=None):\n        return {}, {}\n"})
    return site


IMPORT_LINE = ("plug-in 'broken-import' from distribution 'societas-broken-import' failed: "
               "RuntimeError: this plug-in cannot be imported")
API_LINE = "plug-in 'broken-api' from distribution 'societas-broken-api' failed: "


def test_list_reports_each_broken_plugin_in_one_line(broken_site: Path, tmp_path: Path) -> None:
    listed = societas("list", site=broken_site, cwd=tmp_path)
    assert listed.returncode == 0, listed.stderr
    assert "repeated-matrix-game" in listed.stdout and "scripted:tit_for_tat" in listed.stdout
    lines = listed.stdout.splitlines()
    assert IMPORT_LINE in lines
    (api_line,) = [line for line in lines if line.startswith(API_LINE)]
    assert "lacks step(), decision()" in api_line
    assert "│ broken-import" not in listed.stdout and "│ broken-api" not in listed.stdout


def tiny_config(path: Path, env_id: str) -> Path:
    path.write_text(yaml.safe_dump({
        "name": "tiny", "environment": {"id": env_id, "params": {"rounds": 2} if env_id != "broken-api" else {}},
        "population": [{"name": "a", "policy": "scripted:tit_for_tat"}, {"name": "b", "policy": "scripted:random"}],
    }))
    return path


def test_run_of_a_bundled_game_works_beside_broken_plugins(broken_site: Path, tmp_path: Path) -> None:
    ran = societas("run", str(tiny_config(tmp_path / "tiny.yaml", "repeated-matrix-game")), "--out", "runs",
                   "--quiet", site=broken_site, cwd=tmp_path)
    assert ran.returncode == 0, ran.stderr
    assert list((tmp_path / "runs").glob("tiny-*/summary.json"))


@pytest.mark.parametrize(("env_id", "expected"), [("broken-import", IMPORT_LINE), ("broken-api", API_LINE)],
                         ids=["import", "api"])
def test_run_naming_a_broken_plugin_fails_in_one_line(broken_site: Path, tmp_path: Path, env_id: str,
                                                      expected: str) -> None:
    config = tiny_config(tmp_path / f"{env_id}.yaml", env_id)
    ran = societas("run", str(config), "--out", "runs", "--quiet", site=broken_site, cwd=tmp_path)
    assert ran.returncode == 2
    (line,) = ran.stderr.strip().splitlines()
    assert line.startswith(f"error: {config}: ") and expected in line
    assert "Traceback" not in ran.stderr and not (tmp_path / "runs").exists()
