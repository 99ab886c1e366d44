"""Pixel and adversarial losses, chosen by ``losses.pixel_loss`` and ``losses.gan`` in a variant's config.

- ``relativistic``: relativistic average GAN with BCE on logits, as in the authors' ``ln_DDP_train.py``;
  the other class's mean is over the batch axis only, so patch and voxel-wise logits keep their layout,
  and the generator's term uses only the fake logits (real ones detached), as the authors did.
- ``standard``: the non-saturating GAN of Goodfellow et al. (the ablation).
- ``wgan_gp``: Wasserstein critic with gradient penalty (mDCSRN-WGAN baseline).
"""

from __future__ import annotations

import enum
from typing import Callable

import torch
import torch.nn.functional as F

#: ``losses.pixel_loss``: L1 (the authors' 3-player GAN, ESRGAN) or MSE (the WGAN-GP baseline).
PIXEL_LOSSES = {"l1": F.l1_loss, "mse": F.mse_loss}


class GanLoss(str, enum.Enum):
    RELATIVISTIC = "relativistic"
    STANDARD = "standard"
    WGAN_GP = "wgan_gp"


class UpdateOrder(str, enum.Enum):
    """Which player steps first in a training step (the other then steps against its update)."""

    GENERATOR_FIRST = "generator_first"  # the authors' 3-player GAN and DISGAN
    DISCRIMINATOR_FIRST = "discriminator_first"  # the authors' WGAN-GP baseline


BatchMean = Callable[[torch.Tensor], torch.Tensor]


def batch_mean(x: torch.Tensor) -> torch.Tensor:
    return x.mean(dim=0, keepdim=True)


def relativistic_logits(real: torch.Tensor, fake: torch.Tensor,
                        mean: BatchMean = batch_mean) -> tuple[torch.Tensor, torch.Tensor]:
    """(D(x_r) - mean D(x_f), D(x_f) - mean D(x_r)); ``mean`` may reach over processes."""
    return real - mean(fake), fake - mean(real)


def _bce(logits: torch.Tensor, target: float) -> torch.Tensor:
    return F.binary_cross_entropy_with_logits(logits, torch.full_like(logits, target))


def discriminator_loss(real: torch.Tensor, fake: torch.Tensor, kind: str | GanLoss = GanLoss.RELATIVISTIC,
                       mean: BatchMean = batch_mean) -> torch.Tensor:
    """D's loss from its logits on real and fake (without the gradient penalty, see :func:`gradient_penalty`)."""
    kind = GanLoss(kind)
    if kind is GanLoss.RELATIVISTIC:
        real_rel, fake_rel = relativistic_logits(real, fake, mean)
        return 0.5 * (_bce(real_rel, 1.0) + _bce(fake_rel, 0.0))
    if kind is GanLoss.STANDARD:
        return 0.5 * (_bce(real, 1.0) + _bce(fake, 0.0))
    return fake.mean() - real.mean()


def generator_adversarial_loss(real: torch.Tensor | None, fake: torch.Tensor,
                               kind: str | GanLoss = GanLoss.RELATIVISTIC, mean: BatchMean = batch_mean) -> torch.Tensor:
    """G's adversarial loss from D's logits; ``real`` is needed (and read) by the relativistic loss only."""
    kind = GanLoss(kind)
    if kind is GanLoss.RELATIVISTIC:
        return _bce(fake - mean(real.detach()), 1.0)
    if kind is GanLoss.STANDARD:
        return _bce(fake, 1.0)
    return -fake.mean()


def gradient_penalty(critic: Callable[[torch.Tensor], torch.Tensor], real: torch.Tensor, fake: torch.Tensor,
                     alpha: torch.Tensor) -> torch.Tensor:
    """mean over samples of (‖∇ critic(x̂)‖₂ − 1)², x̂ = α·real + (1 − α)·fake with one α per sample."""
    alpha = alpha.reshape(-1, *([1] * (real.ndim - 1))).to(real)
    mixed = (alpha * real + (1 - alpha) * fake).requires_grad_(True)
    (grad,) = torch.autograd.grad(critic(mixed).sum(), mixed, create_graph=True)
    return ((grad.flatten(1).norm(dim=1) - 1) ** 2).mean()
