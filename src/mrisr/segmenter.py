"""The segmentation network (a MONAI 3D U-Net, the classic one or nnU-Net's dynamic variant, chosen by config), the
model file the segment stage writes, and labelling a whole volume with it. A leaf: the segment stage trains and
scores it, the anatomy stage segments SR volumes with it."""

from __future__ import annotations

from enum import StrEnum
from pathlib import Path

import numpy as np
import torch

from mrisr.device import default_device
from mrisr.errors import InputError
from mrisr.io import load_torch


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


def load_segmenter(path: str | Path) -> tuple[torch.nn.Module, list[str], int]:
    """(network in eval mode, class names, seed) of a ``model.pt`` written by the segmentation training."""
    bundle = load_torch(path, "rerun the segment_train rule that wrote it")
    try:
        network = build_network(bundle["network"], len(bundle["classes"]))
        network.load_state_dict(bundle["state_dict"])
    except (RuntimeError, KeyError, TypeError) as exc:
        raise InputError(path, f"is not a readable mrisr segmentation model ({exc})",
                         "rerun the segment_train rule that wrote it") from exc
    return network.to(default_device()).eval(), list(bundle["classes"]), int(bundle["seed"])


@torch.inference_mode()
def segment(network: torch.nn.Module, image: np.ndarray, roi: int, overlap: float) -> np.ndarray:
    """Label map (uint8) of a whole volume: Gaussian-blended sliding windows of the training patch size."""
    from monai.inferers import sliding_window_inference

    device = next(network.parameters()).device
    x = torch.from_numpy(np.ascontiguousarray(image, dtype=np.float32))[None, None].to(device)
    logits = sliding_window_inference(x, roi_size=(roi,) * 3, sw_batch_size=2, predictor=network,
                                      overlap=overlap, mode="gaussian")
    return logits.argmax(1)[0].to(torch.uint8).cpu().numpy()
