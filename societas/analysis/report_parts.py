"""The parts of every run's report around its study's section: the run, models and tokens, invalid actions, transcripts.

They say what a reader needs to trust a result before the result itself:
which run, seed and config, whether it finished, what the models cost in
calls and tokens, how often agents answered invalidly, and what the models
were asked and answered, word for word.
"""

from __future__ import annotations

from typing import Any

import pandas as pd

from societas.analysis.cost import decision_usage, usage_table
from societas.analysis.load import Run
from societas.analysis.reliability import call_errors, reliability_table
from societas.analysis.report_html import esc, html_table, integer, num, pct
from societas.analysis.transcript import invalid_decisions, sample_episodes, transcript
from societas.analysis.transcript_html import transcript_html

MAX_AGENT_ROWS = 20
"""Runs with more agents (evolving populations) get model and reliability tables per policy, not per agent."""
TRANSCRIPT_EPISODES = 2
"""Episodes per model-driven agent whose transcripts the report shows (a deterministic sample)."""
MAX_TRANSCRIPT_AGENTS = 12
"""Runs with more model-driven agents show the sample of the first ones (by name) and say so."""


def run_models(run: Run) -> list[str]:
    """Every model the run called or recorded on a decision, sorted."""
    models: set[str] = set()
    for frame in (run.llm_calls, run.events):
        if "model" in frame:
            models.update(str(m) for m in frame["model"].dropna().unique())
    return sorted(models)


def episode_count(run: Run) -> int:
    """Episodes on disk (a run still playing or stopped has fewer than its config asks)."""
    return 0 if run.events.empty else int(run.events[["phase", "episode"]].drop_duplicates().shape[0])


def overview_html(run: Run, playing: bool = False) -> str:
    """Which run, config, seed, models and size; whether it finished; the resolved config."""
    cfg = run.config
    env = cfg.get("environment", {}) or {}
    params = env.get("params", {}) or {}
    rows = [
        ("run id", esc(run.run_id)),
        ("config", esc(cfg.get("name", "?")) + (f" — {esc(cfg['description'])}" if cfg.get("description") else "")),
        ("seed", esc(cfg.get("seed", "?"))),
        ("environment", esc(env.get("id", "?")) + (" " + esc(", ".join(f"{k}={v}" for k, v in params.items()))
                                                   if params else "")),
        ("models", esc(", ".join(run_models(run))) or "none (scripted and replayed agents only)"),
        ("societas version", esc(cfg.get("societas_version", "?"))),
        ("directory", f"<code>{esc(run.path.resolve())}</code>"),
    ]
    s = run.summary
    if s is not None:
        rows.append(("size", f"{s.get('episodes', 0):,} episodes, {s.get('decisions', 0):,} decisions, "
                             f"{s.get('llm_calls', 0):,} model calls, {s.get('wall_s', 0):.1f} s wall time"))
    else:
        rows.append(("size", f"{episode_count(run):,} episodes and {len(run.events):,} decisions on disk"))
    body = "".join(f"<tr><th>{k}</th><td class='text'>{v}</td></tr>" for k, v in rows)
    out = f'<div class="scroll"><table class="data">{body}</table></div>'
    if s is None and playing:
        out += (f'<p class="note">Still playing: everything below covers the {episode_count(run):,} episodes on '
                "disk so far.</p>")
    elif s is None:
        out += ('<div class="banner"><b>Incomplete run:</b> there is no <code>summary.json</code>, so the run '
                f"stopped before its end. Everything below covers the {episode_count(run):,} episodes on disk; "
                f"finish it with <code>societas resume {esc(run.path)}</code>.</div>")
    config_text = (run.path / "config.yaml").read_text() if (run.path / "config.yaml").is_file() else ""
    out += f"<details><summary>Resolved config (YAML)</summary><pre>{esc(config_text)}</pre></details>"
    return out


