"""The report's figures kept on disk per complete run, so a finished run's figures are drawn once.

Drawing is most of a report's time once the tables are read (a 15-panel grid
or an annotated 15 x 15 heatmap takes seconds, whatever the run's size). A
complete run's files no longer change, so each of its figures is a function
of those files and of the code that draws them; the key hashes both (each
file's name, size and modification time; the version of societas, the source
of `societas.analysis` and matplotlib's version) with the figure's caption and
its place among the figures of that caption. A run still playing, or stopped
before its end, is drawn afresh every time.

The PNGs live under the societas cache directory (`$SOCIETAS_CACHE_DIR`, else
`$XDG_CACHE_HOME/societas` or `~/.cache/societas`) in `figures/`, never in a
run directory: `societas view` only reads runs. Deleting the folder is safe.
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass, field
from functools import cache
from importlib import metadata
from pathlib import Path

import societas
from societas.cache_dir import cache_dir

RUN_FILES = ("config.yaml", "summary.json", "events", "llm_calls", "episodes", "lineage")
"""What a run's figures are drawn from: its config, summary and tables (their Parquet parts)."""


def cache_root() -> Path:
    return cache_dir() / "figures"


@cache
def code_key() -> str:
    """The drawing code's identity: societas' version, the analysis package's source, matplotlib's version."""
    digest = hashlib.sha256(societas.__version__.encode())
    here = Path(__file__).parent
    for source in sorted(here.rglob("*.py")):
        digest.update(str(source.relative_to(here)).encode() + b"\0" + source.read_bytes())
    try:
        digest.update(metadata.version("matplotlib").encode())
    except metadata.PackageNotFoundError:
        pass
    return digest.hexdigest()


def run_key(path: Path) -> str | None:
    """A hash of a complete run's files (name, size, modification time); None for a run not complete."""
    path = Path(path)
    if not (path / "summary.json").is_file():
        return None
    digest = hashlib.sha256(str(path.resolve()).encode())
    for name in RUN_FILES:
        item = path / name
        files = sorted(item.glob("*.parquet")) if item.is_dir() else [item] if item.is_file() else []
        for f in files:
            st = f.stat()
            digest.update(f"{f.relative_to(path)}\0{st.st_size}\0{st.st_mtime_ns}\n".encode())
    return digest.hexdigest()


@dataclass(slots=True)
class FigureCache:
    """The figures of one report (one run, or a comparison of several), keyed under `base`."""

    base: str
    root: Path
    seen: dict[str, int] = field(default_factory=dict)

    def path(self, label: str) -> Path:
        n = self.seen.get(label, 0)
        self.seen[label] = n + 1
        key = hashlib.sha256(f"{self.base}\0{label}\0{n}".encode()).hexdigest()
        return self.root / key[:2] / f"{key}.png"

    def png(self, label: str, draw: Callable[[], bytes]) -> bytes:
        target = self.path(label)
        try:
            return target.read_bytes()
        except OSError:
            pass
        data = draw()
        try:
            target.parent.mkdir(parents=True, exist_ok=True)
            tmp = target.with_name(f".{target.name}.{os.getpid()}.tmp")
            tmp.write_bytes(data)
            tmp.replace(target)
        except OSError:
            pass  # a read-only cache: the figure is drawn and shown all the same
        return data


_CURRENT: ContextVar[FigureCache | None] = ContextVar("societas_figure_cache", default=None)


@contextmanager
def for_runs(paths: Sequence[Path], *, enabled: bool = True) -> Iterator[FigureCache | None]:
    """Inside the block, figures come from the cache of these runs when every one is complete."""
    keys = [run_key(p) for p in paths] if enabled else [None]
    cache_ = (FigureCache(hashlib.sha256("\0".join([code_key(), *keys]).encode()).hexdigest(), cache_root())  # type: ignore[list-item]
              if keys and all(k is not None for k in keys) else None)
    token = _CURRENT.set(cache_)
    try:
        yield cache_
    finally:
        _CURRENT.reset(token)


def png(label: str, draw: Callable[[], bytes]) -> bytes:
    """The PNG of the figure `label` names in the current report: from the cache, else drawn (and kept)."""
    current = _CURRENT.get()
    return draw() if current is None else current.png(label, draw)
