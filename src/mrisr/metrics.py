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


def noise_sigma(volume: np.ndarray) -> float:
    """Gaussian noise σ of a volume from its finest wavelet detail band (scikit-image's robust MAD estimate)."""
    return float(estimate_sigma(np.asarray(volume, dtype=np.float64)))
