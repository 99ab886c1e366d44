"""Random HR training patches drawn on the fly, with a generator seeded per step.

Seeding per step (not once per run) makes a resumed run draw exactly the patches an
uninterrupted run would have drawn, with no sampler state to save.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import torch


def step_generator(seed: int, step: int) -> torch.Generator:
    return torch.Generator().manual_seed(seed * 1_000_003 + step)


def patch_windows(shapes: Sequence[tuple[int, ...]], size: int, batch: int, generator: torch.Generator,
                  align: int = 2) -> list[tuple[int, tuple[slice, ...]]]:
    """``batch`` (volume index, window) pairs; each corner a multiple of ``align`` so LR phases match whole volumes."""
    windows = []
    for _ in range(batch):
        index = int(torch.randint(len(shapes), (1,), generator=generator))
        shape = shapes[index]
        if any(n < size for n in shape):
            raise ValueError(f"volume of shape {shape} is smaller than the patch size {size}")
        corner = [int(torch.randint((n - size) // align + 1, (1,), generator=generator)) * align for n in shape]
        windows.append((index, tuple(slice(c, c + size) for c in corner)))
    return windows


def crop(volume: np.ndarray, window: tuple[slice, ...]) -> torch.Tensor:
    return torch.from_numpy(np.ascontiguousarray(volume[window], dtype=np.float32))


def sample_patches(volumes: list[np.ndarray], size: int, batch: int, generator: torch.Generator,
                   align: int = 2) -> torch.Tensor:
    """(batch, 1, size, size, size) patches of ``volumes``."""
    windows = patch_windows([v.shape for v in volumes], size, batch, generator, align)
    return torch.stack([crop(volumes[i], w) for i, w in windows])[:, None]
