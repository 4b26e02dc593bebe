"""The HTML pieces a report is built of: escaped text, numbers, tables, inline figures, a section's tables.

Shared by the report's own parts (`report_parts`), each study's figures (in
its module under `sections/`) and the page (`report`), so every table and
figure of a report is written one way. matplotlib is imported at the first
figure drawn, not here: a report whose figures are all cached never loads it.
"""

from __future__ import annotations

import base64
import html
import io
import struct
from collections.abc import Callable
from types import ModuleType
from typing import TYPE_CHECKING, Any

import pandas as pd

from societas.analysis import figure_cache
from societas.analysis.sections import SectionView, fmt

if TYPE_CHECKING:
    from matplotlib.figure import Figure

MAX_TABLE_ROWS = 40
"""Longer tables are cut to their first rows (with a note): a report is read, not searched."""


def esc(x: Any) -> str:
    """`x` as text safe inside HTML, attribute values included."""
    return html.escape(str(x), quote=True)


def pct(x: Any, digits: int = 0) -> str:
    return "–" if x is None or pd.isna(x) else f"{x:.{digits}%}"


def num(digits: int) -> Callable[[Any], str]:
    """A formatter of numbers with `digits` decimals and thousands separators ("–" for a missing value)."""
    return lambda x: "–" if x is None or pd.isna(x) else f"{round(x, digits) + 0.0:,.{digits}f}"  # no "-0.00"


def integer(x: Any) -> str:
    return "–" if x is None or pd.isna(x) else f"{int(x):,}"


def html_table(frame: pd.DataFrame, formats: dict[str, Callable[[Any], str]] | None = None,
               columns: dict[str, str] | None = None, index: bool = False, max_rows: int = MAX_TABLE_ROWS,
               what: str = "rows", lead: int | None = None) -> str:
    """A pandas table as HTML with readable numbers and headers; long tables are cut with a note."""
    df = frame
    note = ""
    if len(df) > max_rows:
        note = f'<p class="note">First {max_rows} of {len(df):,} {what}.</p>'
        df = df.head(max_rows)
    fmts = dict(formats or {})
    shown = df.copy()
    for col in shown.columns:
        f = fmts.get(col) if not isinstance(col, tuple) else fmts.get(col[0])
        if f is not None:
            shown[col] = shown[col].map(f)
        elif pd.api.types.is_float_dtype(shown[col]):
            shown[col] = shown[col].map(num(2))
    if lead is None:  # leading text columns are left-aligned, numbers right-aligned
        lead = 0
        for col in df.columns:
            if pd.api.types.is_numeric_dtype(df[col]) or pd.api.types.is_bool_dtype(df[col]):
                break
            lead += 1
    if columns:
        shown = shown.rename(columns=columns)
    classes = ["data"] + ([f"lead-{min(lead, 4)}"] if lead > 1 else [])
    body = shown.to_html(index=index, classes=classes, border=0, escape=True, na_rep="–")
    return f'<div class="scroll">{body}</div>{note}'


def view_html(view: SectionView) -> str:
    """A study section's tables as the command line prints them: same columns, labels, formats and caveats."""
    out = f"<p>{esc(view.intro)}</p>" if view.intro else ""
    shown = None
    for table in view.tables:
        if len(view.tables) > 1:
            out += f"<h3>{esc(table.title[0].upper() + table.title[1:])}</h3>"
        st = table.standing
        if st is not None and st is not shown:  # what the findings stand on, before them
            shown = st
            caveats = table.caveats()
            if caveats:
                out += ('<div class="banner"><b>' + "<br>".join(esc(c) for c in caveats) + "</b><br>"
                        + esc(st.summary()) + "</div>")
            else:
                out += f"<p class='note'>{esc(st.summary())}.</p>"
        frame = table.frame[list(table.columns)]
        formats = {c: (lambda kind: lambda x: fmt(kind, x))(k) for c, (_, k) in table.columns.items()}
        kinds = [k for _, k in table.columns.values()]
        lead = next((n for n, k in enumerate(kinds) if k != "text"), len(kinds))  # text columns left-aligned
        out += html_table(frame, formats=formats, columns={c: label for c, (label, _) in table.columns.items()},
                          what="rows", lead=lead)
        if table.notes:
            out += f"<p class='note'>{esc(table.notes)}.</p>"
    return out


def plots() -> ModuleType:
    """The figures module, imported at the first figure drawn: matplotlib costs seconds to import."""
    from societas.analysis import plots as module

    return module


def naming_plots() -> ModuleType:
    """The naming game's figures module, imported at its first figure drawn (as `plots`)."""
    from societas.analysis import naming_plots as module

    return module


def _png_size(data: bytes) -> tuple[int, int]:
    return struct.unpack(">II", data[16:24])


def png(draw: Callable[[], Figure]) -> bytes:
    """The figure `draw` builds, as PNG through Agg (never a GUI backend), in the house style."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg

    style = plots().plot_style
    fig = draw()
    FigureCanvasAgg(fig)
    buf = io.BytesIO()
    with style():
        fig.savefig(buf, format="png", dpi=150)
    return buf.getvalue()


def figure(draw: Callable[[], Figure], caption: str, alt: str) -> str:
    """A figure as an inline PNG, shown at its print size (1 inch = 96 CSS px) so the 10 pt text reads as 10 pt.

    `draw` is called only when the figure cache of the report being written
    has no PNG for this figure (a complete run's figures are drawn once).
    """
    data = figure_cache.png(f"{alt}\n{caption}", lambda: png(draw))
    width = round(_png_size(data)[0] / 150 * 96)
    b64 = base64.b64encode(data).decode("ascii")
    return (f'<figure><img src="data:image/png;base64,{b64}" alt="{esc(alt)}" style="width:{width}px">'
            f"<figcaption>{caption}</figcaption></figure>")
