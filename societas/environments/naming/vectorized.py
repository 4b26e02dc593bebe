"""The minimal naming game over whole populations at once (numpy), for 10^4 to 10^6+ agents.

`minimal.simulate` plays one interaction at a time in Python, as the paper's
baseline does; at a million agents that is hours. Here time advances in
*matchings*: each one pairs the population at random into disjoint
speaker-listener pairs (one agent sits out when N is odd), so no agent is in
two interactions at once and every pair of a matching can be played in one
array operation. The rule inside an interaction is the same as `minimal`'s:
the speaker says a random word of its inventory (inventing one of the W names
and keeping it when empty); a listener who knows it makes both keep only it
(success), else the listener answers a word of its own (a random other name
when empty) and adds the speaker's (failure); committed agents say their name
and never change.

The interaction order differs (random matchings rather than independent random
pairs), so events differ from `minimal`'s for the same seed while the
statistics agree (the test compares them). Inventories are bitsets over the W
names (one uint64 per agent, so W <= 64). Every draw of a matching comes from a
generator seeded by (seed, episode, matching) alone, drawn as whole vectors in a
fixed amount per pair, so the events depend on neither the batch size of the
writer nor anything else of the machinery.

Events are columnar: `batches` yields one Arrow record batch per matching (two
rows per interaction; see `EVENT_SCHEMA`), `write_events` streams them into one
Parquet file, and `simulate` returns the small-N frame `minimal.simulate` does,
so `societas.analysis.norms` reads either.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from societas.environments.naming.minimal import MinimalNamingGame

MAX_NAMES = 64
POLICIES: tuple[str, str] = ("minimal", "committed")

EVENT_SCHEMA = pa.schema([
    ("phase", pa.dictionary(pa.int8(), pa.string())),
    ("episode", pa.int32()),
    ("round", pa.int64()),        # the interaction's index in the episode, from 0
    ("matching", pa.int32()),     # the random matching it belongs to (N // 2 interactions each)
    ("seat", pa.int8()),          # 0 speaker, 1 listener
    ("agent", pa.int32()),        # agent i (`simulate` names it agent_i, as minimal does)
    ("action", pa.dictionary(pa.int8(), pa.string())),
    ("reward", pa.float64()),     # +100 each on a match, -50 otherwise
    ("policy", pa.dictionary(pa.int8(), pa.string())),
])


@dataclass(frozen=True, slots=True)
class Outcome:
    """How a run ended: interactions played, consensus (3N consecutive successes) and where."""

    interactions: int
    matchings: int
    consensus: bool
    consensus_interactions: int | None
    successes: int
    convention: str | None  # the name every non-committed agent holds alone, if there is one


def _select_table(width: int) -> np.ndarray:
    """table[inventory, k] = position of the k-th set bit of a `width`-bit inventory (width <= 16)."""
    inv = np.arange(1 << width, dtype=np.int64)[:, None]
    bits = (inv >> np.arange(width)) & 1
    order = np.where(bits == 1, np.arange(width), width)
    return np.sort(order, axis=1).astype(np.int8)


class _Selector:
    """The k-th name of each inventory, by table for W <= 16, by a scan over the W bits beyond."""

    def __init__(self, width: int) -> None:
        self.width = width
        self.table = _select_table(width) if width <= 16 else None

    def __call__(self, inv: np.ndarray, k: np.ndarray) -> np.ndarray:
        if self.table is not None:
            return self.table[inv.astype(np.intp), k].astype(np.int64)
        out = np.zeros(len(inv), dtype=np.int64)
        seen = np.zeros(len(inv), dtype=np.int64)
        for b in range(self.width):
            bit = ((inv >> np.uint64(b)) & np.uint64(1)).astype(np.int64)
            out[(bit == 1) & (seen == k)] = b
            seen += bit
        return out


def _count(inv: np.ndarray) -> np.ndarray:
    return np.bitwise_count(inv).astype(np.int64)


def _check(game: MinimalNamingGame) -> None:
    if len(game.names) > MAX_NAMES:
        raise ValueError(f"the vectorised naming game holds at most {MAX_NAMES} names, got {len(game.names)}")
    if len(set(game.names)) != len(game.names):
        raise ValueError("names must be distinct")


def _inventories(game: MinimalNamingGame) -> np.ndarray:
    names = list(game.names)
    inv = np.zeros(game.n_agents, dtype=np.uint64)
    if game.swap:
        inv[:] = np.uint64(1) << np.uint64(names.index(game.established))
    if game.committed:
        inv[: game.committed] = np.uint64(1) << np.uint64(names.index(game.committed_name))
    return inv


def batches(game: MinimalNamingGame, seed: int, episode: int = 0,
            outcome: list[Outcome] | None = None) -> Iterator[pa.RecordBatch]:
    """One record batch per matching until 3N consecutive successes (not in the swap
    setup) or `game.budget` interactions; the run's `Outcome` is appended to `outcome`."""
    _check(game)
    n, width = game.n_agents, len(game.names)
    pairs = n // 2
    inv = _inventories(game)
    select = _Selector(width)
    one = np.uint64(1)
    free = np.ones(n, dtype=bool)
    free[: game.committed] = False
    window = game.stop_after_rounds * n
    phase = pa.DictionaryArray.from_arrays(np.zeros(2 * pairs, dtype=np.int8), pa.array(["play"]))
    seats = np.tile(np.array([0, 1], dtype=np.int8), pairs)
    names = pa.array(list(game.names))
    policies = pa.array(list(POLICIES))
    streak = played = successes = step = 0
    consensus_at: int | None = None
    while played < game.budget and consensus_at is None:
        gen = np.random.default_rng(np.random.SeedSequence([seed, episode, step]))
        order = gen.permutation(n)
        u = gen.random((pairs, 2))  # per pair: the speaker's pick, the listener's pick on a failure
        speaker, listener = order[0: 2 * pairs: 2], order[1: 2 * pairs: 2]
        inv_s, inv_l = inv[speaker], inv[listener]
        count_s = _count(inv_s)
        empty = count_s == 0
        word = np.where(empty, (u[:, 0] * width).astype(np.int64),
                        select(inv_s, (u[:, 0] * np.maximum(count_s, 1)).astype(np.int64)))
        bit = one << word.astype(np.uint64)
        inv_s = np.where(empty, bit, inv_s)  # only free agents can be empty
        ok = (inv_l & bit) != 0
        count_l = _count(inv_l)
        own = select(inv_l, (u[:, 1] * np.maximum(count_l, 1)).astype(np.int64))
        other = (u[:, 1] * (width - 1)).astype(np.int64)
        other += other >= word
        answer = np.where(ok, word, np.where(count_l == 0, other, own))
        new_s = np.where(ok, bit, inv_s)
        new_l = np.where(ok, bit, inv_l | bit)
        # Consecutive successes ending at each pair (carrying the streak in); a consensus
        # window may close inside this matching: keep its interactions up to there.
        idx = np.arange(pairs)
        last_fail = np.maximum.accumulate(np.where(ok, -1, idx))
        run_at = np.where(last_fail >= 0, idx - last_fail, streak + idx + 1)
        keep = min(pairs, game.budget - played)
        if not game.swap:
            hit = np.flatnonzero(run_at[:keep] >= window)
            if hit.size:
                keep = int(hit[0]) + 1
                consensus_at = played + keep
        if keep < pairs:
            speaker, listener, ok = speaker[:keep], listener[:keep], ok[:keep]
            word, answer, new_s, new_l = word[:keep], answer[:keep], new_s[:keep], new_l[:keep]
        inv[speaker[free[speaker]]] = new_s[free[speaker]]
        inv[listener[free[listener]]] = new_l[free[listener]]
        streak = int(run_at[keep - 1])
        agents = np.empty(2 * keep, dtype=np.int32)
        agents[0::2], agents[1::2] = speaker, listener
        actions = np.empty(2 * keep, dtype=np.int8)
        actions[0::2], actions[1::2] = word, answer
        reward = np.repeat(np.where(ok, 100.0, -50.0), 2)
        yield pa.RecordBatch.from_arrays([
            phase.slice(0, 2 * keep),
            pa.array(np.full(2 * keep, episode, dtype=np.int32)),
            pa.array(np.repeat(np.arange(played, played + keep, dtype=np.int64), 2)),
            pa.array(np.full(2 * keep, step, dtype=np.int32)),
            pa.array(seats[: 2 * keep]),
            pa.array(agents),
            pa.DictionaryArray.from_arrays(actions, names),
            pa.array(reward),
            pa.DictionaryArray.from_arrays((agents < game.committed).astype(np.int8), policies),
        ], schema=EVENT_SCHEMA)
        played += keep
        successes += int(ok.sum())
        step += 1
    if outcome is not None:
        outcome.append(Outcome(
            interactions=played, matchings=step, consensus=consensus_at is not None,
            consensus_interactions=consensus_at, successes=successes, convention=_convention(inv[free], game),
        ))


