"""Throwaway plug-in distributions for tests.

A distribution here is a folder with modules and a `NAME-VERSION.dist-info`
holding METADATA and entry_points.txt: exactly what an installer leaves in
site-packages, so putting the folder on sys.path (or PYTHONPATH) installs it
for importlib.metadata, and deleting it uninstalls it.
"""

from __future__ import annotations

import textwrap
from collections.abc import Callable, Mapping
from pathlib import Path

MakeDist = Callable[..., Path]


def write_dist(
    root: Path,
    name: str,
    entry_points: Mapping[str, Mapping[str, str]],
    modules: Mapping[str, str] | None = None,
    *,
    summary: str = "",
) -> Path:
    """Write distribution `name` (its modules and dist-info) into folder `root`; return `root`."""
    root.mkdir(parents=True, exist_ok=True)
    for filename, source in (modules or {}).items():
        path = root / filename
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(textwrap.dedent(source))
    info = root / f"{name.replace('-', '_')}-0.1.dist-info"
    info.mkdir()
    meta = f"Metadata-Version: 2.1\nName: {name}\nVersion: 0.1\n" + (f"Summary: {summary}\n" if summary else "")
    (info / "METADATA").write_text(meta)
    lines = []
    for group, eps in entry_points.items():
        lines.append(f"[{group}]")
        lines.extend(f"{k} = {v}" for k, v in eps.items())
        lines.append("")
    (info / "entry_points.txt").write_text("\n".join(lines))
    return root
