"""The anatomy stage: does SR keep tissue volumes true? Each volume (the HR reference, an SR or interpolated one)
segmented by segmenters that never saw SR, its class volumes and label maps set against the same segmenter's on
the HR volume.

Two segmenters, :class:`Segmenter`: the segment stage's network trained on real HR scans (the ``real`` arm, its
first seed) and ANTs' Atropos (a Gaussian mixture with a Markov random field prior, k-means initialised, no learned
weights), both inside the brain mask: the volumes are brain tissue's. Both label 1 CSF, 2 GM, 3 WM on T1w
(Atropos orders its k-means classes by intensity: dark to bright).
"""

from __future__ import annotations

import enum
import logging
import os
import tempfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from mrisr.errors import InputError, MrisrError
from mrisr.io import load_mask, load_volume, save_volume, voxel_sizes, write_table

log = logging.getLogger(__name__)

#: Atropos's classes in intensity order on T1w (k-means initialisation sorts them so)
TISSUES = ("CSF", "GM", "WM")


class Segmenter(str, enum.Enum):
    #: the segment stage's network, trained on real HR scans only
    NETWORK = "network"
    #: ANTs' Atropos, three classes inside the brain mask, with a constant random seed
    ATROPOS = "atropos"


@dataclass(frozen=True, kw_only=True)
class Segmenters:
    """Which segmenters (:class:`Segmenter` values) and their settings: the network's model file (the segment stage's
    ``model.pt``), its window edge and overlap; Atropos's EM iterations and Markov random field smoothing weight
    (``anatomy.atropos``: Atropos ``-c``, ``-m``)."""

    names: list[str]
    model: str | None
    roi: int
    overlap: float
    iterations: int
    mrf_weight: float


def segment_atropos(image: np.ndarray, affine: np.ndarray, mask: np.ndarray, iterations: int,
                    mrf_weight: float) -> np.ndarray:
    """Atropos's three-class label map (0 outside ``mask``). Its internal random generator takes a constant seed
    (``-r 0``): two runs on one volume give one label map."""
    try:
        import ants
    except ImportError:
        raise MrisrError("the anatomy stage's Atropos needs antspyx: pip install --no-deps -r envs/no-deps.txt "
                         "(its numpy/scipy bounds conflict with mrisr's pins, so not through pip's resolver)") from None
    spacing = tuple(float(s) for s in voxel_sizes(affine))
    corner = np.argwhere(mask)
    box = tuple(slice(lo, hi + 1) for lo, hi in zip(corner.min(axis=0), corner.max(axis=0)))  # the same labels, sooner
    ants_image = ants.from_numpy(np.ascontiguousarray(image[box], dtype=np.float32), spacing=spacing)
    ants_mask = ants.from_numpy(mask[box].astype(np.float32), spacing=spacing)
    # antspyx writes Atropos's probability maps to files named by tempfile.mktemp and leaves them: into a folder
    # that goes with the call
    with tempfile.TemporaryDirectory(prefix="mrisr-atropos-") as scratch:
        default, tempfile.tempdir = tempfile.tempdir, scratch
        try:
            result = ants.atropos(a=ants_image, x=ants_mask, i=f"kmeans[{len(TISSUES)}]",
                                  m=f"[{mrf_weight},1x1x1]", c=f"[{iterations},0]", r=0)
        finally:
            tempfile.tempdir = default
    labels = np.zeros(image.shape, np.uint8)
    labels[box] = result["segmentation"].numpy()
    return labels


def dice(a: np.ndarray, b: np.ndarray) -> float:
    """2|A∩B| / (|A| + |B|); 1 where both are empty (nothing to disagree on)."""
    total = int(a.sum()) + int(b.sum())
    return 1.0 if total == 0 else 2.0 * int(np.logical_and(a, b).sum()) / total


def compared(labels: np.ndarray, reference: np.ndarray, classes: list[str], voxel_ml: float,
             segmenter: str) -> dict[str, float]:
    """Per class (labels 1, 2, ... named by ``classes``): its volume in mL, the reference's, the signed error in mL
    and % of the reference, its absolute %, and the Dice of the two label maps. Columns
    ``<segmenter>_<class>_<measure>``."""
    row = {}
    for index, name in enumerate(classes, start=1):
        ours, theirs = labels == index, reference == index
        volume, truth = float(ours.sum()) * voxel_ml, float(theirs.sum()) * voxel_ml
        error_pct = 100 * (volume - truth) / truth if truth else np.nan
        row |= {f"{segmenter}_{name}_volume_ml": volume, f"{segmenter}_{name}_reference_ml": truth,
                f"{segmenter}_{name}_error_ml": volume - truth, f"{segmenter}_{name}_error_pct": error_pct,
                f"{segmenter}_{name}_abs_error_pct": abs(error_pct), f"{segmenter}_{name}_dice": dice(ours, theirs)}
    return row


