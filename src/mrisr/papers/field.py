"""The settings table: each variant scored in each setting the run lists (a scale and a degradation: the authors'
x2 nearest, the field's x4 blur or k-space, thick slices), paired within the setting, and published numbers of
other papers in rows of their own, never in our statistics."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from mrisr.io import write_table, write_text
from mrisr.papers import style
from mrisr.papers.style import plt
from mrisr.papers.tables import grouped_comparison
from mrisr.stats import METRIC_LABELS

#: The settings table's metrics: inside the brain, and MTVNet's where the run computes them (mtvnet_metrics)
FIELD_METRICS = ("psnr_brain", "ssim_brain", "nrmse_brain", "psnr_mtvnet", "ssim_mtvnet")
#: a published entry's keys -> the column its number sits in: psnr_mtvnet for a number computed as MTVNet does
PUBLISHED_COLUMNS = {"psnr": "psnr_brain", "ssim": "ssim_brain", "nrmse": "nrmse_brain",
                     "psnr_mtvnet": "psnr_mtvnet", "ssim_mtvnet": "ssim_mtvnet"}
#: the figure's panels, those the table has
FIGURE_METRICS = ("psnr_brain", "ssim_brain", "psnr_mtvnet", "ssim_mtvnet")


def published_rows(published: list[dict]) -> pd.DataFrame:
    """Published numbers as rows of the long table: the method marked "(published)", n and statistics empty."""
    rows = [{"method": f"{item['method']} (published)", "metric": metric, "mean": float(item[key]),
             "setting": item["setting"], "source": item["source"], "dataset": item.get("dataset", "")}
            for item in published for key, metric in PUBLISHED_COLUMNS.items() if key in item]
    return pd.DataFrame(rows, columns=["method", "metric", "mean", "setting", "source", "dataset"])


def published_markdown(rows: pd.DataFrame) -> list[str]:
    if rows.empty:
        return []
    lines = ["Published (their data split, crop and training, not ours; not in the statistics above):", "",
             "| Method | Dataset | Metric | Value | Source |", "|---|---|---|---|---|"]
    lines += [f"| {r.method} | {r.dataset} | {r.metric} | {r.mean:.4g} | {r.source} |" for r in rows.itertuples()]
    return lines + [""]


def settings_table(inputs: list[dict], reference: str | None, published: list[dict], out_csv: str,
                   out_md: str) -> Path:
    """``inputs``: metric CSVs with ``label`` (the variant), ``setting`` and ``description``; ``published``: the
    config's ``field.published``. One comparison per setting against ``reference``, then its published rows."""
    descriptions = {item["setting"]: item["description"] for item in inputs}
    table, sections = grouped_comparison(inputs, "setting", reference, FIELD_METRICS,
                                         lambda setting: f"{setting}: {descriptions[setting]}")
    rows = published_rows(published)
    sections = [section + "\n".join(["", *published_markdown(rows[rows["setting"] == setting])])
                for section, setting in zip(sections, descriptions)]
    write_table(pd.concat([table, rows], ignore_index=True).assign(
        description=lambda t: t["setting"].map(descriptions)), out_csv)
    return write_text("\n".join(sections), out_md)


def settings_figure(table: str, out: str) -> list[Path]:
    """Brain PSNR and SSIM (mean ± std over subjects) of each variant in each setting; published values as
    hollow markers."""
    frame = pd.read_csv(table)
    settings = list(dict.fromkeys(frame["setting"]))
    ours = frame[~frame["method"].str.endswith("(published)")]
    methods = list(dict.fromkeys(ours["method"]))
    panels = [m for m in FIGURE_METRICS if (frame["metric"] == m).any()]
    fig, axes = plt.subplots(1, len(panels), figsize=(4 + 0.8 * len(panels) * len(settings), 3.4),
                             constrained_layout=True, squeeze=False)
    axes = axes[0]
    width = 0.8 / max(len(methods), 1)
    for ax, metric in zip(axes, panels):
        for m, method in enumerate(methods):
            rows = ours[(ours["method"] == method) & (ours["metric"] == metric)].set_index("setting")
            x = np.arange(len(settings)) + (m - (len(methods) - 1) / 2) * width
            ax.bar(x, rows["mean"].reindex(settings), width, yerr=rows["std"].reindex(settings), capsize=2,
                   color=style.colour(method), label=method)
        published = frame[frame["method"].str.endswith("(published)") & (frame["metric"] == metric)]
        for p, (method, rows) in enumerate(published.groupby("method", sort=False)):
            ax.scatter([settings.index(s) for s in rows["setting"]], rows["mean"], marker="os^D"[p % 4],
                       facecolors="none", edgecolors="black", zorder=3, label=method)
        ax.set_xticks(range(len(settings)), settings, rotation=20, fontsize=8)
        ax.set_ylabel(METRIC_LABELS[metric])
        values = frame[frame["metric"] == metric]["mean"]
        ax.set_ylim(values.min() - (0.05 if metric.startswith("ssim") else 2), None)
    axes[0].legend(fontsize=7, frameon=False)
    return style.save(fig, out)
