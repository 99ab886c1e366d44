"""Whole-volume SR: the workflow's windowed inference against one pass and MONAI's sliding window.

Usage: python benchmarks/inference.py [--shape 64 80 64] [--threads 2] [--tile N --halo N --batch N]
                                      [--methods one_pass monai ours ours_autotuned ours_compiled]
The paper generator (64 filters, growth 64, 3 RRDBs, x2; random weights, seed 0) on a unit-variance LR volume.
Each method runs in its own process, so that its peak memory is its own (RSS on the CPU; on CUDA the peak of
PyTorch's allocator, after one untimed warm-up run of the same method, whose seconds are reported as its first
run's: cuDNN picks its algorithms there, torch.compile compiles). ``ours_autotuned`` is ours with cuDNN's
autotuner, ``ours_compiled`` with the autotuner and the generator's stages compiled (default mode).
The one pass runs in fp32; ours as the workflow runs (bf16 autocast on CUDA), so on CUDA the difference column
includes bf16's rounding. Prints seconds, peak RSS, the largest
difference from the one-pass output and the ratios; appends them, with machine, date, command and versions,
to benchmarks/README.md. Tile, halo and batch default to the workflow's (config schema) values.
"""

from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import yaml

from record import append_entry

ROOT = Path(__file__).resolve().parents[1]
METHODS = ("one_pass", "monai", "ours", "ours_autotuned", "ours_compiled")
#: the speed switches of each of our methods (mrisr.device.Acceleration)
SWITCHES = {"ours": dict(cudnn_benchmark=False, compile="none"),
            "ours_autotuned": dict(cudnn_benchmark=True, compile="none"),
            "ours_compiled": dict(cudnn_benchmark=True, compile="default")}


def schema_defaults() -> dict:
    schema = yaml.safe_load((ROOT / "workflow/schemas/config.schema.yaml").read_text())
    return {k: v["default"] for k, v in schema["properties"]["inference"]["properties"].items()}


def run_one(method: str, a: argparse.Namespace, out: Path) -> None:
    """In a fresh process: build the generator, time one method, save its output and report peak RSS."""
    import torch

    from mrisr.device import Acceleration, default_device
    from mrisr.models.registry import build
    from mrisr.inference import Inference, compile_stages, super_resolve

    torch.set_num_threads(a.threads)
    torch.manual_seed(0)
    device = default_device()
    generator = build("generator", {"name": "rrdb", "channels": 64, "growth": 64, "blocks": 3, "scale": 2})
    generator = generator.to(device).eval()
    lr = np.random.default_rng(0).normal(size=a.shape).astype(np.float32)
    acceleration = Acceleration(tf32="convolutions", **SWITCHES.get(method, SWITCHES["ours"]))
    if method in SWITCHES:
        compile_stages(generator, acceleration)

    def once() -> np.ndarray:
        if method in SWITCHES:
            with acceleration.backends():
                inference = Inference(tile=a.tile, halo=a.halo, reconstruct_tile=a.reconstruct_tile, batch=a.batch,
                                      pasted=False, precision=None)
                return super_resolve(generator, lr, 2, inference, progress=False)
        x = torch.from_numpy(lr)[None, None].to(device)
        with torch.inference_mode():
            if method == "one_pass":
                y = generator(x)
            else:
                from monai.inferers import sliding_window_inference

                y = sliding_window_inference(x, roi_size=(32, 32, 32), sw_batch_size=4, predictor=generator,
                                             overlap=0.25, mode="gaussian")
        return y[0, 0].cpu().numpy()

    first = float("nan")
    if device.type == "cuda":
        started = time.perf_counter()
        once()
        first = time.perf_counter() - started
        torch.cuda.reset_peak_memory_stats()
    started = time.perf_counter()
    sr = once()
    seconds = time.perf_counter() - started
    np.save(out / f"{method}.npy", sr)
    if device.type == "cuda":
        peak_gib = torch.cuda.max_memory_allocated() / 2**30
    else:
        peak_gib = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20
    print(json.dumps({"seconds": seconds, "first": first, "peak_gib": peak_gib}))


