"""Building blocks shared by several networks."""

from __future__ import annotations

import enum

import torch
from torch import nn


def conv3(cin: int, cout: int) -> nn.Conv3d:
    return nn.Conv3d(cin, cout, 3, padding=1)


class Init(str, enum.Enum):
    #: PyTorch's own initialisation (the authors' 3-player G)
    DEFAULT = "default"
    #: the authors' WGAN-GP ``weights_init``: conv weights xavier-uniform, zero bias; BatchNorm γ ~ N(0, 0.02), β = 0
    XAVIER = "xavier"
    #: ESRGAN's, as MTVNet's RRDBNet3D runs (KAIR's ``init_weights``, ``init_type`` kaiming_normal, ``init_gain``
    #: 0.1): conv weights Kaiming-normal (fan in, ReLU), clamped to ±1, times 0.1, zero bias; BatchNorm γ ~ U(0.1, 1)
    KAIMING_SCALED = "kaiming_scaled"


def initialise(network: nn.Module, init: str | Init) -> None:
    """Initialise ``network``'s convs and batch norms as :class:`Init` says (scaled-down residual branches keep a
    deep RRDB stable at the start)."""
    init = Init(init)
    if init is Init.DEFAULT:
        return
    for module in network.modules():
        if isinstance(module, nn.Conv3d) and init is Init.XAVIER:
            nn.init.xavier_uniform_(module.weight)
            nn.init.zeros_(module.bias)
        elif isinstance(module, nn.Conv3d):
            nn.init.kaiming_normal_(module.weight, a=0, mode="fan_in", nonlinearity="relu")
            with torch.no_grad():
                module.weight.clamp_(-1, 1).mul_(0.1)
            nn.init.zeros_(module.bias)
        elif isinstance(module, nn.BatchNorm3d) and init is Init.XAVIER:
            nn.init.normal_(module.weight, 0.0, 0.02)
            nn.init.zeros_(module.bias)
        elif isinstance(module, nn.BatchNorm3d):
            nn.init.uniform_(module.weight, 0.1, 1.0)
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
