"""DISGAN's discriminator: a 3D U-Net whose encoder levels take in 3D Haar wavelet bands; voxel-wise logits."""

from __future__ import annotations

import torch
from torch import nn

from mrisr.models.blocks import DenseResidualBlock
from mrisr.models.wavelets import haar_dwt3


class WaveletUnit(nn.Module):
    """DISGAN's DWT unit: one Haar level, then a 1×1×1 conv on the low band and one on the seven high bands."""

    def __init__(self, in_channels: int, out_channels: int):
        super().__init__()
        self.low = nn.Conv3d(in_channels, out_channels, 1)
        self.high = nn.Conv3d(7 * in_channels, out_channels, 1)

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        bands = haar_dwt3(x)
        c = x.shape[1]
        return self.low(bands[:, :c]), self.high(bands[:, c:])


def _unet_stage(cin: int, cout: int, resample: nn.Module, act: nn.Module, batch_norm: bool) -> nn.Sequential:
    layers = [act, resample, DenseResidualBlock(cout, cout)]
    if batch_norm:
        layers.append(nn.BatchNorm3d(cout))
    return nn.Sequential(*layers)


class WaveletUNetDiscriminator(nn.Module):
    """DISGAN's discriminator: a 3D U-Net with voxel-wise logits whose encoder levels take in wavelet bands.

    At each encoder level a DWT unit turns the previous level's features into a low band, concatenated to the
    encoder features, and a high band, concatenated to the matching decoder skip. ``depth`` levels halve the
    size each (the authors: 6, for 64³ patches); widths grow as ``channels·min(2^i, 8)``. ``wavelets=False``
    drops the DWT units and nothing else (the ablation). ``init='normal'`` draws every Conv3d weight from
    N(0, 1) with zero bias, as the authors' code does; ``'default'`` keeps PyTorch's initialisation.

    Each encoder stage after the first begins with a LeakyReLU. ``activated_skips=True`` (the authors' code, whose
    activation runs in place on the previous level's output before that output's DWT unit and skip use it) feeds
    the DWT unit and the skip connection the activated output; ``False``, the raw one (the usual U-Net).
    """

    def __init__(self, channels: int, depth: int, wavelets: bool, init: str, activated_skips: bool,
                 in_channels: int = 1):
        super().__init__()
        if depth < 2:
            raise ValueError(f"depth must be at least 2, got {depth}")
        widths = [in_channels] + [channels * min(2**i, 8) for i in range(depth)]
        bands = [max(widths[i] // 8, 1) if wavelets else 0 for i in range(depth - 1)]
        self.wavelets = wavelets
        self.activated_skips = activated_skips
        self.stem = nn.Sequential(nn.Conv3d(in_channels, channels, 3, padding=1), nn.BatchNorm3d(channels))
        self.dwt = nn.ModuleList(WaveletUnit(widths[i], bands[i]) for i in range(depth - 1)) if wavelets else None
        down = [nn.Conv3d(channels, widths[1] - bands[0], 4, 2, 1, bias=False)]
        for i in range(1, depth):
            cout = widths[i + 1] - (bands[i] if i < depth - 1 else 0)
            down.append(_unet_stage(widths[i], cout, nn.Conv3d(widths[i], cout, 4, 2, 1, bias=False),
                                    nn.LeakyReLU(0.2), batch_norm=i < depth - 1))
        self.down = nn.ModuleList(down)
        up = [_unet_stage(widths[depth], widths[depth],
                          nn.ConvTranspose3d(widths[depth], widths[depth], 4, 2, 1, bias=False), nn.ReLU(), True)]
        previous = widths[depth]
        for i in range(depth - 1, 1, -1):
            cin = previous + widths[i] + bands[i - 1]
            up.append(_unet_stage(cin, widths[i - 1], nn.ConvTranspose3d(cin, widths[i - 1], 4, 2, 1, bias=False),
                                  nn.ReLU(), True))
            previous = widths[i - 1]
        cin = previous + widths[1] + bands[0]
        up.append(nn.Sequential(nn.ReLU(), nn.Upsample(scale_factor=2, mode="trilinear"), DenseResidualBlock(cin, cin),
                                nn.Conv3d(cin, 2 * channels, 1, bias=False), nn.BatchNorm3d(2 * channels)))
        self.up = nn.ModuleList(up)
        self.tail = nn.Sequential(nn.Conv3d(3 * channels, 2 * channels, 3, padding=1), nn.BatchNorm3d(2 * channels),
                                  nn.Conv3d(2 * channels, 1, 3, padding=1))
        if init == "normal":
            for module in self.modules():
                if isinstance(module, nn.Conv3d):
                    nn.init.normal_(module.weight, 0.0, 1.0)
                    if module.bias is not None:
                        nn.init.zeros_(module.bias)
        elif init != "default":
            raise ValueError(f"init must be 'normal' or 'default', got {init!r}")

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        stem = self.stem(x)
        skips, highs = [], []
        for i, stage in enumerate(self.down):
            if i == 0:
                dwt_input, out = x, stage(stem)
            else:
                activated = stage[0](skips[-1])  # the stage's LeakyReLU
                dwt_input = activated if self.activated_skips else skips[-1]
                skips[-1] = dwt_input
                out = stage[1:](activated)
            if self.wavelets and i < len(self.dwt):
                low, high = self.dwt[i](dwt_input)
                out = torch.cat([out, low], dim=1)
                highs.append(high)
            skips.append(out)
        y = self.up[0](skips[-1])
        for j, stage in enumerate(self.up[1:]):
            level = len(skips) - 2 - j
            parts = [y, skips[level]] + ([highs[level]] if self.wavelets else [])
            y = stage(torch.cat(parts, dim=1))
        return self.tail(torch.cat([y, stem], dim=1))


def wavelet_unet(channels: int, depth: int, wavelets: bool, init: str, activated_skips: bool):
    return WaveletUNetDiscriminator(channels, depth, wavelets, init, activated_skips)
