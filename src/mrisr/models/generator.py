"""3D RRDB generator (ESRGAN in 3D), as in the authors' three-player GAN and DISGAN code."""

from __future__ import annotations

import math

import torch
from torch import nn

from mrisr.models.blocks import DenseResidualBlock, conv3, initialise
from mrisr.models.pixel_shuffle import PixelShuffle3d


class RRDB(nn.Module):
    """Three dense residual blocks (then BatchNorm with ``batch_norm``), scaled and added to the input."""

    def __init__(self, channels: int, growth: int, res_scale: float = 0.2, batch_norm: bool = False):
        super().__init__()
        blocks = [DenseResidualBlock(channels, growth, res_scale) for _ in range(3)]
        self.blocks = nn.Sequential(*blocks, *([nn.BatchNorm3d(channels)] if batch_norm else []))
        self.res_scale = res_scale

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.blocks(x) * self.res_scale + x


class RRDBGenerator(nn.Module):
    """conv -> RRDBs -> conv (+ global skip) -> [conv to 8·C, LeakyReLU, 3D pixel shuffle] per x2 -> conv -> conv.

    ``batch_norm`` ends each RRDB in BatchNorm3d and ``init='xavier'`` starts it as the authors' WGAN-GP baseline
    generator (two such RRDBs; MRSRGAN). ``init='default'`` keeps PyTorch's initialisation (their 3-player G).
    """

    def __init__(self, channels: int, growth: int, blocks: int, scale: int, batch_norm: bool, init: str,
                 in_channels: int = 1):
        super().__init__()
        if scale & (scale - 1):
            raise ValueError(f"scale must be a power of two, got {scale}")
        self.scale = scale
        self.head = conv3(in_channels, channels)
        self.body = nn.Sequential(*(RRDB(channels, growth, batch_norm=batch_norm) for _ in range(blocks)))
        self.body_out = conv3(channels, channels)
        stages = []
        for _ in range(scale.bit_length() - 1):
            stages += [conv3(channels, channels * 8), nn.LeakyReLU(inplace=True), PixelShuffle3d(2)]
        self.upsample = nn.Sequential(*stages)
        self.tail = nn.Sequential(conv3(channels, channels), nn.LeakyReLU(inplace=True), conv3(channels, in_channels))
        initialise(self, init)

    @property
    def reconstruct_reach(self) -> int:
        """LR voxels of context :meth:`reconstruct` needs around a voxel: one 3³ conv per upsampling stage at its
        grid and the tail's two at the HR grid."""
        stages = self.scale.bit_length() - 1
        return math.ceil(sum(0.5**i for i in range(stages)) + 2 / self.scale)

    def lr_features(self, x: torch.Tensor) -> torch.Tensor:
        """Everything on the LR grid (head, RRDBs, global skip): the wide-reaching, costly part."""
        head = self.head(x)
        return self.body_out(self.body(head)) + head

    def reconstruct(self, features: torch.Tensor) -> torch.Tensor:
        """Upsampling and tail: little compute, but the HR grid's memory."""
        return self.tail(self.upsample(features))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.reconstruct(self.lr_features(x))


def rrdb(channels: int, growth: int, blocks: int, scale: int, batch_norm: bool, init: str) -> RRDBGenerator:
    return RRDBGenerator(channels, growth, blocks, scale, batch_norm, init)
