"""The SR-augmentation study (MIDL 2022, OHBM 2022): its table and its figure.

Table: each arm's Dice (and HD95) per class, the seeds' spread, and real+sr against real. Subjects are the unit
of the paired tests: a subject's score is its mean over seeds, so seeds reduce the training noise of each arm
instead of counting as extra samples. The spread over seeds is reported beside.
Figure: each arm's segmentation beside the ground truth, differences marked.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
from matplotlib.colors import ListedColormap
from scipy import ndimage

from mrisr import stats
from mrisr.io import load_labels, load_mask, load_volume, write_table, write_text
from mrisr.papers import style
from mrisr.papers.style import plt
from mrisr.papers.style import PLANES, plane_slice

#: Tissue colours (class 0, background, is transparent).
CLASS_COLOURS = ("#00000000", "#4c9be8", "#e8a33d", "#f2f2f2", "#b04ce8", "#4ce87a", "#e84c4c")
#: Where the two arms disagree: green where the second arm (real+sr) is right, red where the first is right,
#: yellow where both are wrong.
DIFF_COLOURS = {"second right": "#1a9850", "first right": "#d73027", "both wrong": "#fee08b"}

_AXES = {"axial": 2, "coronal": 1, "sagittal": 0}


def most_different_slices(first: np.ndarray, second: np.ndarray, mask: np.ndarray) -> dict[str, int]:
    """Per plane, the slice with the most voxels where the arms disagree (the brain centre if they never do)."""
    differ = (first != second) & mask
    centre = np.round(np.argwhere(mask).mean(axis=0)).astype(int)
    chosen = {}
    for plane, axis in _AXES.items():
        counts = differ.sum(axis=tuple(a for a in range(3) if a != axis))
        chosen[plane] = int(np.argmax(counts)) if counts.max() > 0 else int(centre[axis])
    return chosen


def _hotspot(differ: np.ndarray) -> tuple[float, float] | None:
    """(column, row) of the densest patch of disagreement on a 2D slice, for an arrow."""
    if not differ.any():
        return None
    density = ndimage.gaussian_filter(differ.astype(np.float32), sigma=2.0)
    row, col = np.unravel_index(int(np.argmax(density)), density.shape)
    return float(col), float(row)


def segmentation_comparison(image: np.ndarray, truth: np.ndarray, arms: dict[str, np.ndarray], mask: np.ndarray,
                            classes: list[str], out_png: str | Path, title: str = "") -> list[Path]:
    """Rows: the three planes at the slice where the arms differ most; columns: image, GT, each arm, differences.

    The last column marks every voxel where the first two arms disagree, coloured by which one is right, and an
    arrow points at the densest disagreement.
    """
    names = list(arms)
    first, second = arms[names[0]], arms[names[-1]]
    index = most_different_slices(first, second, mask)
    vmin, vmax = np.percentile(image[mask], [0.5, 99.5])
    labels_cmap = ListedColormap(CLASS_COLOURS[: len(classes)])
    diff_cmap = ListedColormap(["#00000000", *DIFF_COLOURS.values()])
    columns = ["T1w", "ground truth", *names, f"{names[0]} vs {names[-1]}"]
    fig, axes = plt.subplots(len(PLANES), len(columns), figsize=(2.3 * len(columns), 2.5 * len(PLANES)),
                             squeeze=False, constrained_layout=True)
    for r, plane in enumerate(PLANES):
        i = index[plane]
        grey = plane_slice(image, plane, i)
        gt, a, b = (plane_slice(v, plane, i) for v in (truth, first, second))
        differ = a != b
        marks = np.where(differ & (b == gt), 1, np.where(differ & (a == gt), 2, np.where(differ, 3, 0)))
        overlays = [None, gt, *(plane_slice(arms[n], plane, i) for n in names), marks]
        for c, overlay in enumerate(overlays):
            ax = axes[r, c]
            ax.imshow(grey, cmap="gray", vmin=vmin, vmax=vmax, origin="lower", interpolation="nearest")
            if overlay is not None and c < len(overlays) - 1:
                ax.imshow(np.ma.masked_equal(overlay, 0), cmap=labels_cmap, vmin=-0.5, vmax=len(classes) - 0.5,
                          origin="lower", interpolation="nearest", alpha=0.55)
            elif overlay is not None:
                ax.imshow(np.ma.masked_equal(overlay, 0), cmap=diff_cmap, vmin=-0.5, vmax=3.5, origin="lower",
                          interpolation="nearest")
                spot = _hotspot(differ)
                if spot is not None:
                    ax.annotate("", xy=spot, xytext=(spot[0] + 0.2 * grey.shape[1], spot[1] + 0.2 * grey.shape[0]),
                                arrowprops={"arrowstyle": "->", "color": "#00bfff", "lw": 1.5})
                ax.text(0.02, 0.02, f"{int(differ.sum())} voxels differ", transform=ax.transAxes, color="white",
                        fontsize=7)
            ax.set_xticks([])
            ax.set_yticks([])
            if r == 0:
                ax.set_title(columns[c], fontsize=9)
        axes[r, 0].set_ylabel(f"{plane} {i}", fontsize=9)
    handles = [plt.Rectangle((0, 0), 1, 1, color=CLASS_COLOURS[k]) for k in range(1, len(classes))]
    handles += [plt.Rectangle((0, 0), 1, 1, color=colour) for colour in DIFF_COLOURS.values()]
    texts = list(classes[1:]) + [f"{names[-1]} right", f"{names[0]} right", "both wrong"]
    fig.legend(handles, texts, loc="lower center", ncol=len(texts), fontsize=8, frameon=False,
               bbox_to_anchor=(0.5, -0.04))
    if title:
        fig.suptitle(title, fontsize=10)
    return style.save(fig, out_png)


def segmentation_figure(image: str, label: str, mask: str, inputs: list[dict], classes: list[str], title: str,
                        out: str) -> list[Path]:
    """The figure from files: ``inputs`` are the arms' label maps (``label``: the arm, ``path``)."""
    volume = load_volume(image)
    arms = {item["label"]: load_labels(item["path"], volume, image, len(classes)) for item in inputs}
    truth = load_labels(label, volume, image, len(classes))
    return segmentation_comparison(np.asanyarray(volume.dataobj, dtype=np.float32), truth, arms, load_mask(mask),
                                   classes, out, title)


