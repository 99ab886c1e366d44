"""HR training patches: random windows drawn on the fly (ours), or the authors' fixed grid of windows.

Both are a function of the step alone (a generator seeded per step; the grid's seeded splits and epoch orders), so
a resumed run draws exactly the patches an uninterrupted run would have drawn, with no sampler state to save.
"""

from __future__ import annotations

import enum
from collections.abc import Sequence

import numpy as np
import torch


class PatchSampling(str, enum.Enum):
    RANDOM = "random"  # a random window of a random volume for every patch of every step (ours)
    GRID = "grid"  # the authors': the windows of a fixed grid over each padded volume, reshuffled epoch by epoch


def step_generator(seed: int, step: int) -> torch.Generator:
    return torch.Generator().manual_seed(seed * 1_000_003 + step)


def patch_windows(shapes: Sequence[tuple[int, ...]], size: int, batch: int, generator: torch.Generator,
                  align: Sequence[int] = (2, 2, 2)) -> list[tuple[int, tuple[slice, ...]]]:
    """``batch`` (volume index, window) pairs; each corner a multiple of ``align`` (per axis: the scale) so LR
    phases match whole volumes."""
    windows = []
    for _ in range(batch):
        index = int(torch.randint(len(shapes), (1,), generator=generator))
        shape = shapes[index]
        if any(n < size for n in shape):
            raise ValueError(f"volume of shape {shape} is smaller than the patch size {size}")
        corner = [int(torch.randint((n - size) // a + 1, (1,), generator=generator)) * a for n, a in zip(shape, align)]
        windows.append((index, tuple(slice(c, c + size) for c in corner)))
    return windows


def crop(volume: np.ndarray, window: tuple[slice, ...]) -> torch.Tensor:
    return torch.from_numpy(np.ascontiguousarray(volume[window], dtype=np.float32))


def sample_patches(volumes: list[np.ndarray], size: int, batch: int, generator: torch.Generator,
                   align: Sequence[int] = (2, 2, 2)) -> torch.Tensor:
    """(batch, 1, size, size, size) patches of ``volumes``."""
    windows = patch_windows([v.shape for v in volumes], size, batch, generator, align)
    return torch.stack([crop(volumes[i], w) for i, w in windows])[:, None]


class GridSampler:
    """The authors' patches (threeplayerGANSR mains/utils/crop_nifti_9t.py, cropped offline, then read by a data
    loader): each volume trimmed to even edges and zero-padded equally on both sides so that windows of ``size`` at
    ``stride`` cover it from edge to edge, and the windows read epoch by epoch as their data loaders read the crop
    files.

    Each of the ``processes`` keeps its own share of the windows (their ``random_split``, drawn anew in every
    process: seeded here per process), ``fraction`` of them (DISGAN's quarter); every epoch a
    ``DistributedSampler(shuffle=True)`` reshuffles each process's share with the epoch's seed, pads it to a multiple
    of ``processes`` and gives process ``r`` every ``processes``-th window from the ``r``-th (what Lightning's DDP
    inserts, ``set_epoch`` each epoch); each process reads ``batch / processes`` of them a step, its last incomplete
    batch dropped. With one process that is ``DataLoader(shuffle=True, drop_last=True)``: every window once per
    epoch, in a new order. The global batch of a step is the processes' batches in rank order, and every process
    computes all of it (the trainer takes its own rows)."""

    def __init__(self, shapes: Sequence[tuple[int, ...]], size: int, stride: int, batch: int, seed: int,
                 processes: int, fraction: float):
        self.size, self.batch, self.seed, self.processes = size, batch, seed, processes
        self.pads = [grid_padding(shape, size, stride) for shape in shapes]
        self.windows = [(index, corner) for index, shape in enumerate(shapes)
                        for corner in grid_corners(shape, size, stride)]
        self.shares = [torch.randperm(len(self.windows), generator=split_generator(seed, rank))[
            :int(len(self.windows) * fraction)] for rank in range(processes)]
        self.per_epoch = epoch_steps(len(self.windows), batch, processes, fraction)
        if self.per_epoch == 0:
            raise ValueError(f"the grid has {len(self.windows)} windows, {fraction:g} of them per process: fewer than "
                             f"a batch of {batch // processes} for each of {processes} processes")
        self._epoch: tuple[int, list[torch.Tensor]] | None = None

    def ranks_of(self, epoch: int) -> list[torch.Tensor]:
        """Each process's windows (indices into ``windows``) in ``epoch``'s order: DistributedSampler's."""
        if self._epoch is None or self._epoch[0] != epoch:
            share = len(self.shares[0])
            order = torch.randperm(share, generator=torch.Generator().manual_seed(self.seed + epoch))
            padded = torch.cat([order, order[:-share % self.processes]]) if share % self.processes else order
            self._epoch = epoch, [s[padded[rank::self.processes]] for rank, s in enumerate(self.shares)]
        return self._epoch[1]

    def windows_of(self, step: int) -> list[tuple[int, tuple[int, ...]]]:
        """(volume index, corner in the padded volume) of each patch of ``step``, process by process."""
        local = self.batch // self.processes
        first = (step % self.per_epoch) * local
        return [self.windows[int(i)] for indices in self.ranks_of(step // self.per_epoch)
                for i in indices[first:first + local]]

    def patches(self, volumes: list[np.ndarray], step: int) -> torch.Tensor:
        """(batch, 1, size, size, size) patches of ``step``; padding reads as 0."""
        out = torch.zeros((self.batch, 1, *(self.size,) * 3))
        for row, (index, corner) in enumerate(self.windows_of(step)):
            volume, pads = volumes[index], self.pads[index]
            source = tuple(slice(max(c - p, 0), min(c - p + self.size, n - n % 2))
                           for c, p, n in zip(corner, pads, volume.shape))
            target = tuple(slice(s.start - (c - p), s.stop - (c - p)) for s, c, p in zip(source, corner, pads))
            out[(row, 0, *target)] = crop(volume, source)
        return out


def split_generator(seed: int, rank: int) -> torch.Generator:
    """The random stream of one process's ``random_split`` (theirs is unseeded, so each process draws its own)."""
    return torch.Generator().manual_seed(int(np.random.SeedSequence([seed, rank]).generate_state(1)[0]))


def epoch_steps(windows: int, batch: int, processes: int, fraction: float) -> int:
    """Steps in one epoch of a grid of ``windows``: each process's share, padded to a multiple of the processes,
    split among them, read ``batch / processes`` at a time, the last incomplete batch dropped."""
    return -(-int(windows * fraction) // processes) // (batch // processes)


def grid_steps(shapes: Sequence[tuple[int, ...]], size: int, stride: int, batch: int, processes: int,
               fraction: float, epochs: int) -> int:
    """Steps of ``epochs`` epochs of the grid over volumes of ``shapes``."""
    windows = sum(len(grid_corners(shape, size, stride)) for shape in shapes)
    return epochs * epoch_steps(windows, batch, processes, fraction)


def grid_padding(shape: tuple[int, ...], size: int, stride: int) -> list[int]:
    """Zeros added on each side of each (even-trimmed) axis so that (edge - size) is a multiple of ``stride``."""
    if any(n < size for n in shape):
        raise ValueError(f"volume of shape {shape} is smaller than the patch size {size}")
    return [(-(n - n % 2 - size) % stride) // 2 for n in shape]


def grid_corners(shape: tuple[int, ...], size: int, stride: int) -> list[tuple[int, ...]]:
    """Every window corner of the padded volume, the first axis varying fastest (the authors' loop order)."""
    padded = [n - n % 2 + 2 * p for n, p in zip(shape, grid_padding(shape, size, stride))]
    axes = [range(0, n - size + 1, stride) for n in padded]
    return [(i, j, k) for k in axes[2] for j in axes[1] for i in axes[0]]
