"""Training patches of the two arms, drawn so that the arms differ only in where the image intensities come from.

For a given seed and step both arms draw the same subjects, the same windows and therefore the same labels
(the patch generator is consumed identically). Only then does the ``real+sr`` arm toss, per patch, whether
the intensities come from the subject's SR volume instead of its real one: the SR volume lies on the HR grid
and shares the HR label map.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from mrisr.errors import InputError
from mrisr.io import load_labels, load_volume, same_grid
from mrisr.patches import crop, patch_windows, step_generator


@dataclass
class TrainingSet:
    """Per subject: the real HR image, its labels and (``real+sr`` arm) the SR image of the same grid."""

    images: list[np.ndarray]
    labels: list[np.ndarray]
    sr_images: list[np.ndarray] | None = None

    @property
    def arm(self) -> str:
        return "real" if self.sr_images is None else "real+sr"


def load_training_set(image_paths: list[str], label_paths: list[str], sr_paths: list[str] | None,
                      n_classes: int) -> TrainingSet:
    """Read and check one arm's volumes: the same grid per subject, labels in ``0 .. n_classes - 1``."""
    if len(image_paths) != len(label_paths) or (sr_paths is not None and len(sr_paths) != len(image_paths)):
        raise ValueError("one label map (and one SR volume, for real+sr) per training image")
    images, labels, srs = [], [], []
    for i, (image_path, label_path) in enumerate(zip(image_paths, label_paths)):
        image = load_volume(image_path)
        labels.append(load_labels(label_path, image, image_path, n_classes))
        images.append(np.asanyarray(image.dataobj, dtype=np.float32))
        if sr_paths is not None:
            sr = load_volume(sr_paths[i])
            if not same_grid(sr, image):
                raise InputError(sr_paths[i], f"grid {sr.shape} is not the grid of its real image {image_path}",
                                 "super-resolve onto the HR reference grid (mrisr super-resolve --reference)")
            srs.append(np.asanyarray(sr.dataobj, dtype=np.float32))
    return TrainingSet(images, labels, srs if sr_paths is not None else None)


def sample_batch(data: TrainingSet, size: int, batch: int, seed: int, step: int,
                 sr_fraction: float) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """(images (B,1,s,s,s), labels (B,1,s,s,s) int64, from_sr (B,) bool) of one step."""
    generator = step_generator(seed, step)
    windows = patch_windows([v.shape for v in data.images], size, batch, generator, align=(1, 1, 1))
    from_sr = torch.zeros(batch, dtype=torch.bool)
    if data.sr_images is not None:
        from_sr = torch.rand(batch, generator=generator) < sr_fraction
    images = [crop((data.sr_images if sr else data.images)[i], w) for (i, w), sr in zip(windows, from_sr.tolist())]
    labels = [torch.from_numpy(np.ascontiguousarray(data.labels[i][w])) for i, w in windows]
    return torch.stack(images)[:, None], torch.stack(labels)[:, None], from_sr

