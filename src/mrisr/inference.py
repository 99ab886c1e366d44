"""The inference engine: a generator loaded from its model card and run over a whole volume in windows, and the grid
operations that put any method's output onto the HR grid.

The volume goes through the generator in windows, each a core plus ``halo`` LR voxels of real context on every
side that are cropped away after the pass ("overlap and crop"). With a halo as wide as the network's reach
this is the one-pass answer at a fraction of its memory; a volume that fits one window is one pass. The RRDB
generator runs in two stages: its LR features (most of the compute) in large windows, then its upsampling and
HR tail (most of the memory) in small windows whose halo is their exact reach.
"""

from __future__ import annotations

import enum
import itertools
import math
from dataclasses import dataclass
from pathlib import Path

import nibabel as nib
import numpy as np
import torch
from scipy import ndimage
from tqdm import tqdm

from mrisr.device import Acceleration, Precision, autocast, default_device, uses_bf16
from mrisr.errors import ConfigError, InputError
from mrisr.grid import LrGrid, hr_affine, lr_affine
from mrisr.io import GRID_TOLERANCE_MM, load_volume, voxel_sizes
from mrisr.model_card import RETRAIN, load_model, mm
from mrisr.models.registry import build, is_plugin
from mrisr.scale import Scale, as_scale


def load_generator(path: str | Path, device: torch.device | str | None = None) -> tuple[torch.nn.Module, dict]:
    """Rebuild a generator from a model file (its model card); returns (module in eval mode, card)."""
    config, state_dict, card = load_model(path)
    try:
        generator = build("generator", config)
        generator.load_state_dict(state_dict)
    except ConfigError as exc:  # a plugin that built on the meta device but not here
        raise InputError(path, f"names a generator that cannot be built: {exc}", RETRAIN) from None
    except (RuntimeError, KeyError, TypeError) as exc:
        raise InputError(path, f"is not a readable mrisr model ({exc})", RETRAIN) from exc
    generator = generator.to(device or default_device()).eval()
    if is_plugin("generator", name := config.get("name", "rrdb")):
        check_reach(generator, name, path)
    return generator, card


#: A plugin's windowed output may differ from its one pass by this much (relative to the output's range)
REACH_TOLERANCE = 1e-4
#: the largest reach (LR voxels per axis) a plugin may state: the reach check's probe is (4 reach + 8)³
MAX_REACH = 24


