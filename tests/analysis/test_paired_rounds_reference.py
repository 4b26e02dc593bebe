"""paired_rounds pairs each decision with its partner's exactly as the plain self-merge on the round keys does
(the definition it replaced for speed), on real PD and Battle-of-the-Sexes runs and on rows out of order."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest

from societas.analysis import cooperation as c
from societas.analysis.load import load_run
from societas.config import load_config
from societas.runners.run import run_experiment


def merged_pairs(events: pd.DataFrame) -> pd.DataFrame:
    """The reference: every two-decision round joined with itself, each row with the other seat's move."""
    keys = ["run_id", "phase", "episode"] if "run_id" in events else ["phase", "episode"]
    cols = [*keys, "round", "seat", "agent", "partner", "option", "cooperated", "reward"]
    ev = events.loc[events["option"].notna(), [x for x in cols if x in events]].copy()
    ev["cooperated"] = c._as_float(ev["cooperated"])
    ev["option"] = ev["option"].astype(float)
    ev = ev[ev.groupby([*keys, "round"])["seat"].transform("size") == 2]
    other = ev[[*keys, "round", "seat", "option", "cooperated"]].rename(
        columns={"seat": "partner_seat", "option": "partner_option", "cooperated": "partner_cooperated"})
    out = ev.merge(other, on=[*keys, "round"])
    out = out[out["seat"] != out["partner_seat"]].drop(columns="partner_seat")
    out = out.sort_values([*keys, "seat", "round"], kind="stable").reset_index(drop=True)
    g = out.groupby([*keys, "seat"], sort=False)
    consecutive = g["round"].diff() == 1
    out["prev_cooperated"] = g["cooperated"].shift(1).where(consecutive)
    out["prev_partner_cooperated"] = g["partner_cooperated"].shift(1).where(consecutive)
    return out


@pytest.mark.parametrize("config", ["pd_tournament", "bos_tournament"])
def test_paired_rounds_equals_the_self_merge(tmp_path: Path, config: str) -> None:
    rd, _ = run_experiment(load_config(config, output_dir=str(tmp_path)), progress=False)
    events = load_run(rd.path).events
    shuffled = events.sample(frac=1.0, random_state=3)  # the rows in no particular order
    lone = events.drop(index=events.index[::7])  # some rounds with one decision left: not paired
    for ev in (events, shuffled, lone, events.iloc[:0]):
        pd.testing.assert_frame_equal(c.paired_rounds(ev), merged_pairs(ev))
    assert len(c.paired_rounds(events)) == int(events["option"].notna().sum())
