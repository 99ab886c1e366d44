"""A short real training at the authors' network sizes on the demo: speed, and the model against trilinear.

Usage: python benchmarks/demo_training.py --results DIR [--variant threeplayer] [--seconds 150]
                                          [--patch-size 64] [--batch-size 4]
DIR is a workflow results folder holding the demo's prepared volumes (``prepare/demo``) and their LR volumes
(``degrade/demo/nearest``). The config's variant, with the schema's (the authors') network sizes, trains on
the demo's training subjects (split as the workflow splits them) for as many steps as fit in ``--seconds``
(from the speed of a few probe steps, so that the instance-noise schedule still runs to its end); then it and
trilinear super-resolve the test subjects' LR volumes, scored inside the brain mask. Appends the result, with
machine, date, command and versions, to benchmarks/README.md.
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import numpy as np
import torch
import yaml

from mrisr import config as mrisr_config
from mrisr.io import load_mask, load_volume
from mrisr.metrics import psnr, ssim
from mrisr.plan.subjects import make_splits
from mrisr.inference import Inference, interpolate, super_resolve
from mrisr.train.gan import GanTrainer
from record import append_entry
from train_step import paper_sized, workflow_settings

ROOT = Path(__file__).resolve().parents[1]
PROBE_STEPS = 5


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__)
    p.add_argument("--results", required=True, type=Path)
    p.add_argument("--config", default=str(ROOT / "config.yaml"))
    p.add_argument("--variant", default="threeplayer")
    p.add_argument("--seconds", type=float, default=150.0, help="training time to spend, after the probe")
    p.add_argument("--patch-size", type=int, default=64)
    p.add_argument("--batch-size", type=int, default=4)
    a = p.parse_args()
    raw = yaml.safe_load(Path(a.config).read_text())
    raw["variants"] = {name: paper_sized(v) for name, v in raw["variants"].items()}
    cfg = mrisr_config.validate(raw, ROOT / "workflow" / "schemas" / "config.schema.yaml")
    variant, prep = cfg["variants"][a.variant], a.results / "prepare" / "demo"
    split = make_splits(sorted(d.name.removeprefix("sub-") for d in prep.glob("sub-*")),
                        cfg["prepare"]["val"], cfg["prepare"]["test"], cfg["seed"])
    hr = {s: np.asanyarray(load_volume(prep / f"sub-{s}" / f"sub-{s}_T1w.nii.gz").dataobj, dtype=np.float32)
          for s in split}
    volumes = [hr[s] for s, part in split.items() if part == "train"]

    sizes = {"batch_size": a.batch_size, "patch_size": a.patch_size, "checkpoint_every": 10**9}
    probe = GanTrainer(variant, workflow_settings(cfg, steps=10**6, **sizes))
    probe.train_step(volumes)  # one-off allocation and cuDNN autotuning
    started = time.perf_counter()
    for _ in range(PROBE_STEPS):
        probe.train_step(volumes)
    probe_seconds = (time.perf_counter() - started) / PROBE_STEPS
    steps = max(int(a.seconds / probe_seconds), 1)
    del probe

    trainer = GanTrainer(variant, workflow_settings(cfg, steps=steps, **sizes))
    started = time.perf_counter()
    rows = [trainer.train_step(volumes) for _ in range(steps)]
    train_seconds = time.perf_counter() - started
    print(f"{steps} steps in {train_seconds:.1f} s", flush=True)

    generator = trainer.generator.eval()
    inference = Inference(**{k: cfg["inference"][k] for k in ("tile", "halo", "reconstruct_tile", "batch", "precision")},
                          pasted=False)
    scores = {"trilinear": [], a.variant: []}
    for s in (s for s, part in split.items() if part == "test"):
        lr = np.asanyarray(load_volume(a.results / "degrade/demo/nearest" / f"sub-{s}_T1w.nii.gz").dataobj,
                           dtype=np.float32)
        mask = load_mask(prep / f"sub-{s}" / f"sub-{s}_mask.nii.gz")
        for name, pred in (("trilinear", interpolate(lr, cfg["scale"])),
                           (a.variant, super_resolve(generator, lr, cfg["scale"], inference, progress=False))):
            scores[name].append((psnr(hr[s], pred, mask), ssim(hr[s], pred, mask)))
    last = rows[-max(steps // 10, 1):]
    counts = trainer.parameter_counts()
    lines = ["| method | PSNR brain (dB) | SSIM brain |", "|---|---|---|"]
    for name, values in scores.items():
        mean = np.mean(values, axis=0)
        lines.append(f"| {name} | {mean[0]:.2f} | {mean[1]:.4f} |")
    text = "\n".join(lines + [
        "",
        f"- {steps} steps of batch {a.batch_size} at patch {a.patch_size}³ in {train_seconds:.1f} s "
        f"({train_seconds / steps:.3f} s/step; probe {probe_seconds:.3f} s/step)",
        f"- parameters (G / D / FE): {' / '.join(f'{n:,}' for n in counts.values())}",
        f"- mean over the last {len(last)} steps: loss_g {np.mean([r['loss_g'] for r in last]):.4f}, "
        f"loss_pixel {np.mean([r['loss_pixel'] for r in last]):.4f}, "
        f"loss_d {np.nanmean([r['loss_d'] for r in last]):.4f}",
        f"- precision {trainer.settings.precision} (bf16 autocast: {trainer.bf16}); "
        f"peak GPU memory {torch.cuda.max_memory_allocated() / 2**30:.1f} GiB" if torch.cuda.is_available() else
        f"- precision {trainer.settings.precision} (bf16 autocast: {trainer.bf16})",
    ])
    print(text)
    append_entry(f"{torch.get_num_threads()} threads",
                 f"Variant {a.variant} at the authors' network sizes, demo training subjects "
                 f"({', '.join(s for s, part in split.items() if part == 'train')}), scored on its test subjects "
                 f"({', '.join(s for s, part in split.items() if part == 'test')}); inference tile {inference.tile}, "
                 f"halo {inference.halo}.", text)


if __name__ == "__main__":
    main()
