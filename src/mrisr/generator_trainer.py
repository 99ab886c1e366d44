"""What the two generator trainers share (pretrain's pixel loss, train's GANs): the generator built at the run's
scale, a step's training batch (HR patches, their LR, this process's share), the model card of the run and the
model file written at its end (through :mod:`mrisr.model_card`, the one writer of model files)."""

from __future__ import annotations

import contextlib
import json
import time
from dataclasses import dataclass
from pathlib import Path

import nibabel as nib
import numpy as np
import torch

from mrisr import distributed
from mrisr.degrade import degrade
from mrisr.device import Acceleration, chosen_layout, ieee_fp32
from mrisr.errors import ConfigError
from mrisr.io import load_volume, voxel_sizes
from mrisr.losses import PIXEL_LOSSES
from mrisr.model_card import STORED, make_card, save_model
from mrisr.models.registry import build, count_parameters, plugin_provenance
from mrisr.grid import LrGrid, lr_grid
from mrisr.patches import GridSampler, PatchSampling, crop, patch_windows, sample_patches, step_generator
from mrisr.scale import as_scale
from mrisr.settings import GeneratorSettings
from mrisr.trainer import Trainer


def scaled(generator: dict, scale: int | list[int]) -> dict:
    """A variant's generator config as the model file holds it: with the scale it upsamples by."""
    return dict(generator, scale=scale)


@dataclass(frozen=True)
class TrainingVolumes:
    """The prepared HR training volumes as float32 arrays, and what the model card records of them."""

    arrays: list[np.ndarray]
    hr_voxel_mm: float  # their median voxel size
    orientation: str  # the axes their arrays have (RAS), or STORED where they differ between volumes


def load_training_volumes(hr: list[str]) -> TrainingVolumes:
    images = [load_volume(p) for p in hr]
    axes = {"".join(nib.aff2axcodes(img.affine)) for img in images}
    return TrainingVolumes([np.asanyarray(img.dataobj, dtype=np.float32) for img in images],
                           float(np.median([voxel_sizes(img.affine) for img in images])),
                           axes.pop() if len(axes) == 1 else STORED)


def training_card(variant_name: str, variant: dict, settings: GeneratorSettings, volumes: TrainingVolumes,
                  provenance: dict, start: str | dict) -> dict:
    """The model card of a training run: ``provenance`` holds the dataset, the training subjects and prepare's
    ``preprocessing``; ``start``: ``scratch`` or what the generator started from."""
    return make_card(variant_name=variant_name, variant=variant, scale=settings.scale, hr_voxel_mm=volumes.hr_voxel_mm,
                     plugin=plugin_provenance("generator", variant["generator"].get("name", "rrdb")),
                     preprocessing={"orientation": volumes.orientation, **provenance["preprocessing"]},
                     degradation=settings.degradation,
                     training={"dataset": provenance["dataset"], "subjects": provenance["subjects"],
                               "steps": settings.steps, "batch_size": settings.batch_size, "seed": settings.seed,
                               "start": start})