def main() -> None:
    defaults = schema_defaults()
    p = argparse.ArgumentParser(description=__doc__)
    p.add_argument("--shape", type=int, nargs=3, default=[64, 80, 64])
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--tile", type=int, default=defaults["tile"])
    p.add_argument("--halo", type=int, default=defaults["halo"])
    p.add_argument("--batch", type=int, default=defaults["batch"])
    p.add_argument("--reconstruct-tile", type=int, default=defaults["reconstruct_tile"])
    p.add_argument("--methods", nargs="+", choices=METHODS, default=list(METHODS))
    p.add_argument("--repeat", type=int, default=1, help="runs per method, alternating; the median time is reported")
    p.add_argument("--method-timeout", type=float, help="seconds a method's run may take; past it, it is reported "
                   "as timed out and the others go on")
    p.add_argument("--run", choices=METHODS, help=argparse.SUPPRESS)
    p.add_argument("--out", help=argparse.SUPPRESS)
    a = p.parse_args()
    if a.run:
        run_one(a.run, a, Path(a.out))
        return
    import torch

    runs: dict[str, list[dict]] = {m: [] for m in a.methods}
    failed: dict[str, str] = {}
    with tempfile.TemporaryDirectory() as tmp:
        for _ in range(a.repeat):  # methods alternate, so that a slow spell of the machine hits each alike
            for method in [m for m in a.methods if m not in failed]:
                cmd = [sys.executable, __file__, "--run", method, "--out", tmp, "--shape", *map(str, a.shape),
                       "--threads", str(a.threads), "--tile", str(a.tile), "--halo", str(a.halo),
                       "--batch", str(a.batch), "--reconstruct-tile", str(a.reconstruct_tile)]
                try:
                    done = subprocess.run(cmd, capture_output=True, text=True, check=True, timeout=a.method_timeout)
                except subprocess.TimeoutExpired:
                    failed[method] = f"timed out after {a.method_timeout:g} s"
                except subprocess.CalledProcessError as exc:
                    failed[method] = "failed: " + (exc.stderr.strip().splitlines() or ["no output"])[-1][:160]
                else:
                    runs[method].append(json.loads(done.stdout.strip().splitlines()[-1]))
                print(method, failed.get(method) or runs[method][-1], flush=True)
        runs = {m: rs for m, rs in runs.items() if m not in failed}
        results = {m: {"seconds": float(np.median([r["seconds"] for r in rs])),
                       "first": float(np.median([r["first"] for r in rs])),
                       "peak_gib": max(r["peak_gib"] for r in rs)} for m, rs in runs.items()}
        reference = np.load(Path(tmp) / "one_pass.npy") if "one_pass" in results else None
        for method in results:
            if reference is not None:
                diff = np.abs(np.load(Path(tmp) / f"{method}.npy") - reference)
                results[method] |= {"max_diff": float(diff.max()), "share_over_1e-4": float((diff > 1e-4).mean())}
    lines = ["| method | first run s | s | voxels/s (HR) | peak memory GiB | max \\|Δ\\| vs one pass | "
             "voxels with \\|Δ\\| > 1e-4 |", "|---|---|---|---|---|---|---|"]
    voxels = 8 * int(np.prod(a.shape))
    for method, r in results.items():
        lines.append(f"| {method} | {r['first']:.1f} | {r['seconds']:.2f} | {voxels / r['seconds']:,.0f} | "
                     f"{r['peak_gib']:.2f} | "
                     f"{r.get('max_diff', float('nan')):.2e} | {r.get('share_over_1e-4', float('nan')):.1%} |")
    lines += [f"| {method} | {why} | | | | | |" for method, why in failed.items()]
    ratios = []
    if {"ours", "monai"} <= set(results):
        ratios.append(f"throughput ours / MONAI sliding window: {results['monai']['seconds'] / results['ours']['seconds']:.2f}x")
    for ours in (m for m in SWITCHES if m in results and "one_pass" in results):
        ratios.append(f"time {ours} / one pass: {results[ours]['seconds'] / results['one_pass']['seconds']:.2f}")
        ratios.append(f"peak memory {ours} / one pass: "
                      f"{results[ours]['peak_gib'] / results['one_pass']['peak_gib']:.2f}")
    text = "\n".join(lines + [""] + [f"- {r}" for r in ratios])
    print(text)
    append_entry(f"{a.threads} threads",
                 f"Paper generator (64/64/3 RRDBs, x2, random weights), LR {' x '.join(map(str, a.shape))}, unit "
                 f"variance; ours: tile {a.tile}, halo {a.halo}, reconstruct tile {a.reconstruct_tile}, batch {a.batch}; peak memory: {'PyTorch CUDA allocator' if torch.cuda.is_available() else 'RSS'}; MONAI: roi 32³, overlap 0.25, "
                 f"Gaussian, sw_batch_size 4. Median of {a.repeat} alternating run(s) per method.", text)


if __name__ == "__main__":
    main()
