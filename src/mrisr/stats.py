"""Tables of per-subject metrics: mean ± std and n per method, and paired tests against a reference method.

Subjects are the unit: every method is evaluated on the same test subjects, so methods are compared with
paired tests over subjects (pingouin's Wilcoxon signed-rank and paired t), Holm-corrected across the
methods compared with the reference for each metric.
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Callable

import numpy as np
import pandas as pd
import pingouin as pg

#: Column order of every table and how each metric reads.
METRIC_LABELS = {
    "psnr": "PSNR (dB)", "ssim": "SSIM", "ssim3d": "SSIM 3D", "nrmse": "NRMSE",
    "psnr_brain": "PSNR brain (dB)", "ssim_brain": "SSIM brain", "ssim3d_brain": "SSIM 3D brain",
    "nrmse_brain": "NRMSE brain",
    "lpips": "LPIPS", "psnr_mtvnet": "PSNR as MTVNet (dB)", "ssim_mtvnet": "SSIM as MTVNet",
    "sigma_lr": "noise σ̂ of the LR input", "sigma_sr": "noise σ̂ of the output",
}
#: The image-quality columns of the method tables (the noise estimates belong to the noise table).
#: (MTVNet's columns only where the run computes them: mtvnet_metrics)
QUALITY = ("psnr", "ssim", "ssim3d", "nrmse", "psnr_brain", "ssim_brain", "ssim3d_brain", "nrmse_brain", "lpips",
           "psnr_mtvnet", "ssim_mtvnet")

TEST_COLUMNS = ["reference", "n_pairs", "mean_diff", "t", "p_t", "p_t_holm", "cohen_d",
                "W", "p_wilcoxon", "p_wilcoxon_holm", "rbc"]


def summarise(per_method: dict[str, pd.DataFrame], metrics=QUALITY) -> pd.DataFrame:
    """Long table: one row per (method, metric) with mean, sample std and n over subjects."""
    rows = []
    for method, frame in per_method.items():
        for metric in metrics:
            if metric in frame:
                values = frame[metric].astype(float)
                rows.append({"method": method, "metric": metric, "mean": values.mean(),
                             "std": values.std(ddof=1), "n": int(values.count())})
    return pd.DataFrame(rows)


def _paired(x: np.ndarray, y: np.ndarray) -> dict:
    """Paired t and Wilcoxon of ``x - y``; NaN where n < 2 or the differences are all zero."""
    out = {"n_pairs": len(x), "mean_diff": float(np.mean(x - y)) if len(x) else math.nan}
    nan = {"t": math.nan, "p_t": math.nan, "cohen_d": math.nan, "W": math.nan, "p_wilcoxon": math.nan,
           "rbc": math.nan}
    if len(x) < 2 or np.all(x == y):
        return out | nan
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        t = pg.ttest(x, y, paired=True).iloc[0]
        w = pg.wilcoxon(x, y).iloc[0]
    return out | {"t": float(t["T"]), "p_t": float(t["p_val"]), "cohen_d": float(t["cohen_d"]),
                  "W": float(w["W_val"]), "p_wilcoxon": float(w["p_val"]), "rbc": float(w["RBC"])}


def _holm(p: pd.Series) -> pd.Series:
    corrected = pd.Series(np.nan, index=p.index)
    finite = p.notna()
    if finite.any():
        corrected[finite] = pg.multicomp(p[finite].to_numpy(), method="holm")[1]
    return corrected


def paired_tests(per_method: dict[str, pd.DataFrame], reference: str, metrics=QUALITY,
                 holm_family: Callable[[str], str] | None = None) -> pd.DataFrame:
    """Each method against ``reference``, per metric, paired on subject.

    Holm corrects within a family of tests: by default the methods compared on one metric; ``holm_family``
    maps a metric to its family instead (e.g. every class of a Dice table, when only two arms are compared).
    """
    if reference not in per_method:
        raise ValueError(f"reference method '{reference}' is not among {', '.join(per_method)}")
    ref = per_method[reference]
    rows = []
    for method, frame in per_method.items():
        if method == reference:
            continue
        pairs = frame.merge(ref, on="subject", suffixes=("", "_ref"))
        for metric in metrics:
            if metric in frame and metric in ref:
                x, y = pairs[metric].to_numpy(float), pairs[f"{metric}_ref"].to_numpy(float)
                keep = np.isfinite(x) & np.isfinite(y)
                if not keep.any():
                    continue
                rows.append({"method": method, "metric": metric, "reference": reference,
                             **_paired(x[keep], y[keep])})
    tests = pd.DataFrame(rows, columns=["method", "metric", "reference", *_paired(np.empty(0), np.empty(0))])
    family = tests["metric"].map(holm_family) if holm_family else tests["metric"]
    for column in ("p_t", "p_wilcoxon"):
        tests[f"{column}_holm"] = tests.groupby(family)[column].transform(_holm)
    return tests


def comparison_table(per_method: dict[str, pd.DataFrame], reference: str | None, metrics=QUALITY,
                     holm_family: Callable[[str], str] | None = None) -> pd.DataFrame:
    """Summary rows with the paired-test columns of each method against ``reference`` (empty for the reference)."""
    summary = summarise(per_method, metrics)
    if reference is None or reference not in per_method:
        return summary
    tests = paired_tests(per_method, reference, metrics, holm_family)
    return summary.merge(tests, on=["method", "metric"], how="left")[
        ["method", "metric", "mean", "std", "n", *TEST_COLUMNS]]


def notes_of(frames: dict[str, pd.DataFrame]) -> list[str]:
    """What the metric files say was not computed (e.g. LPIPS offline; ``note``: a whole method), once each."""
    notes = []
    for method, frame in frames.items():
        for column in (c for c in frame if c == "note" or c.endswith("_note")):
            for text in frame[column].dropna().unique():
                what = method if column == "note" else METRIC_LABELS.get(column[:-5], column[:-5])
                note = f"{what} {text}"
                if text and note not in notes:
                    notes.append(note)
    return notes


def smallest_wilcoxon_p(n_pairs: int) -> float:
    """The smallest two-sided p an exact Wilcoxon signed-rank test of ``n_pairs`` pairs can give (every difference
    of one sign): 2 / 2^n. With 5 test subjects it is 0.0625: no such test reaches 0.05, whatever the methods do."""
    return min(1.0, 2.0 ** (1 - n_pairs))


def mean_std(mean: float, std: float, digits: int) -> str:
    if not np.isfinite(mean):
        return "not computed"
    return f"{mean:.{digits}f} ± {std:.{digits}f}" if np.isfinite(std) else f"{mean:.{digits}f} (n = 1)"


def _p(value: float) -> str:
    return "–" if not np.isfinite(value) else f"{value:.3g}"


def to_markdown(table: pd.DataFrame, digits: int = 4, notes: list[str] | None = None,
                labels: dict[str, str] | None = None, correction: str = "across methods per metric") -> str:
    """Method x metric grid of 'mean ± std' with n; then the paired tests, if the table has them.

    ``labels`` names metrics that :data:`METRIC_LABELS` does not know; ``correction`` says what Holm corrected across.
    """
    labels = METRIC_LABELS | (labels or {})
    present = list(dict.fromkeys(table["metric"]))
    metrics = [m for m in METRIC_LABELS if m in present] + [m for m in present if m not in METRIC_LABELS]
    header = ["Method", "n"] + [labels.get(m, m) for m in metrics]
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    for method, group in table.groupby("method", sort=False):
        cells = group.set_index("metric")
        row = [method, str(int(cells["n"].max()))]
        row += [mean_std(cells.at[m, "mean"], cells.at[m, "std"], digits) for m in metrics]
        lines.append("| " + " | ".join(row) + " |")
    tested = table.dropna(subset=["reference"]) if "reference" in table else table.iloc[:0]
    if len(tested):
        ref = tested["reference"].iloc[0]
        lines += ["", f"Paired tests against **{ref}** over subjects (difference = method − {ref}; "
                  f"p Holm-corrected {correction}; Cohen's d from the paired t test, rank-biserial "
                  "r from the Wilcoxon signed-rank test; – where n < 2 or the two are identical):", "",
                  "| Method | Metric | n pairs | mean diff | t | p (t, Holm) | d | W | p (Wilcoxon, Holm) | r |",
                  "|---|---|---|---|---|---|---|---|---|---|"]
        for r in tested.itertuples():
            lines.append(f"| {r.method} | {labels.get(r.metric, r.metric)} | {int(r.n_pairs)} | {r.mean_diff:.{digits}f} | "
                         f"{_p(r.t)} | {_p(r.p_t_holm)} | {_p(r.cohen_d)} | {_p(r.W)} | {_p(r.p_wilcoxon_holm)} | "
                         f"{_p(r.rbc)} |")
        n_pairs = int(tested["n_pairs"].min())
        if n_pairs >= 2:
            floor = smallest_wilcoxon_p(n_pairs)
            lines += ["", f"With {n_pairs} pairs, an exact two-sided Wilcoxon p cannot fall below {floor:.3g} (every "
                          f"difference of one sign), before Holm's correction"
                          + (": this n cannot reach p < 0.05." if floor >= 0.05 else ".")]
    if notes:
        lines += [""] + [f"Note: {note}" for note in notes]
    return "\n".join(lines) + "\n"
