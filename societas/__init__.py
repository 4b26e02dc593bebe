"""societas: multi-agent language-model simulation."""

__version__ = "0.1.0"
