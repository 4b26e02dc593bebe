"""The documentation builds in strict mode, and the commands and examples it shows actually run.

A fenced block preceded by the line `<!-- docs-test: run -->` is executed:
the quickstart's blocks in order in one empty folder (bash as is, Python as a
script), each marked Python block of the other pages in a folder of its own.
Commands that need an API key or a GPU are never marked.
"""

from __future__ import annotations

import importlib.util
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
DOCS = REPO / "docs"
MARKED = re.compile(r"^<!-- docs-test: run -->\n```(\w+)[^\n]*\n(.*?)^```$", re.MULTILINE | re.DOTALL)

needs_mkdocs = pytest.mark.skipif(
    importlib.util.find_spec("mkdocs") is None or importlib.util.find_spec("material") is None,
    reason="needs mkdocs and mkdocs-material (pip install -e '.[docs]')",
)


def marked_blocks(page: Path) -> list[tuple[str, str]]:
    """(language, code) of every marked block of a page, in order."""
    return MARKED.findall(page.read_text())


def child_env(tmp_path: Path) -> dict[str, str]:
    # Runs and the response cache stay in the test's folder.
    return dict(os.environ, SOCIETAS_CACHE_DIR=str(tmp_path / "cache"), NO_MKDOCS_2_WARNING="1",
                PYTHONPATH=os.pathsep.join(filter(None, [str(REPO), os.environ.get("PYTHONPATH")])))


@pytest.mark.docs
@needs_mkdocs
def test_mkdocs_build_strict(tmp_path: Path) -> None:
    site = tmp_path / "site"
    done = subprocess.run([sys.executable, "-m", "mkdocs", "build", "--strict", "--quiet",
                           "-f", str(REPO / "mkdocs.yml"), "-d", str(site)],
                          cwd=REPO, env=child_env(tmp_path), capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stdout + done.stderr
    cli = (site / "reference" / "cli" / "index.html").read_text()
    assert "societas run" in cli and "--model" in cli and "<!-- generated" not in cli
    config = (site / "reference" / "config" / "index.html").read_text()
    assert "ExperimentConfig" in config and "max_in_flight" in config
    assert '"title": "ExperimentConfig"' in (site / "reference" / "config.schema.json").read_text()


def test_every_generated_marker_is_known() -> None:
    sys.path.insert(0, str(DOCS / "gen"))
    try:
        import hooks  # docs/gen/hooks.py
    finally:
        sys.path.remove(str(DOCS / "gen"))
    for page in DOCS.rglob("*.md"):
        hooks.render(page.read_text())  # raises on an unknown marker
    assert "| `--seed` |" in hooks.cli_markdown()


@pytest.mark.docs
def test_quickstart_commands_run(tmp_path: Path) -> None:
    blocks = marked_blocks(DOCS / "quickstart.md")
    assert [lang for lang, _ in blocks].count("bash") >= 3, "the quickstart lost its tested commands"
    lines = ["set -euo pipefail",
             f'societas() {{ "{sys.executable}" -m societas.cli "$@"; }}',
             f'python() {{ "{sys.executable}" "$@"; }}']
    for i, (lang, code) in enumerate(blocks):
        if lang == "bash":
            lines.append(code)
        elif lang == "python":
            script = tmp_path / f"block_{i}.py"
            script.write_text(code)
            lines.append(f'python "{script}"')
        else:
            pytest.fail(f"quickstart.md: cannot run a marked {lang} block")
    work = tmp_path / "work"
    work.mkdir()
    done = subprocess.run(["bash", "-c", "\n".join(lines)], cwd=work, env=child_env(tmp_path),
                          capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    assert "run directory: runs/pd-tournament-" in done.stdout
    assert "language-model agents: llm, llm-scot" in done.stdout
    assert len(list((work / "runs").glob("pd-tournament-*/summary.json"))) == 2


GUIDE_BLOCKS = [
    pytest.param(page, i, code, id=f"{page.relative_to(DOCS)}-{i}")
    for page in sorted(DOCS.rglob("*.md")) if page.name != "quickstart.md"
    for i, (lang, code) in enumerate(marked_blocks(page)) if lang == "python"
]


def test_guides_have_tested_examples() -> None:
    pages = {p.values[0].name for p in GUIDE_BLOCKS}
    assert {"writing-a-game.md", "writing-an-agent.md", "writing-a-model-backend.md", "analysis.md"} <= pages


@pytest.mark.docs
@pytest.mark.parametrize(("page", "index", "code"), GUIDE_BLOCKS)
def test_guide_examples_run(tmp_path: Path, page: Path, index: int, code: str) -> None:
    script = tmp_path / "example.py"
    script.write_text(code)
    done = subprocess.run([sys.executable, str(script)], cwd=tmp_path, env=child_env(tmp_path),
                          capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, f"{page.name} block {index}:\n{done.stdout[-2000:]}{done.stderr[-3000:]}"
