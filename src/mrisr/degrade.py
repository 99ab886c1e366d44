"""The degrade stage: simulated low-resolution (LR) volumes.

One function makes LR for both this stage (whole volumes, :func:`degrade_file`) and training (patches on the fly),
so that the model trains on exactly the degradation it is tested on. Where each LR voxel lies is
:mod:`mrisr.grid`'s decision: decimation (``nearest``) keeps HR voxel ``f*i``; every acquisition model makes LR voxel
``i`` from the slab of HR voxels ``f*i .. f*i+f-1`` (its kernel centred between them, k-space sampled there).
"""

from __future__ import annotations

import enum
import math
import zlib
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from mrisr.errors import MrisrError
from mrisr.grid import LrGrid, lr_affine, lr_grid, offset
from mrisr.io import load_volume, save_volume
from mrisr.scale import Scale, as_scale, volume


class Degradation(str, enum.Enum):
    NEAREST = "nearest"  # the authors' code: F.interpolate's default (nearest) decimation
    KSPACE = "kspace"  # centred k-space crop onto the LR grid (mDCSRN; MTVNet data/kspace.py)
    BLUR = "blur"  # Gaussian blur sampled at each slab's centre (MTVNet data/baseline_transforms.py: GaussianSmooth, Zoom)
    SLICE_PROFILE = "slice_profile"  # thick slices: each the slab of its thin voxels, through the slice profile
    KSPACE_HR = "kspace_hr"  # k-space truncated, kept on the HR grid (mDCSRN's, SuperFormer's HCP "4x")
    RESIZE = "resize"  # MTVNet's: their Gaussian, then a trilinear resize with align_corners=True (whole volumes)


class SliceProfile(str, enum.Enum):
    BOX = "box"  # the slab's mean: a 2D acquisition's slice profile is close to rectangular
    GAUSSIAN = "gaussian"  # a Gaussian of FWHM the slice thickness (SMORE's simulation)


def _decimate(x: torch.Tensor, scale: Scale) -> torch.Tensor:
    return x[..., ::scale[0], ::scale[1], ::scale[2]]


