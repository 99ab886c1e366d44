"""The DISGAN paper's noise table and figure (metrics against noise added to the LR input), and the stripes that
pasted tiles leave."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from mrisr.errors import InputError
from mrisr.io import load_mask, load_volume, write_table, write_text
from mrisr.papers import style
from mrisr.papers.style import plt
from mrisr.papers.tables import grouped_comparison
from mrisr.papers.style import plane_slice
from mrisr.stats import QUALITY


def noise_curves(table: pd.DataFrame, out_png: str | Path) -> list[Path]:
    """PSNR and SSIM (mean ± std over subjects) and the output's noise estimate against the σ added to the input."""
    panels = (("psnr", "PSNR (dB)"), ("ssim", "SSIM"), ("sigma_sr", "noise σ̂ (z-score units)"))
    fig, axes = plt.subplots(1, 3, figsize=(11, 3.4), constrained_layout=True)
    for ax, (metric, label) in zip(axes, panels):
        rows = table[table["metric"] == metric]
        for method, group in rows.groupby("method", sort=False):
            group = group.sort_values("sigma")
            ax.errorbar(group["sigma"], group["mean"], yerr=group["std"], color=style.colour(method), label=method,
                        marker="o", ms=3, capsize=2, lw=1.2)
        if metric == "sigma_sr":
            inputs = table[table["metric"] == "sigma_lr"].groupby("sigma")["mean"].mean()
            ax.plot(inputs.index, inputs.to_numpy(), color="black", ls="--", marker="s", ms=3, label="LR input")
        ax.set_xlabel("σ of the noise added to the LR input (z-score units)")
        ax.set_ylabel(label)
    axes[2].set_title("noise estimate: input vs output", fontsize=10)
    axes[0].legend(fontsize=7, frameon=False)
    return style.save(fig, out_png)


def error_spectrum(error: np.ndarray, mask: np.ndarray, axis: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """(frequency in cycles/voxel, mean power) of the error along ``axis`` over the brain's bounding box.

    Tiles pasted every P voxels leave a periodic error, which shows as peaks at multiples of 1/P.
    """
    box = tuple(slice(int(i.min()), int(i.max()) + 1) for i in np.nonzero(mask))
    box = tuple(slice(None) if a == axis else b for a, b in enumerate(box))
    lines = np.moveaxis(error[box], axis, -1)
    lines = lines - lines.mean(axis=-1, keepdims=True)
    power = (np.abs(np.fft.rfft(lines, axis=-1)) ** 2).reshape(-1, lines.shape[-1] // 2 + 1).mean(axis=0)
    return np.fft.rfftfreq(lines.shape[-1]), power


def stripes(gt: np.ndarray, blended: np.ndarray, pasted: np.ndarray, mask: np.ndarray, period: int,
            out_png: str | Path, label: str, title: str = "") -> list[Path]:
    """|SR − GT| on a coronal slice for halo-blended and tile-pasted inference, and the error spectrum along x."""
    centre = np.round(np.argwhere(mask).mean(axis=0)).astype(int)
    signed = {"blended (halo, ours)": blended - gt, f"pasted {period}-voxel tiles (authors)": pasted - gt}
    lines = dict(zip(signed, ("#9467bd", "#ff7f0e")))
    vmax = float(np.percentile(np.concatenate([np.abs(e[mask]) for e in signed.values()]), 99))
    fig = plt.figure(figsize=(11, 3.6), constrained_layout=True)
    grid = fig.add_gridspec(1, 3, width_ratios=[1, 1, 1.4])
    for c, (name, error) in enumerate(signed.items()):
        ax = fig.add_subplot(grid[0, c])
        image = ax.imshow(plane_slice(np.abs(error), "coronal", centre[1]), cmap="magma", vmin=0, vmax=vmax,
                          origin="lower")
        ax.set_title(f"|{label} − GT|, {name}", fontsize=9)
        ax.set_xticks([])
        ax.set_yticks([])
    fig.colorbar(image, ax=fig.axes[:2], shrink=0.8, label="absolute error (z-score units)")
    ax = fig.add_subplot(grid[0, 2])
    for name, error in signed.items():
        freq, power = error_spectrum(np.where(mask, error, 0), mask)
        ax.semilogy(freq[1:], power[1:], lw=1.2, label=name, color=lines[name])
    for k in range(1, period // 2 + 1):
        ax.axvline(k / period, color="grey", lw=0.6, ls=":", label=f"multiples of 1/{period}" if k == 1 else None)
    ax.set_xlabel("spatial frequency along x (cycles / HR voxel)")
    ax.set_ylabel("error power (a.u.)")
    ax.legend(fontsize=7, frameon=False)
    if title:
        fig.suptitle(title, fontsize=10)
    return style.save(fig, out_png)


def noise_table(inputs: list[dict], reference: str | None, out_csv: str, out_md: str) -> Path:
    """Each σ's comparison table: ``inputs`` are metric CSVs with ``label`` (the method), ``sigma`` and ``path``."""
    ordered = sorted(({**item, "sigma": float(item["sigma"])} for item in inputs), key=lambda item: item["sigma"])
    table, sections = grouped_comparison(ordered, "sigma", reference, (*QUALITY, "sigma_lr", "sigma_sr"),
                                     lambda sigma: f"Added noise σ = {sigma:g} (z-score units)")
    write_table(table, out_csv)
    return write_text("\n".join(sections), out_md)


def noise_figure(table: str, out: str) -> list[Path]:
    """:func:`noise_curves` of the noise table's CSV."""
    return noise_curves(pd.read_csv(table), out)


def stripes_figure(gt: str, blended: str, pasted: str, mask: str, period: int, label: str, title: str,
                   out: str) -> list[Path]:
    """:func:`stripes` from files: one LR volume's halo-blended and pasted-tile SR outputs and its HR ground truth."""
    volumes = [np.asanyarray(load_volume(p).dataobj, dtype=np.float32) for p in (gt, blended, pasted)]
    if not volumes[0].shape == volumes[1].shape == volumes[2].shape:
        raise InputError(pasted, f"grids differ: GT {volumes[0].shape}, blended {volumes[1].shape}, "
                         f"pasted {volumes[2].shape}", "give the SR outputs of one LR volume and its HR ground truth")
    return stripes(*volumes, load_mask(mask), period, out, label, title)
