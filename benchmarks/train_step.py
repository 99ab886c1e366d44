"""Training throughput of every GAN variant of a config: seconds per step and HR voxels per second.

Usage: python benchmarks/train_step.py [--config config.yaml] [--steps 5] [--patch-size N] [--batch-size N]
                                      [--paper-sizes]
``--paper-sizes`` drops the networks' size keys so that the schema's defaults, the authors' sizes, apply.
Random volumes stand in for data (the cost of a step does not depend on the values). Prints a table and
appends it, with machine, date, command and versions, to benchmarks/README.md.
"""

from __future__ import annotations

import argparse
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


def measure(variant: dict, settings: TrainSettings, steps: int) -> tuple[float, dict[str, int]]:
    volumes = [np.random.default_rng(0).normal(size=(settings.patch_size + 16,) * 3).astype(np.float32)]
    trainer = GanTrainer(variant, settings)
    trainer.train_step(volumes)  # first step pays one-off allocation costs
    started = time.perf_counter()
    for _ in range(steps):
        trainer.train_step(volumes)
    return (time.perf_counter() - started) / steps, trainer.parameter_counts()


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__)
    p.add_argument("--config", default=str(ROOT / "config.yaml"))
    p.add_argument("--steps", type=int, default=5)
    p.add_argument("--patch-size", type=int)
    p.add_argument("--batch-size", type=int)
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--paper-sizes", action="store_true")
    a = p.parse_args()
    torch.set_num_threads(a.threads)
    schema = ROOT / "workflow" / "schemas" / "config.schema.yaml"
    raw = yaml.safe_load(Path(a.config).read_text())
    if a.paper_sizes:
        raw["variants"] = {name: paper_sized(v) for name, v in raw["variants"].items()}
    cfg = mrisr_config.validate(raw, schema)
    train = cfg["train"]
    settings = TrainSettings(steps=10**6, batch_size=a.batch_size or train["batch_size"],
                             patch_size=a.patch_size or train["patch_size"], checkpoint_every=10**6,
                             degradation=cfg["degradations"][train["degradation"]], scale=cfg["scale"])
    lines = ["| variant | s/step | HR voxels/s | parameters (G / D / FE) |", "|---|---|---|---|"]
    for name, variant in cfg["variants"].items():
        if variant["kind"] != "gan":
            continue
        seconds, counts = measure(variant, settings, a.steps)
        voxels = settings.batch_size * settings.patch_size**3 / seconds
        lines.append(f"| {name} | {seconds:.3f} | {voxels:,.0f} | {' / '.join(f'{n:,}' for n in counts.values())} |")
        print(lines[-1], flush=True)
    header = (f"\n## train_step.py, {datetime.date.today()}\n\n"
              f"Machine: {platform.machine()}, {a.threads} threads, torch {torch.__version__}, "
              f"{'CUDA ' + torch.cuda.get_device_name() if torch.cuda.is_available() else 'CPU'}. "
              f"{'Authors' if a.paper_sizes else 'Config'} network sizes, patch {settings.patch_size}³, "
              f"batch {settings.batch_size}, mean of {a.steps} steps.\n"
              f"Command: `python {' '.join(sys.argv)}`\n\n")
    with open(ROOT / "benchmarks" / "README.md", "a") as f:
        f.write(header + "\n".join(lines) + "\n")


if __name__ == "__main__":
    main()