def label_path(out_dir: str | Path, segmenter: str, subject: str) -> Path:
    """Where a job writes (and the SR jobs read the reference's) label map of one subject by one segmenter."""
    return Path(out_dir) / segmenter / f"sub-{subject}_dseg.nii.gz"


def _reference(reference_dir: str, segmenter: str, subject: str, volume, image_path: str) -> np.ndarray:
    """The HR job's label map on ``volume``'s grid: the same origin and voxels, less the far rows that an SR grid
    lacks where the HR edges are no multiple of the setting's scale."""
    path = label_path(reference_dir, segmenter, subject)
    reference = load_volume(path, role="label map")
    if not np.allclose(reference.affine, volume.affine, atol=1e-4) or any(
            m < n for m, n in zip(reference.shape, volume.shape)):
        raise InputError(image_path, f"is not on the grid of the HR label map {path}",
                         "super-resolve onto the HR reference grid (--reference)")
    return np.asanyarray(reference.dataobj)[tuple(slice(0, n) for n in volume.shape)]


def segment_files(subjects: list[str], mask: list[str], segmenters: Segmenters, cells: list[dict], threads: int,
                  reference_dir: str | None = None) -> list[Path]:
    """Segment each cell's volumes (one per subject) with each segmenter, in one process that loads the segmenters
    once: per cell, the label maps under its table's folder (:func:`label_path`) and a row per subject into its
    table ``out``; with ``reference_dir`` (the HR job's folder) :func:`compared` against its label maps, else the
    class volumes alone. A cell is ``{"image": [...], "out": ...}``, or ``{"not_computed": reason, "out": ...}``:
    rows without values that say why (an outside method whose environment could not be installed)."""
    for cell in cells:
        if set(cell) - {"image", "not_computed", "out"} or "out" not in cell or \
                bool(cell.get("image")) == bool(cell.get("not_computed")):
            raise MrisrError(f"anatomy's --cells entry {cell} needs 'out' and either 'image' or 'not_computed'")
        if cell.get("image") and len(cell["image"]) != len(subjects):
            raise MrisrError(f"anatomy needs one image per --subjects entry in each cell ({cell['out']})")
    if len(mask) != len(subjects):
        raise MrisrError("anatomy needs one --mask per --subjects entry")
    from mrisr.device import set_threads

    set_threads(threads)
    os.environ["ITK_GLOBAL_DEFAULT_NUMBER_OF_THREADS"] = str(threads)  # Atropos's ITK reads it when it loads
    network = None
    if Segmenter.NETWORK.value in segmenters.names and any(cell.get("image") for cell in cells):
        if not segmenters.model:
            raise MrisrError("anatomy's network segmenter needs --model (the segment stage's model.pt)")
        from mrisr.segmenter import load_segmenter, segment

        network, network_classes, _ = load_segmenter(segmenters.model)
    brains = [load_mask(path) for path in mask]  # read once, cropped to each cell's grid
    written = []
    for cell in cells:
        out_dir = Path(cell["out"]).parent
        if cell.get("not_computed"):
            frame = pd.DataFrame({"subject": subjects, "note": f"not computed: {cell['not_computed']}"})
            written.append(write_table(frame, cell["out"]))
            continue
        rows = []
        for subject, image_path, whole_brain in zip(subjects, cell["image"], brains):
            volume = load_volume(image_path)
            data = np.asanyarray(volume.dataobj, dtype=np.float32)
            brain = whole_brain[tuple(slice(0, n) for n in data.shape)]
            voxel_ml = float(np.prod(voxel_sizes(volume.affine))) / 1000
            row: dict = {"subject": subject}
            for segmenter in map(Segmenter, segmenters.names):
                if segmenter is Segmenter.NETWORK:  # its labels inside the brain mask, as Atropos's: brain tissue
                    labels = segment(network, data, segmenters.roi, segmenters.overlap)
                    labels, classes = np.where(brain, labels, 0).astype(np.uint8), network_classes[1:]
                else:
                    labels = segment_atropos(data, volume.affine, brain, segmenters.iterations, segmenters.mrf_weight)
                    classes = list(TISSUES)
                save_volume(labels, volume.affine, label_path(out_dir, segmenter.value, subject))
                if reference_dir:
                    row |= compared(labels, _reference(reference_dir, segmenter.value, subject, volume, image_path),
                                    classes, voxel_ml, segmenter.value)
                else:
                    row |= {f"{segmenter.value}_{name}_volume_ml": float((labels == i).sum()) * voxel_ml
                            for i, name in enumerate(classes, start=1)}
                log.info("%s sub-%s: %s done", out_dir, subject, segmenter.value)
            rows.append(row)
        written.append(write_table(pd.DataFrame(rows), cell["out"]))
    return written
