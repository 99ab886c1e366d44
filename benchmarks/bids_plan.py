"""Planning a large BIDS dataset: ``snakemake -n`` of config.yaml on a BIDS dataset of N subjects, the first plan
(pybids indexes the dataset) and the second (the index that the first kept under results/ is read), each in the
same working directory, the second also with ``-q`` (no job listing); and the time of the dataset's subject table
alone (first, second), in a fresh interpreter.

Usage: python benchmarks/bids_plan.py [--subjects 1000 10000]
The dataset is N subjects of one T1w each, named as BIDS says, with empty files (planning reads names, not
voxels). The overlay keeps to what the dataset has: no label maps (no segmentation study), no out-of-sample set.
Appends the table to benchmarks/README.md.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import yaml

from record import append_entry

ROOT = Path(__file__).resolve().parents[1]


def make_dataset(root: Path, subjects: int) -> None:
    for i in range(subjects):
        anat = root / f"sub-{i:05d}" / "anat"
        anat.mkdir(parents=True)
        (anat / f"sub-{i:05d}_T1w.nii.gz").write_bytes(b"")
        (anat / f"sub-{i:05d}_T1w.json").write_text("{}")
    (root / "dataset_description.json").write_text(json.dumps({"Name": "benchmark", "BIDSVersion": "1.10.0"}))


def dry_run(workdir: Path, overlay: Path, *quiet: str) -> tuple[float, int | None]:
    """Seconds of one ``snakemake -n`` (``quiet``: with ``-q``, no job listing) and the number of jobs it lists."""
    snakemake = Path(sys.executable).with_name("snakemake")
    cmd = [str(snakemake), "-n", *quiet, "-s", str(ROOT / "Snakefile"), "--directory", str(workdir), "--cores", "2",
           "--configfile", str(ROOT / "config.yaml"), str(overlay)]
    started = time.perf_counter()
    done = subprocess.run(cmd, capture_output=True, text=True, check=True)
    seconds = time.perf_counter() - started
    if "Job stats:" not in done.stdout:
        return seconds, None
    table = done.stdout.split("Job stats:")[1]
    return seconds, int(next(line.split()[1] for line in table.splitlines() if line.startswith("total")))


def subject_table(workdir: Path, overlay: Path) -> float:
    """Seconds of the dataset's subject table in a fresh interpreter, as the workflow's planning makes it."""
    code = ("import time, yaml, sys; from mrisr import config; from mrisr.plan.study import Study; "
            f"c = config.on_base(yaml.safe_load(open({str(overlay)!r})), {str(ROOT / 'config.yaml')!r}); "
            "config.validate(c); t = time.perf_counter(); "
            "Study(c, {'raw': 'results/fetch/{dataset}/sub-{subject}/sub-{subject}_{kind}.nii.gz', "
            "'bids_index': 'results/fetch/{dataset}/bids_index'}).raw_files(); print(time.perf_counter() - t)")
    done = subprocess.run([sys.executable, "-c", code], cwd=workdir, capture_output=True, text=True, check=True)
    return float(done.stdout.strip())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--subjects", type=int, nargs="+", default=[1000, 10000])
    args = parser.parse_args()
    rows = ["| subjects | jobs | first plan (s) | second plan (s) | second, `-q` (s) | subject table, first (s) | second (s) |",
            "|---|---|---|---|---|---|---|"]
    for n in args.subjects:
        with tempfile.TemporaryDirectory() as tmp:
            dataset, overlay = Path(tmp) / "bids", Path(tmp) / "overlay.yaml"
            make_dataset(dataset, n)
            overlay.write_text(yaml.safe_dump({
                "dataset": "lab", "datasets": {"lab": {"source": "bids", "path": str(dataset)}},
                "segmentation": {"enabled": False}, "papers": {"threeplayer": {"out_of_sample": None}}}))
            tables = Path(tmp) / "tables"
            tables.mkdir()
            table = [subject_table(tables, overlay), subject_table(tables, overlay)]
            workdir = Path(tmp) / "wd"
            workdir.mkdir()
            (first, jobs), (second, _), (quiet, _) = (dry_run(workdir, overlay), dry_run(workdir, overlay),
                                                      dry_run(workdir, overlay, "-q"))
        rows.append(f"| {n:,} | {jobs:,} | {first:.1f} | {second:.1f} | {quiet:.1f} | {table[0]:.2f} | {table[1]:.2f} |")
        print(rows[-1], flush=True)
    body = "\n".join(rows) + "\n"
    print(body)
    append_entry(f"{os.cpu_count()} cores", "`snakemake -n` of config.yaml on a BIDS dataset of N one-T1w subjects "
                 "(empty files), twice in one working directory: the first plan indexes the dataset with pybids and "
                 "keeps the index under results/fetch/lab/bids_index/, the second reads it (and again with -q). The "
                 "subject table: the planning's table of each subject's files alone, in a fresh interpreter, first "
                 "and second.", body)


if __name__ == "__main__":
    main()
