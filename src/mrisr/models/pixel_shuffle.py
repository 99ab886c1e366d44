"""3D sub-pixel convolution reshuffles (the 3D twin of ``torch.nn.PixelShuffle``), with a factor per axis."""

from __future__ import annotations

import torch
from torch import nn

from mrisr.scale import Scale, as_scale


def pixel_shuffle_3d(x: torch.Tensor, factor: int | Scale) -> torch.Tensor:
    """(B, C·a·b·c, D, H, W) -> (B, C, D·a, H·b, W·c) for factors (a, b, c); channel ``C_i·abc + (i·b + j)·c + k``
    goes to offset (i, j, k) (with one factor f: ``c·f³ + (i·f + j)·f + k``)."""
    a, b, c = as_scale(factor)
    n, channels, d, h, w = x.shape
    out = channels // (a * b * c)
    x = x.reshape(n, out, a, b, c, d, h, w)
    x = x.permute(0, 1, 5, 2, 6, 3, 7, 4)
    return x.reshape(n, out, d * a, h * b, w * c)


def pixel_unshuffle_3d(x: torch.Tensor, factor: int | Scale) -> torch.Tensor:
    """Inverse of :func:`pixel_shuffle_3d`."""
    a, b, c = as_scale(factor)
    n, channels, d, h, w = x.shape
    x = x.reshape(n, channels, d // a, a, h // b, b, w // c, c)
    x = x.permute(0, 1, 3, 5, 7, 2, 4, 6)
    return x.reshape(n, channels * a * b * c, d // a, h // b, w // c)


class PixelShuffle3d(nn.Module):
    def __init__(self, factor: int | Scale):
        super().__init__()
        self.factor = as_scale(factor)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return pixel_shuffle_3d(x, self.factor)
