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
"""

from __future__ import annotations

import base64
import html
import io
import struct
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType
from typing import TYPE_CHECKING, Any

import pandas as pd

from societas.analysis import figure_cache
from societas.analysis.cooperation import agent_table, paired_rounds
from societas.analysis.cost import decision_usage, usage_table
from societas.analysis.donor import generation_table, strategy_shares
from societas.analysis.load import Run, distinct_values, load_run, projection
from societas.analysis.reliability import call_errors, reliability_table
from societas.analysis.sections import Section, SectionView, fmt, section_for
from societas.analysis.transcript import EVENT_COLUMNS as TRANSCRIPT_COLUMNS
from societas.analysis.transcript import invalid_decisions, sample_episodes, transcript
from societas.analysis.transcript_html import TRANSCRIPT_CSS, transcript_html

if TYPE_CHECKING:
    from matplotlib.figure import Figure

MAX_TABLE_ROWS = 40
"""Longer tables are cut to their first rows (with a note): a report is read, not searched."""
MAX_AGENT_ROWS = 20
"""Runs with more agents (evolving populations) get model and reliability tables per policy, not per agent."""
MAX_AGENT_PANELS = 16
TRANSCRIPT_EPISODES = 2
"""Episodes per model-driven agent whose transcripts the report shows (a deterministic sample)."""
MAX_TRANSCRIPT_AGENTS = 12
"""Runs with more model-driven agents show the sample of the first ones (by name) and say so."""
"""Up to this many agents get one cooperation panel each; more are grouped by policy kind."""

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


# --------------------------------------------------------------------------- formatting helpers


def _e(x: Any) -> str:
    return html.escape(str(x), quote=True)


def _pct(x: Any, digits: int = 0) -> str:
    return "–" if x is None or pd.isna(x) else f"{x:.{digits}%}"


def _num(digits: int) -> Callable[[Any], str]:
    return lambda x: "–" if x is None or pd.isna(x) else f"{round(x, digits) + 0.0:,.{digits}f}"  # no "-0.00"


def _int(x: Any) -> str:
    return "–" if x is None or pd.isna(x) else f"{int(x):,}"


def _table(frame: pd.DataFrame, formats: dict[str, Callable[[Any], str]] | None = None,
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
            shown[col] = shown[col].map(_num(2))
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


def _png_size(data: bytes) -> tuple[int, int]:
    return struct.unpack(">II", data[16:24])


def _plots() -> ModuleType:
    """The figures module, imported at the first figure drawn: matplotlib costs seconds to import."""
    from societas.analysis import plots

    return plots


def _naming_plots() -> ModuleType:
    from societas.analysis import naming_plots

    return naming_plots


def _png(draw: Callable[[], Figure]) -> bytes:
    """The figure `draw` builds, as PNG through Agg (never a GUI backend), in the house style."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg

    plots = _plots()
    fig = draw()
    FigureCanvasAgg(fig)
    buf = io.BytesIO()
    with plots.plot_style():
        fig.savefig(buf, format="png", dpi=150)
    return buf.getvalue()


def _figure(draw: Callable[[], Figure], caption: str, alt: str) -> str:
    """A figure as an inline PNG, shown at its print size (1 inch = 96 CSS px) so the 10 pt text reads as 10 pt.

    `draw` is called only when the figure cache of the report being written
    has no PNG for this figure (a complete run's figures are drawn once).
    """
    data = figure_cache.png(f"{alt}\n{caption}", lambda: _png(draw))
    width = round(_png_size(data)[0] / 150 * 96)
    b64 = base64.b64encode(data).decode("ascii")
    return (f'<figure><img src="data:image/png;base64,{b64}" alt="{_e(alt)}" style="width:{width}px">'
            f"<figcaption>{caption}</figcaption></figure>")


# --------------------------------------------------------------------------- facts about a run


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


def _models(run: Run) -> list[str]:
    models: set[str] = set()
    for frame in (run.llm_calls, run.events):
        if "model" in frame:
            models.update(str(m) for m in frame["model"].dropna().unique())
    return sorted(models)


