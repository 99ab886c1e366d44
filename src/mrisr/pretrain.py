"""The pretrain stage: a generator trained on the pixel loss alone, once per generator architecture, pixel loss and
dataset. GAN variants with ``start: pretrained`` begin their adversarial training from it, as ESRGAN and BasicSR
(``pretrain_network_g``) do, instead of from random weights (``start: scratch``, the authors' choice).

A GAN step spends most of its time on D and the feature extractor; starting from a generator that already inverts
the degradation leaves the adversarial steps to add what the pixel loss cannot, and makes a short run a real model.
The learning rate falls to 0 on a cosine over the steps (BasicSR's pre-training schedule), so the model written is
the end of a settled descent, not a snapshot of Adam's last noisy step.
"""

from __future__ import annotations

import logging
import time
from pathlib import Path

import numpy as np
import torch

from mrisr import distributed
from mrisr.device import set_threads
from mrisr.generator_trainer import GeneratorTrainer, load_training_volumes, scaled, training_card
from mrisr.models.registry import count_parameters
from mrisr.losses import PIXEL_LOSSES
from mrisr.settings import PretrainSettings, fingerprint, result_settings
from mrisr.trainer import fit

log = logging.getLogger(__name__)


class PixelTrainer(GeneratorTrainer):
    """One generator, Adam with a cosine learning rate, the pixel loss; the same patches and LR as the GAN steps."""

    def __init__(self, generator: dict, pixel_loss: str, settings: PretrainSettings, card: dict | None = None):
        super().__init__(generator, settings, fingerprint(generator=scaled(generator, settings.scale),
                                                          pixel_loss=pixel_loss, settings=result_settings(settings)),
                         card)
        self.generator.to(memory_format=self.memory_format)
        self.pixel_loss = PIXEL_LOSSES[pixel_loss]
        self.opt = torch.optim.Adam(self.generator.parameters(), lr=settings.lr, betas=settings.betas)
        self.schedule = torch.optim.lr_scheduler.CosineAnnealingLR(self.opt, settings.steps)
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


@distributed.data_parallel
def pretrain_generator(hr: list[str], generator: dict, pixel_loss: str, settings: dict, provenance: dict,
                       out_dir: str, threads: int) -> dict[str, Path]:
    """The pretrain stage: one generator on the prepared HR training volumes, pixel loss only; writes ``model.safetensors``
    (a model card: it super-resolves scans like any trained variant) and ``train_log.csv`` into ``out_dir``.

    ``settings``: the config's ``pretrain`` with ``train``'s batch and patch size, the scale, seed and degradation;
    ``provenance``: the generator's key, the dataset, the training subjects and prepare's ``preprocessing``;
    ``processes``: data-parallel processes on this node (:func:`mrisr.distributed.data_parallel`)."""
    set_threads(threads)
    volumes = load_training_volumes(hr)
    settings = PretrainSettings(**{**settings, "betas": tuple(settings["betas"])})
    card = training_card(provenance["variant"], {"generator": generator, "losses": {"pixel_loss": pixel_loss}},
                         settings, volumes, provenance, start="scratch")
    trainer = PixelTrainer(generator, pixel_loss, settings, card)
    log.info("generator: %s parameters", f"{count_parameters(trainer.generator):,}")
    return fit(trainer, lambda: trainer.train_step(volumes.arrays), out_dir, fix="lower pretrain.lr",
               show=("loss_pixel",),
               writer=trainer.rank == 0, desc="pretrain")
