"""The demo end to end: wall time, and each stage's share of the job time, from Snakemake's per-job benchmark files.

Usage: python benchmarks/demo_stages.py --run [--workdir DIR] [--cores 2] [--clone]
       python benchmarks/demo_stages.py [RESULTS_DIR]      (summarise a finished run; default results/)
``--run`` runs the whole workflow (config.yaml, the embedded demo) from scratch in DIR (default: a new
temporary directory), timing it; with ``--clone``, DIR is a fresh clone of this repository's committed HEAD and
the timed command is the README's first one, ``make demo``: a new environment installed, the workflow, the report.
Both forms print each stage's job-seconds and share, and the run's job-seconds over its wall time (how much of the
time two jobs ran side by side). ``--same-as OTHER_RESULTS`` also compares every table the run wrote
(results/papers/**/*.csv and *.md) with another run's, byte for byte: a demo run of the same commit on the same
machine must give the same bytes. ``--run`` appends the table (and the comparison), with machine, date, command and
versions, to benchmarks/README.md.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pandas as pd

from record import append_entry

ROOT = Path(__file__).resolve().parents[1]


def stage_seconds(results: Path) -> pd.Series:
    rows = []
    for tsv in sorted((results / "benchmarks").rglob("*.tsv")):
        stage = tsv.relative_to(results / "benchmarks").parts[0]
        rows.append({"stage": stage, "s": float(pd.read_csv(tsv, sep="\t")["s"].sum())})
    if not rows:
        raise SystemExit(f"no benchmark files under {results / 'benchmarks'}: run the workflow first")
    return pd.DataFrame(rows).groupby("stage")["s"].sum().sort_values(ascending=False)


def differing_tables(results: Path, other: Path) -> tuple[int, list[str]]:
    """(how many tables the run wrote, those whose bytes differ from, or are missing in, the other run's)."""
    tables = sorted(p.relative_to(results) for p in (results / "papers").rglob("*") if p.suffix in (".csv", ".md"))
    theirs = {p.relative_to(other) for p in (other / "papers").rglob("*") if p.suffix in (".csv", ".md")}
    differ = [str(t) for t in tables if t not in theirs or (results / t).read_bytes() != (other / t).read_bytes()]
    return len(tables), differ + sorted(str(t) for t in theirs - set(tables))


def run_demo(workdir: Path, cores: int, clone: bool) -> float:
    """Wall seconds of the whole demo workflow, run from scratch in ``workdir`` (``clone``: ``make demo`` in a
    fresh clone there, install included)."""
    if clone:
        subprocess.run(["git", "clone", "--quiet", str(ROOT), str(workdir)], check=True)
        env = {k: v for k, v in os.environ.items() if k != "VIRTUAL_ENV"}
        env["PATH"] = os.pathsep.join(p for p in env.get("PATH", "").split(os.pathsep)
                                      if not p.startswith(str(Path(sys.prefix))))
        started = time.perf_counter()
        subprocess.run(["make", "demo", f"CORES={cores}"], cwd=workdir, check=True, env=env)
        return time.perf_counter() - started
    snakemake = Path(sys.executable).with_name("snakemake")
    env = {**os.environ, "PATH": f"{snakemake.parent}{os.pathsep}{os.environ.get('PATH', '')}"}
    started = time.perf_counter()
    subprocess.run([str(snakemake), "--snakefile", str(ROOT / "Snakefile"), "--directory", str(workdir),
                    "--configfile", str(ROOT / "config.yaml"), "--cores", str(cores), "--quiet", "rules"],
                   check=True, env=env)
    return time.perf_counter() - started


def table(seconds: pd.Series, wall: float | None) -> list[str]:
    total = seconds.sum()
    lines = ["| stage | job-seconds | share |", "|---|---|---|"]
    lines += [f"| {stage} | {s:.1f} | {s / total:.1%} |" for stage, s in seconds.items()]
    lines.append(f"| total (summed over jobs) | {total:.1f} | 100% |")
    if wall is not None:
        lines += ["", f"- wall time {wall:.0f} s ({wall / 60:.1f} min); job-seconds / wall time: {total / wall:.2f}"]
    return lines


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("results", nargs="?", default="results", help="results directory of a finished run")
    p.add_argument("--run", action="store_true", help="run the demo from scratch first and time it")
    p.add_argument("--workdir", help="with --run: where to run it (default: a new temporary directory)")
    p.add_argument("--cores", type=int, default=2)
    p.add_argument("--clone", action="store_true", help="with --run: time `make demo` in a fresh clone")
    p.add_argument("--same-as", metavar="OTHER_RESULTS", help="compare the tables with another run's results folder")
    a = p.parse_args()
    wall = None
    if a.run:
        workdir = Path(a.workdir or tempfile.mkdtemp(prefix="mrisr-demo-"))
        if a.clone and workdir.exists() and any(workdir.iterdir()):
            raise SystemExit(f"{workdir} is not empty: --clone needs a new folder")
        wall = run_demo(workdir, a.cores, a.clone)
        results = workdir / "results"
    else:
        results = Path(a.results)
    lines = table(stage_seconds(results), wall)
    if a.same_as:
        n, differ = differing_tables(results, Path(a.same_as))
        lines += ["", f"- tables under results/papers/ against {a.same_as}'s: "
                      + (f"all {n} byte-identical" if not differ else f"{len(differ)} of {n} differ: {', '.join(differ)}")]
    print("\n".join(lines))
    if a.run:
        what = ("`make demo` in a fresh clone: install, the whole demo workflow, the report" if a.clone
                else "The whole demo workflow (config.yaml) from scratch.")
        append_entry(f"{os.cpu_count()} CPUs, --cores {a.cores}", what, "\n".join(lines))


if __name__ == "__main__":
    main()
