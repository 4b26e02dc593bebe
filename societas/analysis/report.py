"""A self-contained HTML report of one run, or a comparison of several.

`write_report` reads run directories and writes one `report.html` with
everything inline (CSS, figures as base64 PNG, no scripts, fonts or links
to other files), so the file can be mailed, attached to a paper's
supplement or opened years later without the run directory next to it.

The report says what a reader needs to trust a result before the result
itself: which runs, seeds and config, whether the run finished, what the
models cost in calls and tokens, and how often agents answered invalidly.
Then the key tables and figures of the game: per-agent cooperation and
payoffs for repeated matrix games, per-generation resources, cooperation,
reciprocity and policy shares for the donor game. Several runs also get a
comparison table and overlaid curves.

This module assembles the page: the parts every run has (`report_parts`),
then its study's section, tables and figures (`sections/`, one module per
study), all written with the same pieces (`report_html`); the comparison of
several runs; the file written.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import pandas as pd

from societas.analysis import figure_cache
from societas.analysis.cooperation import agent_table
from societas.analysis.donor import generation_table
from societas.analysis.load import Run, distinct_values, load_run, projection
from societas.analysis.report_html import esc, figure, html_table, integer, num, pct, plots, view_html
from societas.analysis.report_parts import (
    episode_count,
    overview_html,
    reliability_html,
    run_models,
    transcript_sample_html,
    usage_html,
)
from societas.analysis.sections import Section, section_for
from societas.analysis.transcript import EVENT_COLUMNS as TRANSCRIPT_COLUMNS
from societas.analysis.transcript_html import TRANSCRIPT_CSS

REPORT_COLUMNS = ("run_id", "env", "agent", "policy", "model", "valid", "retries", "prompt_tokens",
                  "completion_tokens", "latency_s")
"""The events columns the report's own parts read (run, models and tokens, invalid actions, standing)."""
COMPARISON_COLUMNS = ("run_id", "env", "agent", "policy", "cooperated", "valid", "reward")
"""What the comparison of several runs reads besides each run's section."""
REPORT_CALL_COLUMNS = ("agent", "model", "reply", "error", "latency_s", "prompt_tokens", "completion_tokens",
                       "cache_hit", "cached_tokens")
"""The llm_calls columns the report's tables read when it shows no transcripts (prompts are left on disk)."""
OPTIONAL_COLUMNS = ("cached_tokens", "reasoning")
"""Columns added after some runs were recorded: read where a run has them, which the readers check."""

CSS = """
:root { --ink: #1f2328; --muted: #57606a; --line: #d0d7de; --soft: #f6f8fa; --accent: #0072B2; }
* { box-sizing: border-box; }
body { margin: 0; color: var(--ink); background: #fff; font: 15px/1.5 -apple-system, "Segoe UI", Helvetica,
       Arial, sans-serif; }
main { max-width: 1100px; margin: 0 auto; padding: 24px 32px 64px; }
h1 { font-size: 26px; margin: 0 0 4px; }
h2 { font-size: 20px; margin: 40px 0 8px; padding-bottom: 4px; border-bottom: 2px solid var(--line); }
h3 { font-size: 16px; margin: 28px 0 6px; }
h4 { font-size: 14px; margin: 20px 0 6px; }
p { margin: 6px 0 10px; max-width: 80ch; }
.meta, .note, figcaption { color: var(--muted); font-size: 13px; }
code, pre { font: 12.5px/1.45 ui-monospace, SFMono-Regular, Menlo, Consolas, monospace; }
code { background: var(--soft); padding: 1px 4px; border-radius: 4px; }
pre { background: var(--soft); border: 1px solid var(--line); border-radius: 6px; padding: 10px 12px;
      overflow-x: auto; max-height: 480px; }
details { margin: 8px 0 12px; }
summary { cursor: pointer; color: var(--accent); font-weight: 600; }
.banner { border-left: 4px solid #D55E00; background: #fff4ec; padding: 8px 12px; margin: 12px 0; }
.scroll { overflow-x: auto; margin: 6px 0 14px; }
table.data { border-collapse: collapse; font-size: 13px; font-variant-numeric: tabular-nums; }
table.data th, table.data td { padding: 4px 10px; border-bottom: 1px solid var(--line); text-align: right;
                               white-space: nowrap; }
table.data th { background: var(--soft); font-weight: 600; vertical-align: bottom; }
table.data td:first-child, table.data th:first-child { text-align: left; }
table.data td.text, table.data th.text { text-align: left; }
table.lead-2 td:nth-child(-n+2), table.lead-2 th:nth-child(-n+2), table.lead-3 td:nth-child(-n+3),
table.lead-3 th:nth-child(-n+3), table.lead-4 td:nth-child(-n+4), table.lead-4 th:nth-child(-n+4) { text-align: left; }
table.data tbody tr:hover { background: #eef4fb; }
figure { margin: 14px 0 22px; }
figure img { display: block; max-width: 100%; height: auto; }
nav ul { margin: 4px 0; padding-left: 20px; }
""" + TRANSCRIPT_CSS + """
@media print { main { max-width: none; padding: 0; } h2 { break-before: auto; } figure, table { break-inside: avoid; }
               details { display: block; } }
"""


