"""The one GAN training loop: generator, discriminator and feature extractor chosen by config.

A run is a pure function of (variant, settings, seed, training volumes): patches and instance noise
come from a generator seeded per step, so a run resumed from ``checkpoint.pt`` continues exactly as
an uninterrupted one would. SIGTERM/SIGINT/SIGUSR1 (a SLURM time-out or its warning signal, Ctrl-C) write a checkpoint first.
"""

from __future__ import annotations

import json
import logging
import time
import dataclasses
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from torch.nn.utils.spectral_norm import SpectralNorm

from mrisr import distributed, losses
from mrisr.device import set_threads
from mrisr.errors import ConfigError, InputError
from mrisr.io import digest_of
from mrisr.generator_trainer import (GeneratorTrainer, PixelOptimiser, PixelTrainer, load_training_volumes, scaled,
                                     training_card)
from mrisr.model_card import load_model
from mrisr.models.feature_extractor import load_medicalnet_weights
from mrisr.models.registry import build, count_parameters
from mrisr.patches import grid_steps
from mrisr.train import schedules
from mrisr.losses import UpdateOrder
from mrisr.settings import TrainSettings, fingerprint, result_settings
from mrisr.trainer import fit

log = logging.getLogger(__name__)


#: train_log.csv's values that every process computes on its own share, averaged over processes; NaN where a step
#: has none (no D update: no ``loss_d``).
LOGGED_VALUES = ("loss_g", "loss_pixel", "loss_adversarial", "loss_feature", "loss_d", "gradient_penalty",
                 "d_real_minus_fake", "d_fake_minus_real", "g_real_minus_fake", "g_fake_minus_real", "instance_noise")


@dataclass(frozen=True)
class Start:
    """The generator's initial weights when not random: a pretrained model's state dict and a digest of it."""

    state_dict: dict
    digest: str


def result_fingerprint(variant: dict, settings: TrainSettings, start: Start | None = None) -> str:
    """A checkpoint of another run (or of another start) is never resumed; neither the speed settings nor the
    shared pass changes the result."""
    return fingerprint(variant=variant, settings=result_settings(settings, "shared_discriminator_pass"),
                       start=start.digest if start else None)


