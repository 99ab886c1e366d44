"""Segmenting whole volumes and scoring them: Dice (and optionally HD95) per tissue class per subject (MONAI)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch

from mrisr.device import set_threads
from mrisr.errors import MrisrError
from mrisr.io import load_labels, load_volume, save_volume, voxel_sizes, write_table
from mrisr.segmenter import load_segmenter, segment


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


def evaluate_arm(model: str, subjects: list[str], image: list[str], label: list[str], roi: int, overlap: float,
                 hd95: bool, out_dir: str, out: str, threads: int) -> Path:
    """The segment stage's scoring: segment each test image with one trained arm, write its label map into
    ``out_dir`` and a row of Dice (HD95) per class per subject into ``out``."""
    import pandas as pd

    set_threads(threads)
    if not len(subjects) == len(image) == len(label):
        raise MrisrError("segment evaluate needs one --image and one --label per --subjects entry")
    network, classes, seed = load_segmenter(model)
    rows = []
    for subject, image_path, label_path in zip(subjects, image, label):
        volume = load_volume(image_path)
        truth = load_labels(label_path, volume, image_path, len(classes))
        pred = segment(network, np.asanyarray(volume.dataobj, dtype=np.float32), roi, overlap)
        save_volume(pred, volume.affine, Path(out_dir) / f"sub-{subject}_dseg.nii.gz", reference=volume,
                    dtype=np.uint8)
        rows.append({"subject": subject, "seed": seed,
                     **score(pred, truth, classes, voxel_sizes(volume.affine), hd95)})
    return write_table(pd.DataFrame(rows), out)
