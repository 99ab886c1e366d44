"""Relativistic average GAN losses (BCE with logits), as in the authors' ``ln_DDP_train.py``.

Means of the other class are taken over the batch axis only, so patch and voxel-wise logits keep
their spatial layout.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F


def relativistic_logits(real: torch.Tensor, fake: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """(D(x_r) - mean D(x_f), D(x_f) - mean D(x_r))."""
    return real - fake.mean(dim=0, keepdim=True), fake - real.mean(dim=0, keepdim=True)


def discriminator_loss(real: torch.Tensor, fake: torch.Tensor) -> torch.Tensor:
    real_rel, fake_rel = relativistic_logits(real, fake)
    return 0.5 * (F.binary_cross_entropy_with_logits(real_rel, torch.ones_like(real_rel))
                  + F.binary_cross_entropy_with_logits(fake_rel, torch.zeros_like(fake_rel)))


def generator_adversarial_loss(real: torch.Tensor, fake: torch.Tensor) -> torch.Tensor:
    """Only the fake term, real logits detached: the authors' generator loss."""
    fake_rel = fake - real.detach().mean(dim=0, keepdim=True)
    return F.binary_cross_entropy_with_logits(fake_rel, torch.ones_like(fake_rel))
