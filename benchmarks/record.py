"""The entry every benchmark appends to benchmarks/README.md: script, date, machine, versions, setup, command, result."""

from __future__ import annotations

import datetime
import platform
import sys
from pathlib import Path

README = Path(__file__).resolve().parent / "README.md"


def append_entry(machine: str, setup: str, body: str) -> None:
    """``machine``: what this run used of it (threads, cores); ``setup``: what was measured, how often."""
    import torch  # here: inference.py's parent process leaves torch to the runs it measures

    device = f"CUDA {torch.cuda.get_device_name()}" if torch.cuda.is_available() else "CPU"
    script = Path(sys.argv[0]).name
    header = (f"\n## {script}, {datetime.date.today()}\n\n"
              f"Machine: {platform.machine()}, {machine}, torch {torch.__version__}, {device}. {setup}\n"
              f"Command: `python {' '.join(sys.argv)}`\n\n")
    with open(README, "a") as f:
        f.write(header + body + "\n")
