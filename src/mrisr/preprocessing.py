"""What prepare does to a training volume and super-resolve does again to a user's scan, from a model card:
the crop box, the intensities' region and statistics (a z-score, or a [0, 1] range), and a foreground mask where no
brain mask is given."""

from __future__ import annotations

import enum
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np


class Crop(str, enum.Enum):
    BRAIN = "brain"  # the brain box plus a margin
    NONE = "none"  # the whole field of view, as the authors did


class Normalise(str, enum.Enum):
    VOLUME = "volume"  # z-score over every voxel, as the authors did
    BRAIN = "brain"  # z-score over the brain mask


class Intensities(str, enum.Enum):
    ZSCORE = "zscore"  # mean 0, std 1 over normalise's region (ours, the authors')
    UNIT_RANGE = "unit_range"  # min 0, max 1 over normalise's region (MTVNet's ScaleIntensity)


class Orientation(str, enum.Enum):
    RAS = "ras"  # every scan reoriented to RAS+ (ours): one voxel order whatever the scanner stored
    STORED = "stored"  # the arrays as stored, as the authors read them


@dataclass(frozen=True, kw_only=True)
class Preprocessing:
    """What prepare does to a scan (the config's ``prepare.*``, the CLI's ``--crop``, ``--margin``, ...)."""

    crop: str  # Crop
    margin: int  # HR voxels kept around the brain box
    normalise: str  # Normalise
    intensities: str  # Intensities
    normalise_first: bool  # z-score the whole stored volume in float64 before the edges are cut (the authors')
    orientation: str  # Orientation
    resample: float | None  # isotropic mm for anisotropic or oblique scans; None refuses them


def brain_box(mask: np.ndarray, margin: int | Sequence[int], multiple: int | Sequence[int]) -> tuple[slice, ...]:
    """Bounding box of ``mask`` grown by ``margin``, each edge a multiple of ``multiple`` voxels (each one number, or
    one per axis).

    The box grows (or, at the volume edge, shrinks) by whole voxels so that LR and SR grids divide evenly.
    """
    idx = np.nonzero(mask)
    box = []
    margins = np.broadcast_to(margin, 3).tolist()
    multiples = np.broadcast_to(multiple, 3).tolist()
    for axis, (size, margin, multiple) in enumerate(zip(mask.shape, margins, multiples)):
        lo = max(int(idx[axis].min()) - margin, 0)
        hi = min(int(idx[axis].max()) + 1 + margin, size)
        extra = (-(hi - lo)) % multiple
        grow = min(extra, size - hi)
        hi += grow
        lo_room = min(extra - grow, lo)
        lo -= lo_room
        hi -= (hi - lo) % multiple
        box.append(slice(lo, hi))
    return tuple(box)


def statistics(values: np.ndarray, intensities: str | Intensities) -> tuple[float, float]:
    """(offset, scale) that map ``values`` to ``intensities``: (mean, std), or (min, max - min)."""
    if Intensities(intensities) is Intensities.UNIT_RANGE:
        return float(values.min()), float(values.max() - values.min())
    return float(values.mean()), float(values.std())


def standardised(image: np.ndarray, region: np.ndarray | None = None,
                 intensities: str | Intensities = Intensities.ZSCORE) -> np.ndarray:
    """(x - offset) / scale with :func:`statistics` over ``region`` (all voxels when None), as the authors z-scored
    per volume (MTVNet scaled to [0, 1]), in ``image``'s precision; float32 out."""
    offset, scale = statistics(image[region] if region is not None else image, intensities)
    return ((image - offset) / scale).astype(np.float32)


def head_mask(volume: np.ndarray) -> np.ndarray:
    """Foreground of a T1w scan: Otsu threshold, the largest connected part, holes filled, one closing."""
    from scipy import ndimage
    from skimage.filters import threshold_otsu

    data = np.asarray(volume, dtype=np.float32)
    above = data > threshold_otsu(data)
    labels, n = ndimage.label(above)
    if n == 0:
        return above
    largest = labels == (np.argmax(np.bincount(labels.ravel())[1:]) + 1)
    closed = ndimage.binary_closing(largest, structure=np.ones((3, 3, 3)), iterations=2)
    return ndimage.binary_fill_holes(closed)


def intensity_statistics(image: np.ndarray, brain: np.ndarray, crop: str | Crop, normalise: str | Normalise,
                         margin: int | Sequence[int], multiple: int | Sequence[int], normalise_first: bool,
                         intensities: str | Intensities) -> tuple[float, float]:
    """(offset, scale) as prepare computed them (:func:`statistics`): over the brain mask (``normalise: brain``),
    else over the volume prepare kept (the brain box with ``margin`` for ``crop: brain``, every voxel for ``crop:
    none``), or over the whole volume in float64 when it normalised before cutting (``normalise_first``)."""
    if Normalise(normalise) is Normalise.BRAIN:
        values = image[brain]
    elif normalise_first:
        values = np.asarray(image, dtype=np.float64)
    elif Crop(crop) is Crop.BRAIN:
        values = image[brain_box(brain, margin, multiple)]
    else:
        values = image
    return statistics(values, intensities)
