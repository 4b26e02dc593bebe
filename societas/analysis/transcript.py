"""Transcripts: the exchange behind each decision, attempt by attempt.

A researcher's first question after a run is what the agents actually said.
The `llm_calls` table holds every request and reply and the `events` table
every decision; `transcript` joins them on (phase, episode, round, seat) so
each attempt sits beside the decision it led to: the question put to the
model, its reply, the parse error shown back to it, the action finally
recorded and whether that action was the environment's fallback.

Given a run directory's path, only the rows asked for are read (Parquet
filters on episode, agent, phase and round), so one episode of a run of a
million decisions comes back in well under a second.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from societas.analysis.load import CALL_ORDER, Run, read_table
from societas.errors import CorruptRun

KEY = ["phase", "episode", "round", "seat"]
EVENT_COLUMNS = [*KEY, "run_id", "agent", "partner", "policy", "model", "action", "prediction", "valid",
                 "prediction_valid", "retries", "latency_s", "prompt_tokens", "completion_tokens", "cache_hit"]
CALL_COLUMNS = [*KEY, "agent", "purpose", "attempt", "model", "messages", "reply", "error", "latency_s",
                "prompt_tokens", "completion_tokens", "cache_hit", "reasoning"]
COLUMNS = ["run_id", "phase", "episode", "round", "seat", "agent", "partner", "policy", "model", "purpose",
           "attempt", "attempts", "system", "prompt", "reasoning", "reply", "error", "parsed", "final", "fallback",
           "valid", "latency_s", "prompt_tokens", "completion_tokens", "cache_hit"]
"""The transcript's columns, in order (see `transcript`)."""


def _filters(episode: int | Sequence[int] | None, agent: str | Sequence[str] | None, phase: int | None,
             round: int | None) -> list[tuple[str, str, Any]]:
    out: list[tuple[str, str, Any]] = []
    for name, value in (("episode", episode), ("agent", agent), ("phase", phase), ("round", round)):
        if value is None:
            continue
        if isinstance(value, str) or not isinstance(value, Sequence):
            out.append((name, "=", value))
        else:
            out.append((name, "in", list(value)))
    return out


def _read(folder: Path, columns: list[str], filters: list[tuple[str, str, Any]] | pc.Expression) -> pa.Table:
    parts = sorted(folder.glob("part-*.parquet"))
    if not parts:
        return pa.table({})
    try:
        # Runs recorded before a column existed (the reasoning) are read without it.
        present = set(pq.read_schema(parts[0]).names)
        columns = [c for c in columns if c in present]
        chosen = filters if isinstance(filters, pc.Expression) else filters or None
        return pq.read_table(parts, columns=columns, filters=chosen)
    except (pa.ArrowInvalid, OSError):
        return read_table(parts)  # names the damaged part (CorruptRun)


def _frame_filter(frame: pd.DataFrame, filters: list[tuple[str, str, Any]]) -> pd.DataFrame:
    if frame.empty:
        return frame
    mask = pd.Series(True, index=frame.index)
    for name, op, value in filters:
        mask &= frame[name].isin(value) if op == "in" else frame[name].eq(value)
    return frame[mask]


def _tables(run: Run | str | Path, filters: list[tuple[str, str, Any]]) -> tuple[pd.DataFrame, pd.DataFrame]:
    if isinstance(run, Run):
        return _frame_filter(run.events, filters), _frame_filter(run.llm_calls, filters)
    path = Path(run)
    if not (path / "config.yaml").is_file():
        raise FileNotFoundError(f"{path}: not a run directory (no config.yaml)")
    events = _read(path / "events", EVENT_COLUMNS, filters).to_pandas()
    calls = _read(path / "llm_calls", CALL_COLUMNS, filters).to_pandas()
    return events, calls


def _split(messages: str | None) -> tuple[str | None, str | None]:
    """The system message and the last user message of a recorded request."""
    if messages is None or (isinstance(messages, float) and pd.isna(messages)):
        return None, None
    try:
        items = json.loads(messages)
    except json.JSONDecodeError as exc:
        raise CorruptRun("llm_calls", f"a messages cell is not JSON: {exc}") from None
    system = next((m.get("content") for m in items if m.get("role") == "system"), None)
    prompt = next((m.get("content") for m in reversed(items) if m.get("role") == "user"), None)
    return system, prompt


