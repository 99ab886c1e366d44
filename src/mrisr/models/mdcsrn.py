"""mDCSRN generator (Chen et al., MICCAI 2018): a multi-level densely connected network, the generator of the
WGAN-GP baseline.

As in the original, the network works on the LR volume interpolated onto the HR grid (trilinear here). Each
dense block is ``units`` × (ELU, 3³ conv of ``growth`` channels), densely concatenated; a 1³ compressor
squeezes everything produced so far (the first conv's output and every earlier block's) to ``2·growth``
channels before each later block, and a 1³ conv reconstructs from all of it.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from mrisr.scale import Scale, as_scale


class DenseBlock(nn.Module):
    def __init__(self, channels: int, growth: int, units: int):
        super().__init__()
        self.units = nn.ModuleList(
            nn.Sequential(nn.ELU(), nn.Conv3d(channels + i * growth, growth, 3, padding=1)) for i in range(units)
        )
        self.out_channels = channels + units * growth

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        features = x
        for unit in self.units:
            features = torch.cat([features, unit(features)], dim=1)
        return features


class MDCSRNGenerator(nn.Module):
    def __init__(self, growth: int, blocks: int, units: int, scale: int | Scale, in_channels: int = 1):
        super().__init__()
        self.scale = as_scale(scale)
        width = 2 * growth
        self.head = nn.Conv3d(in_channels, width, 3, padding=1)
        self.blocks = nn.ModuleList()
        self.compressors = nn.ModuleList()
        produced = width
        for b in range(blocks):
            if b > 0:
                self.compressors.append(nn.Conv3d(produced, width, 1))
            block = DenseBlock(width, growth, units)
            self.blocks.append(block)
            produced += block.out_channels
        self.reconstruct = nn.Conv3d(produced, in_channels, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = F.interpolate(x, scale_factor=tuple(float(f) for f in self.scale), mode="trilinear", align_corners=False)
        features = [self.head(x)]
        for b, block in enumerate(self.blocks):
            block_in = features[0] if b == 0 else self.compressors[b - 1](torch.cat(features, dim=1))
            features.append(block(block_in))
        return self.reconstruct(torch.cat(features, dim=1))


def mdcsrn(growth: int, blocks: int, units: int, scale: int | list[int]) -> MDCSRNGenerator:
    return MDCSRNGenerator(growth, blocks, units, scale)
