"""Print the side-by-side table of the peer measurements (the JSON records in a folder).

Columns: decisions per second (wall clock, and per CPU second of the
measuring process, which a busy machine disturbs less), model calls per
decision, peak resident memory of the process (interpreter and imports
included), and whether the framework's final scores match those recomputed
from the moves it was given. Then the ratios societas / peer, the project's
targets, and one closing line with the societas / Concordia ratios at 2 and 8
players (wall clock, steady state).

Usage: python summary.py RESULTS_DIR
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

Record = dict[str, Any]
ORDER = {"societas": 0, "concordia": 1, "textarena": 2}


def load(folder: Path) -> list[Record]:
    return [json.loads(p.read_text()) for p in sorted(folder.glob("*.json"))]


def find(records: list[Record], framework: str, workload: str, *, agents: str | None = None,
         variant: str | None = None, games: str = "most") -> Record | None:
    """The record of a framework/workload; `games` most (steady state) or one (a single game)."""
    rows = [r for r in records if r["framework"] == framework and r["workload"] == workload
            and (agents is None or r.get("agents") == agents) and (variant is None or variant in r["variant"])]
    if games == "one":
        rows = [r for r in rows if r["games"] == 1]
    return max(rows, key=lambda r: r["games"]) if rows else None


def scores_text(s: Record) -> str:
    if s["ok"]:
        return f"ok ({s['moves_checked']} moves, {s['players_checked']} totals)"
    return (f"MIS-SCORED: {s['players_misscored']}/{s['players_checked']} totals wrong, "
            f"{s['moves_misattributed']}/{s['moves_checked']} moves scored as another move")


def conditions(records: list[Record]) -> None:
    c = records[0]["conditions"]
    print(f"machine: {c['machine']}")
    versions = sorted({(r["framework"], r["version"], r["conditions"]["python"]) for r in records},
                      key=lambda v: ORDER[v[0]])
    print("versions: " + "; ".join(f"{f} {v} (Python {p})" for f, v, p in versions))
    dates = sorted(r["conditions"]["date"] for r in records)
    loads = [r["conditions"].get("load_avg_1min", float("nan")) for r in records]
    print(f"measured: {dates[0]} to {dates[-1]} (UTC); 1-minute load average {min(loads):.2f} to {max(loads):.2f}")
    print("workloads: iterated Prisoner's Dilemma, 10 rounds; 2 players = 1 pair; 8 players = 4 fixed disjoint "
          "pairs in one run/simulation; 1000 = 500 fixed disjoint pairs")
    print("timed: from the config to the finished run in each framework, imports excluded; 'games' = repetitions")
    for r in sorted({(r["framework"], r["variant"], r["logging"]) for r in records}, key=lambda v: ORDER[v[0]]):
        print(f"  {r[0]}, {r[1]}: {r[2]}")


def table(records: list[Record]) -> None:
    head = (f"{'framework':<10} {'variant':<37} {'players':>7} {'games':>5} {'decisions':>9} {'dec/s':>10} "
            f"{'dec/CPU-s':>10} {'calls/dec':>9} {'peak RSS':>9} {'written':>9}  scores vs moves given")
    print(head)
    print("-" * len(head))
    for r in sorted(records, key=lambda r: (int(r["workload"]), ORDER[r["framework"]], r["variant"], -r["games"])):
        print(f"{r['framework']:<10} {r['variant'][:37]:<37} {r['workload']:>7} {r['games']:>5} {r['decisions']:>9} "
              f"{r['decisions_per_s']:>10,.1f} {r.get('decisions_per_cpu_s', 0):>10,.1f} "
              f"{r['calls_per_decision']:>9.2f} {r['rss_peak_mib']:>6.0f} MiB {r.get('written_mib', 0):>5.1f} MiB  "
              f"{scores_text(r['scores'])}")
    for r in records:
        for example in r["scores"].get("misattributed_examples", [])[:1]:
            print(f"  {r['framework']}, {r['variant']}, {r['workload']} players, e.g. {example}")


def ratio(a: Record | None, b: Record | None, key: str = "decisions_per_s") -> float | None:
    return a[key] / b[key] if a and b and a.get(key) and b.get(key) else None


def fmt(x: float | None) -> str:
    return "n/a" if x is None else f"{x:,.1f}x"


def ratios(records: list[Record]) -> None:
    rows: list[tuple[str, Record | None, Record | None]] = []
    for w in ("2", "8"):
        conc = find(records, "concordia", w, variant="minimal")
        for games in ("most", "one"):
            s = find(records, "societas", w, agents="llm", games=games)
            if s:
                rows.append((f"{w} players, societas fake model ({s['games']} game(s)) / Concordia minimal", s, conc))
    for w in ("2", "8", "1000"):
        ta = find(records, "textarena", w)
        scripted = find(records, "societas", w, agents="scripted")
        rows.append((f"{w} players, societas scripted / TextArena", scripted, ta))
        rows.append((f"{w} players, societas fake model / TextArena", find(records, "societas", w, agents="llm"), ta))
    print(f"  {'':<70} {'wall':>10} {'CPU':>10}")
    for label, a, b in rows:
        print(f"  {label:<70} {fmt(ratio(a, b)):>10} {fmt(ratio(a, b, 'decisions_per_cpu_s')):>10}")
    conc2 = find(records, "concordia", "2", variant="minimal")
    s1000 = find(records, "societas", "1000", agents="llm")
    if conc2 and s1000:
        hours = 10_000 / conc2["decisions_per_s"] / 3600
        print(f"  1000 players, Concordia: NOT RUN. EXTRAPOLATED, not measured: 500 separate 2-player simulations at "
              f"its measured 2-player rate would take {hours:.2f} h;")
        print(f"    societas fake model / that estimate: {fmt(ratio(s1000, conc2))}. One Concordia simulation seating "
              "all 1,000 costs more per decision: its game master asks the model for every")
        print("    player's observation at every step (model calls per decision = players in the table above).")


def targets(records: list[Record]) -> None:
    for w in ("2", "8"):
        s, conc = find(records, "societas", w, agents="llm"), find(records, "concordia", w, variant="minimal")
        x = ratio(s, conc)
        calls = s["calls_per_decision"] if s else float("nan")
        met = x is not None and x >= 100 and abs(calls - 1) < 1e-9
        print(f"  societas fake model >= 100x Concordia at {w} players, 1 model call/decision: "
              f"{'met' if met else 'NOT met'} ({fmt(x)}, {calls:.2f} calls/decision)")
    for w in ("2", "8", "1000"):
        x = ratio(find(records, "societas", w, agents="scripted"), find(records, "textarena", w))
        print(f"  societas scripted (every decision logged) >= TextArena at {w} players: "
              f"{'met' if x is not None and x >= 1 else 'NOT met'} ({fmt(x)})")


def main() -> None:
    folder = Path(sys.argv[1] if len(sys.argv) > 1 else ".")
    records = load(folder)
    if not records:
        sys.exit(f"no JSON records in {folder}")
    print("== conditions ==")
    conditions(records)
    print("\n== measurements ==")
    table(records)
    print("\n== ratios (decisions per second, societas / peer) ==")
    ratios(records)
    print("\n== targets (wall clock, steady state) ==")
    targets(records)
    r2 = ratio(find(records, "societas", "2", agents="llm"), find(records, "concordia", "2", variant="minimal"))
    r8 = ratio(find(records, "societas", "8", agents="llm"), find(records, "concordia", "8", variant="minimal"))
    print()
    print(f"ratio societas/concordia decisions per second: 2 players {'n/a' if r2 is None else f'{r2:.1f}'}, "
          f"8 players {'n/a' if r8 is None else f'{r8:.1f}'}")


if __name__ == "__main__":
    main()
