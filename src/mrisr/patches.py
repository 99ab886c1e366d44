"""HR training patches: random windows drawn on the fly (ours), or the authors' fixed grid of windows.

Both are a function of the step alone (a generator seeded per step; the grid's one seeded order), so a resumed run
draws exactly the patches an uninterrupted run would have drawn, with no sampler state to save.
"""

from __future__ import annotations

import enum
from collections.abc import Sequence

import numpy as np
import torch


class PatchSampling(str, enum.Enum):
    RANDOM = "random"  # a random window of a random volume for every patch of every step (ours)
    GRID = "grid"  # the authors': every window of a fixed grid over each padded volume, in one order, epoch by epoch


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
    """The authors' patches (threeplayerGANSR mains/utils/crop_nifti_9t.py, cropped offline, then read in one
    order): each volume trimmed to even edges and zero-padded equally on both sides so that windows of ``size`` at
    ``stride`` cover it from edge to edge; all windows of all volumes in one order (their ``random_split`` of the
    crop files: a fixed shuffle, here seeded), ``batch`` consecutive ones per step, the last incomplete batch dropped
    and the same order again each epoch."""

    def __init__(self, shapes: Sequence[tuple[int, ...]], size: int, stride: int, batch: int, seed: int):
        self.size = size
        self.pads = [grid_padding(shape, size, stride) for shape in shapes]
        self.windows = [(index, corner) for index, shape in enumerate(shapes)
                        for corner in grid_corners(shape, size, stride)]
        self.per_epoch = len(self.windows) // batch
        if self.per_epoch == 0:
            raise ValueError(f"the grid has {len(self.windows)} windows, fewer than a batch of {batch}")
        self.batch = batch
        self.order = torch.randperm(len(self.windows), generator=torch.Generator().manual_seed(seed)).tolist()

    def windows_of(self, step: int) -> list[tuple[int, tuple[int, ...]]]:
        """(volume index, corner in the padded volume) of each patch of ``step``."""
        first = (step % self.per_epoch) * self.batch
        return [self.windows[i] for i in self.order[first:first + self.batch]]

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
