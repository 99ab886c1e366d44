"""Single-level 3D Haar discrete wavelet transform and its inverse, differentiable, in torch.

Sub-bands come sub-band-major, ``(B, 8·C, D/2, H/2, W/2)``: channels ``[k·C, (k+1)·C)`` hold sub-band
``k`` of every input channel, in pywt's key order (``aaa, aad, ada, add, daa, dad, dda, ddd``, one letter
per axis: a = approximation, d = detail). So the first C channels are the low-pass (LLL) band, the
layout the DISGAN discriminator splits on.
"""

from __future__ import annotations

import math

import torch

_SQRT2 = math.sqrt(2.0)


def _split(x: torch.Tensor, dim: int) -> tuple[torch.Tensor, torch.Tensor]:
    even, odd = x.narrow(dim, 0, x.shape[dim] // 2 * 2).unflatten(dim, (-1, 2)).unbind(dim + 1)
    return (even + odd) / _SQRT2, (even - odd) / _SQRT2


def _merge(low: torch.Tensor, high: torch.Tensor, dim: int) -> torch.Tensor:
    even, odd = (low + high) / _SQRT2, (low - high) / _SQRT2
    return torch.stack((even, odd), dim=dim + 1).flatten(dim, dim + 1)


def haar_dwt3(x: torch.Tensor) -> torch.Tensor:
    """(B, C, D, H, W) with even D, H, W -> (B, 8·C, D/2, H/2, W/2)."""
    if any(n % 2 for n in x.shape[-3:]):
        raise ValueError(f"the Haar DWT needs even sizes, got {tuple(x.shape[-3:])}")
    bands = [x]
    for dim in (2, 3, 4):
        bands = [part for band in bands for part in _split(band, dim)]
    return torch.cat(bands, dim=1)


def haar_idwt3(y: torch.Tensor) -> torch.Tensor:
    """Inverse of :func:`haar_dwt3`."""
    bands = list(y.chunk(8, dim=1))
    for dim in (4, 3, 2):
        bands = [_merge(bands[i], bands[i + 1], dim) for i in range(0, len(bands), 2)]
    return bands[0]