def usage_html(run: Run) -> str:
    """Calls, cache hits, tokens and latency per model, then tokens per decision."""
    if run.llm_calls.empty:
        skipped = (run.summary or {}).get("skipped_agents") or []
        text = "<p>No model calls: every agent was scripted or replayed.</p>"
        if skipped:
            text += (f"<p class='note'>Left out because the run had no model: {esc(', '.join(skipped))} "
                     f"(<code>societas run CONFIG --model SPEC</code>).</p>")
        return text
    usage = usage_table(run.llm_calls)
    out = html_table(usage[["model", "calls", "cache_hits", "cache_hit_rate", "prompt_tokens", "completion_tokens",
                        "cached_share", "latency_mean", "latency_p50", "latency_p90"]],
                 formats={"calls": integer, "cache_hits": integer, "cache_hit_rate": pct, "prompt_tokens": integer,
                          "cached_share": pct,
                          "completion_tokens": integer, "latency_mean": _seconds, "latency_p50": _seconds,
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
        out += html_table(per_agent[[key, "model", "decisions", "prompt_tokens", "completion_tokens",
                                 "tokens_per_decision", "latency_mean"]],
                      formats={"decisions": integer, "prompt_tokens": integer, "completion_tokens": integer,
                               "tokens_per_decision": num(1), "latency_mean": _seconds},
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


def reliability_html(run: Run) -> str:
    """Invalid actions and retries per agent (per policy in large populations), then failed requests."""
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
    formats = {"decisions": integer, "invalid": integer, "invalid_rate": lambda x: pct(x, 1), "retried": integer,
               "retry_rate": lambda x: pct(x, 1), "mean_retries": num(2)}
    names = {"invalid_rate": "invalid rate", "retry_rate": "retry rate", "mean_retries": "retries / decision"}
    cols = ["decisions", "invalid", "invalid_rate", "retried", "retry_rate", "mean_retries"]
    out = head + html_table(shown[[key, "model", *cols]], formats=formats, columns=names, what=f"{key}s")
    if key == "policy":
        worst = reliability_table(ev, by=("agent", "model"))
        worst = worst[worst["invalid"] > 0].sort_values(["invalid_rate", "invalid"], ascending=False)
        if len(worst):
            out += (f"<p>{ev['agent'].nunique():,} agents, so the table is per policy. The agents with the most "
                    "invalid actions:</p>")
            out += html_table(worst[["agent", "model", *cols]], formats=formats, columns=names, max_rows=10,
                          what="agents with invalid actions")
    out += ("<p class='note'>Invalid: every attempt failed and the environment's default action was played. "
            "Retried: the agent was asked again after an unusable answer.</p>")
    if not run.llm_calls.empty:
        errors = call_errors(run.llm_calls)
        if (errors["parse_errors"] + errors["model_errors"]).sum() > 0:
            shown = pd.DataFrame({"model": errors["model"], "calls": errors["calls"]})
            for name, label in (("parse_error", "unusable replies"), ("model_error", "endpoint failures"),
                                ("retry_call", "retry requests")):
                shown[label] = [f"{n:,} ({pct(r, 1)})" for n, r in zip(errors[f"{name}s"], errors[f"{name}_rate"])]
            out += "<h3>Failed model requests</h3>" + html_table(shown, formats={"calls": integer}, what="models")
            out += ("<p class='note'>Unusable replies: the model answered, but not with a valid action; endpoint "
                    "failures: no answer after the client's retries. Percentages of all requests.</p>")
    return out


def transcript_sample_html(run: Run) -> str:
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
        out.append(html_table(per_agent, formats={c: integer for c in ("decisions", "fallbacks", "unusable_replies",
                                                                 "first_episode")},
                          columns={"unusable_replies": "unusable replies", "first_episode": "first in episode",
                                   "error": "most frequent error"}, what="agents"))
        listed = bad[["agent", "phase", "episode", "round", "seat", "errors", "action", "fallback", "first_error"]]
        out.append("<details><summary>Each such decision</summary>" + html_table(
            listed.rename(columns={"first_error": "first error", "errors": "unusable replies"}), lead=1,
            formats={"unusable replies": integer, "fallback": lambda x: "yes" if x else "no"}, what="decisions")
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
        out.append(f"<details><summary>{esc(agent)}: {esc(label)}{flag}</summary>{transcript_html(frame)}</details>")
    return "".join(out)