@dataclass(slots=True)
class _Section:
    anchor: str
    title: str
    body: str


# --------------------------------------------------------------------------- facts about runs


def _kind(run: Run) -> str:
    """'donor' for the donor game, 'matrix' for two-player matrix games, 'other' for anything else."""
    if run.events.empty:
        return "empty"
    envs = set(run.events["env"].dropna())
    if "donor-game" in envs:
        return "donor"
    for env, kind in (("feedback-loop", "lockin"), ("tom-observer", "tom"), ("partner-adaptation", "partner"),
                      ("commons", "commons"), ("naming-game", "naming")):
        if env in envs:
            return kind
    if envs == {"repeated-matrix-game"}:
        return "matrix"
    return "other"


def _labels(runs: Sequence[Run]) -> dict[str, str]:
    """Short, distinct names for legends and column headers: what tells the runs apart.

    The config name if the configs differ, else the models, else the seed,
    else their combination; the run id (unique by construction) when none of
    these differ.
    """
    facts = {
        "config": [str(r.config.get("name", "?")) for r in runs],
        "models": [", ".join(run_models(r)) or "no model" for r in runs],
        "seed": [f"seed {r.config.get('seed', '?')}" for r in runs],
    }
    combined = [" · ".join(v) for v in zip(*facts.values())]
    for values in (*facts.values(), combined):
        if len(set(values)) == len(runs):
            return {r.run_id: v for r, v in zip(runs, values)}
    return {r.run_id: r.run_id for r in runs}


# --------------------------------------------------------------------------- sections of one run


def _run_sections(run: Run, prefix: str, transcripts: bool = True, playing: bool = False) -> list[_Section]:
    sections = [
        _Section(f"{prefix}overview", "Run", overview_html(run, playing)),
        _Section(f"{prefix}models", "Models and tokens", usage_html(run)),
        _Section(f"{prefix}reliability", "Invalid actions and retries", reliability_html(run)),
    ]
    section = section_for(run)
    if section is None:
        sections.append(_Section(f"{prefix}results", "Results", "<p>No events on disk yet.</p>"))
    else:
        view = section.build(run)
        body = view_html(view) + (section.figures(run, view) if section.figures is not None else "")
        sections.append(_Section(f"{prefix}{view.key}", view.title, body))
    if transcripts:
        sections.append(_Section(f"{prefix}transcripts", "Transcripts", transcript_sample_html(run)))
    return sections


