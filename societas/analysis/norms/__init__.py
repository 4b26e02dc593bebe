"""Emergent-norm measures: conventions in naming games (and a model's own bias among the names), commons kept or
ruined."""

from societas.analysis.norms.commons import commons_runs, commons_summary, harvests, stock_table
from societas.analysis.norms.naming import (
    adoption,
    convention_share,
    critical_minority,
    interactions,
    success_rate,
    time_to_consensus,
    winner_distribution,
    winning_convention,
)
from societas.analysis.norms.naming_bias import individual_bias

__all__ = [
    "adoption",
    "commons_runs",
    "commons_summary",
    "convention_share",
    "critical_minority",
    "harvests",
    "individual_bias",
    "interactions",
    "stock_table",
    "success_rate",
    "time_to_consensus",
    "winner_distribution",
    "winning_convention",
]
