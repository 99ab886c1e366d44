"""Planning time: ``snakemake -n`` of the paper overlays (authors.yaml + hcp.yaml) at a baseline commit and at the
working tree, alternating, in one run; and whether planning imports torch.

Usage: python benchmarks/plan_time.py [--baseline REV] [--repeats 3]
The baseline is checked out into a temporary folder and planned with its own ``src/`` first on ``PYTHONPATH``, so
both plans use this environment's Snakemake and packages. Each run plans in a new empty working directory (nothing
exists: every job is planned). Appends the medians and their ratio to benchmarks/README.md.
"""

from __future__ import annotations

import argparse
import os
import re
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from record import append_entry

ROOT = Path(__file__).resolve().parents[1]
OVERLAYS = ("workflow/configs/authors.yaml", "workflow/configs/hcp.yaml")


def plan_once(checkout: Path) -> tuple[float, int, bool]:
    """Seconds of one dry run, its number of jobs, and whether torch was imported while planning."""
    snakemake = Path(sys.executable).with_name("snakemake")
    probe = "import sys, atexit; atexit.register(lambda: print('TORCH-IMPORTED' if 'torch' in sys.modules else ''))"
    with tempfile.TemporaryDirectory() as workdir:
        (Path(workdir) / "sitecustomize.py").write_text(probe + "\n")
        env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(checkout / "src"), workdir])}
        cmd = [str(snakemake), "-n", "-s", str(checkout / "Snakefile"), "--directory", workdir, "--cores", "2",
               "--configfile", str(checkout / "config.yaml"), *(str(checkout / o) for o in OVERLAYS)]
        started = time.perf_counter()
        done = subprocess.run(cmd, capture_output=True, text=True, env=env, check=True)
        seconds = time.perf_counter() - started
    jobs = int(re.search(r"^total\s+(\d+)$", done.stdout, flags=re.M).group(1))
    return seconds, jobs, "TORCH-IMPORTED" in done.stdout + done.stderr


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--baseline", default="4b233b4", help="the commit to compare with (default: main before "
                                                              "mrisr.plan)")
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        baseline = Path(tmp) / "baseline"
        subprocess.run(["git", "-C", str(ROOT), "worktree", "add", "--detach", "--quiet", str(baseline), args.baseline],
                       check=True)
        try:
            runs: dict[str, list[tuple[float, int, bool]]] = {"baseline": [], "ours": []}
            for _ in range(args.repeats):
                runs["baseline"].append(plan_once(baseline))
                runs["ours"].append(plan_once(ROOT))
        finally:
            subprocess.run(["git", "-C", str(ROOT), "worktree", "remove", "--force", str(baseline)], check=True)
    rows = ["| code | median s | runs (s) | jobs | planning imports torch |", "|---|---|---|---|---|"]
    medians = {}
    for name, results in runs.items():
        medians[name] = statistics.median(s for s, _, _ in results)
        label = f"{args.baseline} (baseline)" if name == "baseline" else "working tree"
        rows.append(f"| {label} | {medians[name]:.2f} | {', '.join(f'{s:.2f}' for s, _, _ in results)} | "
                    f"{results[0][1]} | {'yes' if any(t for _, _, t in results) else 'no'} |")
    body = "\n".join(rows) + f"\n\nBaseline over ours: {medians['baseline'] / medians['ours']:.2f}x.\n"
    print(body)
    append_entry(f"{os.cpu_count()} cores", f"`snakemake -n`, {' + '.join(OVERLAYS)}, empty working directory; "
                 f"runs alternate, median of {args.repeats}.", body)


if __name__ == "__main__":
    main()
