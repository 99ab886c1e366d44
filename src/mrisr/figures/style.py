"""One look for every figure: a fixed colour per method, publication sizes, atomic PNG + PDF output."""

from __future__ import annotations

from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

from mrisr.io import atomic_path  # noqa: E402

METHOD_COLOURS = {
    "GT": "#000000", "LR": "#7f7f7f", "trilinear": "#1f77b4", "wgan_gp": "#ff7f0e", "esrgan": "#2ca02c",
    "threeplayer": "#d62728", "disgan": "#9467bd",
}


def colour(method: str) -> str:
    return METHOD_COLOURS.get(method, "#8c564b")


def save(fig: plt.Figure, png: str | Path, dpi: int = 200) -> list[Path]:
    """Write ``png`` and a PDF beside it, each atomically, then close the figure."""
    written = []
    for path in (Path(png), Path(png).with_suffix(".pdf")):
        with atomic_path(path) as tmp:
            fig.savefig(tmp, dpi=dpi, bbox_inches="tight", format=path.suffix[1:])
        written.append(path)
    plt.close(fig)
    return written
