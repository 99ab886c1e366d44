"""3D RRDB generator (ESRGAN in 3D), as in the authors' three-player GAN and DISGAN code."""

from __future__ import annotations

import enum
import math

import torch
from torch import nn

from mrisr.models.blocks import DenseResidualBlock, conv3, initialise
from mrisr.models.pixel_shuffle import PixelShuffle3d
from mrisr.scale import Scale, as_scale, stages


class Upsampler(str, enum.Enum):
    #: ESRGAN in 3D, the authors': per stage a conv to C·abc channels, LeakyReLU, 3D pixel shuffle
    PIXEL_SHUFFLE = "pixel_shuffle"
    #: MTVNet's RRDBNet3D (models/RRDBNet3D_official.py): per stage nearest upsampling, a conv, LeakyReLU; the
    #: first stage's conv halves the channels, and the tail runs at C/2
    NEAREST_CONV = "nearest_conv"


class RRDB(nn.Module):
    """Three dense residual blocks (then BatchNorm with ``batch_norm``), scaled and added to the input."""

    def __init__(self, channels: int, growth: int, res_scale: float = 0.2, batch_norm: bool = False,
                 negative_slope: float = 0.01):
        super().__init__()
        blocks = [DenseResidualBlock(channels, growth, res_scale, negative_slope) for _ in range(3)]
        self.blocks = nn.Sequential(*blocks, *([nn.BatchNorm3d(channels)] if batch_norm else []))
        self.res_scale = res_scale

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.blocks(x) * self.res_scale + x


class RRDBGenerator(nn.Module):
    """conv -> RRDBs -> conv (+ global skip) -> [conv, LeakyReLU, 3D pixel shuffle] per stage -> conv -> conv.

    The stages are ESRGAN's: x4 is two x2 stages, x3 one; an axis of factor 1 is not upsampled (thick slices: only
    the through-plane axis), so a stage's conv makes C·(its factors' product) channels (8·C for x2 isotropic).

    ``batch_norm`` ends each RRDB in BatchNorm3d and ``init='xavier'`` starts it as the authors' WGAN-GP baseline
    generator (two such RRDBs; MRSRGAN). ``init='default'`` keeps PyTorch's initialisation (their 3-player G).
    ``upsampler`` ``nearest_conv`` with ``negative_slope`` 0.2 is MTVNet's RRDBNet3D, layer for layer.
    """

    def __init__(self, channels: int, growth: int, blocks: int, scale: int | Scale, batch_norm: bool, init: str,
                 upsampler: Upsampler = Upsampler.PIXEL_SHUFFLE, negative_slope: float = 0.01, in_channels: int = 1):
        super().__init__()
        self.scale, self.upsampler = as_scale(scale), Upsampler(upsampler)
        self.head = conv3(in_channels, channels)
        self.body = nn.Sequential(*(RRDB(channels, growth, batch_norm=batch_norm, negative_slope=negative_slope)
                                    for _ in range(blocks)))
        self.body_out = conv3(channels, channels)
        layers, width = [], channels
        for a, b, c in stages(self.scale):
            if self.upsampler is Upsampler.PIXEL_SHUFFLE:
                layers += [conv3(width, width * a * b * c), nn.LeakyReLU(negative_slope, inplace=True),
                           PixelShuffle3d((a, b, c))]
            else:
                narrower = channels // 2
                layers += [nn.Upsample(scale_factor=(a, b, c), mode="nearest"), conv3(width, narrower),
                           nn.LeakyReLU(negative_slope, inplace=True)]
                width = narrower
        self.upsample = nn.Sequential(*layers)
        self.tail = nn.Sequential(conv3(width, width), nn.LeakyReLU(negative_slope, inplace=True),
                                  conv3(width, in_channels))
        initialise(self, init)

    @property
    def reconstruct_reach(self) -> Scale:
        """LR voxels of context :meth:`reconstruct` needs around a voxel, per axis: one 3³ conv per upsampling stage
        (before its pixel shuffle, or after its nearest upsampling: on the stage's input or output grid) and the
        tail's two at the HR grid."""
        reach = []
        after = self.upsampler is Upsampler.NEAREST_CONV
        for axis, total in enumerate(self.scale):
            grid, voxels = 1, 0.0
            for stage in stages(self.scale):
                voxels += 1 / (grid * stage[axis] if after else grid)
                grid *= stage[axis]
            reach.append(math.ceil(voxels + 2 / total))
        return tuple(reach)  # type: ignore[return-value]

    def lr_features(self, x: torch.Tensor) -> torch.Tensor:
        """Everything on the LR grid (head, RRDBs, global skip): the wide-reaching, costly part."""
        head = self.head(x)
        return self.body_out(self.body(head)) + head

    def reconstruct(self, features: torch.Tensor) -> torch.Tensor:
        """Upsampling and tail: little compute, but the HR grid's memory."""
        return self.tail(self.upsample(features))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.reconstruct(self.lr_features(x))


def rrdb(channels: int, growth: int, blocks: int, scale: int | list[int], batch_norm: bool, init: str, upsampler: str,
         negative_slope: float) -> RRDBGenerator:
    return RRDBGenerator(channels, growth, blocks, scale, batch_norm, init, Upsampler(upsampler), negative_slope)
