"""The societas cache directory: model replies, server logs, converted model files, drawn figures."""

from __future__ import annotations

import os
from pathlib import Path


def cache_dir() -> Path:
    """`$SOCIETAS_CACHE_DIR`, else `$XDG_CACHE_HOME/societas`, else `~/.cache/societas`."""
    root = os.environ.get("SOCIETAS_CACHE_DIR") or os.path.join(
        os.environ.get("XDG_CACHE_HOME") or os.path.expanduser("~/.cache"), "societas")
    return Path(root)