#: The arm the other is tested against.
REFERENCE_ARM = "real"


def metric_columns(frame: pd.DataFrame) -> list[str]:
    return [c for c in frame if c.startswith(("dice_", "hd95_"))]


def metric_label(metric: str) -> str:
    kind, _, name = metric.partition("_")
    return f"Dice {name}" if kind == "dice" else f"HD95 {name} (mm)"


def metric_family(metric: str) -> str:
    """Holm corrects across the classes of one metric (Dice or HD95)."""
    return metric.partition("_")[0]


def arm_table(per_arm: dict[str, pd.DataFrame], reference: str = REFERENCE_ARM) -> pd.DataFrame:
    """``per_arm``: every seed's rows (subject, seed, metric columns) of each arm; one row per (arm, metric)."""
    seed_sets = {arm: sorted(frame["seed"].unique()) for arm, frame in per_arm.items()}
    if len({tuple(s) for s in seed_sets.values()}) > 1:
        raise ValueError(f"the arms were trained with different seeds: {seed_sets}")
    metrics = metric_columns(next(iter(per_arm.values())))
    by_subject = {arm: frame.groupby("subject", as_index=False, sort=False)[metrics].mean()
                  for arm, frame in per_arm.items()}
    table = stats.comparison_table(by_subject, reference, metrics, holm_family=metric_family)
    spread = []
    for arm, frame in per_arm.items():
        per_seed = frame.groupby("seed")[metrics].mean()
        for metric in metrics:
            spread.append({"method": arm, "metric": metric, "seeds": len(per_seed),
                           "seed_mean": per_seed[metric].mean(), "seed_std": per_seed[metric].std(ddof=1)})
    return table.merge(pd.DataFrame(spread), on=["method", "metric"], how="left").rename(columns={"method": "arm"})


def to_markdown(table: pd.DataFrame) -> str:
    """The stats grid and tests (over subjects), then the spread over seeds."""
    frame = table.rename(columns={"arm": "method"})
    labels = {m: metric_label(m) for m in frame["metric"].unique()}
    text = stats.to_markdown(frame, labels=labels, correction="across classes per metric (Dice, HD95)")
    seeds = int(frame["seeds"].max())
    lines = ["", f"Across {seeds} seed{'s' if seeds > 1 else ''} (each seed's mean over subjects; mean ± std over seeds):",
             "",
             "| Arm | " + " | ".join(labels.values()) + " |", "|---|" + "---|" * len(labels)]
    for arm, group in frame.groupby("method", sort=False):
        cells = group.set_index("metric")
        lines.append(f"| {arm} | " + " | ".join(stats.mean_std(cells.at[m, "seed_mean"], cells.at[m, "seed_std"], 4)
                                                 for m in labels) + " |")
    return text + "\n".join(lines) + "\n"


def segmentation_table(inputs: list[dict], out_csv: str, out_md: str) -> Path:
    """The table from files: ``inputs`` are every arm's per-seed score CSVs (``label``: the arm, ``path``)."""
    per_arm: dict[str, list[pd.DataFrame]] = {}
    for item in inputs:
        per_arm.setdefault(item["label"], []).append(pd.read_csv(item["path"], dtype={"subject": str}))
    table = arm_table({arm: pd.concat(frames, ignore_index=True) for arm, frames in per_arm.items()})
    write_table(table, out_csv)
    return write_text(to_markdown(table), out_md)
