"""Training throughput of GAN variants: seconds per step of the workflow's step against a plain fp32 eager step.

Usage: python benchmarks/train_step.py [--config config.yaml] [--variants NAME ...] [--steps 5] [--patch-size N]
                                      [--batch-size N] [--paper-sizes]
``--paper-sizes`` drops the networks' size keys so that the schema's defaults, the authors' sizes, apply.
The baseline is the same networks and losses in fp32, eager, PyTorch's default (contiguous) memory layout,
with D run again for its own update (the authors' order, ``train.shared_discriminator_pass: false``); ours is
the workflow's default step (channels-last 3D, one shared D pass). Both run in
this process on the same random volumes (the cost of a step does not depend on the values), alternately, after
one warm-up step each. Prints a table with the ratio and appends it, with machine, date, command and versions,
to benchmarks/README.md.
"""

from __future__ import annotations

import argparse
import dataclasses
import datetime
import platform
import sys
import time
from pathlib import Path

import numpy as np
import torch
import yaml

from mrisr import config as mrisr_config
from mrisr.training.loop import GanTrainer, TrainSettings

ROOT = Path(__file__).resolve().parents[1]


SIZE_KEYS = {"channels", "growth", "blocks", "units", "depth"}


def paper_sized(variant: dict) -> dict:
    return {key: ({k: v for k, v in value.items() if k not in SIZE_KEYS}
                  if key in ("generator", "discriminator", "feature_extractor") else value)
            for key, value in variant.items()}


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


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__)
    p.add_argument("--config", default=str(ROOT / "config.yaml"))
    p.add_argument("--steps", type=int, default=5)
    p.add_argument("--patch-size", type=int)
    p.add_argument("--batch-size", type=int)
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--paper-sizes", action="store_true")
    p.add_argument("--variants", nargs="+", help="default: every GAN variant of the config")
    a = p.parse_args()
    torch.set_num_threads(a.threads)
    schema = ROOT / "workflow" / "schemas" / "config.schema.yaml"
    raw = yaml.safe_load(Path(a.config).read_text())
    if a.paper_sizes:
        raw["variants"] = {name: paper_sized(v) for name, v in raw["variants"].items()}
    cfg = mrisr_config.validate(raw, schema)
    train = cfg["train"]
    ours = TrainSettings(steps=10**6, batch_size=a.batch_size or train["batch_size"],
                         patch_size=a.patch_size or train["patch_size"], checkpoint_every=10**6,
                         degradation=cfg["degradations"][train["degradation"]], scale=cfg["scale"],
                         precision=train["precision"], shared_discriminator_pass=train["shared_discriminator_pass"])
    plain = dataclasses.replace(ours, precision="fp32", shared_discriminator_pass=False)
    volumes = [np.random.default_rng(0).normal(size=(ours.patch_size + 16,) * 3).astype(np.float32)]
    lines = ["| variant | plain fp32 eager s/step | ours s/step | speed-up | ours HR voxels/s | parameters (G / D / FE) |",
             "|---|---|---|---|---|---|"]
    names = a.variants or [n for n, v in cfg["variants"].items() if v["kind"] == "gan"]
    for name in names:
        variant = cfg["variants"][name]
        trainers = {"plain": GanTrainer(variant, plain), "ours": GanTrainer(variant, ours)}
        trainers["plain"].set_memory_format(torch.contiguous_format)
        seconds = measure(trainers, volumes, a.steps)
        counts = trainers["ours"].parameter_counts()
        voxels = ours.batch_size * ours.patch_size**3 / seconds["ours"]
        lines.append(f"| {name} | {seconds['plain']:.2f} | {seconds['ours']:.2f} | "
                     f"{seconds['plain'] / seconds['ours']:.2f}x | {voxels:,.0f} | "
                     f"{' / '.join(f'{n:,}' for n in counts.values())} |")
        print(lines[-1], flush=True)
        del trainers
    header = (f"\n## train_step.py, {datetime.date.today()}\n\n"
              f"Machine: {platform.machine()}, {a.threads} threads, torch {torch.__version__}, "
              f"{'CUDA ' + torch.cuda.get_device_name() if torch.cuda.is_available() else 'CPU'}. "
              f"{'Authors' if a.paper_sizes else 'Config'} network sizes, patch {ours.patch_size}³, "
              f"batch {ours.batch_size}, mean of {a.steps} steps each.\n"
              f"Command: `python {' '.join(sys.argv)}`\n\n")
    with open(ROOT / "benchmarks" / "README.md", "a") as f:
        f.write(header + "\n".join(lines) + "\n")


if __name__ == "__main__":
    main()
