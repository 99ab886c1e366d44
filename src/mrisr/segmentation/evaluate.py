"""Segmenting whole volumes and scoring them: Dice (and optionally HD95) per tissue class per subject (MONAI)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch

from mrisr.errors import InputError
from mrisr.inference import default_device
from mrisr.io import load_torch
from mrisr.segmentation.network import build_network


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


def _one_hot(labels: np.ndarray, n_classes: int) -> torch.Tensor:
    from monai.networks.utils import one_hot

    return one_hot(torch.from_numpy(labels.astype(np.int64))[None, None], n_classes)


def dice_per_class(pred: np.ndarray, truth: np.ndarray, n_classes: int) -> np.ndarray:
    """Dice of classes 1 .. n-1 (background left out); NaN for a class absent from both."""
    from monai.metrics import compute_dice

    return compute_dice(_one_hot(pred, n_classes), _one_hot(truth, n_classes), include_background=False,
                        ignore_empty=True)[0].numpy()


def hd95_per_class(pred: np.ndarray, truth: np.ndarray, n_classes: int, spacing: np.ndarray) -> np.ndarray:
    """95th-percentile symmetric Hausdorff distance in mm of classes 1 .. n-1."""
    from monai.metrics import compute_hausdorff_distance

    return compute_hausdorff_distance(_one_hot(pred, n_classes), _one_hot(truth, n_classes), include_background=False,
                                      percentile=95, spacing=[float(s) for s in spacing])[0].numpy()


def score(pred: np.ndarray, truth: np.ndarray, classes: list[str], spacing: np.ndarray, hd95: bool) -> dict:
    """``dice_<class>`` (and ``hd95_<class>``) of every foreground class."""
    row = {f"dice_{name}": float(v) for name, v in zip(classes[1:], dice_per_class(pred, truth, len(classes)))}
    if hd95:
        row |= {f"hd95_{name}": float(v)
                for name, v in zip(classes[1:], hd95_per_class(pred, truth, len(classes), spacing))}
    return row
