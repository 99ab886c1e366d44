"""What the GAN and the segmentation training share: a base trainer, resumable checkpoints, and a step loop
that survives a SLURM time-out.

A trainer has a ``step`` counter, a ``fingerprint`` of what changes its result, ``state()`` / ``load_state()``
and ``save_model()`` (its model file, through that file kind's one writer). Checkpoints are written atomically with the previous one kept beside
them, and a checkpoint of another configuration is never resumed.
"""

from __future__ import annotations

import contextlib
import fcntl
import logging
import os
import shutil
import signal
from collections.abc import Callable, Iterator
from pathlib import Path

import numpy as np
import pandas as pd
import torch
from tqdm import tqdm

from mrisr import distributed
from mrisr.device import autocast, default_device, uses_bf16
from mrisr.errors import InputError, MrisrError
from mrisr.io import atomic_path, load_torch, remove_interrupted_writes, write_table
from mrisr.settings import StepSettings

log = logging.getLogger(__name__)

#: SIGTERM: SLURM's time-out or scancel; SIGINT: Ctrl-C; SIGUSR1: what ``sbatch --signal=USR1@<s>`` sends
#: shortly before the time limit.
STOP_SIGNALS = (signal.SIGTERM, signal.SIGINT, signal.SIGUSR1)


class Interrupted(MrisrError):
    """Training stopped by a signal after writing a checkpoint; rerun to resume."""


class Trainer:
    """Device, precision, step counter and log rows; subclasses add networks, ``train_step`` and ``save_model``."""

    #: the name of the file ``save_model`` writes
    model_file: str

    def __init__(self, settings: StepSettings, fingerprint: str):
        self.settings = settings
        self.device = default_device()
        self.bf16 = uses_bf16(settings.precision, self.device)
        torch.manual_seed(settings.seed)  # the initial weights: same seed, same start
        self.fingerprint = fingerprint
        self.step = 0
        self.rows: list[dict] = []

    def autocast(self) -> torch.autocast:
        return autocast(self.device, self.bf16)

    def backends(self) -> contextlib.AbstractContextManager:
        """The process-wide backend flags its steps run under (:class:`mrisr.device.Acceleration`)."""
        return contextlib.nullcontext()

    def state(self) -> dict:
        raise NotImplementedError

    def load_state(self, state: dict) -> None:
        raise NotImplementedError

    def save_model(self, path: Path) -> None:
        raise NotImplementedError

    def checked_losses(self, row: dict) -> tuple[str, ...]:
        """The losses of a step's row that must be finite."""
        raise NotImplementedError


def previous(path: Path) -> Path:
    return path.with_name(path.name + ".prev")


def save_checkpoint(trainer: Trainer, path: Path) -> None:
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


def try_resume(trainer: Trainer, path: Path) -> bool:
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


def run_steps(trainer: Trainer, total: int, take_step: Callable[[], dict], checkpoint: Path,
              checkpoint_every: int, *, show: tuple[str, ...] = (), writer: bool = True, progress: bool = True,
              desc: str = "train") -> None:
    """Call ``take_step`` until ``trainer.step == total``; checkpoint every ``checkpoint_every`` steps and on a stop signal.

    ``show`` names the row values in the progress bar.
    """
    stop = {"signal": None}

    def request_stop(signum, _frame):
        stop["signal"] = signum

    handlers = {sig: signal.signal(sig, request_stop) for sig in STOP_SIGNALS}
    try:
        with tqdm(total=total, initial=trainer.step, desc=desc, unit="step", disable=not (progress and writer)) as bar:
            while trainer.step < total:
                row = take_step()
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


@contextlib.contextmanager
def training_lock(out_dir: Path) -> Iterator[None]:
    """One training per output folder at a time: an exclusive ``flock`` on ``out_dir/train.lock``, which the kernel
    releases when the holder exits, so that a killed run never leaves the folder locked."""
    with open(out_dir / "train.lock", "a") as lock:
        try:
            fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            raise InputError(out_dir, "is being trained into by another running job (it holds train.lock)",
                             "wait for that job to end, or train into another folder") from None
        yield


def fit(trainer: Trainer, take_step: Callable[[], dict], out_dir: str | Path, *, fix: str, show: tuple[str, ...],
        writer: bool = True, progress: bool = True, desc: str = "train") -> dict[str, Path]:
    """Train (or resume) to the settings' steps; write the trainer's model file and ``train_log.csv`` into ``out_dir``.

    A row whose checked losses are not finite stops the run before it is checkpointed, naming ``fix``.
    """
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    with training_lock(out) if writer else contextlib.nullcontext():
        return _fit(trainer, take_step, out, fix=fix, show=show, writer=writer, progress=progress, desc=desc)


def _fit(trainer: Trainer, take_step: Callable[[], dict], out: Path, *, fix: str, show: tuple[str, ...], writer: bool,
         progress: bool, desc: str) -> dict[str, Path]:
    checkpoint = out / "checkpoint.pt"
    if try_resume(trainer, checkpoint):
        log.info("resumed from %s at step %d", checkpoint, trainer.step)

    def checked_step() -> dict:
        row = take_step()
        bad = [k for k in trainer.checked_losses(row) if not np.isfinite(row[k])]
        if bad:
            raise MrisrError(f"training ({desc}) diverged at step {row['step']}: {', '.join(bad)} is not finite; the "
                             f"last good checkpoint is kept at {checkpoint}. Fix: {fix}")
        trainer.rows.append(row)
        return row

    settings = trainer.settings
    with trainer.backends():
        run_steps(trainer, settings.steps, checked_step, checkpoint, settings.checkpoint_every, show=show,
                  writer=writer, progress=progress, desc=desc)
    model, log_path = out / trainer.model_file, out / "train_log.csv"
    if writer:
        trainer.save_model(model)
        write_table(pd.DataFrame(trainer.rows), log_path)
    return {"model": model, "log": log_path}
