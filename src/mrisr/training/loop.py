"""The one GAN training loop: generator, discriminator and feature extractor chosen by config.

A run is a pure function of (variant, settings, seed, training volumes): patches and instance noise
come from a generator seeded per step, so a run resumed from ``checkpoint.pt`` continues exactly as
an uninterrupted one would. SIGTERM/SIGINT/SIGUSR1 (a SLURM time-out or its warning signal, Ctrl-C) write a checkpoint first.
"""

from __future__ import annotations

import copy
import hashlib
import json
import logging
import os
import signal
import time
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import pandas as pd
import torch
import torch.nn.functional as F
from tqdm import tqdm

from mrisr.data.patches import sample_patches, step_generator
from mrisr.degrade import degrade
from mrisr.errors import ConfigError, InputError, MrisrError
from mrisr.inference import default_device
from mrisr.io import atomic_path, load_torch, write_table
from mrisr.models.feature_extractor import load_medicalnet_weights
from mrisr.models.registry import build, count_parameters
from mrisr.training import distributed, losses, schedules

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class TrainSettings:
    steps: int
    batch_size: int
    patch_size: int
    checkpoint_every: int
    degradation: dict
    scale: int = 2
    seed: int = 0
    warmup_steps: int = 0
    precision: str = "auto"  # auto: bf16 autocast on CUDA, fp32 on CPU; or fp32 / bf16 anywhere


class Interrupted(MrisrError):
    """Training stopped by a signal after writing a checkpoint; rerun to resume."""


def fingerprint(variant: dict, settings: TrainSettings) -> str:
    """Hash of everything that changes the result; a checkpoint of another run is never resumed."""
    result_settings = {k: v for k, v in asdict(settings).items() if k != "checkpoint_every"}
    blob = json.dumps({"variant": variant, "settings": result_settings}, sort_keys=True)
    return hashlib.sha256(blob.encode()).hexdigest()[:16]


