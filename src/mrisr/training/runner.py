"""What every training job shares: resumable checkpoints and a step loop that survives a SLURM time-out.

A trainer is anything with a ``step`` counter, a ``fingerprint`` of what changes its result, and
``state()`` / ``load_state()``. Checkpoints are written atomically with the previous one kept beside
them, and a checkpoint of another configuration is never resumed.
"""

from __future__ import annotations

import logging
import os
import shutil
import signal
from collections.abc import Callable
from pathlib import Path
from typing import Protocol

import torch
from tqdm import tqdm

from mrisr.errors import InputError, MrisrError
from mrisr.io import atomic_path, load_torch, remove_interrupted_writes
from mrisr.training import distributed

log = logging.getLogger(__name__)

#: SIGTERM: SLURM's time-out or scancel; SIGINT: Ctrl-C; SIGUSR1: what ``sbatch --signal=USR1@<s>`` sends
#: shortly before the time limit.
STOP_SIGNALS = (signal.SIGTERM, signal.SIGINT, signal.SIGUSR1)


class Interrupted(MrisrError):
    """Training stopped by a signal after writing a checkpoint; rerun to resume."""


class Resumable(Protocol):
    step: int
    fingerprint: str
    device: torch.device

    def state(self) -> dict: ...

    def load_state(self, state: dict) -> None: ...


def previous(path: Path) -> Path:
    return path.with_name(path.name + ".prev")


def save_checkpoint(trainer: Resumable, path: Path) -> None:
    """Write ``path`` atomically, keeping the one before as ``<name>.prev`` in case this one is damaged later.

    The previous checkpoint is linked (copied where the file system refuses links) rather than moved, so a
    kill at any instant leaves ``path`` in place, holding either the old or the new step.
    """
    with atomic_path(path) as tmp:
        torch.save({"fingerprint": trainer.fingerprint, "step": trainer.step, **trainer.state()}, tmp)
        if path.exists():
            with atomic_path(previous(path)) as kept:
                kept.unlink()
                try:
                    os.link(path, kept)
                except OSError:
                    shutil.copyfile(path, kept)


def try_resume(trainer: Resumable, path: Path) -> bool:
    """Load the newest readable checkpoint of this configuration; a damaged one is reported and skipped.

    Temporary files of a write that a kill interrupted are removed: they are never complete checkpoints.
    """
    remove_interrupted_writes(path)
    state = None
    for candidate in (path, previous(path)):
        if not candidate.is_file():
            continue
        try:
            state = load_torch(candidate, "delete it to start afresh", map_location=trainer.device)
            break
        except InputError as exc:
            log.warning("%s (trying the previous checkpoint)", exc)
    if state is None:
        return False
    if state.get("fingerprint") != trainer.fingerprint:
        log.warning("%s belongs to another configuration; starting afresh", path)
        return False
    trainer.load_state(state)
    trainer.step = state["step"]
    return True


def run_steps(trainer: Resumable, total: int, take_step: Callable[[], dict], checkpoint: Path,
              checkpoint_every: int, *, check: Callable[[dict], None] = lambda row: None,
              show: tuple[str, ...] = (), writer: bool = True, progress: bool = True, desc: str = "train") -> None:
    """Call ``take_step`` until ``trainer.step == total``; checkpoint every ``checkpoint_every`` steps and on a stop signal.

    ``check`` raises on a bad row (before it is checkpointed); ``show`` names the row values in the progress bar.
    """
    stop = {"signal": None}

    def request_stop(signum, _frame):
        stop["signal"] = signum

    handlers = {sig: signal.signal(sig, request_stop) for sig in STOP_SIGNALS}
    try:
        with tqdm(total=total, initial=trainer.step, desc=desc, unit="step", disable=not (progress and writer)) as bar:
            while trainer.step < total:
                row = take_step()
                check(row)
                bar.update(1)
                bar.set_postfix({k: f"{row[k]:.3f}" for k in show})
                stopping = distributed.any_process(stop["signal"] is not None)
                due = trainer.step % checkpoint_every == 0 or trainer.step == total
                if writer and (due or stopping):
                    save_checkpoint(trainer, checkpoint)
                if stopping:
                    raise Interrupted(f"stopped by signal {stop['signal']} at step {trainer.step}; checkpoint "
                                      f"written to {checkpoint}. Fix: rerun the same command to resume")
    finally:
        for sig, handler in handlers.items():
            signal.signal(sig, handler)
