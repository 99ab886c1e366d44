"""What each training run is told (its settings JSON) and the fingerprint of what changes its result.

One dataclass per kind of run: planning fills each field from the config (:func:`from_config`), the stage reads the
JSON back into the same dataclass, so the keys a run receives are written once, here. Pure: no torch, so that
planning and the trainers share it.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import asdict, dataclass, fields


@dataclass(frozen=True, kw_only=True)
class StepSettings:
    """What every training run has; each trainer's settings add their own (defaults: the schema)."""

    steps: int
    batch_size: int
    patch_size: int
    checkpoint_every: int
    seed: int
    precision: str


@dataclass(frozen=True, kw_only=True)
class GeneratorSettings(StepSettings):
    """What every generator training has besides the steps: the degradation's entry it learns to invert, the scale."""

    degradation: dict
    scale: int | list[int]  # the config's form (mrisr.scale)
    memory_format: str  # channels_last or contiguous (the authors'): rounding differs, nothing else
    patch_sampling: str  # random windows every step, or the authors' fixed grid (mrisr.patches.PatchSampling)
    patch_stride: int  # the grid's stride
    window_fraction: float  # the grid: each process's share of the windows (DISGAN's quarter)
    cudnn_benchmark: bool  # these three: how fast, not what (mrisr.device.Acceleration)
    tf32: str
    compile: str


@dataclass(frozen=True, kw_only=True)
class PretrainSettings(GeneratorSettings):
    """``pretrain.*`` of the config, with ``train``'s batch and patch size, the scale, the seed and the degradation."""

    lr: float
    betas: tuple[float, float]


@dataclass(frozen=True, kw_only=True)
class TrainSettings(GeneratorSettings):
    """``train.*`` of the config, with the scale, the seed and the degradation's entry."""

    shared_discriminator_pass: bool  # False: D runs again for its own update, as in the authors' code
    relativistic_mean: str  # "global": over the global batch; "process": each process's own (the authors' DDP)
    epochs: int | None  # the grid: the run is this many epochs, its steps counted from the volumes (None: steps)


@dataclass(frozen=True, kw_only=True)
class SegSettings(StepSettings):
    """``segmentation.*`` of the config with this run's seed and ``train.precision``."""

    lr: float
    classes: tuple[str, ...]
    sr_fraction: float


#: prepare's settings (mrisr.preprocessing.Preprocessing): the prepare command's, and what a model card records
PREPROCESSING = ("crop", "margin", "normalise", "intensities", "normalise_first", "orientation", "resample")
#: what a model card records of them, to do it again to a user's scan (the orientation: the training volumes')
CARD_PREPROCESSING = ("crop", "margin", "normalise", "intensities", "normalise_first")

#: settings that change how fast a run goes, not its result: a checkpoint resumes across them
SPEED_SETTINGS = ("checkpoint_every", "cudnn_benchmark", "compile")


def from_config(kind: type[StepSettings], *sections: dict, **given) -> dict:
    """The settings JSON of a ``kind`` of run: each field from ``given``, else from the first config section that
    holds it (``pretrain`` before ``train``, say). A field that no section holds is a bug here, and raises."""
    missing = [f.name for f in fields(kind) if f.name not in given and not any(f.name in s for s in sections)]
    if missing:
        raise KeyError(f"{kind.__name__}: no config section holds {missing}")
    return {f.name: given[f.name] if f.name in given else next(s[f.name] for s in sections if f.name in s)
            for f in fields(kind)}


def result_settings(settings: StepSettings, *also: str) -> dict:
    """The settings that a run's fingerprint holds: all but :data:`SPEED_SETTINGS` and ``also``."""
    return {k: v for k, v in asdict(settings).items() if k not in SPEED_SETTINGS + also}


def fingerprint(**parts) -> str:
    """Hash of everything that changes a training's result (JSON, sorted keys)."""
    return hashlib.sha256(json.dumps(parts, sort_keys=True).encode()).hexdigest()[:16]