def _episodes(run: Run) -> int:
    return 0 if run.events.empty else int(run.events[["phase", "episode"]].drop_duplicates().shape[0])


def _labels(runs: Sequence[Run]) -> dict[str, str]:
    """Short, distinct names for legends and column headers: what tells the runs apart.

    The config name if the configs differ, else the models, else the seed,
    else their combination; the run id (unique by construction) when none of
    these differ.
    """
    facts = {
        "config": [str(r.config.get("name", "?")) for r in runs],
        "models": [", ".join(_models(r)) or "no model" for r in runs],
        "seed": [f"seed {r.config.get('seed', '?')}" for r in runs],
    }
    combined = [" · ".join(v) for v in zip(*facts.values())]
    for values in (*facts.values(), combined):
        if len(set(values)) == len(runs):
            return {r.run_id: v for r, v in zip(runs, values)}
    return {r.run_id: r.run_id for r in runs}


# --------------------------------------------------------------------------- sections of one run


def _overview(run: Run, playing: bool = False) -> str:
    cfg = run.config
    env = cfg.get("environment", {}) or {}
    params = env.get("params", {}) or {}
    rows = [
        ("run id", _e(run.run_id)),
        ("config", _e(cfg.get("name", "?")) + (f" — {_e(cfg['description'])}" if cfg.get("description") else "")),
        ("seed", _e(cfg.get("seed", "?"))),
        ("environment", _e(env.get("id", "?")) + (" " + _e(", ".join(f"{k}={v}" for k, v in params.items()))
                                                   if params else "")),
        ("models", _e(", ".join(_models(run))) or "none (scripted and replayed agents only)"),
        ("societas version", _e(cfg.get("societas_version", "?"))),
        ("directory", f"<code>{_e(run.path.resolve())}</code>"),
    ]
    s = run.summary
    if s is not None:
        rows.append(("size", f"{s.get('episodes', 0):,} episodes, {s.get('decisions', 0):,} decisions, "
                             f"{s.get('llm_calls', 0):,} model calls, {s.get('wall_s', 0):.1f} s wall time"))
    else:
        rows.append(("size", f"{_episodes(run):,} episodes and {len(run.events):,} decisions on disk"))
    body = "".join(f"<tr><th>{k}</th><td class='text'>{v}</td></tr>" for k, v in rows)
    out = f'<div class="scroll"><table class="data">{body}</table></div>'
    if s is None and playing:
        out += (f'<p class="note">Still playing: everything below covers the {_episodes(run):,} episodes on '
                "disk so far.</p>")
    elif s is None:
        out += ('<div class="banner"><b>Incomplete run:</b> there is no <code>summary.json</code>, so the run '
                f"stopped before its end. Everything below covers the {_episodes(run):,} episodes on disk; "
                f"finish it with <code>societas resume {_e(run.path)}</code>.</div>")
    config_text = (run.path / "config.yaml").read_text() if (run.path / "config.yaml").is_file() else ""
    out += f"<details><summary>Resolved config (YAML)</summary><pre>{_e(config_text)}</pre></details>"
    return out


