"""mDCSRN generator (Chen et al., MICCAI 2018): a multi-level densely connected network, the generator of the
WGAN-GP baseline and, with ``reconstruction: sub_pixel`` and ``batch_norm: true``, MTVNet's mDCSRN
(``models/mDCSRN_GAN.py``: ``MultiLevelDenseNet``, ``upsample_method`` ``pixelshuffle3D``).

Each dense block is ``units`` × ([BatchNorm], ELU, 3³ conv of ``growth`` channels), densely concatenated; a 1³
compressor squeezes everything produced so far (the first conv's output and every earlier block's) to
``2·growth`` channels before each later block. How the HR volume is made from all levels is :class:`Reconstruction`.
"""

from __future__ import annotations

import enum

import torch
import torch.nn.functional as F
from torch import nn

from mrisr.models.pixel_shuffle import PixelShuffle3d
from mrisr.scale import Scale, as_scale, stages, volume


class Reconstruction(str, enum.Enum):
    #: Chen et al.'s: the LR volume interpolated (trilinear) onto the HR grid first, a 1³ conv from every level
    INTERPOLATE_FIRST = "interpolate_first"
    #: MTVNet's: the network runs on the LR grid; a 1³ bottleneck to 8·growth channels, then per upsampling stage
    #: (x4: two x2) a 3³ conv (the first stage's to 4·growth), a 3³ conv to 4·growth·(stage factors) channels
    #: initialised by ICNR, a 3D pixel shuffle and a PReLU; a 3³ conv makes the HR volume
    SUB_PIXEL = "sub_pixel"


class DenseBlock(nn.Module):
    def __init__(self, channels: int, growth: int, units: int, batch_norm: bool):
        super().__init__()
        self.units = nn.ModuleList(
            nn.Sequential(*([nn.BatchNorm3d(channels + i * growth)] if batch_norm else []), nn.ELU(),
                          nn.Conv3d(channels + i * growth, growth, 3, padding=1))
            for i in range(units)
        )
        self.out_channels = channels + units * growth

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        features = x
        for unit in self.units:
            features = torch.cat([features, unit(features)], dim=1)
        return features


def icnr_(weight: torch.Tensor, copies: int, std: float = 0.02) -> None:
    """ICNR (Aitken et al. 2017) as MTVNet draws it: one N(0, std) kernel per output channel, repeated over the
    ``copies`` channels that the pixel shuffle spreads over that channel's sub-voxels, so that at the start every
    HR voxel of an LR voxel's block gets the same value (no checkerboard)."""
    with torch.no_grad():
        kernel = torch.empty(weight.shape[0] // copies, *weight.shape[1:]).normal_(0.0, std)
        weight.copy_(kernel.repeat_interleave(copies, dim=0))


class SubPixelStage(nn.Module):
    """[3³ conv to ``channels``], 3³ conv to ``channels``·(factors' product) (ICNR), 3D pixel shuffle, PReLU."""

    def __init__(self, in_channels: int, channels: int, factors: Scale):
        super().__init__()
        self.reduce = nn.Conv3d(in_channels, channels, 3, padding=1) if in_channels != channels else nn.Identity()
        self.expand = nn.Conv3d(channels, channels * volume(factors), 3, padding=1)
        icnr_(self.expand.weight, volume(factors))
        self.shuffle = PixelShuffle3d(factors)
        self.act = nn.PReLU(channels)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.act(self.shuffle(self.expand(self.reduce(x))))


class MDCSRNGenerator(nn.Module):
    def __init__(self, growth: int, blocks: int, units: int, scale: int | Scale, batch_norm: bool = False,
                 reconstruction: Reconstruction = Reconstruction.INTERPOLATE_FIRST, in_channels: int = 1):
        super().__init__()
        self.scale, self.reconstruction = as_scale(scale), Reconstruction(reconstruction)
        width = 2 * growth
        self.head = nn.Conv3d(in_channels, width, 3, padding=1)
        self.blocks = nn.ModuleList()
        self.compressors = nn.ModuleList()
        produced = width
        for b in range(blocks):
            if b > 0:
                self.compressors.append(nn.Conv3d(produced, width, 1))
            block = DenseBlock(width, growth, units, batch_norm)
            self.blocks.append(block)
            produced += block.out_channels
        if self.reconstruction is Reconstruction.INTERPOLATE_FIRST:
            self.bottleneck, self.stages = nn.Identity(), nn.ModuleList()
            self.reconstruct = nn.Conv3d(produced, in_channels, 1)
        else:
            self.bottleneck = nn.Conv3d(produced, 8 * growth, 1)
            channels = [8 * growth] + [4 * growth] * len(stages(self.scale))
            self.stages = nn.ModuleList(SubPixelStage(channels[i], channels[i + 1], factors)
                                        for i, factors in enumerate(stages(self.scale)))
            self.reconstruct = nn.Conv3d(channels[-1], in_channels, 3, padding=1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.reconstruction is Reconstruction.INTERPOLATE_FIRST:
            x = F.interpolate(x, scale_factor=tuple(float(f) for f in self.scale), mode="trilinear",
                              align_corners=False)
        features = [self.head(x)]
        for b, block in enumerate(self.blocks):
            block_in = features[0] if b == 0 else self.compressors[b - 1](torch.cat(features, dim=1))
            features.append(block(block_in))
        z = self.bottleneck(torch.cat(features, dim=1))
        for stage in self.stages:
            z = stage(z)
        return self.reconstruct(z)


def mdcsrn(growth: int, blocks: int, units: int, scale: int | list[int], batch_norm: bool,
           reconstruction: str) -> MDCSRNGenerator:
    return MDCSRNGenerator(growth, blocks, units, scale, batch_norm, Reconstruction(reconstruction))
