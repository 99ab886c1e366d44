"""Figures of the three-player GAN paper."""

from __future__ import annotations

from pathlib import Path

import numpy as np
from matplotlib.patches import Rectangle

from mrisr.figures import style
from mrisr.figures.style import plt

PLANES = ("axial", "coronal", "sagittal")


def plane_slice(volume: np.ndarray, plane: str, index: int) -> np.ndarray:
    """A 2D slice of a RAS+ volume, transposed for ``imshow(origin='lower')``: anterior or superior up."""
    if plane == "axial":
        return volume[:, :, index].T
    if plane == "coronal":
        return volume[:, index, :].T
    return volume[index, :, :].T


def zoom_box(mask: np.ndarray, plane: str, fraction: float) -> tuple[int, int, int]:
    """(column, row, edge) of a square box around the centre of the brain on this plane."""
    centre = np.round(np.argwhere(mask).mean(axis=0)).astype(int)
    shape = plane_slice(mask, plane, 0).shape
    edge = max(int(fraction * min(shape)), 4)
    axes = {"axial": (0, 1), "coronal": (0, 2), "sagittal": (1, 2)}[plane]
    col, row = centre[axes[0]] - edge // 2, centre[axes[1]] - edge // 2
    return int(np.clip(col, 0, shape[1] - edge)), int(np.clip(row, 0, shape[0] - edge)), edge


def sr_comparison(panels: dict[str, np.ndarray], mask: np.ndarray, out_png: str | Path, zoom: float,
                  title: str = "") -> list[Path]:
    """Rows: axial, coronal, sagittal through the brain centre; columns: the panels, each with a zoom inset.

    Every panel is on the HR grid (LR shown by voxel repetition) and shares the GT's grey window.
    """
    reference = panels.get("GT", next(iter(panels.values())))
    vmin, vmax = np.percentile(reference[mask], [0.5, 99.5])
    centre = np.round(np.argwhere(mask).mean(axis=0)).astype(int)
    index = {"axial": centre[2], "coronal": centre[1], "sagittal": centre[0]}
    fig, axes = plt.subplots(len(PLANES), len(panels), figsize=(2.4 * len(panels), 2.6 * len(PLANES)),
                             squeeze=False, constrained_layout=True)
    for r, plane in enumerate(PLANES):
        col, row, edge = zoom_box(mask, plane, zoom)
        for c, (label, volume) in enumerate(panels.items()):
            ax = axes[r, c]
            image = plane_slice(volume, plane, index[plane])
            ax.imshow(image, cmap="gray", vmin=vmin, vmax=vmax, origin="lower", interpolation="nearest")
            ax.add_patch(Rectangle((col - 0.5, row - 0.5), edge, edge, fill=False, lw=1, ec=style.colour(label)))
            inset = ax.inset_axes([0.62, 0.62, 0.38, 0.38])
            inset.imshow(image[row:row + edge, col:col + edge], cmap="gray", vmin=vmin, vmax=vmax, origin="lower",
                         interpolation="nearest")
            inset.set_xticks([])
            inset.set_yticks([])
            for spine in inset.spines.values():
                spine.set_edgecolor(style.colour(label))
            ax.set_xticks([])
            ax.set_yticks([])
            if r == 0:
                ax.set_title(label, color=style.colour(label), fontsize=10)
            if c == 0:
                ax.set_ylabel(f"{plane} (slice {index[plane]})", fontsize=9)
    if title:
        fig.suptitle(title, fontsize=10)
    return style.save(fig, out_png)