def _usage(run: Run) -> str:
    if run.llm_calls.empty:
        skipped = (run.summary or {}).get("skipped_agents") or []
        text = "<p>No model calls: every agent was scripted or replayed.</p>"
        if skipped:
            text += (f"<p class='note'>Left out because the run had no model: {_e(', '.join(skipped))} "
                     f"(<code>societas run CONFIG --model SPEC</code>).</p>")
        return text
    usage = usage_table(run.llm_calls)
    out = _table(usage[["model", "calls", "cache_hits", "cache_hit_rate", "prompt_tokens", "completion_tokens",
                        "cached_share", "latency_mean", "latency_p50", "latency_p90"]],
                 formats={"calls": _int, "cache_hits": _int, "cache_hit_rate": _pct, "prompt_tokens": _int,
                          "cached_share": _pct,
                          "completion_tokens": _int, "latency_mean": _seconds, "latency_p50": _seconds,
                          "latency_p90": _seconds},
                 columns={"cache_hits": "cache hits", "cache_hit_rate": "cache hit rate",
                          "prompt_tokens": "prompt tokens", "completion_tokens": "completion tokens",
                          "cached_share": "engine-cached prompt",
                          "latency_mean": "latency mean", "latency_p50": "latency p50",
                          "latency_p90": "latency p90"})
    out += ("<p class='note'>Per model request (retries included). Latency: seconds per request that reached "
            "the model; answers from the response cache are counted apart. Engine-cached prompt: the share of "
            "the prompt tokens sent to the model that the engine reported serving from its prefix cache "
            "(0 where it does not report it).</p>")
    key = _unit(run.events)
    per_agent = decision_usage(run.events, by=(key, "model"))
    if not per_agent.empty:
        out += "<h3>Tokens per decision</h3>"
        out += _table(per_agent[[key, "model", "decisions", "prompt_tokens", "completion_tokens",
                                 "tokens_per_decision", "latency_mean"]],
                      formats={"decisions": _int, "prompt_tokens": _int, "completion_tokens": _int,
                               "tokens_per_decision": _num(1), "latency_mean": _seconds},
                      columns={"prompt_tokens": "prompt tokens", "completion_tokens": "completion tokens",
                               "tokens_per_decision": "tokens / decision",
                               "latency_mean": "latency / decision"}, what=f"{key}s")
    return out


def _unit(events: pd.DataFrame) -> str:
    """Rows per agent while a table of agents stays short, else per policy (evolving populations)."""
    return "agent" if events["agent"].nunique() <= MAX_AGENT_ROWS else "policy"


def _seconds(x: Any) -> str:
    if x is None or pd.isna(x):
        return "–"
    return f"{x * 1000:.0f} ms" if x < 1 else f"{x:.2f} s"


def _reliability(run: Run) -> str:
    ev = run.events
    if ev.empty:
        return "<p>No decisions on disk.</p>"
    key = _unit(ev)
    table = reliability_table(ev, by=(key, "model"))
    invalid, retried = int(table["invalid"].sum()), int(table["retried"].sum())
    head = (f"<p>{invalid:,} of {len(ev):,} decisions invalid ({invalid / len(ev):.2%}); "
            f"{retried:,} needed at least one retry ({retried / len(ev):.2%}).</p>")
    shown = table[table["model"].notna() | (table["invalid"] > 0) | (table["retried"] > 0)]
    if shown.empty:
        return head + "<p class='note'>Scripted and replayed agents always answer validly.</p>"
    formats = {"decisions": _int, "invalid": _int, "invalid_rate": lambda x: _pct(x, 1), "retried": _int,
               "retry_rate": lambda x: _pct(x, 1), "mean_retries": _num(2)}
    names = {"invalid_rate": "invalid rate", "retry_rate": "retry rate", "mean_retries": "retries / decision"}
    cols = ["decisions", "invalid", "invalid_rate", "retried", "retry_rate", "mean_retries"]
    out = head + _table(shown[[key, "model", *cols]], formats=formats, columns=names, what=f"{key}s")
    if key == "policy":
        worst = reliability_table(ev, by=("agent", "model"))
        worst = worst[worst["invalid"] > 0].sort_values(["invalid_rate", "invalid"], ascending=False)
        if len(worst):
            out += (f"<p>{ev['agent'].nunique():,} agents, so the table is per policy. The agents with the most "
                    "invalid actions:</p>")
            out += _table(worst[["agent", "model", *cols]], formats=formats, columns=names, max_rows=10,
                          what="agents with invalid actions")
    out += ("<p class='note'>Invalid: every attempt failed and the environment's default action was played. "
            "Retried: the agent was asked again after an unusable answer.</p>")
    if not run.llm_calls.empty:
        errors = call_errors(run.llm_calls)
        if (errors["parse_errors"] + errors["model_errors"]).sum() > 0:
            shown = pd.DataFrame({"model": errors["model"], "calls": errors["calls"]})
            for name, label in (("parse_error", "unusable replies"), ("model_error", "endpoint failures"),
                                ("retry_call", "retry requests")):
                shown[label] = [f"{n:,} ({_pct(r, 1)})" for n, r in zip(errors[f"{name}s"], errors[f"{name}_rate"])]
            out += "<h3>Failed model requests</h3>" + _table(shown, formats={"calls": _int}, what="models")
            out += ("<p class='note'>Unusable replies: the model answered, but not with a valid action; endpoint "
                    "failures: no answer after the client's retries. Percentages of all requests.</p>")
    return out