class GanTrainer:
    def __init__(self, variant: dict, settings: TrainSettings):
        self.variant, self.settings = variant, settings
        self.device = default_device()
        torch.manual_seed(settings.seed)
        gen_cfg = dict(variant["generator"], scale=settings.scale)
        self.generator_config = gen_cfg
        self.generator = build("generator", gen_cfg).to(self.device)
        self.discriminator = build("discriminator", variant["discriminator"]).to(self.device)
        self.pixel_loss = {"l1": F.l1_loss, "mse": F.mse_loss}[variant["losses"]["pixel_loss"]]
        fe_cfg = variant["feature_extractor"]
        self.fe_trainable = bool(fe_cfg["trainable"]) and variant["losses"]["feature"] > 0
        self.feature_extractor = None
        if variant["losses"]["feature"] > 0:
            self.feature_extractor = build("feature_extractor", {k: v for k, v in fe_cfg.items()
                                                                 if k not in ("trainable", "weights")})
            if fe_cfg.get("weights"):
                load_medicalnet_weights(self.feature_extractor, fe_cfg["weights"])
            self.feature_extractor.to(self.device).train(self.fe_trainable)
            self.feature_extractor.requires_grad_(self.fe_trainable)
        opt = variant["optimiser"]
        g_params = list(self.generator.parameters())
        if self.fe_trainable:  # the third player learns through the generator's optimiser
            g_params += list(self.feature_extractor.parameters())
        self.opt_g = torch.optim.Adam(g_params, lr=opt["lr"], betas=tuple(opt["betas"]))
        self.opt_d = torch.optim.Adam(self.discriminator.parameters(), lr=opt["lr"], betas=tuple(opt["betas"]))
        self.step = 0
        self.rows: list[dict] = []
        cuda = self.device.type == "cuda"
        self.bf16 = settings.precision == "bf16" or (settings.precision == "auto" and cuda)
        self.memory_format = torch.channels_last_3d if cuda else torch.contiguous_format
        for net in self.players().values():
            net.to(memory_format=self.memory_format)
        self.rank, self.world = distributed.rank_and_size()
        if settings.batch_size % self.world:
            raise ConfigError("train.batch_size", f"{settings.batch_size} does not split over {self.world} processes",
                              "make the global batch a multiple of the number of processes")
        distributed.broadcast_parameters(self.players().values())

    def players(self) -> dict[str, torch.nn.Module]:
        nets = {"generator": self.generator, "discriminator": self.discriminator}
        if self.feature_extractor is not None:
            nets["feature_extractor"] = self.feature_extractor
        return nets

    def parameter_counts(self) -> dict[str, int]:
        return {name: count_parameters(net) for name, net in self.players().items()}

    def state(self) -> dict:
        return {"fingerprint": fingerprint(self.variant, self.settings), "step": self.step, "rows": self.rows,
                **{name: net.state_dict() for name, net in self.players().items()},
                "opt_g": self.opt_g.state_dict(), "opt_d": self.opt_d.state_dict()}

    def save_checkpoint(self, path: Path) -> None:
        """Write ``path`` atomically, keeping the one before as ``<name>.prev`` in case this one is damaged later."""
        with atomic_path(path) as tmp:
            torch.save(self.state(), tmp)
            if path.exists():
                os.replace(path, _previous(path))

    def try_resume(self, path: Path) -> bool:
        """Load the newest readable checkpoint of this configuration; a damaged one is reported and skipped."""
        state = None
        for candidate in (path, _previous(path)):
            if not candidate.is_file():
                continue
            try:
                state = load_torch(candidate, "delete it to start afresh", map_location=self.device)
                break
            except InputError as exc:
                log.warning("%s (trying the previous checkpoint)", exc)
        if state is None:
            return False
        if state.get("fingerprint") != fingerprint(self.variant, self.settings):
            log.warning("%s belongs to another configuration; starting afresh", path)
            return False
        for name, module in {**self.players(), "opt_g": self.opt_g, "opt_d": self.opt_d}.items():
            module.load_state_dict(state[name])
        self.step, self.rows = state["step"], state["rows"]
        return True

    def autocast(self) -> torch.autocast:
        return torch.autocast(self.device.type, dtype=torch.bfloat16, enabled=self.bf16)

    def _feature_loss(self, sr: torch.Tensor, hr: torch.Tensor) -> torch.Tensor:
        with torch.set_grad_enabled(self.fe_trainable):
            target = self.feature_extractor(hr)
        return F.l1_loss(self.feature_extractor(sr).float(), target.float())

    def train_step(self, volumes: list[np.ndarray]) -> dict:
        """One generator update, then one discriminator update (none during the pixel-only warm-up)."""
        s, v = self.settings, self.variant
        w, gan = v["losses"], v["losses"]["gan"]
        started = time.perf_counter()
        rng = step_generator(s.seed, self.step)
        hr = sample_patches(volumes, s.patch_size, s.batch_size, rng, align=s.scale)
        lr = degrade(hr, s.degradation["method"], s.scale, s.degradation.get("blur_fwhm", 2.0))
        sigma = schedules.linear(self.step, s.steps, v["instance_noise"]["start"], v["instance_noise"]["end"])
        noise = torch.randn(hr.shape, generator=rng) * sigma
        alpha = torch.rand(s.batch_size, generator=rng) if w["gp_alpha"] == "uniform" else torch.randn(
            s.batch_size, generator=rng)
        share = slice(self.rank * s.batch_size // self.world, (self.rank + 1) * s.batch_size // self.world)
        hr, lr, noise = (t[share].to(self.device, memory_format=self.memory_format) for t in (hr, lr, noise))
        alpha = alpha[share].to(self.device)
        mean = distributed.global_batch_mean
        warm_up = self.step < s.warmup_steps
        nan = float("nan")
        row = {"step": self.step + 1, "warm_up": warm_up, "instance_noise": sigma}

        self.discriminator.requires_grad_(False)
        with self.autocast():
            sr = self.generator(lr)
            pixel = self.pixel_loss(sr.float(), hr)
            loss_g = w["pixel"] * pixel
            if not warm_up:
                feature = self._feature_loss(sr, hr) if self.feature_extractor is not None else torch.zeros(())
                g_real, g_fake = self.discriminator(hr + noise), self.discriminator(sr + noise)
                adversarial = losses.generator_adversarial_loss(g_real.float(), g_fake.float(), gan, mean)
                loss_g = loss_g + w["adversarial"] * adversarial + w["feature"] * feature
        if not warm_up:
            gap = (g_real.float().mean() - g_fake.float().mean()).item()
            row.update(loss_adversarial=adversarial.item(), loss_feature=feature.item(), g_real_minus_fake=gap,
                       g_fake_minus_real=-gap)
        self.opt_g.zero_grad(set_to_none=True)
        loss_g.backward()
        distributed.average_gradients(p for group in self.opt_g.param_groups for p in group["params"])
        self.opt_g.step()
        row.update(loss_g=loss_g.item(), loss_pixel=pixel.item())

        if not warm_up:
            self.discriminator.requires_grad_(True)
            real_in, fake_in = hr + noise, sr.detach().float() + noise
            with self.autocast():
                d_real, d_fake = self.discriminator(real_in).float(), self.discriminator(fake_in).float()
                loss_d = losses.discriminator_loss(d_real, d_fake, gan, mean)
                if gan == losses.GanLoss.WGAN_GP:
                    penalty = losses.gradient_penalty(self.discriminator, real_in, fake_in, alpha)
                    loss_d = loss_d + w["gp_weight"] * penalty
                    row["gradient_penalty"] = penalty.item()
            self.opt_d.zero_grad(set_to_none=True)
            loss_d.backward()
            distributed.average_gradients(self.discriminator.parameters())
            self.opt_d.step()
            gap = (d_real.detach().mean() - d_fake.detach().mean()).item()
            row.update(loss_d=loss_d.item(), d_real_minus_fake=gap, d_fake_minus_real=-gap)

        seconds = time.perf_counter() - started
        self.step += 1
        columns = ["step", "warm_up", "loss_g", "loss_pixel", "loss_adversarial", "loss_feature", "loss_d",
                   "gradient_penalty", "d_real_minus_fake", "d_fake_minus_real", "g_real_minus_fake",
                   "g_fake_minus_real", "instance_noise"]
        logged = distributed.mean_over_processes({c: row.get(c, nan) for c in columns[2:]})
        return {"step": row["step"], "warm_up": warm_up, **logged, "lr": self.opt_g.param_groups[0]["lr"],
                "seconds": seconds, "voxels_per_s": hr.numel() * self.world / seconds}

    def generator_bundle(self) -> dict:
        return {"generator": copy.deepcopy(self.generator_config),
                "state_dict": {k: v.cpu() for k, v in self.generator.state_dict().items()}}


def _previous(path: Path) -> Path:
    return path.with_name(path.name + ".prev")


def _check_finite(row: dict, checkpoint: Path) -> None:
    checked = ("loss_g",) if row["warm_up"] else ("loss_g", "loss_d")
    bad = [k for k in checked if not np.isfinite(row[k])]
    if bad:
        raise MrisrError(f"training diverged at step {row['step']}: {', '.join(bad)} is not finite; the last good "
                         f"checkpoint is kept at {checkpoint}. Fix: lower optimiser.lr or the adversarial weight")


#: SIGTERM: SLURM's time-out or scancel; SIGINT: Ctrl-C; SIGUSR1: what ``sbatch --signal=USR1@<s>`` sends
#: shortly before the time limit.
STOP_SIGNALS = (signal.SIGTERM, signal.SIGINT, signal.SIGUSR1)


def train(volumes: list[np.ndarray], variant: dict, settings: TrainSettings, out_dir: str | Path,
          progress: bool = True) -> dict[str, Path]:
    """Train (or resume) one GAN variant; write ``model.pt`` and ``train_log.csv`` into ``out_dir``."""
    distributed.init_from_env()
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    checkpoint = out / "checkpoint.pt"
    trainer = GanTrainer(variant, settings)
    writer = trainer.rank == 0
    for name, n in trainer.parameter_counts().items():
        log.info("%s: %s parameters", name, f"{n:,}")
    if trainer.try_resume(checkpoint):
        log.info("resumed from %s at step %d", checkpoint, trainer.step)

    stop = {"signal": None}

    def request_stop(signum, _frame):
        stop["signal"] = signum

    previous = {sig: signal.signal(sig, request_stop) for sig in STOP_SIGNALS}
    try:
        with tqdm(total=settings.steps, initial=trainer.step, desc="train", unit="step",
                  disable=not (progress and writer)) as bar:
            while trainer.step < settings.steps:
                row = trainer.train_step(volumes)
                _check_finite(row, checkpoint)
                trainer.rows.append(row)
                bar.update(1)
                bar.set_postfix(loss_g=f"{row['loss_g']:.3f}", loss_d=f"{row['loss_d']:.3f}")
                stopping = distributed.any_process(stop["signal"] is not None)
                due = trainer.step % settings.checkpoint_every == 0 or trainer.step == settings.steps
                if writer and (due or stopping):
                    trainer.save_checkpoint(checkpoint)
                if stopping:
                    raise Interrupted(f"stopped by signal {stop['signal']} at step {trainer.step}; checkpoint "
                                      f"written to {checkpoint}. Fix: rerun the same command to resume")
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)

    model, log_path = out / "model.pt", out / "train_log.csv"
    if writer:
        with atomic_path(model) as tmp:
            torch.save(trainer.generator_bundle(), tmp)
        write_table(pd.DataFrame(trainer.rows), log_path)
    return {"model": model, "log": log_path}