def report_sections(run: Run, *, transcripts: bool = True, playing: bool = False) -> list[tuple[str, str, str]]:
    """The sections of one run's report as (anchor, title, HTML body), for pages that show them live
    (`societas view`); `transcripts=False` leaves out the transcript sample, `playing=True` says the run
    is still under way rather than stopped. Styled by `CSS`."""
    with figure_cache.for_runs([run.path], enabled=not playing):
        return [(s.anchor, s.title, s.body)
                for s in _run_sections(run, prefix="", transcripts=transcripts, playing=playing)]


def comparison_html(runs: Sequence[Run]) -> str:
    """The comparison section of several runs (facts side by side, agents and curves across runs) as HTML."""
    runs = list(runs)
    with figure_cache.for_runs([r.path for r in runs]):
        return _comparison(runs, _labels(runs))


def _nested(run: Run, i: int, label: str) -> _Section:
    """One run of a comparison as a single section, its parts one heading level down."""
    parts = _run_sections(run, prefix=f"run{i}-")
    body = parts[0].body + "".join(
        f'<h3 id="{p.anchor}">{esc(p.title)}</h3>' + p.body.replace("<h3>", "<h4>").replace("</h3>", "</h4>")
        for p in parts[1:])
    return _Section(f"run{i}", f"Run {i}: {label}", body)


# --------------------------------------------------------------------------- comparison


def _comparison(runs: list[Run], labels: dict[str, str]) -> str:
    facts: dict[str, list[str]] = {k: [] for k in (
        "run id", "config", "seed", "models", "complete", "episodes", "decisions", "model calls", "tokens",
        "invalid actions", "cooperation", "payoff / round")}
    for r in runs:
        ev, calls = r.events, r.llm_calls
        coop = ev["cooperated"].dropna().astype(bool).mean() if len(ev) and ev["cooperated"].notna().any() else None
        tokens = (int(calls["prompt_tokens"].fillna(0).sum() + calls["completion_tokens"].fillna(0).sum())
                  if len(calls) else 0)
        for key, value in (
                ("run id", r.run_id), ("config", r.config.get("name", "?")), ("seed", r.config.get("seed", "?")),
                ("models", ", ".join(run_models(r)) or "–"),
                ("complete", "yes" if r.summary is not None else "no (no summary.json)"),
                ("episodes", integer(episode_count(r))), ("decisions", integer(len(ev))),
                ("model calls", integer(len(calls))),
                ("tokens", integer(tokens)),
                ("invalid actions", pct((~ev["valid"].astype(bool)).mean(), 1) if len(ev) else "–"),
                ("cooperation", pct(coop)),
                ("payoff / round", num(2)(ev["reward"].mean()) if len(ev) and _kind(r) == "matrix" else "–")):
            facts[key].append(str(value))
    overview = pd.DataFrame(facts, index=[labels[r.run_id] for r in runs]).T
    overview.index.name = ""
    out = html_table(overview.reset_index(), what="facts", lead=1)
    out += ("<p class='note'>cooperation: share of all decisions that cooperated (matrix games: the cooperative "
            "option; donor game: a donation above 0).</p>")
    matrix = [r for r in runs if _kind(r) == "matrix"]
    order = [labels[r.run_id] for r in runs]
    if len(matrix) > 1:
        out += "<h3>Agents across runs</h3>" + _agents_side_by_side(matrix, labels)
        events = pd.concat([r.events.assign(run=labels[r.run_id]) for r in matrix], ignore_index=True)
        events["run"] = pd.Categorical(events["run"], categories=order)  # legend in the order of the runs
        if events["cooperated"].notna().any():
            out += figure(lambda: plots().cooperation_by_round(events, group="run",
                                                               title="Cooperation by round, per run"),
                          "All agents of each run; bands: 95% Wilson intervals over decisions.",
                          "cooperation by round per run")
    naming = [r for r in runs if _kind(r) == "naming"]
    if len(naming) > 1:
        # Imported here: a study's module registers its section on import, and the built-ins keep their order.
        from societas.analysis.sections.naming import adoption_figure, sweep_view

        view = sweep_view(pd.concat([r.events for r in naming], ignore_index=True))
        if view is not None:
            out += "<h3>Committed minority across runs</h3>" + view_html(view) + adoption_figure(view)
    donor = [r for r in runs if _kind(r) == "donor"]
    if len(donor) > 1:
        tables = pd.concat([generation_table(r.events, r.episodes).assign(run=labels[r.run_id]) for r in donor],
                           ignore_index=True)
        tables["run"] = pd.Categorical(tables["run"], categories=order)
        wide = tables.groupby(["generation", "run"])[["resources", "cooperation_rate"]].mean().unstack("run")
        wide = wide.reindex(columns=[(m, r) for m in ("resources", "cooperation_rate") for r in order
                                     if (m, r) in wide.columns])
        wide.columns = pd.MultiIndex.from_tuples([(m.replace("_rate", ""), run) for m, run in wide.columns])
        out += "<h3>Generations across runs</h3>" + html_table(
            wide.reset_index(), formats={"generation": integer, "resources": num(1), "cooperation": pct},
            what="generations")
        out += figure(lambda: plots().resources_by_generation(tables, ylabel="final resources per game (units)",
                                                              title="Resources by generation, per run"),
                      "Mean over societies; bands: 95% t intervals across societies (cut at 0).",
                      "resources by generation per run")
        out += figure(lambda: plots().resources_by_generation(tables, metric="cooperation_rate", share=True,
                                                              ylabel="donations above 0",
                                                              title="Cooperation by generation, per run"),
                      "Mean over societies; bands: 95% t intervals.", "cooperation by generation per run")
    return out