def _transcripts(run: Run) -> str:
    """A sample of each model-driven agent's episodes, word for word, and every decision whose reply failed."""
    if run.llm_calls.empty:
        return "<p>No model calls: every decision came from a scripted or replayed policy.</p>"
    sample = sample_episodes(run, per_agent=TRANSCRIPT_EPISODES)
    bad = invalid_decisions(run)
    out = [f"<p>What the models were asked and what they answered, for {TRANSCRIPT_EPISODES} episodes of each "
           "model-driven agent (chosen by a hash of agent and episode, so the same run shows the same episodes; "
           "an agent that ever fell back shows its first such episode). Replies that did not parse are red, "
           "decisions that fell back to the environment's default are marked <span class='tag fallback'>"
           "fallback</span>. Every episode, from Python: "
           "<code>societas.analysis.transcript.transcript(run, episode=..., agent=...)</code>.</p>"]
    if len(bad):
        fell = int(bad["fallback"].sum())
        per_agent = bad.groupby("agent", sort=True).agg(
            decisions=("errors", "size"), fallbacks=("fallback", "sum"), unusable_replies=("errors", "sum"),
            first_episode=("episode", "first"), error=("first_error", lambda e: e.value_counts().index[0]),
        ).reset_index()
        out.append(f"<h3>Decisions with unusable replies</h3><p>{len(bad):,} decisions had at least one reply "
                   f"that did not parse; {fell:,} of them fell back to the environment's default.</p>")
        out.append(_table(per_agent, formats={c: _int for c in ("decisions", "fallbacks", "unusable_replies",
                                                                 "first_episode")},
                          columns={"unusable_replies": "unusable replies", "first_episode": "first in episode",
                                   "error": "most frequent error"}, what="agents"))
        listed = bad[["agent", "phase", "episode", "round", "seat", "errors", "action", "fallback", "first_error"]]
        out.append("<details><summary>Each such decision</summary>" + _table(
            listed.rename(columns={"first_error": "first error", "errors": "unusable replies"}), lead=1,
            formats={"unusable replies": _int, "fallback": lambda x: "yes" if x else "no"}, what="decisions")
            + "</details>")
    else:
        out.append("<p>Every reply parsed on the first attempt.</p>")
    agents = sorted(sample)
    if len(agents) > MAX_TRANSCRIPT_AGENTS:
        out.append(f"<p class='note'>{len(agents):,} model-driven agents; the sample of the first "
                   f"{MAX_TRANSCRIPT_AGENTS} by name is shown.</p>")
        agents = agents[:MAX_TRANSCRIPT_AGENTS]
    for agent in agents:
        keys = sample[agent]
        frames = [transcript(run, episode=e, phase=p, agent=agent) for p, e in keys]
        frame = pd.concat(frames, ignore_index=True)
        n_bad = int(frame.drop_duplicates(["phase", "episode", "round", "seat"])["fallback"].sum())
        label = ", ".join(f"phase {p} episode {e}" for p, e in keys)
        flag = f" · <span class='tag fallback'>{n_bad} fallback</span>" if n_bad else ""
        out.append(f"<details><summary>{_e(agent)}: {_e(label)}{flag}</summary>{transcript_html(frame)}</details>")
    return "".join(out)


