"""The segmentation network: a MONAI 3D U-Net, the classic one or nnU-Net's dynamic variant, chosen by config."""

from __future__ import annotations

from enum import StrEnum

import torch


class SegNetwork(StrEnum):
    UNET = "unet"  # monai.networks.nets.UNet: strided convolutions, optional residual units
    DYNUNET = "dynunet"  # monai.networks.nets.DynUNet: nnU-Net's layout


def build_network(spec: dict, n_classes: int) -> torch.nn.Module:
    """``spec`` is config ``segmentation.network``; one output channel per class (logits)."""
    from monai.networks.nets import DynUNet, UNet

    channels = list(spec["channels"])
    levels = len(channels)
    if SegNetwork(spec["name"]) is SegNetwork.UNET:
        return UNet(spatial_dims=3, in_channels=1, out_channels=n_classes, channels=channels,
                    strides=[2] * (levels - 1), num_res_units=spec["res_units"], norm="INSTANCE",
                    dropout=spec["dropout"])
    return DynUNet(spatial_dims=3, in_channels=1, out_channels=n_classes, kernel_size=[3] * levels,
                   strides=[1] + [2] * (levels - 1), upsample_kernel_size=[2] * (levels - 1), filters=channels,
                   res_block=spec["res_units"] > 0, dropout=spec["dropout"] or None)


def min_patch_multiple(spec: dict) -> int:
    """Patch edges must divide by this: every level halves the grid."""
    return 2 ** (len(spec["channels"]) - 1)