@torch.inference_mode()
def check_reach(generator: torch.nn.Module, name: str, path: str | Path) -> None:
    """A plugin generator states its ``reach`` (LR voxels of context per axis, docs/plugins.md); windowed inference
    takes it as the halo. Checked on a probe volume cut into small windows: with that halo they must give the one
    pass, else the plugin's reach is wrong and its outputs would carry seams."""
    reach = getattr(generator, "reach", None)
    try:
        halo = (reach,) * 3 if isinstance(reach, int) else tuple(int(r) for r in reach)
    except TypeError:
        halo = ()
    if len(halo) != 3 or min(halo) < 0:
        raise InputError(path, f"holds the plugin generator '{name}', which states no reach (LR voxels of context "
                               "per axis)", f"give '{name}' a `reach` attribute, as docs/plugins.md says")
    if max(halo) > MAX_REACH:
        raise InputError(path, f"holds the plugin generator '{name}', whose stated reach {halo} is over "
                               f"{MAX_REACH} LR voxels: every window would carry more context than core",
                         f"give '{name}' options with a reach of at most {MAX_REACH} (docs/plugins.md)")
    device = next(generator.parameters()).device
    # two windows along each axis whatever the reach (eight in all), so the probe costs about reach³, not reach⁶:
    # each window a core of `tile` and the halo, shorter than the probe, so every axis has a seam in its middle
    tile = 2 * max(halo) + 4
    probe = torch.randn((1, 1, *(2 * tile,) * 3), generator=torch.Generator().manual_seed(0))
    whole = generator(probe.to(device)).float().cpu()[0]
    scale = tuple(n // m for n, m in zip(whole.shape[1:], probe.shape[2:]))
    windowed = _windowed(generator, device, probe[0], scale, tile, halo, 1, tqdm(disable=True), False).cpu()
    error = float((windowed - whole).abs().max() / max(float(whole.max() - whole.min()), 1e-12))
    if not error <= REACH_TOLERANCE:
        raise InputError(path, f"holds the plugin generator '{name}', whose stated reach {halo} is too small: windows "
                               f"with that halo differ from one pass by {error:.2g} of the output's range",
                         f"state '{name}''s true reach (docs/plugins.md)")


def staged(generator: torch.nn.Module) -> bool:
    """Whether the generator separates its LR feature stage from its HR reconstruction (:func:`super_resolve`)."""
    return hasattr(generator, "lr_features") and hasattr(generator, "reconstruct")


def compile_stages(generator: torch.nn.Module, acceleration: Acceleration) -> None:
    """``torch.compile`` what :func:`super_resolve` calls: a staged generator's two stages (its forward calls them
    too), else the generator."""
    if staged(generator):
        generator.lr_features = acceleration.compiled(generator.lr_features)
        generator.reconstruct = acceleration.compiled(generator.reconstruct)
    else:
        acceleration.compiled(generator)


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


def holding_device(shape: tuple[int, ...], device: torch.device) -> torch.device:
    """Where a windowed pass collects its output (the features between the two stages, the SR volume): on the GPU
    while it takes at most a quarter of the free memory (an HCP volume's 64 feature channels take 0.7 GiB), so that
    windows are not copied to the host and back one by one; else, and on the CPU, in host memory."""
    if device.type == "cuda" and 4 * 4 * math.prod(shape) <= torch.cuda.mem_get_info(device)[0]:
        return device
    return torch.device("cpu")


def _windowed(network, device: torch.device, x: torch.Tensor, scale: Scale, tile: int, halo: int | Scale, batch: int,
              bar: tqdm, bf16: bool, even: bool = True) -> torch.Tensor:
    """``network`` over (C, D, H, W) ``x`` window by window (``halo``: per axis, or one for all); each window's
    core is cropped from its output into a volume on :func:`holding_device`."""
    halos = (halo,) * 3 if isinstance(halo, int) else halo
    plan = list(itertools.product(*(windows(n, tile, h, even) for n, h in zip(x.shape[1:], halos))))
    out = None
    for first in range(0, len(plan), batch):
        group = plan[first:first + batch]
        inputs = torch.stack([x[(slice(None), *(slice(a, b) for _, _, a, b in axes))] for axes in group])
        with autocast(device, bf16):
            y = network(inputs.to(device)).float()
        if out is None:
            shape = (y.shape[1], *(n * f for n, f in zip(x.shape[1:], scale)))
            out = torch.empty(shape, device=holding_device(shape, device))
        for i, axes in enumerate(group):
            keep = tuple(slice((s - a) * f, (e - a) * f) for (s, e, a, _), f in zip(axes, scale))
            out[(slice(None), *(slice(s * f, e * f) for (s, e, _, _), f in zip(axes, scale)))] = \
                y[(i, slice(None), *keep)].to(out.device)
        bar.update(len(group))
    return out


@dataclass(frozen=True, kw_only=True)
class Inference:
    """How a volume goes through a generator: its windows, their batches and the autocast (the config's
    ``inference.*``, the CLI's ``--tile``, ``--halo``, ``--reconstruct-tile``, ``--batch``, ``--pasted``,
    ``--precision``); defaults are the schema's alone."""

    tile: int  # LR window edge of the feature stage (pasted: the authors' tile)
    halo: int  # LR voxels of real context around each window, cropped after
    reconstruct_tile: int  # LR window edge of the HR tail
    batch: int  # windows per generator pass
    pasted: bool  # the authors' inference instead: the whole network per tile, no halo, tiles pasted
    precision: str | None  # the autocast (Precision); None: auto, bf16 on CUDA only


@torch.inference_mode()
def super_resolve(generator: torch.nn.Module, lr: np.ndarray, scale: int | Scale, inference: Inference,
                  progress: bool = True) -> np.ndarray:
    """The generator's output on the whole volume, computed window by window (``inference.batch`` windows a pass).

    A generator that separates its LR feature stage from its HR reconstruction (``lr_features`` /
    ``reconstruct``) runs them as two windowed passes: the features in windows of ``tile`` LR voxels with
    ``halo`` of context (one window when the volume fits), then the reconstruction, whose HR tensors hold the
    memory peak, in windows of ``reconstruct_tile`` with exactly its reach as halo. Other generators run whole,
    window by window. With ``halo`` at least the network's effective reach this is the one-pass answer.

    ``pasted``: the authors' inference instead, for the stripe figure: the whole network on non-overlapping tiles
    of exactly ``tile`` voxels (no halo), pasted side by side.
    """
    volume, scale = torch.from_numpy(np.ascontiguousarray(lr, dtype=np.float32))[None], as_scale(scale)
    device = next(generator.parameters()).device
    bf16 = uses_bf16(inference.precision or Precision.AUTO, device)
    tile, batch = inference.tile, inference.batch
    with tqdm(desc="super-resolve", unit="window", disable=not progress) as bar:
        if inference.pasted:
            return _windowed(generator, device, volume, scale, tile, 0, batch, bar, bf16, even=False)[0].cpu().numpy()
        if not staged(generator):  # a plugin's stated reach is its exact halo (checked when it was loaded)
            halo = getattr(generator, "reach", inference.halo)
            return _windowed(generator, device, volume, scale, tile, halo, batch, bar, bf16)[0].cpu().numpy()
        features = _windowed(generator.lr_features, device, volume, (1, 1, 1), tile, inference.halo, batch, bar, bf16)
        return _windowed(generator.reconstruct, device, features, scale, inference.reconstruct_tile,
                         generator.reconstruct_reach, batch, bar, bf16)[0].cpu().numpy()


class Interpolation(str, enum.Enum):
    """The interpolation baselines: scipy's splines of order 1 and 0, and TorchIO's cubic B-spline (SimpleITK's
    BSpline interpolator, as MTVNet's ``tio_bspline`` baseline computes it), each evaluated on the HR grid."""

    TRILINEAR = "trilinear"
    NEAREST = "nearest"
    BSPLINE = "bspline"


def interpolate(lr: np.ndarray, scale: int | Scale, mode: Interpolation = Interpolation.TRILINEAR,
                grid: LrGrid = LrGrid.SLAB) -> np.ndarray:
    """Interpolation onto the HR grid that the LR was made from on ``grid`` (:mod:`mrisr.grid`: slab, as PyTorch's
    ``align_corners=False``; corner, LR voxel ``i`` at HR voxel ``scale * i``; spanning, as ``align_corners=True``);
    beyond the outermost LR voxels the edges hold the nearest value (scipy's ``nearest``; SimpleITK's B-spline
    mirrors its coefficients)."""
    factors = np.asarray(as_scale(scale), dtype=np.float64)
    shape = tuple(int(n * f) for n, f in zip(lr.shape, factors))
    lr, mode = np.asarray(lr, dtype=np.float32), Interpolation(mode)
    if mode is Interpolation.BSPLINE:
        import torchio as tio  # seconds to import: only where it is used

        image = tio.ScalarImage(tensor=torch.from_numpy(lr)[None], affine=np.eye(4))
        resample = tio.Resample((shape, hr_affine(np.eye(4), scale, grid, lr.shape)), image_interpolation="bspline")
        return resample(image).data[0].numpy().astype(np.float32)
    to_lr = np.linalg.inv(lr_affine(np.eye(4), scale, grid, lr.shape))  # HR voxel index -> LR voxel index
    return ndimage.affine_transform(lr, np.diag(to_lr)[:3], offset=to_lr[:3, 3], output_shape=shape,
                                    order=1 if mode is Interpolation.TRILINEAR else 0, mode="nearest").astype(np.float32)


#: An outside program's output may differ from the SR grid by this factor in voxel size, and hold this many times its
#: voxels (a wider field of view), at most: beyond, its affine or its size is not the one of an SR of this scan
OUTSIDE_RATIO = 8


def onto_grid(path: Path, affine: np.ndarray, shape: tuple[int, ...], lr_voxel: float) -> np.ndarray:
    """An outside program's output (the NIfTI file ``path``) on the HR grid (``affine``, ``shape``): as it is where
    it lies on that grid, else resampled onto it by world position, cubic B-spline. A program keeps its own grid
    convention (ECLARE splits each thick voxel over its slab, as :mod:`mrisr.grid`'s slab grid; on a corner grid
    its first thin voxel lies (scale - 1) / 2 voxels before ours): its affine, not its array, says where its voxels
    are. Its header is checked before a voxel is read: voxels within :data:`OUTSIDE_RATIO` of
    the grid's in size, at most that many times its voxels; the output must cover the grid but for one LR voxel
    (``lr_voxel`` mm) at its edges, which are extrapolated."""
    from nibabel.processing import resample_from_to

    try:
        header = nib.load(path)  # the header only: its data is read below, once its grid is checked
        sizes = voxel_sizes(header.affine)
    except Exception as exc:  # nibabel fails on damaged files in many ways
        raise InputError(path, f"cannot be read as NIfTI ({exc})", "check the outside program's output") from None
    ratio = sizes / voxel_sizes(affine)
    if not np.all((ratio >= 1 / OUTSIDE_RATIO) & (ratio <= OUTSIDE_RATIO)):
        raise InputError(path, f"has voxels of {mm(sizes)} mm, not within {OUTSIDE_RATIO}x of the SR grid's "
                               f"{mm(voxel_sizes(affine))} mm",
                         "check that the outside program writes its output's true affine (and --scale)")
    if np.prod(header.shape, dtype=float) > OUTSIDE_RATIO * np.prod(shape, dtype=float):
        raise InputError(path, f"has {' x '.join(map(str, header.shape))} voxels, over {OUTSIDE_RATIO} times the SR "
                               f"grid's {' x '.join(map(str, shape))}", "check the outside program's output and --scale")
    outside = load_volume(path, role="outside program's output")
    if len(outside.shape) != 3:
        raise InputError(path, f"is {len(outside.shape)}D, not one 3D volume", "check the outside program's output")
    if outside.shape == tuple(shape) and np.allclose(outside.affine, affine, atol=GRID_TOLERANCE_MM):
        return np.asanyarray(outside.dataobj, dtype=np.float32)
    to_outside = np.linalg.inv(outside.affine) @ affine
    corners = nib.affines.apply_affine(to_outside, list(itertools.product(*[(0, n - 1) for n in shape])))
    slack = lr_voxel / voxel_sizes(outside.affine)
    if (corners < -0.5 - slack).any() or (corners > np.asarray(outside.shape) - 0.5 + slack).any():
        raise InputError(path, "does not cover the LR scan's field of view (its affine places it elsewhere)",
                         "check that the outside program writes the affine of its input's grid")
    resampled = resample_from_to(outside, (shape, affine), order=3, mode="nearest")
    return np.asanyarray(resampled.dataobj, dtype=np.float32)

