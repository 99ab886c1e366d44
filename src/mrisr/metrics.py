"""Image-quality metrics on 3D volumes, as the authors computed them.

Data range = max(GT) - min(GT) of the whole GT volume, also for the in-brain variants, so that the
whole-volume and in-brain numbers share one scale.
"""

from __future__ import annotations

import numpy as np
from skimage.metrics import normalized_root_mse, structural_similarity
from skimage.restoration import estimate_sigma


def data_range(gt: np.ndarray) -> float:
    return float(gt.max() - gt.min())


def psnr(gt: np.ndarray, pred: np.ndarray, mask: np.ndarray | None = None) -> float:
    """20·log10(max(GT) − min(GT)) − 10·log10(MSE), the MSE over ``mask`` (all voxels when None)."""
    diff = (gt.astype(np.float64) - pred.astype(np.float64)) ** 2
    mse = diff[mask].mean() if mask is not None else diff.mean()
    return float(20 * np.log10(data_range(gt)) - 10 * np.log10(mse))


def ssim(gt: np.ndarray, pred: np.ndarray, mask: np.ndarray | None = None) -> float:
    """The authors' SSIM: scikit-image's 2D SSIM (7² window) of each slice along the last axis, averaged (their
    ``channel_axis=-1``); with a mask, the slices' SSIM maps averaged inside it."""
    return _ssim(gt, pred, mask, channel_axis=-1)


def ssim3d(gt: np.ndarray, pred: np.ndarray, mask: np.ndarray | None = None) -> float:
    """scikit-image's SSIM (7³ window) of the 3D volume; with a mask, the SSIM map averaged inside it."""
    return _ssim(gt, pred, mask, channel_axis=None)


def _ssim(gt: np.ndarray, pred: np.ndarray, mask: np.ndarray | None, channel_axis: int | None) -> float:
    if mask is None:
        return float(structural_similarity(gt, pred, data_range=data_range(gt), channel_axis=channel_axis))
    _, local = structural_similarity(gt, pred, data_range=data_range(gt), channel_axis=channel_axis, full=True)
    return float(local[mask].mean())


def nrmse(gt: np.ndarray, pred: np.ndarray, mask: np.ndarray | None = None) -> float:
    """RMSE / (max(GT) − min(GT)): scikit-image's ``normalization='min-max'``."""
    if mask is None:
        return float(normalized_root_mse(gt, pred, normalization="min-max"))
    rmse = np.sqrt(((gt[mask].astype(np.float64) - pred[mask]) ** 2).mean())
    return float(rmse / data_range(gt))


METRICS = {"psnr": psnr, "ssim": ssim, "ssim3d": ssim3d, "nrmse": nrmse}


def evaluate(gt: np.ndarray, pred: np.ndarray, mask: np.ndarray) -> dict[str, float]:
    """Every metric on the whole volume and inside the brain mask (``<metric>_brain``)."""
    row = {name: fn(gt, pred) for name, fn in METRICS.items()}
    row.update({f"{name}_brain": fn(gt, pred, mask) for name, fn in METRICS.items()})
    return row


#: MTVNet's test.py: LR voxels cut at every edge (``border``), an LR slice's foreground level and the share of its
#: voxels above it that keeps the slice (``trim_background_slices_dim``: 0.05 and 0.20 for HCP and IXI)
MTVNET_BORDER, MTVNET_FOREGROUND, MTVNET_SHARE = 4, 0.05, 0.20
MTVNET_COLUMNS = ("psnr_mtvnet", "ssim_mtvnet")


def mtvnet_metrics(gt: np.ndarray, pred: np.ndarray, lr: np.ndarray) -> dict[str, float]:
    """MTVNet's test-set PSNR and SSIM (``test.py``: ``trim_background_slices_dim``, ``get_full_sample_metrics``;
    ``utils/utils_image.py``: ``calculate_psnr_2D``, ``calculate_ssim_2D``), for volumes in [0, 1].

    The edges cut by 4 LR voxels (4·factor HR voxels); per axis, the HR slices of each LR slice with more than 20%
    of its voxels above 0.05, each clamped to [0, 1]: PSNR 20·log10(1 / RMSE) (float64) and scikit-image's SSIM
    with data range 1, a uniform 7² window and the population covariance (what their call gives: its
    ``gaussian_weight`` is no keyword of scikit-image, so it is ignored); their means over the slices, then over the
    three axes (their files give one per axis). ``pred`` is on the HR grid of ``lr``'s voxels times the scale.
    """
    scale = tuple(n // m for n, m in zip(pred.shape, lr.shape))
    if any(n != m * f for n, m, f in zip(pred.shape, lr.shape, scale)):
        raise ValueError(f"the SR shape {pred.shape} is not the LR shape {lr.shape} times a factor per axis")
    lr = lr[tuple(slice(MTVNET_BORDER, n - MTVNET_BORDER) for n in lr.shape)]
    cut = tuple(slice(MTVNET_BORDER * f, n - MTVNET_BORDER * f) for n, f in zip(pred.shape, scale))
    gt, pred = gt[cut], pred[cut]
    psnrs, ssims = [], []
    for axis, factor in enumerate(scale):
        others = tuple(a for a in range(3) if a != axis)
        foreground = (lr > MTVNET_FOREGROUND).sum(axis=others)
        kept = np.repeat(foreground > lr.size // lr.shape[axis] * MTVNET_SHARE, factor)
        slice_psnr, slice_ssim = [], []
        for index in np.flatnonzero(kept):
            truth, output = (np.clip(np.take(v, index, axis=axis), 0.0, 1.0) for v in (gt, pred))
            mse = np.mean((output.astype(np.float64) - truth.astype(np.float64)) ** 2)
            slice_psnr.append(float("inf") if mse == 0 else 20 * np.log10(1.0 / np.sqrt(mse)))
            slice_ssim.append(structural_similarity(output, truth, data_range=1.0, use_sample_covariance=False))
        psnrs.append(np.mean(slice_psnr) if slice_psnr else np.nan)
        ssims.append(np.mean(slice_ssim) if slice_ssim else np.nan)
    return dict(zip(MTVNET_COLUMNS, (float(np.mean(psnrs)), float(np.mean(ssims)))))


def noise_sigma(volume: np.ndarray) -> float:
    """Gaussian noise σ of a volume from its finest wavelet detail band (scikit-image's robust MAD estimate)."""
    return float(estimate_sigma(np.asarray(volume, dtype=np.float64)))