class GeneratorTrainer(Trainer):
    """The generator (built first after the seed: the same initial weights in both trainers), its data-parallel
    share of each batch and its model file; subclasses add their losses and ``train_step``."""

    def __init__(self, generator: dict, settings: GeneratorSettings, fingerprint: str, card: dict | None):
        super().__init__(settings, fingerprint)
        self.card = card
        self.generator_config = scaled(generator, settings.scale)
        self.generator = build("generator", self.generator_config).to(self.device)
        self.acceleration = Acceleration(cudnn_benchmark=settings.cudnn_benchmark, tf32=settings.tf32,
                                         compile=settings.compile)
        self.grid: GridSampler | None = None  # made from the volumes' shapes at the first step that needs it
        self.lr_volumes: list[np.ndarray] | None = None  # whole-volume LR (whole_volume_pairs), made at first need
        self.rank, self.world = distributed.rank_and_size()
        layout = None if self.rank else chosen_layout(  # the processes train in one layout: the first's
            settings.memory_format, self.device, self.generator, json.dumps(self.generator_config, sort_keys=True),
            tuple(settings.patch_size // f for f in as_scale(settings.scale)))
        self.memory_format = distributed.from_first_process(layout).torch
        if settings.batch_size % self.world:
            raise ConfigError("train.batch_size", f"{settings.batch_size} does not split over {self.world} processes",
                              "make the global batch a multiple of the number of processes")

    def players(self) -> dict[str, torch.nn.Module]:
        return {"generator": self.generator}

    def set_memory_format(self, memory_format: torch.memory_format) -> None:
        self.memory_format = memory_format
        for net in self.players().values():
            net.to(memory_format=memory_format)

    def backends(self) -> contextlib.AbstractContextManager:
        return self.acceleration.backends()

    def compile(self, networks: list[torch.nn.Module]) -> None:
        """``torch.compile`` ``networks`` in place (the settings' mode; ``none``: they stay eager)."""
        for net in networks:
            self.acceleration.compiled(net)

    def parameter_counts(self) -> dict[str, int]:
        return {name: count_parameters(net) for name, net in self.players().items()}

    def batch(self, volumes: list[np.ndarray]) -> tuple[torch.Generator, torch.Tensor, torch.Tensor]:
        """This step's random stream, HR patches and their LR: the global batch, which every process draws alike.
        The patches are degraded on the training device (a blur or k-space degradation of a paper-size batch on
        one CPU core takes about as long as a whole GPU step: benchmarks/data_step.py), in IEEE fp32 as the
        degrade stage makes the test LR."""
        s = self.settings
        rng = step_generator(s.seed, self.step)
        if lr_grid(s.degradation) is LrGrid.SPANNING:
            return (rng, *self.whole_volume_pairs(volumes, rng))
        if PatchSampling(s.patch_sampling) is PatchSampling.GRID:
            if self.grid is None:
                self.grid = GridSampler([v.shape for v in volumes], s.patch_size, s.patch_stride, s.batch_size, s.seed,
                                        self.world, s.window_fraction)
            hr = self.grid.patches(volumes, self.step)
        else:
            hr = sample_patches(volumes, s.patch_size, s.batch_size, rng, align=as_scale(s.scale))
        hr = hr.to(self.device)
        with ieee_fp32():
            return rng, hr, degrade(hr, s.degradation, s.scale)

    def whole_volume_pairs(self, volumes: list[np.ndarray], rng: torch.Generator) -> tuple[torch.Tensor, torch.Tensor]:
        """HR patches and LR patches cropped from the LR of the whole volume, for a degradation whose LR grid
        depends on the volume's size (MTVNet's resize: each volume degraded once, LR window at the HR corner /
        scale, as their data loader crops pairs): the same windows as random sampling."""
        s, factors = self.settings, as_scale(self.settings.scale)
        if PatchSampling(s.patch_sampling) is not PatchSampling.RANDOM:
            raise ConfigError("train.patch_sampling", f"{s.patch_sampling} windows are not made for a degradation "
                              f"on the {LrGrid.SPANNING.value} grid ({s.degradation['method']})",
                              "use train.patch_sampling: random")
        if self.lr_volumes is None:  # as the degrade stage: the far rows that fill no LR voxel are left out
            with ieee_fp32():
                self.lr_volumes = [degrade(torch.from_numpy(np.ascontiguousarray(
                    v[tuple(slice(0, n - n % f) for n, f in zip(v.shape, factors))], dtype=np.float32)),
                    s.degradation, factors).numpy() for v in volumes]
        shapes = [tuple(n * f for n, f in zip(lr.shape, factors)) for lr in self.lr_volumes]
        windows = patch_windows(shapes, s.patch_size, s.batch_size, rng, align=factors)
        lr_windows = [tuple(slice(w.start // f, w.stop // f) for w, f in zip(window, factors)) for _, window in windows]
        hr = torch.stack([crop(volumes[i], window) for i, window in windows])[:, None]
        lr = torch.stack([crop(self.lr_volumes[i], w) for (i, _), w in zip(windows, lr_windows)])[:, None]
        return hr.to(self.device), lr.to(self.device)

    def part(self) -> slice:
        """This process's rows of the global batch."""
        s = self.settings
        return slice(self.rank * s.batch_size // self.world, (self.rank + 1) * s.batch_size // self.world)

    def share(self, *tensors: torch.Tensor) -> list[torch.Tensor]:
        """This process's part of global-batch volumes, on the device in the networks' memory format."""
        return [t[self.part()].to(self.device, memory_format=self.memory_format) for t in tensors]

    model_file = "model.safetensors"

    def save_model(self, path: Path) -> None:
        save_model(path, self.generator_config, {k: v.cpu() for k, v in self.generator.state_dict().items()},
                   self.card)


@dataclass(frozen=True, kw_only=True)
class PixelOptimiser:
    """Adam and how its learning rate moves: to 0 on a cosine over the run (``milestones`` None: this stage's,
    BasicSR's pre-training), or times ``gamma`` at each of ``milestones`` (a variant of kind pixel: MTVNet's
    MultiStepLR); the gradient's norm clipped to ``clip_grad_norm`` before each step where given (MTVNet's
    clipgrad)."""

    lr: float
    betas: tuple[float, float]
    milestones: tuple[int, ...] | None = None
    gamma: float = 0.5
    clip_grad_norm: float | None = None


class PixelTrainer(GeneratorTrainer):
    """One generator, Adam, the pixel loss; the same patches and LR as the GAN steps. Nothing else is built."""

    def __init__(self, generator: dict, pixel_loss: str, settings: GeneratorSettings, optimiser: PixelOptimiser,
                 result: str, card: dict | None = None, start: dict | None = None):
        """``result``: the fingerprint of what decides the result (a checkpoint of another is never resumed);
        ``start``: the generator's initial state dict, else random weights."""
        super().__init__(generator, settings, result, card)
        if start is not None:
            self.generator.load_state_dict(start)
        self.generator.to(memory_format=self.memory_format)
        self.pixel_loss = PIXEL_LOSSES[pixel_loss]
        self.clip_grad_norm = optimiser.clip_grad_norm
        self.opt = torch.optim.Adam(self.generator.parameters(), lr=optimiser.lr, betas=tuple(optimiser.betas))
        self.schedule = (torch.optim.lr_scheduler.CosineAnnealingLR(self.opt, settings.steps)
                         if optimiser.milestones is None else
                         torch.optim.lr_scheduler.MultiStepLR(self.opt, list(optimiser.milestones), optimiser.gamma))
        distributed.broadcast_parameters([self.generator])
        self.compile([self.generator])

    def state(self) -> dict:
        return {"rows": self.rows, "generator": self.generator.state_dict(), "opt": self.opt.state_dict(),
                "schedule": self.schedule.state_dict()}

    def load_state(self, state: dict) -> None:
        for name, module in {"generator": self.generator, "opt": self.opt, "schedule": self.schedule}.items():
            module.load_state_dict(state[name])
        self.rows = state["rows"]

    def train_step(self, volumes: list[np.ndarray]) -> dict:
        started = time.perf_counter()
        _, hr, lr = self.batch(volumes)
        hr, lr = self.share(hr, lr)
        with self.autocast():
            sr = self.generator(lr)
        loss = self.pixel_loss(sr.float(), hr)
        self.opt.zero_grad(set_to_none=True)
        loss.backward()
        distributed.average_gradients(list(self.generator.parameters()))
        if self.clip_grad_norm is not None:  # on the averaged gradient: every process clips alike
            torch.nn.utils.clip_grad_norm_(self.generator.parameters(), self.clip_grad_norm)
        rate = self.opt.param_groups[0]["lr"]
        self.opt.step()
        self.schedule.step()
        self.step += 1
        seconds = time.perf_counter() - started
        logged = distributed.mean_over_processes({"loss_pixel": loss.item()})
        return {"step": self.step, **logged, "lr": rate, "seconds": seconds,
                "voxels_per_s": hr.numel() * self.world / seconds}

    def checked_losses(self, row: dict) -> tuple[str, ...]:
        return ("loss_pixel",)
