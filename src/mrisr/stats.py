"""Summary tables of per-subject metrics: method x metric, mean ± std and n."""

from __future__ import annotations

import pandas as pd

#: Column order of every table and how each metric reads.
METRIC_LABELS = {
    "psnr": "PSNR (dB)", "ssim": "SSIM", "nrmse": "NRMSE",
    "psnr_brain": "PSNR brain (dB)", "ssim_brain": "SSIM brain", "nrmse_brain": "NRMSE brain",
}


def summarise(per_method: dict[str, pd.DataFrame]) -> pd.DataFrame:
    """Long table: one row per (method, metric) with mean, sample std and n over subjects."""
    rows = []
    for method, frame in per_method.items():
        for metric in METRIC_LABELS:
            if metric in frame:
                values = frame[metric].astype(float)
                rows.append({"method": method, "metric": metric, "mean": values.mean(),
                             "std": values.std(ddof=1), "n": int(values.count())})
    return pd.DataFrame(rows)


def to_markdown(summary: pd.DataFrame, digits: int = 4) -> str:
    """Method x metric grid of 'mean ± std', n in its own column."""
    metrics = [m for m in METRIC_LABELS if m in set(summary["metric"])]
    header = ["Method", "n"] + [METRIC_LABELS[m] for m in metrics]
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    for method, group in summary.groupby("method", sort=False):
        cells = group.set_index("metric")
        row = [method, str(int(cells["n"].iloc[0]))]
        row += [f"{cells.at[m, 'mean']:.{digits}f} ± {cells.at[m, 'std']:.{digits}f}" for m in metrics]
        lines.append("| " + " | ".join(row) + " |")
    return "\n".join(lines) + "\n"