def transcript(run: Run | str | Path, episode: int | Sequence[int] | None = None,
               agent: str | Sequence[str] | None = None, *, phase: int | None = None, round: int | None = None,
               invalid_only: bool = False, calls_only: bool = False) -> pd.DataFrame:
    """The exchanges behind a run's decisions: one row per model attempt, in the order they were played.

    `run` is a loaded `Run` or a run directory's path (then only the rows asked
    for are read). `episode`, `agent`, `phase` and `round` narrow it (an episode
    number or a list of them, an agent's name or a list). `invalid_only` keeps
    the decisions with at least one reply that did not parse, whether a retry
    then got a usable one or the decision fell back. Decisions no model made
    (scripted, replayed) have one row with no prompt, so an episode reads
    whole; `calls_only` leaves them out.

    Columns: `purpose` (action; prediction for a social-chain-of-thought
    question; reasoning for the free turn of `llm.reasoning: two_turn`),
    `attempt` (0 first; <NA> for a decision no model made) and `attempts`
    (how many that question took), `system` and `prompt` (the request's
    system message and its last user message: the observation's question on
    attempt 0, the retry message with the error on later ones), `reasoning`
    (the model's thinking: a reasoning parser's field or the reply's think
    blocks; "" when it showed none), `reply`, `error` (the parse error the
    next attempt showed the model, or the one that ended in the fallback),
    `parsed`, `final` (the action or prediction the event records),
    `fallback` (True when no attempt gave a usable answer: the action is the
    environment's default, or the prediction is missing), `valid` (the
    decision's), `latency_s`, `prompt_tokens`, `completion_tokens` and
    `cache_hit` (the attempt's).
    """
    filters = _filters(episode, agent, phase, round)
    events, calls = _tables(run, filters)
    if events.empty:
        return pd.DataFrame({c: pd.Series(dtype=object) for c in COLUMNS})
    decisions = events[[c for c in EVENT_COLUMNS if c in events]].drop(
        columns=["latency_s", "prompt_tokens", "completion_tokens", "cache_hit"])
    decisions = decisions.rename(columns={"model": "event_model"})
    if calls.empty:
        calls = pd.DataFrame({c: pd.Series(dtype=object) for c in CALL_COLUMNS})
    calls = calls[[c for c in CALL_COLUMNS if c in calls]].drop(columns=["agent"])
    rows = decisions.merge(calls, on=KEY, how="left" if not calls_only else "inner", validate="one_to_many")
    rows["model"] = rows["model"].where(rows["model"].notna(), rows["event_model"])
    rows["purpose"] = rows["purpose"].fillna("action")
    rows["parsed"] = (rows["reply"].notna() & rows["error"].isna()).astype("boolean")
    rows.loc[rows["attempt"].isna(), "parsed"] = pd.NA
    rows["attempt"] = rows["attempt"].astype("Int16")
    for column in ("prompt_tokens", "completion_tokens"):
        rows[column] = rows[column].astype("Int32")
    rows["attempts"] = rows.groupby([*KEY, "purpose"], sort=False)["attempt"].transform("count").astype("Int16")
    is_prediction = rows["purpose"].eq("prediction")
    rows["final"] = rows["action"].where(~is_prediction, rows["prediction"])
    action_fallback = ~rows["valid"].astype(bool)
    prediction_fallback = rows["prediction_valid"].eq(False).fillna(False).astype(bool)
    rows["fallback"] = action_fallback.where(~is_prediction, prediction_fallback)
    if invalid_only:
        bad = rows.loc[rows["parsed"].eq(False).fillna(False).astype(bool) | rows["fallback"], KEY].drop_duplicates()
        rows = rows.merge(bad, on=KEY, how="inner")
    order = rows["purpose"].map({"prediction": 0, "reasoning": 1, "action": 2}).fillna(3)
    rows = rows.assign(_order=order).sort_values([*KEY, "_order", "attempt"], kind="stable")
    split = [_split(m) for m in rows["messages"]]
    rows["system"] = [s for s, _ in split]
    rows["prompt"] = [p for _, p in split]
    return rows.reindex(columns=COLUMNS).reset_index(drop=True)


def _ms(x: Any) -> str:
    return "" if x is None or pd.isna(x) else f"{x * 1000:.0f} ms"


def _indent(text: Any, pad: str = "    ") -> str:
    if text is None or (isinstance(text, float) and pd.isna(text)):
        return pad + "(none)"
    return "\n".join(pad + line for line in str(text).splitlines() or [""])


def _has_text(x: Any) -> bool:
    return isinstance(x, str) and bool(x.strip())


