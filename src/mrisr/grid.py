"""Where an LR voxel lies on its HR grid: the one decision that degrade, training, model cards, super-resolve and
evaluate share.

Decimation keeps HR voxel ``f*i`` as LR voxel ``i`` (the authors' code, F.interpolate's nearest mode): the LR
grid's first voxel is the HR grid's (:attr:`LrGrid.CORNER`). An acquisition measures a slab: LR voxel ``i`` is HR
voxels ``f*i .. f*i+f-1``, centred at ``f*i + (f-1)/2`` (a 2D acquisition's thick slice, a blurred or
k-space-truncated acquisition): the field of view is the HR one, as a scanner's affine, ECLARE, SMORE and PyTorch's
``align_corners=False`` interpolation take it (:attr:`LrGrid.SLAB`). A resize with ``align_corners=True`` (MTVNet's)
puts the first and last LR voxels on the first and last HR ones, LR voxel ``i`` at HR ``i (N-1)/(n-1)`` for ``N``
HR and ``n`` LR voxels: its spacing depends on the volume's size (:attr:`LrGrid.SPANNING`), so that grid needs the
LR shape and its LR is made from whole volumes, never from patches.
"""

from __future__ import annotations

import enum

import numpy as np

from mrisr.scale import Scale, as_scale


class LrGrid(str, enum.Enum):
    CORNER = "corner"  # LR voxel i is HR voxel f*i (decimation)
    SLAB = "slab"  # LR voxel i is the slab of HR voxels f*i .. f*i+f-1, centred between them (an acquisition)
    SPANNING = "spanning"  # LR voxel i at HR i (N-1)/(n-1): first and last on the HR's (align_corners=True)


#: what a model card that records no grid was trained on (every card before mrisr recorded it)
UNRECORDED = LrGrid.CORNER


def lr_grid(degradation: dict) -> LrGrid:
    """The grid a ``degradations`` entry makes its LR on: decimation its sample, MTVNet's resize the span, every
    acquisition model its slab."""
    return {"nearest": LrGrid.CORNER, "resize": LrGrid.SPANNING}.get(degradation["method"], LrGrid.SLAB)


def card_grid(card: dict) -> LrGrid:
    """The grid a model card's LR was made on (a card written before it was recorded: :data:`UNRECORDED`)."""
    return LrGrid(card.get("lr_grid", UNRECORDED))


def _steps(scale: int | Scale, grid: LrGrid, lr_shape: tuple[int, ...] | None) -> np.ndarray:
    """HR voxels per LR voxel step, per axis: the factor, or on the spanning grid (N - 1) / (n - 1)."""
    factors = np.asarray(as_scale(scale), dtype=np.float64)
    if LrGrid(grid) is not LrGrid.SPANNING:
        return factors
    if lr_shape is None:
        raise ValueError("the spanning grid's spacing depends on the LR shape: give lr_shape")
    n = np.asarray(lr_shape[:3], dtype=np.float64)
    return np.where(n > 1, (n * factors - 1) / np.maximum(n - 1, 1), factors)


def offset(scale: int | Scale, grid: LrGrid) -> np.ndarray:
    """LR voxel 0's position in HR voxels, per axis: the slab's centre, (f - 1) / 2, or 0 (corner, spanning)."""
    factors = np.asarray(as_scale(scale), dtype=np.float64)
    return (factors - 1) / 2 if LrGrid(grid) is LrGrid.SLAB else np.zeros(3)


def lr_affine(hr_affine: np.ndarray, scale: int | Scale, grid: LrGrid,
              lr_shape: tuple[int, ...] | None = None) -> np.ndarray:
    """The LR grid's affine: voxel axes a step (:func:`_steps`) of HR voxels each, LR voxel 0 at HR voxel
    :func:`offset` (``lr_shape``: the LR volume's, which the spanning grid needs)."""
    hr = np.asarray(hr_affine, dtype=np.float64)
    affine = hr.copy()
    affine[:3, :3] = hr[:3, :3] * _steps(scale, grid, lr_shape)
    affine[:3, 3] = hr[:3, :3] @ offset(scale, grid) + hr[:3, 3]
    return affine


def hr_affine(lr_affine_: np.ndarray, scale: int | Scale, grid: LrGrid,
              lr_shape: tuple[int, ...] | None = None) -> np.ndarray:
    """The HR grid that ``lr_affine_`` was made from on ``grid`` (the inverse of :func:`lr_affine`): where SR
    writes its voxels. On the slab grid its thin voxels tile each LR voxel's slab, the scan's field of view."""
    lr = np.asarray(lr_affine_, dtype=np.float64)
    affine = lr.copy()
    affine[:3, :3] = lr[:3, :3] / _steps(scale, grid, lr_shape)
    affine[:3, 3] = lr[:3, 3] - affine[:3, :3] @ offset(scale, grid)
    return affine
