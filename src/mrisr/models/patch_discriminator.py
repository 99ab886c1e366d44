"""The authors' 4-stage SRGAN/ESRGAN-style 3D patch discriminator (three-player GAN, ESRGAN, WGAN-GP critic)."""

from __future__ import annotations

import enum

import torch
from torch import nn
from torch.nn.utils import spectral_norm  # the authors': v from u, then u from v (the parametrization: u first)

from mrisr.models.blocks import initialise


class Norm(str, enum.Enum):
    INSTANCE = "instance"
    BATCH = "batch"
    SPECTRAL = "spectral"


class PatchDiscriminator(nn.Module):
    """Per stage: conv k3 s1 -> [norm] -> LReLU(0.2) -> conv k3 s2 -> norm -> LReLU(0.2); then conv to 1 logit map.

    Each stage halves the size: a 64³ patch gives 4³ logits with the default four stages. With spectral norm,
    ``spectral_norm_output`` also wraps the last conv (SN-GAN normalises every layer; the authors' code leaves
    that one out). Spectral norm is the hook ``torch.nn.utils.spectral_norm``, as theirs: the parametrization
    API's power iteration runs in the other order, with the same limit but other logits while training. ``init='xavier'``: the authors' WGAN-GP ``weights_init`` (their critic); ``'default'``: PyTorch's.
    """

    def __init__(self, channels: tuple[int, ...], norm: str, spectral_norm_output: bool, init: str,
                 in_channels: int = 1):
        super().__init__()
        norm = Norm(norm)
        wrap = spectral_norm if norm is Norm.SPECTRAL else (lambda m: m)

        def normalise(c: int) -> nn.Module:
            if norm is Norm.INSTANCE:
                return nn.InstanceNorm3d(c, affine=True)
            if norm is Norm.BATCH:
                return nn.BatchNorm3d(c)
            return nn.Identity()

        layers: list[nn.Module] = []
        cin = in_channels
        for i, cout in enumerate(channels):
            layers += [wrap(nn.Conv3d(cin, cout, 3, padding=1))]
            if i > 0:
                layers += [normalise(cout)]
            layers += [nn.LeakyReLU(0.2), wrap(nn.Conv3d(cout, cout, 3, stride=2, padding=1)), normalise(cout),
                       nn.LeakyReLU(0.2)]
            cin = cout
        output = nn.Conv3d(cin, 1, 3, padding=1)
        layers += [wrap(output) if spectral_norm_output else output]
        self.net = nn.Sequential(*layers)
        initialise(self, init)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(x)


def patch(channels: list[int], norm: str, spectral_norm_output: bool, init: str) -> PatchDiscriminator:
    return PatchDiscriminator(tuple(channels), norm, spectral_norm_output, init)
