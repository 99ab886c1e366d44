"""Random HR training patches drawn on the fly, with a generator seeded per step.

Seeding per step (not once per run) makes a resumed run draw exactly the patches an
uninterrupted run would have drawn, with no sampler state to save.
"""

from __future__ import annotations

import numpy as np
import torch


def step_generator(seed: int, step: int) -> torch.Generator:
    return torch.Generator().manual_seed(seed * 1_000_003 + step)


def sample_patches(volumes: list[np.ndarray], size: int, batch: int, generator: torch.Generator,
                   align: int = 2) -> torch.Tensor:
    """(batch, 1, size, size, size) patches; each corner a multiple of ``align`` so LR phases match whole volumes."""
    patches = []
    for _ in range(batch):
        vol = volumes[int(torch.randint(len(volumes), (1,), generator=generator))]
        if any(n < size for n in vol.shape):
            raise ValueError(f"volume of shape {vol.shape} is smaller than the patch size {size}")
        corner = [int(torch.randint((n - size) // align + 1, (1,), generator=generator)) * align for n in vol.shape]
        sl = tuple(slice(c, c + size) for c in corner)
        patches.append(torch.from_numpy(np.ascontiguousarray(vol[sl], dtype=np.float32)))
    return torch.stack(patches)[:, None]
