"""A 3D FSRCNN-style generator (Dong et al., ECCV 2016) as an mrisr plugin: features, shrinking, mapping and
expanding on the LR grid, then trilinear upsampling per axis, a 3³ conv on the HR grid and a trilinear skip.

The plugin contract (mrisr docs/plugins.md): ``build(scale, **options)`` returns a module mapping (B, 1, D, H, W) LR
patches to (B, 1, D·a, H·b, W·c) for scale (a, b, c), with ``reach``: the LR voxels of context one output voxel
depends on, per axis, so that windowed inference with that halo equals one pass.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn


class FSRCNN3d(nn.Module):
    def __init__(self, scale: tuple[int, int, int], features: int, shrunk: int, mapping: int):
        super().__init__()
        self.scale = tuple(scale)
        self.body = nn.Sequential(
            nn.Conv3d(1, features, 5, padding=2), nn.PReLU(features),
            nn.Conv3d(features, shrunk, 1), nn.PReLU(shrunk),
            *[layer for _ in range(mapping) for layer in (nn.Conv3d(shrunk, shrunk, 3, padding=1), nn.PReLU(shrunk))],
            nn.Conv3d(shrunk, features, 1), nn.PReLU(features))
        self.tail = nn.Conv3d(features, 1, 3, padding=1)
        self.mapping = mapping

    @property
    def reach(self) -> tuple[int, ...]:
        """2 (the 5³ conv) + one per mapping conv on the LR grid, 1 for the trilinear step, 1/f for the HR conv."""
        return tuple(math.ceil(2 + self.mapping + 1 + 1 / f) for f in self.scale)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        factors = tuple(float(f) for f in self.scale)
        up = F.interpolate(self.body(x), scale_factor=factors, mode="trilinear", align_corners=False)
        return self.tail(up) + F.interpolate(x, scale_factor=factors, mode="trilinear", align_corners=False)


def build(scale: tuple[int, int, int], features: int = 16, shrunk: int = 8, mapping: int = 2) -> FSRCNN3d:
    return FSRCNN3d(scale, features, shrunk, mapping)