def _view_html(view: SectionView) -> str:
    """A study section's tables as the command line prints them: same columns, labels, formats and caveats."""
    out = f"<p>{_e(view.intro)}</p>" if view.intro else ""
    shown = None
    for table in view.tables:
        if len(view.tables) > 1:
            out += f"<h3>{_e(table.title[0].upper() + table.title[1:])}</h3>"
        st = table.standing
        if st is not None and st is not shown:  # what the findings stand on, before them
            shown = st
            caveats = table.caveats()
            if caveats:
                out += ('<div class="banner"><b>' + "<br>".join(_e(c) for c in caveats) + "</b><br>"
                        + _e(st.summary()) + "</div>")
            else:
                out += f"<p class='note'>{_e(st.summary())}.</p>"
        frame = table.frame[list(table.columns)]
        formats = {c: (lambda kind: lambda x: fmt(kind, x))(k) for c, (_, k) in table.columns.items()}
        kinds = [k for _, k in table.columns.values()]
        lead = next((n for n, k in enumerate(kinds) if k != "text"), len(kinds))  # text columns left-aligned
        out += _table(frame, formats=formats, columns={c: label for c, (label, _) in table.columns.items()},
                      what="rows", lead=lead)
        if table.notes:
            out += f"<p class='note'>{_e(table.notes)}.</p>"
    return out


def _matrix_figures(run: Run, view: SectionView) -> str:
    ev = run.events
    group = "agent" if ev["agent"].nunique() <= MAX_AGENT_PANELS else "policy_kind"
    per = group.replace("_", " ")
    out = ""
    if view.data.get("has_coop"):
        out += _figure(lambda: _plots().cooperation_by_round(ev, group=group),
                       f"Share of decisions that cooperated in each round, per {per}; "
                       "bands: 95% Wilson intervals over decisions.", "cooperation by round")
    elif (ev["env"] == "repeated-matrix-game").all():
        paired = paired_rounds(ev)
        if len(paired):
            same = paired.assign(cooperated=paired["option"] == paired["partner_option"],
                                 policy_kind=paired["agent"].map(ev.groupby("agent")["policy_kind"].first()))
            out += _figure(lambda: _plots().cooperation_by_round(same, group=group, title="Coordination by round",
                                                      ylabel="rounds coordinated"),
                           f"Share of rounds in which both players chose the same option, per {per}; "
                           "bands: 95% Wilson intervals over rounds.", "coordination by round")
    if (ev["env"] == "repeated-matrix-game").all():
        title = "Mean payoff per round: agent (row) against partner (column)"
        out += _figure(lambda: _plots().payoff_matrix(ev, title=title),
                       "Each cell: the row agent's mean payoff per round against the column partner, both seat "
                       "orders pooled. Rows and columns are sorted by overall mean payoff.", "payoff matrix")
    return out


def _donor_figures(run: Run, view: SectionView) -> str:
    table, societies = view.data.get("table"), view.data.get("societies", 0)
    if table is None or table.empty:
        return ""
    out = _figure(lambda: _plots().resources_by_generation(table, ylabel="final resources per game (units)"),
                  "Mean final resources per game in each generation"
                  + ("; thin lines: single societies; band: 95% t interval across societies (cut at 0)."
                     if societies > 1 else "."), "resources by generation")
    out += _figure(lambda: _plots().resources_by_generation(table, metric="cooperation_rate",
                                                            ylabel="donations above 0",
                                                            title="Cooperation by generation", share=True),
                   "Share of donation decisions giving more than 0"
                   + ("; thin lines: single societies; band: 95% t interval." if societies > 1 else "."),
                   "cooperation by generation")
    if not run.lineage.empty:
        out += _policies(run)
    return out


