"""Analysis of run directories in pandas: loading, metrics, tables."""

from societas.analysis.cooperation import agent_table
from societas.analysis.load import Run, load_run, load_runs, load_sweep, load_sweep_events

__all__ = ["Run", "agent_table", "load_run", "load_runs", "load_sweep", "load_sweep_events"]
