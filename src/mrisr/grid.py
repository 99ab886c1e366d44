"""Where an LR voxel lies on its HR grid: the one decision that degrade, training, model cards, super-resolve and
evaluate share.

Two conventions exist and both are real. Decimation keeps HR voxel ``f*i`` as LR voxel ``i`` (the authors' code,
F.interpolate's nearest mode): the LR grid's first voxel is the HR grid's (:attr:`LrGrid.CORNER`). An acquisition
measures a slab: LR voxel ``i`` is HR voxels ``f*i .. f*i+f-1``, centred at ``f*i + (f-1)/2`` (a 2D acquisition's
thick slice, a blurred or k-space-truncated acquisition): the field of view is the HR one, as a scanner's affine,
ECLARE, SMORE and PyTorch's ``align_corners=False`` interpolation take it (:attr:`LrGrid.SLAB`).
"""

from __future__ import annotations

import enum

import numpy as np

from mrisr.scale import Scale, as_scale


class LrGrid(str, enum.Enum):
    CORNER = "corner"  # LR voxel i is HR voxel f*i (decimation)
    SLAB = "slab"  # LR voxel i is the slab of HR voxels f*i .. f*i+f-1, centred between them (an acquisition)


#: what a model card that records no grid was trained on (every card before mrisr recorded it)
UNRECORDED = LrGrid.CORNER


def lr_grid(degradation: dict) -> LrGrid:
    """The grid a ``degradations`` entry makes its LR on: decimation its sample, every acquisition model its slab."""
    return LrGrid.CORNER if degradation["method"] == "nearest" else LrGrid.SLAB


def card_grid(card: dict) -> LrGrid:
    """The grid a model card's LR was made on (a card written before it was recorded: :data:`UNRECORDED`)."""
    return LrGrid(card.get("lr_grid", UNRECORDED))


def offset(scale: int | Scale, grid: LrGrid) -> np.ndarray:
    """LR voxel 0's position in HR voxels, per axis: 0 (corner) or the slab's centre, (f - 1) / 2."""
    factors = np.asarray(as_scale(scale), dtype=np.float64)
    return (factors - 1) / 2 if LrGrid(grid) is LrGrid.SLAB else np.zeros(3)


def lr_affine(hr_affine: np.ndarray, scale: int | Scale, grid: LrGrid) -> np.ndarray:
    """The LR grid's affine: voxel axes ``scale`` times the HR's, LR voxel 0 at HR voxel :func:`offset`."""
    hr = np.asarray(hr_affine, dtype=np.float64)
    affine = hr.copy()
    affine[:3, :3] = hr[:3, :3] * np.asarray(as_scale(scale), dtype=np.float64)
    affine[:3, 3] = hr[:3, :3] @ offset(scale, grid) + hr[:3, 3]
    return affine


def hr_affine(lr_affine_: np.ndarray, scale: int | Scale, grid: LrGrid) -> np.ndarray:
    """The HR grid that ``lr_affine_`` was made from on ``grid`` (the inverse of :func:`lr_affine`): where SR
    writes its voxels. On the slab grid its thin voxels tile each LR voxel's slab, the scan's field of view."""
    lr = np.asarray(lr_affine_, dtype=np.float64)
    affine = lr.copy()
    affine[:3, :3] = lr[:3, :3] / np.asarray(as_scale(scale), dtype=np.float64)
    affine[:3, 3] = lr[:3, 3] - affine[:3, :3] @ offset(scale, grid)
    return affine
