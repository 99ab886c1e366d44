"""The one GAN training loop: generator, discriminator and feature extractor chosen by config.

A run is a pure function of (variant, settings, seed, training volumes): patches and instance noise
come from a generator seeded per step, so a run resumed from ``checkpoint.pt`` continues exactly as
an uninterrupted one would. SIGTERM/SIGINT (a SLURM time-out, Ctrl-C) write a checkpoint first.
"""

from __future__ import annotations

import copy
import hashlib
import json
import logging
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
from mrisr.errors import MrisrError
from mrisr.io import atomic_path, write_table
from mrisr.models.feature_extractor import load_medicalnet_weights
from mrisr.models.registry import build, count_parameters
from mrisr.training import losses, schedules

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


class Interrupted(MrisrError):
    """Training stopped by a signal after writing a checkpoint; rerun to resume."""


def fingerprint(variant: dict, settings: TrainSettings) -> str:
    """Hash of everything that changes the result; a checkpoint of another run is never resumed."""
    result_settings = {k: v for k, v in asdict(settings).items() if k != "checkpoint_every"}
    blob = json.dumps({"variant": variant, "settings": result_settings}, sort_keys=True)
    return hashlib.sha256(blob.encode()).hexdigest()[:16]


def device() -> torch.device:
    return torch.device("cuda" if torch.cuda.is_available() else "cpu")


class GanTrainer:
    def __init__(self, variant: dict, settings: TrainSettings):
        self.variant, self.settings = variant, settings
        self.device = device()
        torch.manual_seed(settings.seed)
        gen_cfg = dict(variant["generator"], scale=settings.scale)
        self.generator_config = gen_cfg
        self.generator = build("generator", gen_cfg).to(self.device)
        self.discriminator = build("discriminator", variant["discriminator"]).to(self.device)
        fe_cfg = variant["feature_extractor"]
        self.feature_extractor = build("feature_extractor", {k: v for k, v in fe_cfg.items()
                                                             if k not in ("trainable", "weights")})
        if fe_cfg.get("weights"):
            load_medicalnet_weights(self.feature_extractor, fe_cfg["weights"])
        self.feature_extractor.to(self.device)
        self.fe_trainable = bool(fe_cfg.get("trainable"))
        self.feature_extractor.train(self.fe_trainable)
        self.feature_extractor.requires_grad_(self.fe_trainable)
        opt = variant["optimiser"]
        g_params = list(self.generator.parameters())
        if self.fe_trainable:  # the third player learns through the generator's optimiser
            g_params += list(self.feature_extractor.parameters())
        self.opt_g = torch.optim.Adam(g_params, lr=opt["lr"], betas=tuple(opt["betas"]))
        self.opt_d = torch.optim.Adam(self.discriminator.parameters(), lr=opt["lr"], betas=tuple(opt["betas"]))
        self.step = 0
        self.rows: list[dict] = []

    def parameter_counts(self) -> dict[str, int]:
        return {"generator": count_parameters(self.generator),
                "discriminator": count_parameters(self.discriminator),
                "feature_extractor": count_parameters(self.feature_extractor)}

    def state(self) -> dict:
        return {"fingerprint": fingerprint(self.variant, self.settings), "step": self.step, "rows": self.rows,
                "generator": self.generator.state_dict(), "discriminator": self.discriminator.state_dict(),
                "feature_extractor": self.feature_extractor.state_dict(),
                "opt_g": self.opt_g.state_dict(), "opt_d": self.opt_d.state_dict()}

    def save_checkpoint(self, path: Path) -> None:
        with atomic_path(path) as tmp:
            torch.save(self.state(), tmp)

    def try_resume(self, path: Path) -> bool:
        if not path.is_file():
            return False
        state = torch.load(path, map_location=self.device, weights_only=True)
        if state.get("fingerprint") != fingerprint(self.variant, self.settings):
            log.warning("%s belongs to another configuration; starting afresh", path)
            return False
        for name in ("generator", "discriminator", "feature_extractor", "opt_g", "opt_d"):
            getattr(self, name).load_state_dict(state[name])
        self.step, self.rows = state["step"], state["rows"]
        return True

    def train_step(self, volumes: list[np.ndarray]) -> dict:
        s, v = self.settings, self.variant
        started = time.perf_counter()
        rng = step_generator(s.seed, self.step)
        hr = sample_patches(volumes, s.patch_size, s.batch_size, rng, align=s.scale)
        lr = degrade(hr, s.degradation["method"], s.scale, s.degradation.get("blur_fwhm", 2.0))
        sigma = schedules.linear(self.step, s.steps, v["instance_noise"]["start"], v["instance_noise"]["end"])
        noise = torch.randn(hr.shape, generator=rng) * sigma
        hr, lr, noise = hr.to(self.device), lr.to(self.device), noise.to(self.device)
        w = v["losses"]

        self.discriminator.requires_grad_(False)
        sr = self.generator(lr)
        pixel = F.l1_loss(sr, hr)
        with torch.set_grad_enabled(self.fe_trainable):
            target_features = self.feature_extractor(hr)
        feature = F.l1_loss(self.feature_extractor(sr), target_features)
        adversarial = losses.generator_adversarial_loss(self.discriminator(hr + noise), self.discriminator(sr + noise))
        loss_g = w["pixel"] * pixel + w["adversarial"] * adversarial + w["feature"] * feature
        self.opt_g.zero_grad(set_to_none=True)
        loss_g.backward()
        self.opt_g.step()

        self.discriminator.requires_grad_(True)
        d_real = self.discriminator(hr + noise)
        d_fake = self.discriminator(sr.detach() + noise)
        loss_d = losses.discriminator_loss(d_real, d_fake)
        self.opt_d.zero_grad(set_to_none=True)
        loss_d.backward()
        self.opt_d.step()

        real_rel, fake_rel = losses.relativistic_logits(d_real.detach(), d_fake.detach())
        seconds = time.perf_counter() - started
        self.step += 1
        return {"step": self.step, "loss_g": loss_g.item(), "loss_pixel": pixel.item(),
                "loss_adversarial": adversarial.item(), "loss_feature": feature.item(), "loss_d": loss_d.item(),
                "d_real_minus_fake": real_rel.mean().item(), "d_fake_minus_real": fake_rel.mean().item(),
                "instance_noise": sigma, "lr": self.opt_g.param_groups[0]["lr"], "seconds": seconds,
                "voxels_per_s": hr.numel() / seconds}

    def generator_bundle(self) -> dict:
        return {"generator": copy.deepcopy(self.generator_config),
                "state_dict": {k: v.cpu() for k, v in self.generator.state_dict().items()}}


