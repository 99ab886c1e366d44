"""The README's figure of applying a trained model to a scan: one slice of the LR scan, the model's output and
the HR scan, each drawn in millimetres from its own affine, so that a wrong grid or orientation shows."""

from __future__ import annotations

from pathlib import Path

import nibabel as nib
import numpy as np

from mrisr.papers import style
from mrisr.papers.style import plt


def axial_slice_mm(image: nib.Nifti1Image, z_mm: float) -> tuple[np.ndarray, list[float]]:
    """The axial slice of ``image`` (reoriented to RAS+) nearest the world height ``z_mm``, for
    ``imshow(origin='lower')``, and its extent in world millimetres (left, right, posterior, anterior)."""
    ras = nib.as_closest_canonical(image)
    data = np.asanyarray(ras.dataobj, dtype=np.float32)
    affine = ras.affine
    index = int(np.clip(np.round((z_mm - affine[2, 3]) / affine[2, 2]), 0, data.shape[2] - 1))
    size = np.abs(np.diag(affine)[:2])
    corner = affine[:2, 3] - size / 2  # voxel centres lie at affine @ index: their edges half a voxel out
    far = corner + size * np.array(data.shape[:2])
    return data[:, :, index].T, [corner[0], far[0], corner[1], far[1]]


def before_after_figure(lr: str, sr: str, hr: str, out: str, title: str) -> list[Path]:
    """LR scan | SR | HR at the height of the HR brain's centre, one grey window (the HR's 0.5–99.5th percentiles)."""
    images = {"LR scan": nib.load(lr), "SR (model card)": nib.load(sr), "HR scan": nib.load(hr)}
    hr_ras = nib.as_closest_canonical(images["HR scan"])
    data = np.asanyarray(hr_ras.dataobj, dtype=np.float32)
    foreground = np.argwhere(data > np.percentile(data, 60))
    z_mm = float((hr_ras.affine @ np.r_[foreground.mean(axis=0), 1.0])[2])
    vmin, vmax = np.percentile(data, [0.5, 99.5])
    fig, axes = plt.subplots(1, len(images), figsize=(3.2 * len(images), 3.6), constrained_layout=True)
    for ax, (label, image) in zip(axes, images.items()):
        plane, extent = axial_slice_mm(image, z_mm)
        ax.imshow(plane, cmap="gray", vmin=vmin, vmax=vmax, origin="lower", extent=extent, interpolation="nearest")
        zooms = nib.as_closest_canonical(image).header.get_zooms()[:3]
        ax.set_title(f"{label}\n{' × '.join(f'{z:.2g}' for z in zooms)} mm, {' × '.join(map(str, image.shape[:3]))}",
                     fontsize=9)
        ax.set_xlabel("x (mm)", fontsize=8)
        ax.tick_params(labelsize=7)
    axes[0].set_ylabel("y (mm)", fontsize=8)
    fig.suptitle(f"{title}\naxial slice at z = {z_mm:.1f} mm", fontsize=10)
    return style.save(fig, out)
