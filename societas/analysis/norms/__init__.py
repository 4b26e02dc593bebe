"""Emergent-norm measures from events frames: conventions in naming games."""

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

__all__ = [
    "adoption",
    "convention_share",
    "critical_minority",
    "interactions",
    "success_rate",
    "time_to_consensus",
    "winner_distribution",
    "winning_convention",
]