class GanTrainer(GeneratorTrainer):
    def __init__(self, variant: dict, settings: TrainSettings, card: dict | None = None, start: Start | None = None):
        """``card``: the model card's plain data (:func:`mrisr.generator_trainer.training_card`), written with the
        weights; ``start``: the generator's initial weights (``start: pretrained``), else random ones."""
        super().__init__(variant["generator"], settings, result_fingerprint(variant, settings, start), card)
        self.variant = variant
        if start is not None:
            self.generator.load_state_dict(start.state_dict)
        self.discriminator = build("discriminator", variant["discriminator"]).to(self.device)
        self.pixel_loss = losses.PIXEL_LOSSES[variant["losses"]["pixel_loss"]]
        fe_cfg = variant["feature_extractor"]
        self.fe_trainable = bool(fe_cfg["trainable"]) and variant["losses"]["feature"] > 0
        self.feature_extractor = None
        if variant["losses"]["feature"] > 0:
            self.feature_extractor = build("feature_extractor", fe_cfg)
            if fe_cfg.get("weights"):
                load_medicalnet_weights(self.feature_extractor, fe_cfg["weights"])
            batch_statistics = self.fe_trainable or fe_cfg["frozen_mode"] == "train"
            self.feature_extractor.to(self.device).train(batch_statistics)
            self.feature_extractor.requires_grad_(self.fe_trainable)
        opt = variant["optimiser"]
        g_params = list(self.generator.parameters())
        if self.fe_trainable:  # the third player learns through the generator's optimiser
            g_params += list(self.feature_extractor.parameters())
        self.opt_g = torch.optim.Adam(g_params, lr=opt["lr"], betas=tuple(opt["betas"]))
        self.opt_d = torch.optim.Adam(self.discriminator.parameters(), lr=opt["lr"], betas=tuple(opt["betas"]))
        self.set_memory_format(self.memory_format)
        distributed.broadcast_parameters(self.players().values())
        # a WGAN-GP critic stays eager: its gradient penalty differentiates through its gradient (double backward),
        # which compiled graphs do not support
        self.compile([net for name, net in self.players().items()
                      if name != "discriminator" or variant["losses"]["gan"] != losses.GanLoss.WGAN_GP])

    def players(self) -> dict[str, torch.nn.Module]:
        nets = {"generator": self.generator, "discriminator": self.discriminator}
        if self.feature_extractor is not None:
            nets["feature_extractor"] = self.feature_extractor
        return nets

    def state(self) -> dict:
        return {"rows": self.rows, **{name: net.state_dict() for name, net in self.players().items()},
                "opt_g": self.opt_g.state_dict(), "opt_d": self.opt_d.state_dict()}

    def load_state(self, state: dict) -> None:
        for name, module in {**self.players(), "opt_g": self.opt_g, "opt_d": self.opt_d}.items():
            module.load_state_dict(state[name])
        self.rows = state["rows"]

    def _feature_loss(self, sr: torch.Tensor, hr: torch.Tensor) -> torch.Tensor:
        """L1 between FE(sr) and FE(hr), called in the authors' order (it sets BatchNorm's running statistics)."""
        features = self.feature_extractor(sr).float()
        with torch.set_grad_enabled(self.fe_trainable):
            target = self.feature_extractor(hr)
        return F.l1_loss(features, target.float())

    def shared_pass_is_exact(self) -> bool:
        """Whether D's forward changes no state, so that one pass can serve both updates with the same numbers:
        BatchNorm in training mode updates running statistics, spectral norm runs a power iteration."""
        return not any(isinstance(m, torch.nn.modules.batchnorm._BatchNorm)
                       or any(isinstance(hook, SpectralNorm) for hook in m._forward_pre_hooks.values())
                       for m in self.discriminator.modules())

    def train_step(self, volumes: list[np.ndarray]) -> dict:
        """One generator update and, on the variant's ``discriminator_every``-th steps, one discriminator update, in
        its ``update_order`` (D idle during the pixel-only warm-up)."""
        s, v = self.settings, self.variant
        started = time.perf_counter()
        rng, hr, lr = self.batch(volumes)
        sigma = schedules.instance_noise(self.step, s.steps, **v["instance_noise"])
        noise = torch.randn(hr.shape, generator=rng) * sigma
        alpha = torch.rand(s.batch_size, generator=rng) if v["losses"]["gp_alpha"] == "uniform" else torch.randn(
            s.batch_size, generator=rng)
        hr, lr, noise = self.share(hr, lr, noise)
        alpha = alpha[self.part()].to(self.device)
        warmup = schedules.warmup_steps(v["warmup_fraction"], s.steps)
        warm_up = self.step < warmup
        d_step = schedules.updates_discriminator(self.step, warmup, v["discriminator_every"])
        row = {"step": self.step + 1, "warm_up": warm_up, "discriminator_step": d_step, "instance_noise": sigma}
        if v["generator_eval_epochs"] is not None:  # the authors' WGAN-GP: eval mode after each epoch's first batch
            self.generator.train(schedules.starts_epoch(self.step, s.steps, v["generator_eval_epochs"]))
        with self.autocast():
            sr = self.generator(lr)
        real_in = hr + noise
        if warm_up:
            self._generator_update(sr, hr, real_in, noise, row, adversarial=False, shared=False)
        elif v["update_order"] == UpdateOrder.DISCRIMINATOR_FIRST:  # G then learns against the updated D
            if d_step:
                self._discriminator_update(real_in, sr.detach().float() + noise, alpha, row)
            self._generator_update(sr, hr, real_in, noise, row, adversarial=True, shared=False)
        else:
            # Shared pass: the D logits of this G step serve the D step too (D's weights and inputs are the same
            # there), so D runs forward twice per step instead of four times; the numbers are the same.
            shared = d_step and s.shared_discriminator_pass and self.shared_pass_is_exact()
            logits = self._generator_update(sr, hr, real_in, noise, row, adversarial=True, shared=shared)
            if d_step:
                self._discriminator_update(real_in, sr.detach().float() + noise, alpha, row, logits)

        seconds = time.perf_counter() - started
        self.step += 1
        logged = distributed.mean_over_processes({c: row.get(c, float("nan")) for c in LOGGED_VALUES})
        return {"step": row["step"], "warm_up": warm_up, "discriminator_step": d_step, **logged,
                "lr": self.opt_g.param_groups[0]["lr"], "seconds": seconds,
                "voxels_per_s": hr.numel() * self.world / seconds}

    def _relativistic_mean(self):
        return distributed.global_batch_mean if self.settings.relativistic_mean == "global" else losses.batch_mean

    def _generator_update(self, sr: torch.Tensor, hr: torch.Tensor, real_in: torch.Tensor, noise: torch.Tensor,
                          row: dict, adversarial: bool, shared: bool) -> tuple[torch.Tensor, torch.Tensor] | None:
        """Pixel (+ adversarial + feature) loss, one G step; with ``shared``, D's logits stay differentiable in D
        and are returned for the D step."""
        w, gan = self.variant["losses"], self.variant["losses"]["gan"]
        self.discriminator.requires_grad_(shared)
        with self.autocast():
            pixel = self.pixel_loss(sr.float(), hr)
            loss_g = w["pixel"] * pixel if adversarial else pixel  # the warm-up's objective is the pixel loss itself
            if adversarial:
                feature = self._feature_loss(sr, hr) if self.feature_extractor is not None else torch.zeros(())
                real_pass = (shared or gan == losses.GanLoss.RELATIVISTIC
                             or self.variant["generator_step_real_pass"] == "always")
                g_real = self.discriminator(real_in).float() if real_pass else None
                g_fake = self.discriminator(sr.float() + noise).float()
                loss_adversarial = losses.generator_adversarial_loss(g_real, g_fake, gan, self._relativistic_mean())
                loss_g = loss_g + w["adversarial"] * loss_adversarial + w["feature"] * feature
        if adversarial:
            gap = (g_real.mean() - g_fake.mean()).item() if g_real is not None else float("nan")
            row.update(loss_adversarial=loss_adversarial.item(), loss_feature=feature.item(), g_real_minus_fake=gap,
                       g_fake_minus_real=-gap)
        g_params = [p for group in self.opt_g.param_groups for p in group["params"]]
        self.opt_g.zero_grad(set_to_none=True)
        loss_g.backward(inputs=g_params, retain_graph=shared)
        distributed.average_gradients(g_params)
        self.opt_g.step()
        self.discriminator.requires_grad_(True)
        row.update(loss_g=loss_g.item(), loss_pixel=pixel.item())
        return (g_real, g_fake) if shared else None

    def _discriminator_update(self, real_in: torch.Tensor, fake_in: torch.Tensor, alpha: torch.Tensor, row: dict,
                              logits: tuple[torch.Tensor, torch.Tensor] | None = None) -> None:
        """One D step on ``fake_in`` (detached); ``logits``: the G step's shared D pass on the same inputs."""
        w, gan = self.variant["losses"], self.variant["losses"]["gan"]
        with self.autocast():
            if logits is not None:
                d_real, d_fake = logits
            else:
                d_real, d_fake = self.discriminator(real_in).float(), self.discriminator(fake_in).float()
            loss_d = losses.discriminator_loss(d_real, d_fake, gan, self._relativistic_mean())
            if gan == losses.GanLoss.WGAN_GP:
                penalty = losses.gradient_penalty(self.discriminator, real_in, fake_in, alpha)
                loss_d = loss_d + w["gp_weight"] * penalty
                row["gradient_penalty"] = penalty.item()
        d_params = list(self.discriminator.parameters())
        self.opt_d.zero_grad(set_to_none=True)
        loss_d.backward(inputs=d_params)
        distributed.average_gradients(d_params)
        self.opt_d.step()
        gap = (d_real.detach().mean() - d_fake.detach().mean()).item()
        row.update(loss_d=loss_d.item(), d_real_minus_fake=gap, d_fake_minus_real=-gap)

    def checked_losses(self, row: dict) -> tuple[str, ...]:
        return ("loss_g", "loss_d") if row["discriminator_step"] else ("loss_g",)


