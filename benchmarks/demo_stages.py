"""Each stage's share of a finished workflow run, from Snakemake's per-job benchmark files.

Usage: python benchmarks/demo_stages.py [RESULTS_DIR]   (after `make demo`; default results/)
"""

from __future__ import annotations

import sys
from pathlib import Path

import pandas as pd


def stage_seconds(results: Path) -> pd.Series:
    rows = []
    for tsv in sorted((results / "benchmarks").rglob("*.tsv")):
        stage = tsv.relative_to(results / "benchmarks").parts[0]
        rows.append({"stage": stage, "s": float(pd.read_csv(tsv, sep="\t")["s"].sum())})
    if not rows:
        raise SystemExit(f"no benchmark files under {results / 'benchmarks'}: run the workflow first")
    return pd.DataFrame(rows).groupby("stage")["s"].sum().sort_values(ascending=False)


def main() -> None:
    results = Path(sys.argv[1] if len(sys.argv) > 1 else "results")
    seconds = stage_seconds(results)
    total = seconds.sum()
    print(f"{'stage':<24}{'job-seconds':>12}{'share':>8}")
    for stage, s in seconds.items():
        print(f"{stage:<24}{s:>12.1f}{s / total:>8.1%}")
    print(f"{'total (summed over jobs)':<24}{total:>12.1f}")


if __name__ == "__main__":
    main()