def _agents_side_by_side(runs: list[Run], labels: dict[str, str]) -> str:
    parts = []
    for r in runs:
        t = agent_table(r.events).set_index("agent")[["cooperation_rate", "mean_payoff"]]
        t.columns = pd.MultiIndex.from_tuples([("cooperation", labels[r.run_id]), ("payoff / round", labels[r.run_id])])
        parts.append(t)
    wide = pd.concat(parts, axis=1)
    wide = wide[[c for m in ("cooperation", "payoff / round") for c in wide.columns if c[0] == m]]
    order = wide.xs("payoff / round", axis=1, level=0).mean(axis=1).sort_values(ascending=False).index
    wide = wide.loc[order]
    wide.index.name = "agent"
    return html_table(wide.reset_index(), formats={"cooperation": pct, "payoff / round": num(2)}, what="agents")


# --------------------------------------------------------------------------- the page


def _page(title: str, subtitle: str, sections: list[_Section]) -> str:
    toc = "".join(f'<li><a href="#{s.anchor}">{esc(s.title)}</a></li>' for s in sections)
    body = "".join(f'<section id="{s.anchor}"><h2>{esc(s.title)}</h2>{s.body}</section>' for s in sections)
    stamp = time.strftime("%Y-%m-%d %H:%M")
    return (f'<!doctype html>\n<html lang="en"><head><meta charset="utf-8">'
            f'<meta name="viewport" content="width=device-width, initial-scale=1">'
            f"<title>{esc(title)}</title><style>{CSS}</style></head><body><main>"
            f"<header><h1>{esc(title)}</h1><p class='meta'>{subtitle} · report written {stamp}</p></header>"
            f"<nav><ul>{toc}</ul></nav>{body}</main></body></html>\n")


def _output(run_dirs: list[Path], out: Path | None) -> Path:
    """One run's report goes into it; a comparison beside the runs it compares (their common folder)."""
    if out is None:
        if len(run_dirs) == 1:
            return run_dirs[0] / "report.html"
        import hashlib
        import os

        where = Path(os.path.commonpath([str(p.resolve().parent) for p in run_dirs]))
        digest = hashlib.sha1("\n".join(sorted(p.name for p in run_dirs)).encode()).hexdigest()[:8]
        return where / f"comparison-{len(run_dirs)}-runs-{digest}.html"
    out = Path(out)
    return out if out.suffix.lower() in (".html", ".htm") else out / "report.html"