def _central(n: int, factor: int) -> slice:
    """The centred 1/factor of an fftshifted axis of ``n`` frequencies."""
    first = n // 2 - (n // factor) // 2
    return slice(first, first + n // factor)


def _shifted_kspace(x: torch.Tensor, shift: Sequence[float] = (0.0, 0.0, 0.0)) -> torch.Tensor:
    """The fftshifted spectrum of ``x`` moved by ``shift`` voxels per axis (Fourier shift theorem): its inverse
    samples ``x``'s band-limited interpolant at ``m + shift`` instead of ``m``."""
    k = torch.fft.fftshift(torch.fft.fftn(x.double(), dim=(-3, -2, -1)), dim=(-3, -2, -1))
    for axis, (n, s) in enumerate(zip(x.shape[-3:], shift), start=k.dim() - 3):
        if s:
            frequency = torch.fft.fftshift(torch.fft.fftfreq(n, dtype=torch.float64))
            k = k * torch.exp(2j * math.pi * s * frequency).reshape([-1 if a == axis else 1 for a in range(k.dim())])
    return k


def kspace_truncate(x: torch.Tensor, factor: int | Scale, grid: LrGrid = LrGrid.SLAB) -> torch.Tensor:
    """Keep the centred 1/factor of k-space along each of the last three axes (a factor each), on the LR ``grid``
    (slab: sampled at each slab's centre), with intensities preserved."""
    scale = as_scale(factor)
    if any(n % f for n, f in zip(x.shape[-3:], scale)):
        raise ValueError(f"k-space truncation needs sizes divisible by {scale}, got {tuple(x.shape[-3:])}")
    k = _shifted_kspace(x, offset(scale, grid))[(..., *(_central(n, f) for n, f in zip(x.shape[-3:], scale)))]
    k = torch.fft.ifftshift(k, dim=(-3, -2, -1))
    return (torch.fft.ifftn(k, dim=(-3, -2, -1)).real / volume(scale)).to(x.dtype)


def kspace_lowpass(x: torch.Tensor, truncation: Sequence[int], shift: Sequence[float] = (0.0, 0.0, 0.0)) -> torch.Tensor:
    """The centred 1/t of k-space along each axis kept (t = 1: all), the rest zeroed, back on the same grid moved
    by ``shift`` voxels (real part: the volumes are z-scored, so a magnitude would fold negative values)."""
    keep = torch.zeros(x.shape[-3:], dtype=torch.bool, device=x.device)
    keep[tuple(_central(n, t) for n, t in zip(x.shape[-3:], truncation))] = True
    k = torch.where(keep, _shifted_kspace(x, shift), 0)
    return torch.fft.ifftn(torch.fft.ifftshift(k, dim=(-3, -2, -1)), dim=(-3, -2, -1)).real.to(x.dtype)


FWHM_PER_SIGMA = 2 * math.sqrt(2 * math.log(2))


def gaussian_taps(fwhm: float, factor: int) -> torch.Tensor:
    """A sampled Gaussian of ``fwhm`` HR voxels centred on a slab of ``factor`` HR voxels, over the slab and a tail
    of MONAI's length (4σ) on either side, summing to 1; 0: the slab's mean."""
    if fwhm <= 0:
        return torch.full((factor,), 1.0 / factor, dtype=torch.float64)
    sigma = fwhm / FWHM_PER_SIGMA
    tail = int(max(4 * sigma, 0.5) + 0.5)
    position = torch.arange(2 * tail + factor, dtype=torch.float64) - tail - (factor - 1) / 2
    taps = torch.exp(-0.5 * (position / sigma) ** 2)
    return taps / taps.sum()


def slab_filter(x: torch.Tensor, taps: Sequence[torch.Tensor], scale: Scale) -> torch.Tensor:
    """``x`` (..., D, H, W) through one kernel per axis, sampled at each slab's centre: LR voxel ``i`` along an axis
    of factor ``f`` is the kernel's weighted sum around HR voxels ``f*i .. f*i+f-1``, beyond the edges zeros (as
    MONAI's separable filtering pads)."""
    out = x.reshape(-1, 1, *x.shape[-3:])
    for axis, (kernel, f) in enumerate(zip(taps, scale)):
        if len(kernel) == 1:
            continue
        shape, stride, padding = [1, 1, 1], [1, 1, 1], [0, 0, 0]
        shape[axis], stride[axis], padding[axis] = len(kernel), f, (len(kernel) - f) // 2
        out = F.conv3d(out, kernel.to(out).reshape(1, 1, *shape), stride=stride, padding=padding)
    return out.reshape(*x.shape[:-3], *out.shape[-3:])


def density_blur(x: torch.Tensor, sigma: float) -> torch.Tensor:
    """``x`` (..., D, H, W) through the Gaussian density of σ ``sigma`` HR voxels sampled at whole voxels within
    ceil(3σ), not renormalised (it sums to 0.997 at σ 1), zeros beyond the edges, along each axis: MTVNet's
    ``test_3d_gaussian_blur`` (utils/utils_3D_image.py). σ 0: unchanged."""
    if sigma <= 0:
        return x
    radius = math.ceil(3 * sigma)
    offsets = torch.arange(-radius, radius + 1, dtype=torch.float64)
    taps = torch.exp(-offsets**2 / (2 * sigma**2)) / math.sqrt(2 * math.pi * sigma**2)
    return slab_filter(x, [taps] * 3, (1, 1, 1))


def resize(x: torch.Tensor, scale: Scale) -> torch.Tensor:
    """``x`` (..., D, H, W) resized to 1/scale of each edge (rounded down) by trilinear interpolation with
    ``align_corners=True``, as MONAI's ``Zoom(1 / scale, keep_size=False)`` in MTVNet's data/train_transforms.py."""
    size = [n // f for n, f in zip(x.shape[-3:], scale)]
    out = F.interpolate(x.reshape(-1, 1, *x.shape[-3:]), size=size, mode="trilinear", align_corners=True)
    return out.reshape(*x.shape[:-3], *size)


def degrade(x: torch.Tensor, degradation: dict, scale: int | Scale) -> torch.Tensor:
    """LR version of ``x`` (..., D, H, W) by a ``degradations`` entry (``method`` and its keys), each spatial size
    divided by its axis's factor of ``scale``, on the entry's LR grid (:func:`mrisr.grid.lr_grid`)."""
    from mrisr.config import definition_defaults

    degradation = {**definition_defaults("degradation"), **degradation}
    method, factors = Degradation(degradation["method"]), as_scale(scale)
    if any(n % f for n, f in zip(x.shape[-3:], factors)):
        raise ValueError(f"HR size {tuple(x.shape[-3:])} is not divisible by the scale {factors}")
    grid = lr_grid(degradation)
    if method is Degradation.NEAREST:
        return _decimate(x, factors)
    if method is Degradation.KSPACE:
        return kspace_truncate(x, factors, grid)
    if method is Degradation.KSPACE_HR:
        return _decimate(kspace_lowpass(x, degradation["truncation"], offset(factors, grid)), factors)
    if method is Degradation.BLUR:
        return slab_filter(x, [gaussian_taps(degradation["blur_fwhm"], f) for f in factors], factors)
    if method is Degradation.RESIZE:
        return resize(density_blur(x, degradation["blur_sigma"]), factors)
    gaussian = SliceProfile(degradation["profile"]) is SliceProfile.GAUSSIAN
    return slab_filter(x, [gaussian_taps(f if gaussian and f > 1 else 0, f) for f in factors], factors)


def degrade_volume(hr: np.ndarray, degradation: dict, scale: int | Scale) -> np.ndarray:
    return degrade(torch.from_numpy(np.ascontiguousarray(hr, dtype=np.float32)), degradation, scale).numpy()


def add_noise(lr: np.ndarray, sigma: float, seed: int, stream: str) -> np.ndarray:
    """``lr`` + N(0, σ²) i.i.d. (σ in the volume's z-score units), as the DISGAN noise experiment.

    The draw depends on ``seed`` and ``stream`` (the subject) only, so every σ scales the same noise
    pattern and the σ levels differ in amount, not in luck.
    """
    rng = np.random.default_rng([seed, zlib.crc32(stream.encode())])
    return (lr + sigma * rng.standard_normal(lr.shape, dtype=np.float32)).astype(np.float32)


def degrade_files(hr: list[str], out: list[str], degradation: dict, scale: int | list[int], noise_sigma: float,
                  noise_seed: int) -> list[Path]:
    """:func:`degrade_file` for each HR file into the LR file of the same place in ``out``."""
    if len(hr) != len(out):
        raise MrisrError(f"degrade takes one --out per --hr: {len(hr)} HR files, {len(out)} outputs")
    return [degrade_file(h, o, degradation, scale, noise_sigma, noise_seed) for h, o in zip(hr, out)]


def degrade_file(hr: str, out: str, degradation: dict, scale: int | list[int], noise_sigma: float,
                 noise_seed: int) -> Path:
    """The stage: the LR volume of one HR file by a ``degradations`` entry, plus Gaussian noise of σ
    ``noise_sigma`` when > 0. The factors apply to the file's voxel axes (a prepared file's are RAS+).

    A prepared file's edges are multiples of the scale; another scan (a raw one, made into a user's LR scan) loses
    the last HR rows that do not fill an LR voxel, so the LR keeps the HR's origin and grid."""
    factors = as_scale(scale)
    image = load_volume(hr)
    data = np.asanyarray(image.dataobj, dtype=np.float32)
    lr = degrade_volume(data[tuple(slice(0, n - n % f) for n, f in zip(data.shape, factors))], degradation, factors)
    if noise_sigma > 0:
        lr = add_noise(lr, noise_sigma, noise_seed, Path(hr).name)
    return save_volume(lr, lr_affine(image.affine, factors, lr_grid(degradation), lr.shape), out, reference=image)
