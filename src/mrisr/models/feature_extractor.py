"""3D ResNet-10 in the MedicalNet layout (Med3D), without its segmentation head.

Layers 3 and 4 keep stride 1 and dilate instead (2 and 4), as MedicalNet does, so a MedicalNet
``resnet_10.pth`` state dict loads into it unchanged.
"""

from __future__ import annotations

from pathlib import Path

import torch
from torch import nn

from mrisr.errors import InputError
from mrisr.io import load_torch


class BasicBlock(nn.Module):
    def __init__(self, cin: int, cout: int, stride: int = 1, dilation: int = 1):
        super().__init__()
        self.conv1 = nn.Conv3d(cin, cout, 3, stride=stride, padding=dilation, dilation=dilation, bias=False)
        self.bn1 = nn.BatchNorm3d(cout)
        self.conv2 = nn.Conv3d(cout, cout, 3, padding=dilation, dilation=dilation, bias=False)
        self.bn2 = nn.BatchNorm3d(cout)
        self.relu = nn.ReLU(inplace=True)
        self.downsample = None
        if stride != 1 or cin != cout:
            self.downsample = nn.Sequential(nn.Conv3d(cin, cout, 1, stride=stride, bias=False), nn.BatchNorm3d(cout))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        residual = x if self.downsample is None else self.downsample(x)
        out = self.relu(self.bn1(self.conv1(x)))
        return self.relu(self.bn2(self.conv2(out)) + residual)


class ResNet10(nn.Module):
    """``init='kaiming'``: conv weights kaiming-normal (fan_out), as MedicalNet's and the authors' code start them;
    ``'default'``: PyTorch's initialisation."""

    def __init__(self, channels: int, init: str, in_channels: int = 1):
        super().__init__()
        widths = [channels, channels * 2, channels * 4, channels * 8]
        self.conv1 = nn.Conv3d(in_channels, channels, 7, stride=2, padding=3, bias=False)
        self.bn1 = nn.BatchNorm3d(channels)
        self.relu = nn.ReLU(inplace=True)
        self.maxpool = nn.MaxPool3d(3, stride=2, padding=1)
        self.layer1 = nn.Sequential(BasicBlock(channels, widths[0]))
        self.layer2 = nn.Sequential(BasicBlock(widths[0], widths[1], stride=2))
        self.layer3 = nn.Sequential(BasicBlock(widths[1], widths[2], dilation=2))
        self.layer4 = nn.Sequential(BasicBlock(widths[2], widths[3], dilation=4))
        if init == "kaiming":
            for module in self.modules():
                if isinstance(module, nn.Conv3d):
                    nn.init.kaiming_normal_(module.weight, mode="fan_out")
        elif init != "default":
            raise ValueError(f"init must be 'kaiming' or 'default', got {init!r}")

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.maxpool(self.relu(self.bn1(self.conv1(x))))
        return self.layer4(self.layer3(self.layer2(self.layer1(x))))


def load_medicalnet_weights(model: nn.Module, path: str | Path) -> nn.Module:
    """Load a MedicalNet checkpoint (``{'state_dict': ...}`` with DataParallel ``module.`` prefixes)."""
    state = load_torch(path, "download the weights again")
    state = state.get("state_dict", state)
    state = {k.removeprefix("module."): v for k, v in state.items() if not k.removeprefix("module.").startswith("conv_seg")}
    missing, unexpected = model.load_state_dict(state, strict=False)
    if missing or unexpected:
        raise InputError(path, f"does not fit ResNet-10 (missing {missing[:3]}, unexpected {unexpected[:3]})",
                         "point feature_extractor.weights to a MedicalNet resnet_10 checkpoint")
    return model


def resnet10(channels: int, init: str) -> ResNet10:
    return ResNet10(channels, init)