def transcript_text(frame: pd.DataFrame, *, system: bool = True) -> str:
    """A transcript frame as plain text, episode by episode: question, replies, errors, the action recorded.

    The system message (the game's rules, the persona) is printed once per
    agent per episode, or left out with `system=False`.
    """
    if frame.empty:
        return "(no decisions)\n"
    lines: list[str] = []
    shown_system: set[tuple[Any, ...]] = set()
    for (phase, ep), episode in frame.groupby(["phase", "episode"], sort=False):
        first = episode.iloc[0]
        agents = " vs ".join(dict.fromkeys(str(a) for a in episode["agent"]))
        run_id = f" ({first['run_id']})" if first["run_id"] else ""
        lines.append(f"=== phase {phase}, episode {ep}: {agents}{run_id}")
        for (rnd, seat), decision in episode.groupby(["round", "seat"], sort=False):
            d = decision.iloc[0]
            who = f"{d['agent']} ({d['policy']}" + (f", {d['model']}" if pd.notna(d["model"]) else "") + ")"
            if decision["attempt"].isna().all():
                lines.append(f"--- round {rnd}, seat {seat}: {who} -> {d['final']}")
                continue
            lines.append(f"--- round {rnd}, seat {seat}: {who}")
            if system and (phase, ep, seat) not in shown_system and pd.notna(d["system"]):
                shown_system.add((phase, ep, seat))
                lines += ["  [system]", _indent(d["system"])]
            for purpose, asked in decision.groupby("purpose", sort=False):
                for _, a in asked.iterrows():
                    lines += [f"  [{purpose} question, attempt {int(a['attempt']) + 1}]", _indent(a["prompt"])]
                    usage = f"{_ms(a['latency_s'])}, {a['prompt_tokens']}+{a['completion_tokens']} tokens" + (
                        ", cached" if a["cache_hit"] is True else "")
                    if _has_text(a["reasoning"]):
                        lines += ["  [thinking]", _indent(a["reasoning"])]
                    lines += [f"  [reply] ({usage})", _indent(a["reply"])]
                    if pd.notna(a["error"]):
                        lines.append(f"  [invalid] {a['error']}")
                if purpose == "reasoning":  # a free turn: its reply leads to the answer, it is not one
                    continue
                last = asked.iloc[-1]
                if last["fallback"]:
                    what = "no prediction recorded" if purpose == "prediction" else f"fallback {last['final']}"
                    lines.append(f"  => {purpose}: {what} (no usable reply in {int(last['attempts'])} attempts)")
                else:
                    lines.append(f"  => {purpose}: {last['final']}")
        lines.append("")
    return "\n".join(lines)


def sample_episodes(run: Run, per_agent: int = 2) -> dict[str, list[tuple[int, int]]]:
    """A deterministic sample of each model-driven agent's episodes: its first with a fallback, then by hash.

    The same run gives the same sample on any machine (a SHA-1 of agent,
    phase and episode orders them), and an agent that ever fell back always
    shows one of those episodes first.
    """
    calls = run.llm_calls
    if calls.empty:
        return {}
    played = calls[["agent", "phase", "episode"]].drop_duplicates()
    ev = run.events
    bad = ev.loc[~ev["valid"].astype(bool) | ev["prediction_valid"].eq(False).fillna(False).astype(bool),
                 ["agent", "phase", "episode"]].drop_duplicates() if not ev.empty else played.iloc[:0]
    out: dict[str, list[tuple[int, int]]] = {}
    for agent, group in played.groupby("agent", sort=True):
        keys = [(int(p), int(e)) for p, e in zip(group["phase"], group["episode"], strict=True)]
        keys.sort(key=lambda k: hashlib.sha1(f"{agent}:{k[0]}:{k[1]}".encode()).hexdigest())
        first_bad = sorted((int(p), int(e)) for p, e in
                           bad.loc[bad["agent"] == agent, ["phase", "episode"]].itertuples(index=False))[:1]
        chosen = first_bad + [k for k in keys if k not in first_bad]
        out[str(agent)] = sorted(chosen[:per_agent])
    return out


def invalid_decisions(run: Run | str | Path) -> pd.DataFrame:
    """Every decision with a reply that did not parse: where it was, who, attempts, the final action, fallback."""
    if isinstance(run, Run):
        calls = run.llm_calls
        events = run.events
    else:
        path = Path(run)
        calls = _read(path / "llm_calls", [*KEY, "agent", "purpose", "error"], pc.field("error").is_valid()).to_pandas()
        events = _read(path / "events", [*KEY, "agent", "action", "valid", "prediction_valid"], []).to_pandas()
    columns = ["phase", "episode", "round", "seat", "agent", "errors", "action", "fallback", "first_error"]
    if calls.empty or events.empty:
        return pd.DataFrame({c: pd.Series(dtype=object) for c in columns})
    bad = calls[calls["error"].notna()]
    per = bad.groupby(KEY, sort=True).agg(errors=("error", "size"), first_error=("error", "first")).reset_index()
    ev = events[[*KEY, "agent", "action", "valid", "prediction_valid"]]
    fell = ev.assign(fallback=~ev["valid"].astype(bool) | ev["prediction_valid"].eq(False).fillna(False).astype(bool))
    out = per.merge(fell, on=KEY, how="left").sort_values(CALL_ORDER[:4], kind="stable")
    return out.reindex(columns=columns).reset_index(drop=True)


__all__ = ["COLUMNS", "invalid_decisions", "sample_episodes", "transcript", "transcript_text"]
