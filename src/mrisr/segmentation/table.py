"""The study's table: each arm's Dice (and HD95) per class, the seeds' spread, and real+sr against real.

Subjects are the unit of the paired tests: a subject's score is its mean over seeds, so seeds reduce the
training noise of each arm instead of counting as extra samples. The spread over seeds is reported beside.
"""

from __future__ import annotations

import pandas as pd

from mrisr import stats

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