def run_section(path: str | Path) -> Section | None:
    """The study section of the run at `path`, found from its events' `env` column alone (None: no events)."""
    p = Path(path)
    if not (p / "config.yaml").is_file():
        raise FileNotFoundError(f"{p}: not a run directory (no config.yaml)")
    envs = distinct_values(p / "events", "env")
    if not envs:
        return None
    probe = Run(path=p, events=pd.DataFrame({"env": envs}), llm_calls=pd.DataFrame(), episodes=pd.DataFrame(),
                lineage=pd.DataFrame())
    return section_for(probe)


def load_for_report(path: str | Path, *, transcripts: bool = True, comparison: bool = False) -> Run:
    """The run at `path` with the events columns its report reads, each read once, and nothing else.

    Those are the report's own (`REPORT_COLUMNS`), its study section's
    (`Section.columns`; every column for a section that names none), the
    transcripts' when `transcripts` and the comparison's when `comparison`.
    Without transcripts the llm_calls' prompts stay on disk too. A column the
    run lacks is a MissingColumns that names it and who reads it.
    """
    p = Path(path)
    section = run_section(p)
    asked: dict[str, Sequence[str]] = {"the report": REPORT_COLUMNS}
    if section is not None and section.columns is not None:
        asked[f"the report's section {section.key!r}"] = section.columns
    if transcripts:
        asked["the report's transcripts"] = TRANSCRIPT_COLUMNS
    if comparison:
        asked["the comparison of runs"] = COMPARISON_COLUMNS
    for who, columns in asked.items():
        projection(p / "events", columns, who, OPTIONAL_COLUMNS)
    wanted = None if section is not None and section.columns is None else [c for cols in asked.values() for c in cols]
    return load_run(p, columns=wanted, call_columns=None if transcripts else REPORT_CALL_COLUMNS,
                    optional=OPTIONAL_COLUMNS, who="the report")


def write_report(run_dirs: Sequence[str | Path], out: str | Path | None = None) -> Path:
    """Write a self-contained `report.html` for one run or a comparison of several; return its path.

    One run: written into the run directory unless `out` is given. Several
    runs: a comparison, written to `out` or beside the runs (in the folder that
    holds them, named after the set of runs). `out` may be
    a folder or a file name ending in .html. A path that is not a run
    directory raises FileNotFoundError before anything is written.
    """
    if not run_dirs:
        raise ValueError("write_report needs at least one run directory")
    paths = [Path(p) for p in run_dirs]
    runs = [load_for_report(p, comparison=len(paths) > 1) for p in paths]
    with figure_cache.for_runs(paths):
        html_text = _report_html(runs)
    target = _output(paths, Path(out) if out is not None else None)
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = target.with_name(f".{target.name}.tmp")
    tmp.write_text(html_text, encoding="utf-8")
    tmp.replace(target)
    return target


def _report_html(runs: list[Run]) -> str:
    if len(runs) == 1:
        run = runs[0]
        name = run.config.get("name", run.run_id)
        sections = _run_sections(run, prefix="")
        subtitle = f"run <code>{esc(run.run_id)}</code>, seed {esc(run.config.get('seed', '?'))}"
        html_text = _page(f"{name}: run report", subtitle, sections)
    else:
        labels = _labels(runs)
        sections = [_Section("comparison", "Comparison", _comparison(runs, labels))]
        sections += [_nested(run, i, labels[run.run_id]) for i, run in enumerate(runs, start=1)]
        subtitle = f"{len(runs)} runs: " + ", ".join(f"<code>{esc(r.run_id)}</code>" for r in runs)
        html_text = _page(f"Comparison of {len(runs)} runs", subtitle, sections)
    return html_text
