"""The degrade stage: simulated low-resolution (LR) volumes.

One function makes LR for both this stage (whole volumes, :func:`degrade_file`) and training (patches on the fly),
so that the model trains on exactly the degradation it is tested on. Every method samples the LR
voxel ``i`` at HR index ``factor * i``, so the LR affine is the HR affine with its voxel axes scaled.
"""

from __future__ import annotations

import enum
import math
import zlib
from pathlib import Path

import numpy as np
import torch

from mrisr.io import load_volume, save_volume


class Degradation(str, enum.Enum):
    NEAREST = "nearest"  # authors' code: F.interpolate default (nearest) decimation
    KSPACE = "kspace"  # centred k-space crop (mDCSRN, MTVNet)
    BLUR = "blur"  # Gaussian blur, then decimation


def _decimate(x: torch.Tensor, factor: int) -> torch.Tensor:
    return x[..., ::factor, ::factor, ::factor]


def kspace_truncate(x: torch.Tensor, factor: int) -> torch.Tensor:
    """Keep the centred 1/factor of k-space along each of the last three axes, with intensities preserved."""
    spatial = x.shape[-3:]
    if any(n % factor for n in spatial):
        raise ValueError(f"k-space truncation needs sizes divisible by {factor}, got {tuple(spatial)}")
    dims = (-3, -2, -1)
    k = torch.fft.fftshift(torch.fft.fftn(x.double(), dim=dims), dim=dims)
    sl = [slice(None)] * (x.ndim - 3) + [slice(n // 2 - (n // factor) // 2, n // 2 - (n // factor) // 2 + n // factor)
                                         for n in spatial]
    k = torch.fft.ifftshift(k[tuple(sl)], dim=dims)
    return (torch.fft.ifftn(k, dim=dims).real / factor**3).to(x.dtype)


def degrade(x: torch.Tensor, method: str | Degradation, factor: int, blur_fwhm: float) -> torch.Tensor:
    """LR version of ``x`` (..., D, H, W) with each spatial size divided by ``factor`` (``blur_fwhm``: HR voxels,
    used by ``blur`` only)."""
    method = Degradation(method)
    if any(n % factor for n in x.shape[-3:]):
        raise ValueError(f"HR size {tuple(x.shape[-3:])} is not divisible by the scale {factor}")
    if method is Degradation.NEAREST:
        return _decimate(x, factor)
    if method is Degradation.KSPACE:
        return kspace_truncate(x, factor)
    from monai.networks.layers import GaussianFilter  # MONAI takes ~10 s to import: only where it is used

    sigma = blur_fwhm / (2 * math.sqrt(2 * math.log(2)))
    lead = x.shape[:-3]
    flat = x.reshape(-1, 1, *x.shape[-3:])
    blurred = GaussianFilter(spatial_dims=3, sigma=sigma, approx="sampled")(flat)
    return _decimate(blurred.reshape(*lead, *x.shape[-3:]), factor)


def degrade_volume(hr: np.ndarray, method: str, factor: int, blur_fwhm: float) -> np.ndarray:
    return degrade(torch.from_numpy(np.ascontiguousarray(hr, dtype=np.float32)), method, factor, blur_fwhm).numpy()


def add_noise(lr: np.ndarray, sigma: float, seed: int, stream: str) -> np.ndarray:
    """``lr`` + N(0, σ²) i.i.d. (σ in the volume's z-score units), as the DISGAN noise experiment.

    The draw depends on ``seed`` and ``stream`` (the subject) only, so every σ scales the same noise
    pattern and the σ levels differ in amount, not in luck.
    """
    rng = np.random.default_rng([seed, zlib.crc32(stream.encode())])
    return (lr + sigma * rng.standard_normal(lr.shape, dtype=np.float32)).astype(np.float32)


def lr_affine(hr_affine: np.ndarray, factor: int) -> np.ndarray:
    """LR voxel ``i`` lies at HR voxel ``factor * i``: scale the voxel axes, keep the origin."""
    affine = np.array(hr_affine, dtype=np.float64)
    affine[:3, :3] = affine[:3, :3] * factor
    return affine


def degrade_file(hr: str, out: str, method: str, scale: int, blur_fwhm: float, noise_sigma: float,
                 noise_seed: int) -> Path:
    """The stage: the LR volume of one HR file, plus Gaussian noise of σ ``noise_sigma`` when > 0.

    A prepared file's edges are multiples of ``scale``; another scan (a raw one, made into a user's LR scan) loses
    the last HR rows that do not fill an LR voxel, so the LR keeps the HR's origin and grid."""
    image = load_volume(hr)
    data = np.asanyarray(image.dataobj, dtype=np.float32)
    lr = degrade_volume(data[tuple(slice(0, n - n % scale) for n in data.shape)], method, scale, blur_fwhm)
    if noise_sigma > 0:
        lr = add_noise(lr, noise_sigma, noise_seed, Path(hr).name)
    return save_volume(lr, lr_affine(image.affine, scale), out, reference=image)
