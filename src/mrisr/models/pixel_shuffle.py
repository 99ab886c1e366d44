"""3D sub-pixel convolution reshuffles (the 3D twin of ``torch.nn.PixelShuffle``)."""

from __future__ import annotations

import torch
from torch import nn


def pixel_shuffle_3d(x: torch.Tensor, factor: int) -> torch.Tensor:
    """(B, C·f³, D, H, W) -> (B, C, D·f, H·f, W·f); channel ``c·f³ + (i·f + j)·f + k`` goes to offset (i, j, k)."""
    b, c, d, h, w = x.shape
    out = c // factor**3
    x = x.reshape(b, out, factor, factor, factor, d, h, w)
    x = x.permute(0, 1, 5, 2, 6, 3, 7, 4)
    return x.reshape(b, out, d * factor, h * factor, w * factor)


def pixel_unshuffle_3d(x: torch.Tensor, factor: int) -> torch.Tensor:
    """Inverse of :func:`pixel_shuffle_3d`."""
    b, c, d, h, w = x.shape
    x = x.reshape(b, c, d // factor, factor, h // factor, factor, w // factor, factor)
    x = x.permute(0, 1, 3, 5, 7, 2, 4, 6)
    return x.reshape(b, c * factor**3, d // factor, h // factor, w // factor)


class PixelShuffle3d(nn.Module):
    def __init__(self, factor: int):
        super().__init__()
        self.factor = factor

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return pixel_shuffle_3d(x, self.factor)