def _policies(run: Run) -> str:
    lin = run.lineage
    out = "<h3>Policies</h3>"
    by_policy = lin.groupby("policy").agg(members=("agent", "size"), survived=("survived", "mean"),
                                          total_reward=("total_reward", "mean")).reset_index()
    out += _table(by_policy.sort_values("members", ascending=False),
                  formats={"members": _int, "survived": _pct, "total_reward": _num(1)},
                  columns={"members": "member-generations", "survived": "survived selection",
                           "total_reward": "mean total payoff"}, what="policies")
    if lin["policy"].nunique() > 1:
        out += _figure(lambda: _plots().strategy_shares(strategy_shares(lin)),
                       "Share of each policy in the population per generation, all societies together.",
                       "policy shares by generation")
    return out


def _lockin_figures(run: Run, view: SectionView) -> str:
    from societas.analysis.lockin import decisions

    rounds, params = view.data.get("rounds"), view.data.get("params")
    if rounds is None or params is None or params.empty:
        return ""
    merged = rounds.merge(params[["phase", "episode", "setting"]], on=["phase", "episode"], how="left")
    out = _figure(lambda: _plots().diversity_curve(merged, "round", "relative_diversity", group="setting",
                                        ylabel="relative spread of stances", title="Diversity over time"),
                  "Spread of the humans' stances relative to the spread of their evidence, per setting; "
                  "bands: 95% t interval over runs.", "diversity over time")
    humans = decisions(run.events)
    humans = humans[humans["role"] == "human"]
    last = params.iloc[-1]
    one = humans[(humans["phase"] == last["phase"]) & (humans["episode"] == last["episode"])]
    if not one.empty:
        out += _figure(lambda: _plots().belief_distribution(one, time="round", value="stance",
                                                 value_range=tuple(last["scale"]),
                                                 title=f"Stances over time: {last['setting']}"),
                       "Share of humans per stance bin in each round of one run (the last setting), mean "
                       "overlaid.", "belief distribution over time")
    return out


def _tom_figures(run: Run, view: SectionView) -> str:
    acc = view.data.get("accuracy")
    if acc is None or acc.empty:
        return ""
    frame = acc.assign(label=acc["agent"] + ": " + acc["category"].str.replace("_", " "))
    return _figure(lambda: _plots().accuracy_bars(frame, "label", "accuracy", "ci_low", "ci_high",
                                       title="Observer accuracy by question category"),
                   "Share of questions answered as the belief oracle does; whiskers: 95% bootstrap interval.",
                   "accuracy by category")


def _partner_figures(run: Run, view: SectionView) -> str:
    rounds = view.data.get("rounds")
    if rounds is None or rounds.empty:
        return ""
    # Regret per round by player, over every partner and episode: functional ToM as it is acquired.
    out = _figure(lambda: _plots().diversity_curve(rounds, "round", "regret", group="agent",
                                        ylabel="regret vs best response", title="Regret over rounds"),
                  "Mean regret per round against the best response to the partner's policy, all partners; "
                  "bands: 95% t interval.", "regret over rounds")
    predicted = rounds.dropna(subset=["correct"]).assign(correct=lambda d: d["correct"].astype(float))
    if not predicted.empty:
        out += _figure(lambda: _plots().diversity_curve(predicted, "round", "correct", group="agent",
                                             ylabel="predictions correct", title="Prediction accuracy over rounds"),
                       "Share of correct predictions of the partner's next move per round, all partners.",
                       "prediction accuracy over rounds")
    return out


def _commons_figures(run: Run, view: SectionView) -> str:
    stock, rows = view.data.get("stock"), view.data.get("harvests")
    if stock is None or stock.empty:
        return ""
    collapse = float(rows["collapse"].iloc[0]) if rows is not None and not rows.empty else None
    return _figure(lambda: _plots().stock_over_months(stock, collapse=collapse),
                   "The stock at the start of each month in every run (the last point: what the final harvest "
                   "left), coloured by the members' policies; dotted: the collapse level.", "stock over months")


