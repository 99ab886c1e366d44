"""3D ResNet-10 in the MedicalNet layout (Med3D), its features taken after layer 4 or after MedicalNet's
segmentation head.

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


#: Output classes of the segmentation head as the MIDL 2022 code builds it (``num_seg_classes=32``).
SEGMENTATION_HEAD_CLASSES = 32


def segmentation_head(channels: int, classes: int = SEGMENTATION_HEAD_CLASSES) -> nn.Sequential:
    """MedicalNet's ``conv_seg``: a stride-2 transposed conv back up, two convs, BatchNorm and ReLU between."""
    return nn.Sequential(nn.ConvTranspose3d(channels, 32, 2, stride=2), nn.BatchNorm3d(32), nn.ReLU(inplace=True),
                         nn.Conv3d(32, 32, 3, padding=1, bias=False), nn.BatchNorm3d(32), nn.ReLU(inplace=True),
                         nn.Conv3d(32, classes, 1, bias=False))


class ResNet10(nn.Module):
    """``init='kaiming'``: conv weights kaiming-normal (fan_out), as MedicalNet's and the authors' code start them;
    ``'default'``: PyTorch's initialisation. ``output``: ``layer4`` (the 2023 code, which comments the head out) or
    ``segmentation_head`` (MIDL 2022's code: MRSRGAN mains/model/model_pretrain_resnet.py lines 145-169, 213)."""

    def __init__(self, channels: int, init: str, output: str, in_channels: int = 1):
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
        if output == "segmentation_head":  # built after layer 4, before the init loop: the authors' order of draws
            self.conv_seg = segmentation_head(widths[3])
        elif output != "layer4":
            raise ValueError(f"output must be 'layer4' or 'segmentation_head', got {output!r}")
        if init == "kaiming":
            for module in self.modules():
                if isinstance(module, nn.Conv3d):
                    nn.init.kaiming_normal_(module.weight, mode="fan_out")
        elif init != "default":
            raise ValueError(f"init must be 'kaiming' or 'default', got {init!r}")

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.maxpool(self.relu(self.bn1(self.conv1(x))))
        x = self.layer4(self.layer3(self.layer2(self.layer1(x))))
        return self.conv_seg(x) if hasattr(self, "conv_seg") else x


def load_medicalnet_weights(model: nn.Module, path: str | Path) -> nn.Module:
    """Load a MedicalNet checkpoint (``{'state_dict': ...}`` with DataParallel ``module.`` prefixes). Its
    segmentation head's weights are loaded into a model with a head where the file has them (else the head keeps its
    initial weights, as in the MIDL 2022 code, which loads none)."""
    state = load_torch(path, "download the weights again")
    state = {k.removeprefix("module."): v for k, v in state.get("state_dict", state).items()}
    head_in_file = any(k.startswith("conv_seg.") for k in state)
    if not (hasattr(model, "conv_seg") and head_in_file):
        state = {k: v for k, v in state.items() if not k.startswith("conv_seg.")}
    try:
        missing, unexpected = model.load_state_dict(state, strict=False)
    except RuntimeError as exc:  # a tensor of another shape
        raise InputError(path, f"does not fit ResNet-10: {str(exc).splitlines()[-1].strip()}",
                         "point feature_extractor.weights to a MedicalNet resnet_10 checkpoint") from None
    if not head_in_file:
        missing = [k for k in missing if not k.startswith("conv_seg.")]
    if missing or unexpected:
        raise InputError(path, f"does not fit ResNet-10 (missing {missing[:3]}, unexpected {unexpected[:3]})",
                         "point feature_extractor.weights to a MedicalNet resnet_10 checkpoint")
    return model


def resnet10(channels: int, init: str, output: str) -> ResNet10:
    return ResNet10(channels, init, output)