def train(volumes: list[np.ndarray], variant: dict, settings: TrainSettings, out_dir: str | Path,
          progress: bool = True, card: dict | None = None, start: Start | None = None) -> dict[str, Path]:
    """Train (or resume) one GAN variant; write ``model.safetensors`` (with ``card``) and ``train_log.csv`` into ``out_dir``."""
    trainer = GanTrainer(variant, settings, card, start)
    for name, n in trainer.parameter_counts().items():
        log.info("%s: %s parameters", name, f"{n:,}")
    return fit(trainer, lambda: trainer.train_step(volumes), out_dir, fix="lower optimiser.lr or the adversarial weight",
               show=("loss_g", "loss_d"), writer=trainer.rank == 0, progress=progress)


def counted_steps(settings: TrainSettings, shapes: list[tuple[int, ...]]) -> TrainSettings:
    """``settings`` with the steps of its ``epochs`` of the grid over volumes of ``shapes`` in this run's processes
    (unchanged when the run is given in steps)."""
    if settings.epochs is None:
        return settings
    steps = grid_steps(shapes, settings.patch_size, settings.patch_stride, settings.batch_size,
                       distributed.rank_and_size()[1], settings.window_fraction, settings.epochs)
    if steps == 0:
        raise ConfigError("train.patch_size", f"an epoch of the grid over volumes of {shapes[0]}, ... has fewer windows "
                                              f"than a batch of {settings.batch_size}",
                          "lower train.patch_stride or the batch, or raise window_fraction")
    log.info("%d epochs of the grid: %s steps", settings.epochs, f"{steps:,}")
    return dataclasses.replace(settings, steps=steps)