def _naming_figures(run: Run, view: SectionView) -> str:
    share, times, winners = view.data.get("share"), view.data.get("consensus"), view.data.get("winners")
    if share is None or share.empty:
        return ""
    out = _figure(lambda: _naming_plots().convention_share(share),
                  "Share of the answers in each population round (N interactions) that named the run's winning "
                  "name (the most used over its last 3N interactions); line: median over runs, band: 10-90% of "
                  "runs. A run that stopped at consensus is held at its last value.", "convention share over time")
    if times is not None and times["consensus"].any():
        out += _figure(lambda: _naming_plots().consensus_times(times),
                       "Population rounds until the last 3N interactions all succeeded, per run; dashed: the "
                       "median.", "time to consensus")
    if winners is not None and not winners.empty:
        w = view.data.get("names") or len(winners)
        out += _figure(lambda: _plots().accuracy_bars(winners, "convention", "share", "ci_low", "ci_high", chance=1 / w,
                                           title="Winning names across runs"),
                       "Share of the runs that reached consensus won by each name; whiskers: 95% Clopper-Pearson "
                       "interval; dashed: 1/W, the share with no collective bias.", "winning names")
    if view.data.get("new_name") is not None:
        out += _adoption_figure(view)
    return out


def _adoption_figure(view: SectionView) -> str:
    curve, critical = view.data["minority"], view.data["critical"]
    return _figure(lambda: _naming_plots().adoption_curve(curve, critical["critical"], view.data["new_name"]),
                   "Per committed-minority size: the share of runs whose other players ended (last population "
                   "round) with at least 95% adoption of the committed name, with its 95% Clopper-Pearson band, "
                   "and their mean adoption; dotted: the critical minority, the smallest size flipping half the "
                   "runs.", "adoption against the committed minority")


FIGURES: dict[str, Callable[[Run, SectionView], str]] = {
    "agents": _matrix_figures, "generations": _donor_figures, "lockin": _lockin_figures, "tom": _tom_figures,
    "partner": _partner_figures, "commons": _commons_figures, "naming": _naming_figures,
}
"""The report's figures per section key (a study registering a section may add its own)."""


