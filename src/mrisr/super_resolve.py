"""The super-resolve stage: whole LR volumes onto the HR grid, by a trained generator or by interpolation.

The volume goes through the generator in windows, each a core plus ``halo`` LR voxels of real context on every
side that are cropped away after the pass ("overlap and crop"). With a halo as wide as the network's reach
this is the one-pass answer at a fraction of its memory; a volume that fits one window is one pass. The RRDB
generator runs in two stages: its LR features (most of the compute) in large windows, then its upsampling and
HR tail (most of the memory) in small windows whose halo is their exact reach.
"""

from __future__ import annotations

import itertools
import math
from pathlib import Path

import numpy as np
import torch
from scipy import ndimage
from tqdm import tqdm

from mrisr.device import Precision, autocast, default_device, set_threads, uses_bf16
from mrisr.errors import InputError, MrisrError
from mrisr.io import load_torch, load_volume, resample_isotropic, save_volume
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


def windows(size: int, tile: int, halo: int, even: bool = True) -> list[tuple[int, int, int, int]]:
    """(core start, core stop, window start, window stop) along one axis; every window has the same length.

    The axis is cut into equal cores of at most ``tile`` voxels (``even=False``: cores of exactly ``tile``, the
    last one shorter); a window is a core plus ``halo`` voxels of real context on each side, shifted inward at
    the volume's edges (where the context is the volume's own boundary, as in one pass), so that windows stack
    into batches. An axis whose window would span it whole is one window.
    """
    core = math.ceil(size / math.ceil(size / tile)) if even else tile
    if core + 2 * halo >= size:
        return [(0, size, 0, size)]
    length = core + 2 * halo
    out = []
    for start in range(0, size, core):
        first = min(max(start - halo, 0), size - length)
        out.append((start, min(start + core, size), first, first + length))
    return out


def _windowed(network, device: torch.device, x: torch.Tensor, scale: int, tile: int, halo: int, batch: int,
              bar: tqdm, even: bool = True) -> torch.Tensor:
    """``network`` over (C, D, H, W) ``x`` window by window; each window's core is cropped from its output."""
    plan = list(itertools.product(*(windows(n, tile, halo, even) for n in x.shape[1:])))
    out = None
    for first in range(0, len(plan), batch):
        group = plan[first:first + batch]
        inputs = torch.stack([x[(slice(None), *(slice(a, b) for _, _, a, b in axes))] for axes in group])
        with autocast(device, uses_bf16(Precision.AUTO, device)):
            y = network(inputs.to(device)).float().cpu()
        if out is None:
            out = torch.empty((y.shape[1], *(n * scale for n in x.shape[1:])))
        for i, axes in enumerate(group):
            keep = tuple(slice((s - a) * scale, (e - a) * scale) for s, e, a, _ in axes)
            out[(slice(None), *(slice(s * scale, e * scale) for s, e, _, _ in axes))] = y[(i, slice(None), *keep)]
        bar.update(len(group))
    return out


@torch.inference_mode()
def super_resolve(generator: torch.nn.Module, lr: np.ndarray, scale: int, tile: int, halo: int, batch: int = 1,
                  progress: bool = True, reconstruct_tile: int = 32, pasted: bool = False) -> np.ndarray:
    """The generator's output on the whole volume, computed window by window (``batch`` windows per pass).

    A generator that separates its LR feature stage from its HR reconstruction (``lr_features`` /
    ``reconstruct``) runs them as two windowed passes: the features in windows of ``tile`` LR voxels with
    ``halo`` of context (one window when the volume fits), then the reconstruction, whose HR tensors hold the
    memory peak, in windows of ``reconstruct_tile`` with exactly its reach as halo. Other generators run whole,
    window by window. With ``halo`` at least the network's effective reach this is the one-pass answer.

    ``pasted``: the authors' inference instead, for the stripe figure: the whole network on non-overlapping tiles
    of exactly ``tile`` voxels (no halo), pasted side by side.
    """
    volume = torch.from_numpy(np.ascontiguousarray(lr, dtype=np.float32))[None]
    device = next(generator.parameters()).device
    staged = hasattr(generator, "lr_features") and hasattr(generator, "reconstruct")
    with tqdm(desc="super-resolve", unit="window", disable=not progress) as bar:
        if pasted:
            return _windowed(generator, device, volume, scale, tile, 0, batch, bar, even=False)[0].numpy()
        if not staged:
            return _windowed(generator, device, volume, scale, tile, halo, batch, bar)[0].numpy()
        features = _windowed(generator.lr_features, device, volume, 1, tile, halo, batch, bar)
        return _windowed(generator.reconstruct, device, features, scale, reconstruct_tile, generator.reconstruct_reach,
                         batch, bar)[0].numpy()


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


#: Interpolation orders of ``--interpolate``.
INTERPOLATION_ORDERS = {"trilinear": 1, "nearest": 0}


def super_resolve_file(input: str, output: str, model: str | None, interpolate_mode: str | None, scale: int,
                       reference: str | None, resample: float | None, tile: int, halo: int, reconstruct_tile: int,
                       batch: int, pasted: bool, threads: int) -> Path:
    """The stage: one LR file through ``model`` (or ``interpolate_mode`` at ``scale``) onto the HR grid.

    The output takes ``reference``'s grid and header when given (it must be the SR grid), else the input's grid
    with voxels ``scale`` times smaller. ``resample`` (mm) puts an anisotropic or oblique input on an isotropic
    grid first.
    """
    if bool(model) == bool(interpolate_mode) or (interpolate_mode and not scale):
        raise MrisrError("super-resolve needs either --model, or --interpolate with --scale")
    set_threads(threads)
    lr_img = load_volume(input, isotropic=bool(model) and resample is None,
                         grid_fix="pass --resample <mm> to resample it to isotropic voxels first")
    if resample is not None:
        lr_img = resample_isotropic(lr_img, resample)
    lr = np.asanyarray(lr_img.dataobj, dtype=np.float32)
    if model:
        generator, scale = load_generator(model)
        sr = super_resolve(generator, lr, scale, tile, halo, batch, reconstruct_tile=reconstruct_tile, pasted=pasted)
    else:
        sr = interpolate(lr, scale, order=INTERPOLATION_ORDERS[interpolate_mode])
    affine, header_from = hr_affine(lr_img.affine, scale), lr_img
    if reference:
        header_from = load_volume(reference, role="reference")
        if header_from.shape != sr.shape:
            raise InputError(reference, f"reference grid {header_from.shape} differs from the SR grid {sr.shape}",
                             "give the HR volume this LR was made from, or leave --reference out")
        affine = header_from.affine
    return save_volume(sr, affine, output, reference=header_from)