def _convention(inv: np.ndarray, game: MinimalNamingGame) -> str | None:
    if inv.size == 0 or not (inv == inv[0]).all() or _count(inv[:1])[0] != 1:
        return None
    return game.names[int(inv[0]).bit_length() - 1]


# Dictionary pages only where few values repeat, deltas for the counters, statistics for the
# columns one filters on: about a third faster to write than the defaults, and smaller.
_WRITE_OPTIONS = {
    "compression": "zstd",
    "use_dictionary": ["phase", "seat", "action", "reward", "policy"],
    "column_encoding": {"episode": "PLAIN", "round": "DELTA_BINARY_PACKED", "matching": "DELTA_BINARY_PACKED",
                        "agent": "PLAIN"},
    "write_statistics": ["episode", "round", "matching"],
}


def write_events(game: MinimalNamingGame, seed: int, path: str | Path, *, episode: int = 0,
                 batch_rows: int = 1 << 20) -> Outcome:
    """Play one run and stream its events into one Parquet file, row groups of about `batch_rows`."""
    outcome: list[Outcome] = []
    with pq.ParquetWriter(path, EVENT_SCHEMA, **_WRITE_OPTIONS) as writer:
        pending: list[pa.RecordBatch] = []
        rows = 0
        for batch in batches(game, seed, episode, outcome):
            pending.append(batch)
            rows += batch.num_rows
            if rows >= batch_rows:
                writer.write_table(pa.Table.from_batches(pending), row_group_size=rows)
                pending, rows = [], 0
        if pending:
            writer.write_table(pa.Table.from_batches(pending), row_group_size=max(rows, 1))
    return outcome[0]


def run(game: MinimalNamingGame, seed: int, episode: int = 0) -> Outcome:
    """Play one run without keeping its events (timing the model alone)."""
    outcome: list[Outcome] = []
    for _ in batches(game, seed, episode, outcome):
        pass
    return outcome[0]


def simulate(game: MinimalNamingGame, seed: int, episode: int = 0) -> pd.DataFrame:
    """One run as the frame `minimal.simulate` gives (agents named agent_i) plus its
    matching column, for small N."""
    table = pa.Table.from_batches(list(batches(game, seed, episode)), schema=EVENT_SCHEMA)
    frame = table.to_pandas()
    for column in ("phase", "action", "policy"):
        frame[column] = frame[column].astype(str)
    frame["agent"] = "agent_" + frame["agent"].astype(str)
    return frame[["phase", "episode", "round", "seat", "agent", "action", "reward", "policy", "matching"]]
