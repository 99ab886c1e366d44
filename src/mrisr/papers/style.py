"""One look for every figure: a fixed colour per method, slices shown one way, publication sizes, atomic PNG + PDF
output."""

from __future__ import annotations

from pathlib import Path

import matplotlib
import numpy as np

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

from mrisr.io import atomic_path  # noqa: E402

METHOD_COLOURS = {
    "GT": "#000000", "LR": "#7f7f7f", "trilinear": "#1f77b4", "wgan_gp": "#ff7f0e", "esrgan": "#2ca02c",
    "threeplayer": "#d62728", "disgan": "#9467bd",
    "threeplayer_no_noise": "#e377c2", "threeplayer_frozen_fe": "#8c564b", "threeplayer_standard_gan": "#bcbd22",
    "disgan_no_dwt": "#17becf", "bspline": "#7f7f00",
}


#: the three planes of every slice figure, in their order
PLANES = ("axial", "coronal", "sagittal")

_SPARE = ("#393b79", "#637939", "#8c6d31", "#843c39", "#7b4173", "#3182bd", "#31a354", "#756bb1")


def colour(method: str) -> str:
    """The method's colour in every figure; a variant added by config gets a stable spare colour by its name."""
    if method in METHOD_COLOURS:
        return METHOD_COLOURS[method]
    return _SPARE[sum(map(ord, method)) % len(_SPARE)]


def save(fig: plt.Figure, png: str | Path, dpi: int = 200) -> list[Path]:
    """Write ``png`` and a PDF beside it, each atomically, then close the figure."""
    written = []
    for path in (Path(png), Path(png).with_suffix(".pdf")):
        with atomic_path(path) as tmp:
            fig.savefig(tmp, dpi=dpi, bbox_inches="tight", format=path.suffix[1:])
        written.append(path)
    plt.close(fig)
    return written


def plane_slice(volume: np.ndarray, plane: str, index: int) -> np.ndarray:
    """A 2D slice of a RAS+ volume, transposed for ``imshow(origin='lower')``: anterior or superior up."""
    if plane == "axial":
        return volume[:, :, index].T
    if plane == "coronal":
        return volume[:, index, :].T
    return volume[index, :, :].T
