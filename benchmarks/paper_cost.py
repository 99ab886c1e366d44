"""What a paper-scale run costs on this machine: the device hours of every training job the overlays plan.

Usage: python benchmarks/paper_cost.py [--configfiles workflow/configs/authors.yaml workflow/configs/hcp.yaml]
                                      [--steps 3] [--threads 16] [--volume 260 311 260]
The run's config as Snakemake reads it (config.yaml under the overlays, in their order), planned by the study:
every GAN variant's train job and every pixel-loss pretrain job, with its steps, global batch and GPUs. Each job's
step is timed here, one device, at its per-GPU batch and with its exact settings (precision, layout, patch
sampling, shared pass, speed switches), on two random volumes of ``--volume`` voxels (HCP's T1w), after one
untimed step. A job's device hours = steps x s/step x GPUs / 3600: data parallelism taken as free (a lower bound:
the GPUs also wait on each other). Not counted: segmentation, inference, evaluation, data preparation.
Prints the table and appends it, with machine, date, command and versions, to benchmarks/README.md.
"""

from __future__ import annotations

import argparse
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import torch
import yaml

from mrisr import config as mrisr_config
from mrisr.patches import grid_steps
from mrisr.plan.stages import Pretrain, Train
from mrisr.plan.study import Study
from mrisr.pretrain import PixelTrainer
from mrisr.settings import PretrainSettings, TrainSettings
from mrisr.train.gan import GanTrainer
from record import append_entry
from train_step import failure, timed_step

ROOT = Path(__file__).resolve().parents[1]


def run_config(configfiles: list[str]) -> dict:
    """config.yaml under the overlays, merged and validated as the workflow does."""
    raw: dict = {}
    for path in configfiles:
        mrisr_config.merge(raw, yaml.safe_load((ROOT / path).read_text()))
    return mrisr_config.validate(mrisr_config.on_base(raw, ROOT / "config.yaml"))


def jobs(study: Study, volume: tuple[int, int, int]) -> list[tuple[str, int, object]]:
    """(job, GPUs, a function building its trainer at the per-GPU batch): every pretrain, then every train job; a
    run given in epochs of the grid has the steps of that grid over its training subjects' volumes of ``volume``."""
    dataset = study.dataset
    shapes = [tuple(volume)] * len(study.subjects_in("train"))

    def per_gpu(settings: dict, gpus: int) -> dict:
        steps = settings["steps"] if settings.get("epochs") is None else grid_steps(
            shapes, settings["patch_size"], settings["patch_stride"], settings["batch_size"], gpus,
            settings["window_fraction"], settings["epochs"])
        return settings | {"batch_size": settings["batch_size"] // gpus, "checkpoint_every": 10**9, "steps": steps}

    found = []
    pretrain, gpus = Pretrain(study), study.config["train"]["gpus"]
    for key, (generator, pixel_loss, _) in pretrain.generators().items():
        settings = per_gpu(pretrain.settings(SimpleNamespace(generator=key, dataset=dataset)), gpus)
        found.append((f"pretrain {key}", gpus, lambda g=generator, p=pixel_loss, s=settings: PixelTrainer(
            g, p, PretrainSettings(**{**s, "betas": tuple(s["betas"])}))))
    train = Train(study)
    for name in study.trained_variants():
        wildcards = SimpleNamespace(variant=name, dataset=dataset)
        variant = train.variant(wildcards)
        variant["feature_extractor"] = {**variant.get("feature_extractor", {}), "weights": None}  # same cost
        gpus = train.processes(wildcards)
        settings = per_gpu(train.settings(wildcards), gpus)
        found.append((f"train {name}", gpus, lambda v=variant, s=settings: GanTrainer(v, TrainSettings(**s))))
    return found


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__)
    p.add_argument("--configfiles", nargs="*", default=["workflow/configs/authors.yaml", "workflow/configs/hcp.yaml"])
    p.add_argument("--steps", type=int, default=3)
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--volume", type=int, nargs=3, default=[260, 311, 260])
    a = p.parse_args()
    torch.set_num_threads(a.threads)
    study = Study(run_config(a.configfiles), paths={}, basedir=ROOT)
    rng = np.random.default_rng(0)
    volumes = [rng.normal(size=a.volume).astype(np.float32) for _ in range(2)]
    lines = ["| job | steps | GPUs | batch per GPU | s/step | device hours |", "|---|---|---|---|---|---|"]
    total = 0.0
    for job, gpus, build in jobs(study, a.volume):
        trainer = build()
        s = trainer.settings
        try:
            timed_step(trainer, volumes)
            seconds = float(np.mean([timed_step(trainer, volumes) for _ in range(a.steps)]))
        except Exception as exc:
            lines.append(f"| {job} | {s.steps:,} | {gpus} | {s.batch_size} | {failure(exc)} | |")
        else:
            hours = s.steps * seconds * gpus / 3600
            total += hours
            lines.append(f"| {job} | {s.steps:,} | {gpus} | {s.batch_size} | {seconds:.3f} | {hours:,.2f} |")
        print(lines[-1], flush=True)
        del trainer
    lines += ["", f"Total: {total:,.2f} device hours (training jobs only)."]
    text = "\n".join(lines)
    print(text)
    device = torch.cuda.get_device_name() if torch.cuda.is_available() else "CPU"
    append_entry(f"{a.threads} threads",
                 f"config.yaml + {' + '.join(a.configfiles) or 'nothing'}: every training job at its settings and "
                 f"per-GPU batch on one {device}, random volumes {' x '.join(map(str, a.volume))}, mean of "
                 f"{a.steps} steps after one untimed; device hours = steps x s/step x GPUs / 3600 (data "
                 f"parallelism taken as free).", text)


if __name__ == "__main__":
    main()