def _run_sections(run: Run, prefix: str, transcripts: bool = True, playing: bool = False) -> list[_Section]:
    sections = [
        _Section(f"{prefix}overview", "Run", _overview(run, playing)),
        _Section(f"{prefix}models", "Models and tokens", _usage(run)),
        _Section(f"{prefix}reliability", "Invalid actions and retries", _reliability(run)),
    ]
    section = section_for(run)
    if section is None:
        sections.append(_Section(f"{prefix}results", "Results", "<p>No events on disk yet.</p>"))
    else:
        view = section.build(run)
        figures = FIGURES.get(view.key)
        body = _view_html(view) + (figures(run, view) if figures is not None else "")
        sections.append(_Section(f"{prefix}{view.key}", view.title, body))
    if transcripts:
        sections.append(_Section(f"{prefix}transcripts", "Transcripts", _transcripts(run)))
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
        f'<h3 id="{p.anchor}">{_e(p.title)}</h3>' + p.body.replace("<h3>", "<h4>").replace("</h3>", "</h4>")
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
                ("models", ", ".join(_models(r)) or "–"),
                ("complete", "yes" if r.summary is not None else "no (no summary.json)"),
                ("episodes", _int(_episodes(r))), ("decisions", _int(len(ev))), ("model calls", _int(len(calls))),
                ("tokens", _int(tokens)),
                ("invalid actions", _pct((~ev["valid"].astype(bool)).mean(), 1) if len(ev) else "–"),
                ("cooperation", _pct(coop)),
                ("payoff / round", _num(2)(ev["reward"].mean()) if len(ev) and _kind(r) == "matrix" else "–")):
            facts[key].append(str(value))
    overview = pd.DataFrame(facts, index=[labels[r.run_id] for r in runs]).T
    overview.index.name = ""
    out = _table(overview.reset_index(), what="facts", lead=1)
    out += ("<p class='note'>cooperation: share of all decisions that cooperated (matrix games: the cooperative "
            "option; donor game: a donation above 0).</p>")
    matrix = [r for r in runs if _kind(r) == "matrix"]
    order = [labels[r.run_id] for r in runs]
    if len(matrix) > 1:
        out += "<h3>Agents across runs</h3>" + _agents_side_by_side(matrix, labels)
        events = pd.concat([r.events.assign(run=labels[r.run_id]) for r in matrix], ignore_index=True)
        events["run"] = pd.Categorical(events["run"], categories=order)  # legend in the order of the runs
        if events["cooperated"].notna().any():
            out += _figure(lambda: _plots().cooperation_by_round(events, group="run",
                                                                 title="Cooperation by round, per run"),
                           "All agents of each run; bands: 95% Wilson intervals over decisions.",
                           "cooperation by round per run")
    naming = [r for r in runs if _kind(r) == "naming"]
    if len(naming) > 1:
        from societas.analysis.sections.naming import sweep_view

        view = sweep_view(pd.concat([r.events for r in naming], ignore_index=True))
        if view is not None:
            out += "<h3>Committed minority across runs</h3>" + _view_html(view) + _adoption_figure(view)
    donor = [r for r in runs if _kind(r) == "donor"]
    if len(donor) > 1:
        tables = pd.concat([generation_table(r.events, r.episodes).assign(run=labels[r.run_id]) for r in donor],
                           ignore_index=True)
        tables["run"] = pd.Categorical(tables["run"], categories=order)
        wide = tables.groupby(["generation", "run"])[["resources", "cooperation_rate"]].mean().unstack("run")
        wide = wide.reindex(columns=[(m, r) for m in ("resources", "cooperation_rate") for r in order
                                     if (m, r) in wide.columns])
        wide.columns = pd.MultiIndex.from_tuples([(m.replace("_rate", ""), run) for m, run in wide.columns])
        out += "<h3>Generations across runs</h3>" + _table(
            wide.reset_index(), formats={"generation": _int, "resources": _num(1), "cooperation": _pct},
            what="generations")
        out += _figure(lambda: _plots().resources_by_generation(tables, ylabel="final resources per game (units)",
                                                     title="Resources by generation, per run"),
                       "Mean over societies; bands: 95% t intervals across societies (cut at 0).",
                       "resources by generation per run")
        out += _figure(lambda: _plots().resources_by_generation(tables, metric="cooperation_rate", share=True,
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
    return _table(wide.reset_index(), formats={"cooperation": _pct, "payoff / round": _num(2)}, what="agents")


# --------------------------------------------------------------------------- the page


def _page(title: str, subtitle: str, sections: list[_Section]) -> str:
    toc = "".join(f'<li><a href="#{s.anchor}">{_e(s.title)}</a></li>' for s in sections)
    body = "".join(f'<section id="{s.anchor}"><h2>{_e(s.title)}</h2>{s.body}</section>' for s in sections)
    stamp = time.strftime("%Y-%m-%d %H:%M")
    return (f'<!doctype html>\n<html lang="en"><head><meta charset="utf-8">'
            f'<meta name="viewport" content="width=device-width, initial-scale=1">'
            f"<title>{_e(title)}</title><style>{CSS}</style></head><body><main>"
            f"<header><h1>{_e(title)}</h1><p class='meta'>{subtitle} · report written {stamp}</p></header>"
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
        subtitle = f"run <code>{_e(run.run_id)}</code>, seed {_e(run.config.get('seed', '?'))}"
        html_text = _page(f"{name}: run report", subtitle, sections)
    else:
        labels = _labels(runs)
        sections = [_Section("comparison", "Comparison", _comparison(runs, labels))]
        sections += [_nested(run, i, labels[run.run_id]) for i, run in enumerate(runs, start=1)]
        subtitle = f"{len(runs)} runs: " + ", ".join(f"<code>{_e(r.run_id)}</code>" for r in runs)
        html_text = _page(f"Comparison of {len(runs)} runs", subtitle, sections)
    return html_text
