"""The report's tables and figures for the app's pages, rendered once per version of a run.

The HTML is the report's own (`societas.analysis.report.report_sections`), so
a run reads the same in the viewer and in `report.html`; a run is read with
the columns its report needs (`load_for_report`) and a complete run's figures
come from the figure cache once drawn (`societas.analysis.figure_cache`, under
the societas cache directory, never the run's). Figures go through
matplotlib (imported at the first figure drawn, so the server starts quickly),
whose style context changes process-wide settings, so one
render runs at a time; a render is kept per (run, version) and a page polling
a live run gets it again until a new part lands. While a run plays, a new
render waits at least `LIVE_GAP` times as long as the last one took, so a
viewer left open on a big run cannot take more than a share of the CPU from it.
"""

from __future__ import annotations

import threading
import time
from collections import OrderedDict
from dataclasses import dataclass
from pathlib import Path

KEEP = 32
"""Renders kept (runs and versions together)."""
LIVE_GAP = 3.0
"""A live run is re-rendered at most every LIVE_GAP x (its last render's time)."""


@dataclass(frozen=True, slots=True)
class Rendered:
    version: str
    sections: list[tuple[str, str, str]]
    seconds: float
    at: float


class Renderer:
    """Report sections per run version, and comparisons, rendered one at a time and cached."""

    def __init__(self) -> None:
        self._lock = threading.Lock()  # matplotlib's style context is process-wide
        self._cache: OrderedDict[tuple[str, ...], Rendered] = OrderedDict()
        self._latest: dict[str, Rendered] = {}

    def _keep(self, key: tuple[str, ...], item: Rendered) -> None:
        self._cache[key] = item
        self._cache.move_to_end(key)
        while len(self._cache) > KEEP:
            self._cache.popitem(last=False)

    def peek(self, path: Path, version: str) -> Rendered | None:
        """The render of this version if there is one already, without waiting for a render under way."""
        return self._cache.get((str(path), version))

    def run(self, path: Path, version: str, *, live: bool) -> Rendered:
        """The report sections of the run at `path` as it is at `version` (or the last render, if too soon)."""
        key = (str(path), version)
        with self._lock:
            hit = self._cache.get(key)
            if hit is not None:
                return hit
            last = self._latest.get(str(path))
            if live and last is not None and time.time() - last.at < LIVE_GAP * last.seconds:
                return last  # the next poll picks the new version up
            from societas.analysis.report import load_for_report, report_sections

            started = time.perf_counter()
            run = load_for_report(path, transcripts=False)
            sections = report_sections(run, transcripts=False, playing=live) if not run.events.empty else []
            item = Rendered(version, sections, time.perf_counter() - started, time.time())
            self._keep(key, item)
            self._latest[str(path)] = item
            return item

    def comparison(self, paths: list[Path], versions: list[str]) -> str:
        key = ("compare", *map(str, paths), *versions)
        with self._lock:
            hit = self._cache.get(key)
            if hit is not None:
                return hit.sections[0][2]
            from societas.analysis.report import comparison_html, load_for_report

            started = time.perf_counter()
            runs = [load_for_report(p, transcripts=False, comparison=True) for p in paths]
            html = comparison_html([r for r in runs if not r.events.empty]) if any(
                not r.events.empty for r in runs) else "<p>None of these runs has decisions on disk yet.</p>"
            self._keep(key, Rendered("", [("comparison", "Comparison", html)], time.perf_counter() - started,
                                     time.time()))
            return html
