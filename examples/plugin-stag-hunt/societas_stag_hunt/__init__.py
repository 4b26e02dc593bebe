"""societas-stag-hunt: the repeated stag hunt as a societas plug-in (see README.md)."""

from societas_stag_hunt.env import StagHunt

__all__ = ["StagHunt"]
