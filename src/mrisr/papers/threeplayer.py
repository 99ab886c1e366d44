"""Figures of the three-player GAN paper: SR against GT with zoom boxes (DISGAN's too), a zoomed line profile,
and the discrepancy of G and D during training."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pandas as pd
from matplotlib.patches import Rectangle

from mrisr.io import load_mask, load_volume
from mrisr.papers import style
from mrisr.papers.style import PLANES, plane_slice, plt
from mrisr.scale import as_scale

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


#: The discrepancy figure's panels: (train_log column, title, y label, the balance value: D cannot tell real from
#: fake, its logits equal, so the discrepancy is 0 and both relativistic BCE losses are log 2).
DISCREPANCY_PANELS = (
    ("d_real_minus_fake", "Discrepancy", "mean D(real) − mean D(fake) (logit)", 0.0),
    ("loss_adversarial", "Generator's adversarial loss", "BCE", math.log(2)),
    ("loss_d", "Discriminator's loss", "BCE", math.log(2)),
)


def discrepancy(logs: dict[str, pd.DataFrame], out_png: str | Path, window: int = 25) -> list[Path]:
    """The 3-player GAN's claim, per variant against training step: the discrepancy of D's logits on real and fake
    converges to 0 and the players' relativistic losses to their balance value log 2 (dashed).

    The discrepancy is the same at the G and the D step (same D, same inputs), so it is drawn once. Raw values
    faint, a centred moving average of ``window`` steps bold.
    """
    fig, axes = plt.subplots(1, len(DISCREPANCY_PANELS), figsize=(13, 3.4), sharex=True, constrained_layout=True)
    for ax, (column, title, ylabel, balance) in zip(axes, DISCREPANCY_PANELS):
        for variant, log in logs.items():
            trained = log[log[column].notna()] if column in log else log.iloc[:0]
            if trained.empty:
                continue
            c = style.colour(variant)
            ax.plot(trained["step"], trained[column], color=c, alpha=0.25, lw=0.6)
            smooth = trained[column].rolling(window, center=True, min_periods=1).mean()
            ax.plot(trained["step"], smooth, color=c, lw=1.6, label=variant)
        ax.axhline(balance, color="black", ls="--", lw=0.8)
        ax.set_xlabel("training step")
        ax.set_ylabel(ylabel)
        ax.set_title(f"{title} (balance {balance:.3g})", fontsize=10)
    axes[-1].legend(fontsize=8, frameon=False)
    return style.save(fig, out_png)


def line_profile_position(mask: np.ndarray, zoom_fraction: float, length: int) -> tuple[int, int, slice]:
    """(z, y, x-range) of a horizontal line through the centre of the axial zoom box."""
    col, row, edge = zoom_box(mask, "axial", zoom_fraction)
    centre = np.round(np.argwhere(mask).mean(axis=0)).astype(int)
    length = min(length, mask.shape[0])
    start = int(np.clip(col + edge // 2 - length // 2, 0, mask.shape[0] - length))
    return int(centre[2]), int(row + edge // 2), slice(start, start + length)


def zoom_profile(panels: dict[str, np.ndarray], mask: np.ndarray, out_png: str | Path, zoom: float,
                 length: int, title: str = "") -> list[Path]:
    """Zoomed axial crops of every panel with the profile line drawn, and the intensity profiles along it."""
    z, y, xs = line_profile_position(mask, zoom, length)
    shape = plane_slice(mask, "axial", 0).shape
    edge = min(max(zoom_box(mask, "axial", zoom)[2], xs.stop - xs.start + 4), *shape)
    col = int(np.clip((xs.start + xs.stop) // 2 - edge // 2, 0, shape[1] - edge))
    row = int(np.clip(y - edge // 2, 0, shape[0] - edge))
    reference = panels.get("GT", next(iter(panels.values())))
    vmin, vmax = np.percentile(reference[mask], [0.5, 99.5])
    fig = plt.figure(figsize=(2.1 * len(panels), 4.6), constrained_layout=True)
    grid = fig.add_gridspec(2, len(panels), height_ratios=[1, 1.1])
    for c, (label, volume) in enumerate(panels.items()):
        ax = fig.add_subplot(grid[0, c])
        crop = plane_slice(volume, "axial", z)[row:row + edge, col:col + edge]
        ax.imshow(crop, cmap="gray", vmin=vmin, vmax=vmax, origin="lower", interpolation="nearest",
                  extent=(col - 0.5, col + edge - 0.5, row - 0.5, row + edge - 0.5))
        ax.plot([xs.start, xs.stop - 1], [y, y], color="yellow", lw=1)
        ax.set_xlim(col - 0.5, col + edge - 0.5)
        ax.set_ylim(row - 0.5, row + edge - 0.5)
        ax.set_title(label, color=style.colour(label), fontsize=9)
        ax.set_xticks([])
        ax.set_yticks([])
    ax = fig.add_subplot(grid[1, :])
    for label, volume in panels.items():
        ax.plot(np.arange(xs.start, xs.stop), volume[xs, y, z], color=style.colour(label), label=label,
                lw=2.0 if label == "GT" else 1.2, ls="--" if label == "GT" else "-")
    ax.set_xlabel(f"x (HR voxel; axial slice {z}, row {y})")
    ax.set_ylabel("intensity (z-score)")
    ax.legend(fontsize=7, ncol=min(len(panels), 6), frameon=False)
    if title:
        fig.suptitle(title, fontsize=10)
    return style.save(fig, out_png)


def load_panels(inputs: list[dict], scale: int | list[int]) -> dict[str, np.ndarray]:
    """Volumes by ``label``, all on the HR grid (the ``LR`` panel is shown by voxel repetition, per axis)."""
    panels = {}
    for item in inputs:
        data = np.asanyarray(load_volume(item["path"]).dataobj, dtype=np.float32)
        if item["label"] == "LR":
            for axis, factor in enumerate(as_scale(scale)):
                data = np.repeat(data, factor, axis)
        panels[item["label"]] = data
    return panels


def sr_comparison_figure(inputs: list[dict], mask: str, scale: int | list[int], zoom: float, title: str, out: str) -> list[Path]:
    """:func:`sr_comparison` from files: ``inputs`` are the panels (``label``, ``path``) in order."""
    return sr_comparison(load_panels(inputs, scale), load_mask(mask), out, zoom, title)


def zoom_profile_figure(inputs: list[dict], mask: str, scale: int | list[int], zoom: float, length: int, title: str,
                        out: str) -> list[Path]:
    """:func:`zoom_profile` from files: ``inputs`` are the panels (``label``, ``path``) in order."""
    return zoom_profile(load_panels(inputs, scale), load_mask(mask), out, zoom, length, title)


def discrepancy_figure(inputs: list[dict], out: str) -> list[Path]:
    """:func:`discrepancy` from files: ``inputs`` are the variants' ``train_log.csv`` (``label``, ``path``)."""
    return discrepancy({item["label"]: pd.read_csv(item["path"]) for item in inputs}, out)
