"""Building blocks shared by several networks."""

from __future__ import annotations

import torch
from torch import nn


def conv3(cin: int, cout: int) -> nn.Conv3d:
    return nn.Conv3d(cin, cout, 3, padding=1)


class DenseResidualBlock(nn.Module):
    """Five densely connected convs; the output is scaled by ``res_scale`` and added to the input."""

    def __init__(self, channels: int, growth: int, res_scale: float = 0.2):
        super().__init__()
        self.convs = nn.ModuleList(
            conv3(channels + i * growth, growth if i < 4 else channels) for i in range(5)
        )
        # The authors' code uses nn.LeakyReLU() with its default slope 0.01 here (not ESRGAN's 0.2).
        self.act = nn.LeakyReLU()
        self.res_scale = res_scale

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        features = [x]
        for i, conv in enumerate(self.convs):
            out = conv(torch.cat(features, dim=1))
            if i < 4:
                features.append(self.act(out))
        return out * self.res_scale + x
