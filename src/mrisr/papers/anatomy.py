"""Does SR keep anatomy true: the volume table (signed and absolute volume error, Dice, per method, class and
segmenter, paired against the reference interpolation), a Bland–Altman figure of the class volumes on SR against
those on HR, and the slice where a method's segmentation differs most from HR's."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from mrisr.io import load_volume, write_table, write_text
from mrisr.papers import style
from mrisr.papers.style import plt
from mrisr.papers.tables import read_metrics
from mrisr.stats import comparison_table, notes_of, to_markdown

#: what the table reports of each class, and how it reads
MEASURES = {"error_pct": "volume error (%)", "abs_error_pct": "absolute volume error (%)", "dice": "Dice with HR"}


def structure(frame: pd.DataFrame) -> list[tuple[str, str]]:
    """(segmenter, class) pairs of a per-subject volume file, in its column order."""
    pairs = [tuple(c[: -len("_dice")].split("_", 1)) for c in frame.columns if c.endswith("_dice")]
    return list(dict.fromkeys(pairs))


def anatomy_table(inputs: list[dict], reference: str | None, out_csv: str, out_md: str) -> Path:
    """``inputs``: per-subject volume files (``mrisr anatomy``) with ``label`` (the method), ``setting`` and
    ``description``. Per setting and segmenter, method x class measures, each method paired against ``reference``."""
    settings = list(dict.fromkeys(item["setting"] for item in inputs))
    tables, sections = [], []
    for setting in settings:
        items = [item for item in inputs if item["setting"] == setting]
        frames = read_metrics(items)
        computed = [f for f in frames.values() if any(c.endswith("_dice") for c in f.columns)]
        pairs = structure(computed[0]) if computed else []
        sections.append(f"### {setting}: {items[0]['description']}\n")
        for segmenter in dict.fromkeys(s for s, _ in pairs):
            classes = [c for s, c in pairs if s == segmenter]
            metrics = [f"{segmenter}_{c}_{m}" for c in classes for m in MEASURES]
            labels = {f"{segmenter}_{c}_{m}": f"{c} {text}" for c in classes for m, text in MEASURES.items()}
            ref = reference if reference in frames else None
            table = comparison_table(frames, ref, metrics)
            tables.append(table.assign(setting=setting, segmenter=segmenter))
            sections.append(f"#### Segmented by {segmenter}\n\n"
                            + to_markdown(table, digits=3, notes=notes_of(frames), labels=labels))
    write_table(pd.concat(tables, ignore_index=True) if tables else pd.DataFrame(), out_csv)
    return write_text("\n".join(sections), out_md)


def bland_altman_figure(inputs: list[dict], out: str) -> list[Path]:
    """One panel per segmenter and class: each subject's class volume on a method's SR against the volume on HR
    (difference against mean, mL), a colour per method, a marker per setting; the line of no difference."""
    frames = {(item["setting"], item["label"]): pd.read_csv(item["path"], dtype={"subject": str}) for item in inputs}
    computed = [f for f in frames.values() if any(c.endswith("_dice") for c in f.columns)]
    pairs = structure(computed[0]) if computed else []
    segmenters = list(dict.fromkeys(s for s, _ in pairs))
    classes = list(dict.fromkeys(c for _, c in pairs))
    settings = list(dict.fromkeys(s for s, _ in frames))
    fig, axes = plt.subplots(max(len(segmenters), 1), max(len(classes), 1), squeeze=False,
                             figsize=(3.2 * max(len(classes), 1), 2.8 * max(len(segmenters), 1)), constrained_layout=True)
    for r, segmenter in enumerate(segmenters):
        for c, name in enumerate(classes):
            ax = axes[r][c]
            for (setting, method), frame in frames.items():
                column = f"{segmenter}_{name}_volume_ml"
                if column not in frame:
                    continue
                sr, hr = frame[column], frame[f"{segmenter}_{name}_reference_ml"]
                ax.scatter((sr + hr) / 2, sr - hr, s=14, color=style.colour(method),
                           marker="os^Dv<>"[settings.index(setting) % 7],
                           label=f"{method} ({setting})" if r == c == 0 else None)
            ax.axhline(0, color="black", linewidth=0.8)
            ax.set_title(f"{name}, {segmenter}", fontsize=9)
            ax.set_xlabel("mean of SR and HR volume (mL)", fontsize=8)
            ax.set_ylabel("SR − HR volume (mL)", fontsize=8)
    if segmenters:
        fig.legend(fontsize=6, frameon=False, loc="outside right upper")
    return style.save(fig, out)


def worst_slice_figure(inputs: list[dict], segmenter_names: list[str], hr_image: str, hr_labels: list[str],
                       subject: str, out: str) -> list[Path]:
    """Per segmenter (``hr_labels`` and each input's ``label_maps``: ``subject``'s, in ``segmenter_names``' order):
    the method and setting whose segmentation of ``subject`` has the lowest mean Dice with HR's, at the slice (last
    axis) where the two label maps disagree on the most voxels: HR's labels, the method's, and where they differ."""
    image = np.asanyarray(load_volume(hr_image).dataobj, dtype=np.float32)
    fig, axes = plt.subplots(len(segmenter_names), 3, squeeze=False, figsize=(9, 3.2 * len(segmenter_names)),
                             constrained_layout=True)
    frames = [pd.read_csv(item["path"], dtype={"subject": str}).set_index("subject") for item in inputs]
    for row, segmenter in enumerate(segmenter_names):
        scored = [(float(frame.loc[subject, columns].mean()), i) for i, frame in enumerate(frames)
                  if subject in frame.index
                  and (columns := [c for c in frame.columns if c.startswith(f"{segmenter}_") and c.endswith("_dice")])]
        for ax in axes[row]:
            ax.set_axis_off()
        if not scored:
            continue
        dice, worst = min(scored)
        item = inputs[worst]
        sr = np.asanyarray(load_volume(item["label_maps"][row]).dataobj)
        hr = np.asanyarray(load_volume(hr_labels[row]).dataobj)[tuple(slice(0, n) for n in sr.shape)]
        k = int(np.argmax((sr != hr).sum(axis=(0, 1))))
        background = image[: sr.shape[0], : sr.shape[1], k].T
        top = max(int(hr.max()), int(sr.max()), 1)
        for ax, title, labels in ((axes[row][0], f"HR, segmented by {segmenter}", hr[:, :, k]),
                                  (axes[row][1], f"{item['label']} ({item['setting']})", sr[:, :, k])):
            ax.imshow(background, cmap="gray", origin="lower")
            ax.imshow(np.ma.masked_equal(labels.T, 0), cmap="viridis", alpha=0.45, origin="lower", vmin=0, vmax=top)
            ax.set_title(title, fontsize=9)
        differs = (sr[:, :, k] != hr[:, :, k]).T.astype(np.uint8)
        axes[row][2].imshow(background, cmap="gray", origin="lower")
        axes[row][2].imshow(np.ma.masked_equal(differs, 0), cmap="autumn", origin="lower")
        axes[row][2].set_title(f"where they differ (mean Dice {dice:.3f}), slice {k}", fontsize=9)
    return style.save(fig, out)
