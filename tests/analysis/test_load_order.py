"""load_run puts rows in (phase, episode, round, seat) order whatever order the parts and rows came in,
exactly as pandas' stable sort of the whole table does."""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from societas.analysis.load import CALL_ORDER, EVENT_ORDER, load_run, read_table
from societas.config import load_config
from societas.runners.run import run_experiment


def _pandas_sorted(folder: Path, order: list[str]) -> pd.DataFrame:
    table = read_table(sorted(folder.glob("*.parquet")))
    return table.to_pandas().sort_values(order, kind="stable").reset_index(drop=True)


def _shuffle_parts(folder: Path, seed: int) -> None:
    """Rewrite a run's parts as three parts of shuffled rows (as episodes finishing out of order leave them)."""
    parts = sorted(folder.glob("*.parquet"))
    table = pa.concat_tables([pq.read_table(p) for p in parts])
    rows = np.random.default_rng(seed).permutation(table.num_rows)
    for p in parts:
        p.unlink()
    for i, chunk in enumerate(np.array_split(rows, 3)):
        pq.write_table(table.take(chunk), folder / f"part-{i:05d}.parquet")


def test_rows_in_order_from_shuffled_parts(tmp_path: Path) -> None:
    rd, _ = run_experiment(load_config("pd_tournament", model="fake:random", output_dir=str(tmp_path / "a")),
                           progress=False)
    before = load_run(rd.path)
    copy = tmp_path / "shuffled"
    shutil.copytree(rd.path, copy)
    _shuffle_parts(copy / "events", seed=1)
    _shuffle_parts(copy / "llm_calls", seed=2)
    after = load_run(copy)
    assert not pq.read_table(copy / "events" / "part-00000.parquet")["round"].to_numpy().tolist() == sorted(
        pq.read_table(copy / "events" / "part-00000.parquet")["round"].to_numpy().tolist())  # really shuffled
    pd.testing.assert_frame_equal(after.events, _pandas_sorted(copy / "events", EVENT_ORDER))
    pd.testing.assert_frame_equal(after.llm_calls, _pandas_sorted(copy / "llm_calls", CALL_ORDER))
    # one event per key: the shuffled run reads back as the original
    pd.testing.assert_frame_equal(after.events, before.events)
    assert after.events.index.equals(pd.RangeIndex(len(after.events)))
