"""Building blocks shared by several networks."""

from __future__ import annotations

import torch
from torch import nn


def conv3(cin: int, cout: int) -> nn.Conv3d:
    return nn.Conv3d(cin, cout, 3, padding=1)


def initialise(network: nn.Module, init: str) -> None:
    """``'xavier'``: the authors' WGAN-GP ``weights_init`` (conv weights xavier-uniform, zero bias; BatchNorm
    γ ~ N(0, 0.02), β = 0); ``'default'``: leave PyTorch's initialisation."""
    if init == "default":
        return
    if init != "xavier":
        raise ValueError(f"init must be 'default' or 'xavier', got {init!r}")
    for module in network.modules():
        if isinstance(module, nn.Conv3d):
            nn.init.xavier_uniform_(module.weight)
            nn.init.zeros_(module.bias)
        elif isinstance(module, nn.BatchNorm3d):
            nn.init.normal_(module.weight, 0.0, 0.02)
            nn.init.zeros_(module.bias)


class DenseResidualBlock(nn.Module):
    """Five densely connected convs; the output is scaled by ``res_scale`` and added to the input."""

    def __init__(self, channels: int, growth: int, res_scale: float = 0.2, negative_slope: float = 0.01):
        super().__init__()
        self.convs = nn.ModuleList(
            conv3(channels + i * growth, growth if i < 4 else channels) for i in range(5)
        )
        # The authors' code uses nn.LeakyReLU() with its default slope 0.01 here (ESRGAN's and MTVNet's: 0.2).
        self.act = nn.LeakyReLU(negative_slope, inplace=True)  # on a fresh conv output: no copy, same values, gradients
        self.res_scale = res_scale

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if not torch.is_grad_enabled() and x.shape[0] == 1 and x.is_contiguous():
            return self._forward_in_place(x)
        features = [x]
        for i, conv in enumerate(self.convs):
            out = conv(torch.cat(features, dim=1))
            if i < 4:
                features.append(self.act(out))
        return out * self.res_scale + x

    def _forward_in_place(self, x: torch.Tensor) -> torch.Tensor:
        """Inference: each activation written once into one buffer whose leading channels are the next conv's input.

        The same values as the concatenations, without a new, ever wider copy per conv (memory and bandwidth).
        """
        channels, growth = x.shape[1], self.convs[0].out_channels
        buffer = x.new_empty((1, channels + 4 * growth, *x.shape[2:]))
        buffer[:, :channels] = x
        for i, conv in enumerate(self.convs):
            out = conv(buffer[:, :channels + i * growth])
            if i < 4:
                buffer[:, channels + i * growth:channels + (i + 1) * growth] = self.act(out)
        return out.mul_(self.res_scale).add_(x)
