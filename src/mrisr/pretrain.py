"""The pretrain stage: a generator trained on the pixel loss alone, once per generator architecture, pixel loss and
dataset. GAN variants with ``start: pretrained`` begin their adversarial training from it, as ESRGAN and BasicSR
(``pretrain_network_g``) do, instead of from random weights (``start: scratch``, the authors' choice).

A GAN step spends most of its time on D and the feature extractor; starting from a generator that already inverts
the degradation leaves the adversarial steps to add what the pixel loss cannot, and makes a short run a real model.
The learning rate falls to 0 on a cosine over the steps (BasicSR's pre-training schedule), so the model written is
the end of a settled descent, not a snapshot of Adam's last noisy step.
"""

from __future__ import annotations

import copy
import logging
import time
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import torch

from mrisr import distributed
from mrisr.degrade import degrade
from mrisr.device import set_threads
from mrisr.errors import ConfigError
from mrisr.model_card import make_card
from mrisr.models.registry import build, count_parameters
from mrisr.patches import sample_patches, step_generator
from mrisr.train.gan import load_training_volumes
from mrisr.train.losses import PIXEL_LOSSES
from mrisr.plan.study import fingerprint
from mrisr.trainer import StepSettings, Trainer, fit

log = logging.getLogger(__name__)


@dataclass(frozen=True, kw_only=True)
class PretrainSettings(StepSettings):
    """``pretrain.*`` of the config, with ``train``'s batch and patch size, the scale, the seed and the degradation."""

    degradation: dict
    scale: int
    lr: float
    betas: tuple[float, float]


class PixelTrainer(Trainer):
    """One generator, Adam with a cosine learning rate, the pixel loss; the same patches and LR as the GAN steps."""

    def __init__(self, generator: dict, pixel_loss: str, settings: PretrainSettings, card: dict | None = None):
        gen_cfg = dict(generator, scale=settings.scale)
        result_settings = {k: v for k, v in asdict(settings).items() if k != "checkpoint_every"}
        super().__init__(settings, fingerprint(generator=gen_cfg, pixel_loss=pixel_loss, settings=result_settings))
        self.generator_config, self.card = gen_cfg, card
        self.generator = build("generator", gen_cfg).to(self.device, memory_format=torch.channels_last_3d)
        self.pixel_loss = PIXEL_LOSSES[pixel_loss]
        self.opt = torch.optim.Adam(self.generator.parameters(), lr=settings.lr, betas=settings.betas)
        self.schedule = torch.optim.lr_scheduler.CosineAnnealingLR(self.opt, settings.steps)
        self.rank, self.world = distributed.rank_and_size()
        if settings.batch_size % self.world:
            raise ConfigError("train.batch_size", f"{settings.batch_size} does not split over {self.world} processes",
                              "make the global batch a multiple of the number of processes")
        distributed.broadcast_parameters([self.generator])

    def state(self) -> dict:
        return {"rows": self.rows, "generator": self.generator.state_dict(), "opt": self.opt.state_dict(),
                "schedule": self.schedule.state_dict()}

    def load_state(self, state: dict) -> None:
        for name, module in {"generator": self.generator, "opt": self.opt, "schedule": self.schedule}.items():
            module.load_state_dict(state[name])
        self.rows = state["rows"]

    def train_step(self, volumes: list[np.ndarray]) -> dict:
        s = self.settings
        started = time.perf_counter()
        rng = step_generator(s.seed, self.step)
        hr = sample_patches(volumes, s.patch_size, s.batch_size, rng, align=s.scale)
        lr = degrade(hr, s.degradation["method"], s.scale, s.degradation.get("blur_fwhm", 2.0))
        share = slice(self.rank * s.batch_size // self.world, (self.rank + 1) * s.batch_size // self.world)
        hr, lr = (t[share].to(self.device, memory_format=torch.channels_last_3d) for t in (hr, lr))
        with self.autocast():
            sr = self.generator(lr)
        loss = self.pixel_loss(sr.float(), hr)
        self.opt.zero_grad(set_to_none=True)
        loss.backward()
        distributed.average_gradients(list(self.generator.parameters()))
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

    def bundle(self) -> dict:
        return {"generator": copy.deepcopy(self.generator_config),
                "state_dict": {k: v.cpu() for k, v in self.generator.state_dict().items()}, "card": self.card}


def pretrain_generator(hr: list[str], generator: dict, pixel_loss: str, settings: dict, provenance: dict,
                       out_dir: str, threads: int, processes: int = 1) -> dict[str, Path]:
    """The pretrain stage: one generator on the prepared HR training volumes, pixel loss only; writes ``model.pt``
    (a model card: it super-resolves scans like any trained variant) and ``train_log.csv`` into ``out_dir``.

    ``settings``: the config's ``pretrain`` with ``train``'s batch and patch size, the scale, seed and degradation;
    ``provenance``: the generator's key, the dataset, the training subjects and prepare's ``preprocessing``;
    ``processes``: data-parallel processes on this node."""
    if processes > 1:
        return distributed.launch(processes, pretrain_generator, hr=hr, generator=generator, pixel_loss=pixel_loss,
                                  settings=settings, provenance=provenance, out_dir=out_dir, threads=threads)
    set_threads(threads)
    volumes, hr_voxel_mm = load_training_volumes(hr)
    settings = PretrainSettings(**{**settings, "betas": tuple(settings["betas"])})
    card = make_card(
        variant_name=provenance["variant"], variant={"generator": generator, "losses": {"pixel_loss": pixel_loss}},
        scale=settings.scale, hr_voxel_mm=hr_voxel_mm,
        preprocessing=provenance["preprocessing"], degradation=settings.degradation,
        training={"dataset": provenance["dataset"], "subjects": provenance["subjects"], "steps": settings.steps,
                  "batch_size": settings.batch_size, "seed": settings.seed, "start": "scratch"})
    trainer = PixelTrainer(generator, pixel_loss, settings, card)
    log.info("generator: %s parameters", f"{count_parameters(trainer.generator):,}")
    return fit(trainer, lambda: trainer.train_step(volumes), out_dir, fix="lower pretrain.lr", show=("loss_pixel",),
               writer=trainer.rank == 0, desc="pretrain")
