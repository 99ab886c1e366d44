"""The degrade stage: simulated low-resolution (LR) volumes.

One function makes LR for both this stage (whole volumes, :func:`degrade_file`) and training (patches on the fly),
so that the model trains on exactly the degradation it is tested on. Every method samples the LR
voxel ``i`` at HR index ``factor * i`` (a factor per axis), so the LR affine is the HR affine with its voxel axes
scaled.
"""

from __future__ import annotations

import enum
import math
import zlib
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import torch

from mrisr.io import load_volume, save_volume
from mrisr.scale import Scale, as_scale, volume


class Degradation(str, enum.Enum):
    NEAREST = "nearest"  # the authors' code: F.interpolate's default (nearest) decimation
    KSPACE = "kspace"  # centred k-space crop onto the LR grid (mDCSRN; MTVNet data/kspace.py)
    BLUR = "blur"  # Gaussian blur, then decimation (MTVNet data/baseline_transforms.py: GaussianSmooth, Zoom)
    SLICE_PROFILE = "slice_profile"  # thick slices: a Gaussian of FWHM the slice thickness across them, decimation
    KSPACE_HR = "kspace_hr"  # k-space truncated, kept on the HR grid (mDCSRN's, SuperFormer's HCP "4x")


def _decimate(x: torch.Tensor, scale: Scale) -> torch.Tensor:
    return x[..., ::scale[0], ::scale[1], ::scale[2]]


def _central(n: int, factor: int) -> slice:
    """The centred 1/factor of an fftshifted axis of ``n`` frequencies."""
    first = n // 2 - (n // factor) // 2
    return slice(first, first + n // factor)


def _shifted_kspace(x: torch.Tensor) -> torch.Tensor:
    return torch.fft.fftshift(torch.fft.fftn(x.double(), dim=(-3, -2, -1)), dim=(-3, -2, -1))


def kspace_truncate(x: torch.Tensor, factor: int | Scale) -> torch.Tensor:
    """Keep the centred 1/factor of k-space along each of the last three axes (a factor each), on the LR grid, with
    intensities preserved."""
    scale = as_scale(factor)
    if any(n % f for n, f in zip(x.shape[-3:], scale)):
        raise ValueError(f"k-space truncation needs sizes divisible by {scale}, got {tuple(x.shape[-3:])}")
    k = _shifted_kspace(x)[(..., *(_central(n, f) for n, f in zip(x.shape[-3:], scale)))]
    k = torch.fft.ifftshift(k, dim=(-3, -2, -1))
    return (torch.fft.ifftn(k, dim=(-3, -2, -1)).real / volume(scale)).to(x.dtype)


def kspace_lowpass(x: torch.Tensor, truncation: Sequence[int]) -> torch.Tensor:
    """The centred 1/t of k-space along each axis kept (t = 1: all), the rest zeroed, back on the same grid (real
    part: the volumes are z-scored, so a magnitude would fold negative values)."""
    keep = torch.zeros(x.shape[-3:], dtype=torch.bool, device=x.device)
    keep[tuple(_central(n, t) for n, t in zip(x.shape[-3:], truncation))] = True
    k = torch.where(keep, _shifted_kspace(x), 0)
    return torch.fft.ifftn(torch.fft.ifftshift(k, dim=(-3, -2, -1)), dim=(-3, -2, -1)).real.to(x.dtype)


def gaussian_blur(x: torch.Tensor, fwhm: Sequence[float]) -> torch.Tensor:
    """``x`` (..., D, H, W) through a sampled Gaussian of ``fwhm`` HR voxels per axis (0: that axis untouched),
    truncated at 4σ as MONAI's GaussianFilter."""
    from monai.networks.layers.convutils import gaussian_1d  # MONAI takes ~10 s to import: only where it is used
    from monai.networks.layers.simplelayers import separable_filtering

    kernels = [gaussian_1d(torch.tensor(f / FWHM_PER_SIGMA), truncated=4.0, approx="sampled") if f > 0
               else torch.ones(1) for f in fwhm]
    flat = x.reshape(-1, 1, *x.shape[-3:])
    return separable_filtering(flat, kernels).reshape(x.shape)


FWHM_PER_SIGMA = 2 * math.sqrt(2 * math.log(2))


def degrade(x: torch.Tensor, degradation: dict, scale: int | Scale) -> torch.Tensor:
    """LR version of ``x`` (..., D, H, W) by a ``degradations`` entry (``method`` and its keys), each spatial size
    divided by its axis's factor of ``scale``."""
    method, factors = Degradation(degradation["method"]), as_scale(scale)
    if any(n % f for n, f in zip(x.shape[-3:], factors)):
        raise ValueError(f"HR size {tuple(x.shape[-3:])} is not divisible by the scale {factors}")
    if method is Degradation.NEAREST:
        return _decimate(x, factors)
    if method is Degradation.KSPACE:
        return kspace_truncate(x, factors)
    if method is Degradation.KSPACE_HR:
        return _decimate(kspace_lowpass(x, degradation["truncation"]), factors)
    if method is Degradation.BLUR:
        return _decimate(gaussian_blur(x, (degradation["blur_fwhm"],) * 3), factors)
    return _decimate(gaussian_blur(x, [f if f > 1 else 0 for f in factors]), factors)  # slice thickness f voxels


def degrade_volume(hr: np.ndarray, degradation: dict, scale: int | Scale) -> np.ndarray:
    return degrade(torch.from_numpy(np.ascontiguousarray(hr, dtype=np.float32)), degradation, scale).numpy()


def add_noise(lr: np.ndarray, sigma: float, seed: int, stream: str) -> np.ndarray:
    """``lr`` + N(0, σ²) i.i.d. (σ in the volume's z-score units), as the DISGAN noise experiment.

    The draw depends on ``seed`` and ``stream`` (the subject) only, so every σ scales the same noise
    pattern and the σ levels differ in amount, not in luck.
    """
    rng = np.random.default_rng([seed, zlib.crc32(stream.encode())])
    return (lr + sigma * rng.standard_normal(lr.shape, dtype=np.float32)).astype(np.float32)


def lr_affine(hr_affine: np.ndarray, scale: int | Scale) -> np.ndarray:
    """LR voxel ``i`` lies at HR voxel ``factor * i`` (per axis): scale the voxel axes, keep the origin."""
    affine = np.array(hr_affine, dtype=np.float64)
    affine[:3, :3] = affine[:3, :3] * np.asarray(as_scale(scale), dtype=np.float64)
    return affine


def degrade_file(hr: str, out: str, degradation: dict, scale: int | list[int], noise_sigma: float,
                 noise_seed: int) -> Path:
    """The stage: the LR volume of one HR file by a ``degradations`` entry, plus Gaussian noise of σ
    ``noise_sigma`` when > 0. The factors apply to the file's voxel axes (a prepared file's are RAS+).

    A prepared file's edges are multiples of the scale; another scan (a raw one, made into a user's LR scan) loses
    the last HR rows that do not fill an LR voxel, so the LR keeps the HR's origin and grid."""
    from mrisr.config import definition_defaults

    factors, degradation = as_scale(scale), {**definition_defaults("degradation"), **degradation}
    image = load_volume(hr)
    data = np.asanyarray(image.dataobj, dtype=np.float32)
    lr = degrade_volume(data[tuple(slice(0, n - n % f) for n, f in zip(data.shape, factors))], degradation, factors)
    if noise_sigma > 0:
        lr = add_noise(lr, noise_sigma, noise_seed, Path(hr).name)
    return save_volume(lr, lr_affine(image.affine, factors), out, reference=image)
