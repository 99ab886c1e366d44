"""Whole-volume super-resolution.

The volume goes through the generator in tiles, each with ``halo`` LR voxels of real context on every
side that are cropped away after the pass ("overlap and crop"). With a halo as wide as the network's
receptive field this is the one-pass answer at a fraction of its memory; a tile at least as large as
the volume is one pass.
"""

from __future__ import annotations

import itertools
from pathlib import Path

import numpy as np
import torch
from scipy import ndimage
from tqdm import tqdm

from mrisr.errors import InputError
from mrisr.io import load_torch
from mrisr.models.registry import build


def load_generator(path: str | Path, device: torch.device | str | None = None) -> tuple[torch.nn.Module, int]:
    """Rebuild a generator from a ``model.pt`` bundle; returns (module in eval mode, scale)."""
    bundle = load_torch(path, "retrain it or point --model to model.pt")
    try:
        generator = build("generator", bundle["generator"])
        generator.load_state_dict(bundle["state_dict"])
    except (RuntimeError, KeyError, TypeError) as exc:
        raise InputError(path, f"is not a readable mrisr model ({exc})", "retrain it or point --model to model.pt") from exc
    return generator.to(device or default_device()).eval(), int(bundle["generator"]["scale"])


def default_device() -> torch.device:
    """The GPU when there is one, else the CPU: the same code runs on both."""
    return torch.device("cuda" if torch.cuda.is_available() else "cpu")


def _tiles(size: int, tile: int, halo: int):
    for start in range(0, size, tile):
        stop = min(start + tile, size)
        yield start, stop, max(start - halo, 0), min(stop + halo, size)


@torch.inference_mode()
def super_resolve(generator: torch.nn.Module, lr: np.ndarray, scale: int, tile: int, halo: int,
                  progress: bool = True) -> np.ndarray:
    device = next(generator.parameters()).device
    out = np.empty(tuple(n * scale for n in lr.shape), dtype=np.float32)
    plan = list(itertools.product(*(_tiles(n, tile, halo) for n in lr.shape)))
    for axes in tqdm(plan, desc="super-resolve", unit="tile", disable=not progress):
        context = tuple(slice(a, b) for _, _, a, b in axes)
        x = torch.from_numpy(np.ascontiguousarray(lr[context], dtype=np.float32))[None, None].to(device)
        y = generator(x)[0, 0].float().cpu().numpy()
        keep = tuple(slice((s - a) * scale, (e - a) * scale) for s, e, a, _ in axes)
        target = tuple(slice(s * scale, e * scale) for s, e, _, _ in axes)
        out[target] = y[keep]
    return out


def interpolate(lr: np.ndarray, scale: int, order: int = 1) -> np.ndarray:
    """Spline interpolation onto the HR grid, LR voxel ``i`` lying at HR voxel ``scale * i`` (order 1 = trilinear)."""
    shape = tuple(n * scale for n in lr.shape)
    return ndimage.affine_transform(np.asarray(lr, dtype=np.float32), np.full(3, 1.0 / scale), output_shape=shape,
                                     order=order, mode="nearest").astype(np.float32)


def hr_affine(lr_affine: np.ndarray, scale: int) -> np.ndarray:
    """The HR grid whose every ``scale``-th voxel is an LR voxel (inverse of :func:`mrisr.degrade.lr_affine`)."""
    affine = np.array(lr_affine, dtype=np.float64)
    affine[:3, :3] = affine[:3, :3] / scale
    return affine
