"""Helpers of the view tests: a small PD tournament config, and `societas view` served in a subprocess."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

from societas.config import ExperimentConfig, load_config

SMALL = ("llm", "llm-scot", "tit-for-tat", "always-defect", "gpt4")


def small_config(model: str, out: Path, *, members: tuple[str, ...] = SMALL,
                 **runner: object) -> ExperimentConfig:
    """A PD tournament of a few members: 25 episodes, parts every few episodes."""
    cfg = load_config("pd_tournament", model=model, output_dir=str(out))
    return cfg.model_copy(update={
        "population": [m for m in cfg.population if m.name in members],
        "llm": cfg.llm.model_copy(update={"cache": False, "backoff_base_s": 0.01, "backoff_max_s": 0.05,
                                          "max_retries": 1, "breaker_window_s": 0.5}),
        "runner": cfg.runner.model_copy(update={"flush_every_s": 0.05, **runner}),
    })



class ViewServer:
    """`societas view ROOT --port 0` in a subprocess; `url` is what it printed."""

    def __init__(self, root: Path, *options: str) -> None:
        self.proc = subprocess.Popen([sys.executable, "-m", "societas.cli", "view", str(root), "--port", "0",
                                      *options],
                                     stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                                     env=dict(os.environ, PYTHONUNBUFFERED="1"))
        deadline = time.time() + 120
        line = ""
        while time.time() < deadline:
            line = self.proc.stdout.readline()
            if line or self.proc.poll() is not None:
                break
        match = re.search(r"http://127\.0\.0\.1:\d+/", line)
        if match is None:
            self.stop()
            raise AssertionError(f"societas view printed no URL: {line!r} {self.proc.stderr.read()}")
        self.url = match.group(0)

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGINT)
            try:
                self.proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