def _check_finite(row: dict, checkpoint: Path) -> None:
    bad = [k for k in ("loss_g", "loss_d") if not np.isfinite(row[k])]
    if bad:
        raise MrisrError(f"training diverged at step {row['step']}: {', '.join(bad)} is not finite; the last good "
                         f"checkpoint is kept at {checkpoint}. Fix: lower optimiser.lr or the adversarial weight")


def train(volumes: list[np.ndarray], variant: dict, settings: TrainSettings, out_dir: str | Path,
          progress: bool = True) -> dict[str, Path]:
    """Train (or resume) one GAN variant; write ``model.pt`` and ``train_log.csv`` into ``out_dir``."""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    checkpoint = out / "checkpoint.pt"
    trainer = GanTrainer(variant, settings)
    for name, n in trainer.parameter_counts().items():
        log.info("%s: %s parameters", name, f"{n:,}")
    if trainer.try_resume(checkpoint):
        log.info("resumed from %s at step %d", checkpoint, trainer.step)

    stop = {"signal": None}

    def request_stop(signum, _frame):
        stop["signal"] = signum

    previous = {sig: signal.signal(sig, request_stop) for sig in (signal.SIGTERM, signal.SIGINT)}
    try:
        with tqdm(total=settings.steps, initial=trainer.step, desc="train", unit="step", disable=not progress) as bar:
            while trainer.step < settings.steps:
                row = trainer.train_step(volumes)
                _check_finite(row, checkpoint)
                trainer.rows.append(row)
                bar.update(1)
                bar.set_postfix(loss_g=f"{row['loss_g']:.3f}", loss_d=f"{row['loss_d']:.3f}")
                if trainer.step % settings.checkpoint_every == 0 or trainer.step == settings.steps:
                    trainer.save_checkpoint(checkpoint)
                if stop["signal"] is not None:
                    trainer.save_checkpoint(checkpoint)
                    raise Interrupted(f"stopped by signal {stop['signal']} at step {trainer.step}; checkpoint "
                                      f"written to {checkpoint}. Fix: rerun the same command to resume")
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)

    model = out / "model.pt"
    with atomic_path(model) as tmp:
        torch.save(trainer.generator_bundle(), tmp)
    return {"model": model, "log": write_table(pd.DataFrame(trainer.rows), out / "train_log.csv")}