def load_start(path: str | Path, generator_config: dict) -> tuple[Start, dict]:
    """A pretrained generator (the pretrain stage's ``model.safetensors``) as a start for ``generator_config``, and what the
    new card records of it."""
    config, state_dict, card = load_model(path)
    if config != generator_config:
        raise InputError(path, f"holds another generator ({json.dumps(config, sort_keys=True)}) than this variant's "
                               f"({json.dumps(generator_config, sort_keys=True)})",
                         "rerun the pretrain stage for this variant's generator")
    digest = digest_of(path)[:16]
    return Start(state_dict, digest), {"model": card["variant"], "dataset": card["training"]["dataset"],
                                       "steps": card["training"]["steps"], "digest": digest}


@distributed.data_parallel
def train_variant(hr: list[str], variant: dict, settings: dict, provenance: dict, out_dir: str,
                  threads: int, start: str | None = None) -> dict[str, Path]:
    """The train stage: one variant on the prepared HR training volumes (``variant``, ``settings``: config JSON;
    ``provenance``: the variant's name, the dataset, the training subjects and prepare's ``preprocessing``;
    ``start``: the pretrain stage's model file that the generator starts from, for ``start: pretrained``;
    ``processes``: data-parallel processes on this node, :func:`mrisr.distributed.data_parallel`)."""
    set_threads(threads)
    volumes = load_training_volumes(hr)
    settings = counted_steps(TrainSettings(**settings), [v.shape for v in volumes.arrays])
    initial, started_from = None, "scratch"
    if variant["start"] == "pretrained":
        if not start:
            raise ConfigError(f"variants.{provenance['variant']}.start", "is pretrained but no --start model was given",
                              "pass the pretrain stage's model.safetensors with --start")
        initial, started_from = load_start(start, scaled(variant["generator"], settings.scale))
    card = training_card(provenance["variant"], variant, settings, volumes, provenance, started_from)
    if variant["kind"] == "pixel":
        return train_pixel(volumes.arrays, variant, settings, out_dir, card=card, start=initial)
    return train(volumes.arrays, variant, settings, out_dir, card=card, start=initial)


def train_pixel(volumes: list[np.ndarray], variant: dict, settings: TrainSettings, out_dir: str | Path,
                progress: bool = True, card: dict | None = None, start: Start | None = None) -> dict[str, Path]:
    """Train (or resume) a variant of kind pixel: its generator alone on its pixel loss, with its optimiser's
    schedule and clipping (no discriminator or feature extractor is built); the files as :func:`train`'s."""
    opt = variant["optimiser"]
    optimiser = PixelOptimiser(lr=opt["lr"], betas=tuple(opt["betas"]), milestones=tuple(opt["milestones"]),
                               gamma=opt["gamma"], clip_grad_norm=opt["clip_grad_norm"])
    trainer = PixelTrainer(variant["generator"], variant["losses"]["pixel_loss"], settings, optimiser,
                           result_fingerprint(variant, settings, start), card, start.state_dict if start else None)
    log.info("generator: %s parameters", f"{count_parameters(trainer.generator):,}")
    return fit(trainer, lambda: trainer.train_step(volumes), out_dir, fix="lower optimiser.lr or clip_grad_norm",
               show=("loss_pixel",), writer=trainer.rank == 0, progress=progress)
