"""Transcripts as HTML: one block per decision, the model's replies under the question, failures marked.

Shared by the report (a sample of episodes, inline) and `societas view` (the
transcript browser), so a decision reads the same in both. The classes used
here are styled by `TRANSCRIPT_CSS`.
"""

from __future__ import annotations

import html
from typing import Any

import pandas as pd

TRANSCRIPT_CSS = """
.episode { margin: 10px 0 18px; }
.episode > h4 { margin: 14px 0 6px; }
.turn { border: 1px solid var(--line); border-radius: 6px; margin: 6px 0; padding: 6px 10px; background: #fff; }
.turn.bad { border-left: 4px solid #D55E00; }
.turn.fell { border-left: 4px solid #B00020; background: #fff7f7; }
.turn .head { font-size: 13px; color: var(--muted); display: flex; gap: 10px; flex-wrap: wrap; align-items: baseline; }
.turn .head b { color: var(--ink); }
.turn.scripted { padding: 3px 10px; background: var(--soft); }
.msg { margin: 4px 0; }
.msg .who { font-size: 11px; text-transform: uppercase; letter-spacing: .04em; color: var(--muted); }
.msg pre { margin: 2px 0 0; max-height: 260px; white-space: pre-wrap; word-break: break-word; }
.msg.reply pre { background: #eef6ee; border-color: #b9d8b9; }
.msg.reply.invalid pre { background: #fdeeee; border-color: #e6b3b3; }
.msg.thinking pre { background: #f4f1fa; border-color: #d4cbe8; color: #3d3452; }
.msg.thinking summary { font-size: 11px; text-transform: uppercase; letter-spacing: .04em; color: var(--muted); }
.err { color: #B00020; font-size: 13px; margin: 2px 0 6px; }
.final { font-weight: 600; font-size: 14px; margin: 4px 0 2px; }
.tag { display: inline-block; font-size: 11px; font-weight: 600; padding: 0 6px; border-radius: 9px;
       background: var(--soft); border: 1px solid var(--line); color: var(--muted); }
.tag.fallback { background: #B00020; border-color: #B00020; color: #fff; }
.tag.retried { background: #fff4ec; border-color: #D55E00; color: #8a3b00; }
details.system > summary { font-weight: 400; font-size: 13px; }
"""


def _e(x: Any) -> str:
    return html.escape("" if x is None or (isinstance(x, float) and pd.isna(x)) else str(x), quote=True)


def _usage(a: pd.Series) -> str:
    parts = []
    if pd.notna(a["latency_s"]):
        parts.append(f"{a['latency_s'] * 1000:,.0f} ms")
    if pd.notna(a["prompt_tokens"]):
        parts.append(f"{int(a['prompt_tokens']):,} + {int(a['completion_tokens'] or 0):,} tokens")
    if a["cache_hit"] is True:
        parts.append("from cache")
    return " · ".join(parts)


def decision_html(decision: pd.DataFrame, *, show_system: bool = True) -> str:
    """One decision (its rows of a transcript frame): questions, replies, errors, the answer recorded."""
    d = decision.iloc[0]
    who = f"<b>{_e(d['agent'])}</b> <span>{_e(d['policy'])}</span>"
    if pd.notna(d["model"]):
        who += f" <span>{_e(d['model'])}</span>"
    where = f"round {_e(d['round'])} · seat {_e(d['seat'])}"
    anchor = f'id="d-{_e(d["phase"])}-{_e(d["episode"])}-{_e(d["round"])}-{_e(d["seat"])}"'
    if decision["attempt"].isna().all():
        return (f'<div class="turn scripted" {anchor}><div class="head">{where} {who}'
                f' <span>→ <b>{_e(d["final"])}</b></span></div></div>')
    fell = bool(decision["fallback"].any())
    retried = bool(decision["parsed"].eq(False).fillna(False).any())
    tags = ""
    if fell:
        tags += '<span class="tag fallback">fallback</span>'
    elif retried:
        tags += '<span class="tag retried">retried</span>'
    cls = "turn fell" if fell else "turn bad" if retried else "turn"
    out = [f'<div class="{cls}" {anchor}><div class="head">{where} {who} {tags}</div>']
    if show_system and pd.notna(d["system"]):
        out.append(f'<details class="system"><summary>system message (rules, persona)</summary>'
                   f'<pre>{_e(d["system"])}</pre></details>')
    for purpose, asked in decision.groupby("purpose", sort=False):
        for _, a in asked.iterrows():
            n = int(a["attempt"]) + 1
            label = ("reasoning turn" if purpose == "reasoning" else f"{purpose} question") + (
                f", attempt {n}" if n > 1 or len(asked) > 1 else "")
            out.append(f'<div class="msg user"><div class="who">{_e(label)}</div><pre>{_e(a["prompt"])}</pre></div>')
            thinking = a.get("reasoning")
            if isinstance(thinking, str) and thinking.strip():
                out.append(f'<details class="msg thinking"><summary>thinking · {len(thinking):,} characters'
                           f'</summary><pre>{_e(thinking)}</pre></details>')
            bad = " invalid" if pd.notna(a["error"]) else ""
            out.append(f'<div class="msg reply{bad}"><div class="who">reply · {_e(_usage(a))}</div>'
                       f'<pre>{_e(a["reply"])}</pre></div>')
            if pd.notna(a["error"]):
                shown = "shown to the model" if n < int(a["attempts"]) else "last attempt"
                out.append(f'<div class="err">✗ {_e(a["error"])} <span class="note">({shown})</span></div>')
        if purpose == "reasoning":  # a free turn: its reply leads to the answer, it is not one
            continue
        last = asked.iloc[-1]
        if last["fallback"]:
            what = ("no prediction recorded" if purpose == "prediction"
                    else f"fallback to the default: {_e(last['final'])}")
            out.append(f'<div class="final">→ {_e(purpose)}: {what} '
                       f'<span class="note">(no usable reply in {int(last["attempts"])} attempts)</span></div>')
        else:
            out.append(f'<div class="final">→ {_e(purpose)}: {_e(last["final"])}</div>')
    out.append("</div>")
    return "".join(out)


def transcript_html(frame: pd.DataFrame, *, heading: str = "h4") -> str:
    """A transcript frame as HTML, episode by episode; the system message once per agent per episode."""
    if frame.empty:
        return '<p class="note">No decisions.</p>'
    out: list[str] = []
    for (phase, ep), episode in frame.groupby(["phase", "episode"], sort=False):
        names = [*episode["agent"], *episode["partner"].dropna()] if "partner" in episode else [*episode["agent"]]
        agents = " vs ".join(_e(a) for a in dict.fromkeys(str(a) for a in names))
        out.append(f'<div class="episode" id="ep-{_e(phase)}-{_e(ep)}"><{heading}>Phase {_e(phase)}, '
                   f"episode {_e(ep)}: {agents}</{heading}>")
        seen: set[Any] = set()
        for (_, seat), decision in episode.groupby(["round", "seat"], sort=False):
            out.append(decision_html(decision, show_system=seat not in seen))
            if decision["attempt"].notna().any():
                seen.add(seat)
        out.append("</div>")
    return "".join(out)
