"""Training throughput of GAN variants: seconds per step of the workflow's step against a plain fp32 eager step.

Usage: python benchmarks/train_step.py [--config config.yaml] [--variants NAME ...] [--steps 5] [--patch-size N]
                                      [--batch-size N] [--paper-sizes] [--fp32]
``--paper-sizes`` drops the networks' size keys so that the schema's defaults, the authors' sizes, apply.
``--fp32`` adds the workflow's step in fp32 (``train.precision: fp32``), for bf16's speed-up on the same step.
The baseline is the same networks and losses in fp32, eager, PyTorch's default (contiguous) memory layout,
with D run again for its own update (the authors' order, ``train.shared_discriminator_pass: false``); ours is
the workflow's default step (channels-last 3D, one shared D pass). Both run in
this process on the same random volumes (the cost of a step does not depend on the values), alternately, after
one warm-up step each. Prints a table with the ratio and appends it, with machine, date, command and versions,
to benchmarks/README.md.
Then, per variant, the generator's forward+backward alone (the bulk of a step): its FLOPs (PyTorch's
FlopCounterMode), seconds, and the achieved rate as a fraction of a reference: on CUDA the card's dense bf16
peak (``--peak-tflops`` or a known card), on CPU this machine's measured fp32 matrix-multiply rate.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import time
from pathlib import Path

import numpy as np
import torch
import yaml
from torch.utils.flop_counter import FlopCounterMode

from mrisr import config as mrisr_config
from mrisr.plan.stages import Train
from mrisr.plan.study import Study
from mrisr.train.gan import GanTrainer, TrainSettings
from record import append_entry

ROOT = Path(__file__).resolve().parents[1]


SIZE_KEYS = {"channels", "growth", "blocks", "units", "depth"}
DENSE_BF16_PEAK_TFLOPS = {"H100": 989.0, "H200": 989.0, "A100": 312.0}  # vendor figures, without sparsity


def paper_sized(variant: dict) -> dict:
    return {key: ({k: v for k, v in value.items() if k not in SIZE_KEYS}
                  if key in ("generator", "discriminator", "feature_extractor") else value)
            for key, value in variant.items()}


def workflow_settings(cfg: dict, **values) -> TrainSettings:
    """The settings the train rule passes (the plan's), then ``values``."""
    return TrainSettings(**(json.loads(Train(Study(cfg, paths={})).settings()) | values))


def measure(trainers: dict, volumes: list[np.ndarray], steps: int) -> dict[str, float]:
    """Mean seconds per step of each trainer, their steps interleaved so that machine noise hits both alike."""
    for trainer in trainers.values():
        trainer.train_step(volumes)  # the first step pays one-off allocation costs
    spent = dict.fromkeys(trainers, 0.0)
    for _ in range(steps):
        for name, trainer in trainers.items():
            started = time.perf_counter()
            trainer.train_step(volumes)
            spent[name] += time.perf_counter() - started
    return {name: total / steps for name, total in spent.items()}


def generator_pass(trainer: GanTrainer, steps: int) -> tuple[float, float]:
    """FLOPs and mean seconds of one generator forward+backward on a training-sized LR batch."""
    s = trainer.settings
    lr = torch.randn(s.batch_size, 1, *(s.patch_size // s.scale,) * 3, device=trainer.device).to(
        memory_format=trainer.memory_format)

    def once() -> None:
        with trainer.autocast():
            sr = trainer.generator(lr)
        sr.float().square().mean().backward()

    with FlopCounterMode(display=False) as counter:
        once()
    seconds = []
    for _ in range(steps):
        _sync(trainer.device)
        started = time.perf_counter()
        once()
        _sync(trainer.device)
        seconds.append(time.perf_counter() - started)
    trainer.generator.zero_grad(set_to_none=True)
    return float(counter.get_total_flops()), float(np.median(seconds))


def reference_tflops(peak: float | None) -> tuple[float, str]:
    """The rate the generator's is compared with, and what it is."""
    if peak:
        return peak, "given peak"
    if torch.cuda.is_available():
        name = torch.cuda.get_device_name()
        for card, tflops in DENSE_BF16_PEAK_TFLOPS.items():
            if card in name:
                return tflops, f"{card} dense bf16 peak"
        raise SystemExit(f"no known bf16 peak for {name}: pass --peak-tflops")
    a, b = torch.randn(4096, 4096), torch.randn(4096, 4096)
    a @ b
    started = time.perf_counter()
    for _ in range(3):
        a @ b
    return 3 * 2 * 4096**3 / (time.perf_counter() - started) / 1e12, "measured fp32 matmul 4096²"


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize()


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__)
    p.add_argument("--config", default=str(ROOT / "config.yaml"))
    p.add_argument("--steps", type=int, default=5)
    p.add_argument("--patch-size", type=int)
    p.add_argument("--batch-size", type=int)
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--paper-sizes", action="store_true")
    p.add_argument("--fp32", action="store_true", help="also time the workflow's step in fp32")
    p.add_argument("--variants", nargs="+", help="default: every GAN variant of the config")
    p.add_argument("--peak-tflops", type=float, help="the device's dense peak, for the generator's fraction")
    a = p.parse_args()
    torch.set_num_threads(a.threads)
    schema = ROOT / "workflow" / "schemas" / "config.schema.yaml"
    raw = yaml.safe_load(Path(a.config).read_text())
    if a.paper_sizes:
        raw["variants"] = {name: paper_sized(v) for name, v in raw["variants"].items()}
    cfg = mrisr_config.validate(raw, schema)
    ours = workflow_settings(cfg, steps=10**6, checkpoint_every=10**6,
                             batch_size=a.batch_size or cfg["train"]["batch_size"],
                             patch_size=a.patch_size or cfg["train"]["patch_size"])
    plain = dataclasses.replace(ours, precision="fp32", shared_discriminator_pass=False)
    volumes = [np.random.default_rng(0).normal(size=(ours.patch_size + 16,) * 3).astype(np.float32)]
    fp32_columns = " ours fp32 s/step | bf16 speed-up |" if a.fp32 else ""
    lines = [f"| variant | plain fp32 eager s/step | ours s/step | speed-up |{fp32_columns} ours HR voxels/s | "
             "parameters (G / D / FE) |", "|---|---|---|---|" + "---|" * (2 * a.fp32 + 2)]
    names = a.variants or [n for n, v in cfg["variants"].items() if v["kind"] == "gan"]
    passes = []
    for name in names:
        variant = cfg["variants"][name]
        trainers = {"plain": GanTrainer(variant, plain), "ours": GanTrainer(variant, ours)}
        trainers["plain"].set_memory_format(torch.contiguous_format)
        if a.fp32:
            trainers["ours_fp32"] = GanTrainer(variant, dataclasses.replace(ours, precision="fp32"))
        seconds = measure(trainers, volumes, a.steps)
        counts = trainers["ours"].parameter_counts()
        voxels = ours.batch_size * ours.patch_size**3 / seconds["ours"]
        fp32_cells = (f" {seconds['ours_fp32']:.3f} | {seconds['ours_fp32'] / seconds['ours']:.2f}x |"
                      if a.fp32 else "")
        lines.append(f"| {name} | {seconds['plain']:.3f} | {seconds['ours']:.3f} | "
                     f"{seconds['plain'] / seconds['ours']:.2f}x |{fp32_cells} {voxels:,.0f} | "
                     f"{' / '.join(f'{n:,}' for n in counts.values())} |")
        print(lines[-1], flush=True)
        passes.append((name, *generator_pass(trainers["ours"], a.steps)))
        del trainers
    peak, peak_name = reference_tflops(a.peak_tflops)
    lines += ["", f"Generator forward+backward alone (ours, median of {a.steps}); reference: {peak_name}, "
              f"{peak:.3g} TFLOP/s.", "",
              "| variant | TFLOP per pass | s | TFLOP/s | fraction of reference |", "|---|---|---|---|---|"]
    for name, flops, seconds in passes:
        rate = flops / seconds / 1e12
        lines.append(f"| {name} | {flops / 1e12:.3g} | {seconds:.3g} | {rate:.3g} | {rate / peak:.1%} |")
    print("\n".join(lines[-len(passes) - 4:]), flush=True)
    append_entry(f"{a.threads} threads",
                 f"{'Authors' if a.paper_sizes else 'Config'} network sizes, patch {ours.patch_size}³, "
                 f"batch {ours.batch_size}, mean of {a.steps} steps each; ours: precision {ours.precision}.", "\n".join(lines))


if __name__ == "__main__":
    main()
