"""Upsampling factors per voxel axis (RAS+ order: the axes every network sees, :mod:`mrisr.preprocessing`).

The config and a model card write a scale as one integer (the same factor on every axis: ``2`` is the authors'
x2) or as three (``[1, 1, 4]``: 4 mm slices to 1 mm along the third RAS axis, inferior-superior). Code works on
the three-factor form, :data:`Scale`.
"""

from __future__ import annotations

from collections.abc import Sequence

Scale = tuple[int, int, int]

#: How ESRGAN-style generators reach each factor: successive x2 stages for x4, one x3 stage for x3.
STAGE_FACTORS = {1: (), 2: (2,), 3: (3,), 4: (2, 2)}
MAX_FACTOR = max(STAGE_FACTORS)


def as_scale(value: int | Sequence[int]) -> Scale:
    """The three factors of a config's or card's scale (an integer is the same factor on every axis)."""
    factors = (value,) * 3 if isinstance(value, int) else tuple(value)
    if len(factors) != 3 or any(not isinstance(f, int) or f not in STAGE_FACTORS for f in factors):
        raise ValueError(f"a scale is an integer 1 to 4 or three of them, got {value!r}")
    return factors  # type: ignore[return-value]


def as_config(scale: Scale) -> int | list[int]:
    """The config's form: one integer when the factors are equal (so ``2`` stays ``2``), else three."""
    return scale[0] if len(set(scale)) == 1 else list(scale)


def label(value: int | Sequence[int]) -> str:
    """``x2`` for an isotropic scale, ``x1x1x4`` for three factors."""
    scale = as_scale(value)
    return f"x{scale[0]}" if len(set(scale)) == 1 else "x" + "x".join(map(str, scale))


def stages(value: int | Sequence[int]) -> list[Scale]:
    """The per-axis factors of each upsampling stage: an axis takes its factors' x2 (or x3) stages first, then 1."""
    per_axis = [STAGE_FACTORS[f] for f in as_scale(value)]
    count = max(len(f) for f in per_axis)
    return [tuple(f[i] if i < len(f) else 1 for f in per_axis) for i in range(count)]  # type: ignore[misc]


def volume(value: int | Sequence[int]) -> int:
    """HR voxels per LR voxel."""
    a, b, c = as_scale(value)
    return a * b * c


def whole_lr_voxels(hr_shape: tuple[int, ...], sr_shape: tuple[int, ...], scale: Scale) -> bool:
    """Whether an SR grid is the HR grid it came from, less the far-edge HR rows that filled no whole LR voxel
    (degrade drops them when the HR edges are not multiples of a setting's scale): same origin, same spacing."""
    return all(0 <= h - s < max(scale) for h, s in zip(hr_shape, sr_shape))


def as_option(value: int | Sequence[int]) -> str:
    """The command line's form: ``2``, or ``1,1,4``."""
    return ",".join(map(str, as_scale(value))) if isinstance(value, (list, tuple)) else str(as_scale(value)[0])
