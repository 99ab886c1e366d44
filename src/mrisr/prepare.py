"""The prepare stage: HR volumes in RAS+ orientation (or as stored), cropped to the brain box, z-scored per volume
(the split into train/val/test is planning's: :func:`mrisr.plan.subjects.make_splits`)."""

from __future__ import annotations

from pathlib import Path

import nibabel as nib
import numpy as np

from mrisr.errors import InputError
from mrisr.io import load_volume, resample_isotropic, resample_like, same_grid, save_volume
from mrisr.preprocessing import Crop, Normalise, Orientation, Preprocessing, brain_box, head_mask, standardised
from mrisr.scale import as_scale, label


def tissue_labels(values: np.ndarray, path: str | Path) -> np.ndarray:
    """A label map as uint8, refused (not rounded or wrapped) when a value is not a whole number in 0..255."""
    bad = np.unique(values[(values != np.round(values)) | (values < 0) | (values > 255)])
    if bad.size:
        raise InputError(path, f"dseg has values that are not labels 0..255 ({', '.join(f'{v:g}' for v in bad[:5])}"
                               f"{', ...' if bad.size > 5 else ''})",
                         "give whole-number tissue labels (0 = background); resample label maps with nearest neighbour")
    return values.astype(np.uint8)


def prepare_subject(t1w: str | Path, mask: str | Path | None, dseg: str | Path | None, out_dir: str | Path,
                    subject: str, multiple: int | list[int], preprocessing: Preprocessing) -> dict[str, Path]:
    """RAS+ (or the stored orientation), crop to the brain box, z-score; write T1w, mask and (if given) dseg.

    ``crop="none"`` keeps the whole field of view (trimmed to a multiple of the scale), as the authors did;
    ``multiple``: the scale, one factor or one per axis.
    ``resample`` (mm) puts anisotropic or oblique scans (IXI's 0.94 x 0.94 x 1.2 mm) on an isotropic grid
    first, noted in each output's header; without it such scans are refused. Without a ``mask`` the scan's head
    (its foreground, as IXI's fetch makes) is the mask: the crop keeps the head, the brain metrics cover it.
    ``normalise_first``: the z-score of the whole volume in float64 before the edges are cut, as the authors'
    norm_nii.py before crop_nifti_9t.py (after: ours).
    """
    resample = preprocessing.resample
    image = load_volume(t1w, isotropic=resample is None, axis_aligned=resample is None,
                        grid_fix="set prepare.resample to the isotropic voxel size (mm) to resample such scans")
    inputs = {"mask": mask, "dseg": dseg}
    maps = {}
    for role, path in inputs.items():
        if path is None:
            continue
        img = load_volume(path, role=role)
        if not same_grid(image, img):
            raise InputError(path, f"{role} grid {img.shape} does not match its T1w {t1w} ({image.shape})",
                             f"resample the {role} onto the T1w grid")
        maps[role] = img
    if mask is None:
        maps["mask"] = nib.Nifti1Image(head_mask(np.asanyarray(image.dataobj, dtype=np.float32)).astype(np.uint8),
                                       image.affine)
    if resample is not None:
        resampled = resample_isotropic(image, resample)
        if resampled is not image:
            image, maps = resampled, {role: resample_like(img, resampled) for role, img in maps.items()}
    if Orientation(preprocessing.orientation) is Orientation.RAS:
        image = nib.as_closest_canonical(image)
        maps = {role: nib.as_closest_canonical(img) for role, img in maps.items()}
    brain = np.asanyarray(maps["mask"].dataobj) > 0
    if not brain.any():
        raise InputError(mask or t1w, "brain mask is empty" if mask else "has no foreground to take as its head mask",
                         "give a mask with the brain voxels set to 1")
    if Crop(preprocessing.crop) is Crop.BRAIN:
        box = brain_box(brain, preprocessing.margin, as_scale(multiple))
    else:
        box = tuple(slice(0, n - n % m) for n, m in zip(brain.shape, as_scale(multiple)))
    kept = tuple(b.stop - b.start for b in box)
    if min(kept) == 0:
        raise InputError(t1w, f"has {min(image.shape)} voxel(s) along an axis (shape {image.shape}): nothing is left "
                              f"once the edges are cut to multiples of the scale ({label(multiple)})",
                         f"give a 3D scan at least {max(as_scale(multiple))} voxels thick in every direction, not a "
                         "slice or thin slab")
    cropped = image.slicer[box]
    region = brain if Normalise(preprocessing.normalise) is Normalise.BRAIN else None
    if preprocessing.normalise_first:
        data = standardised(np.asanyarray(image.dataobj, dtype=np.float64), region, preprocessing.intensities)[box]
    else:
        data = standardised(np.asanyarray(cropped.dataobj, dtype=np.float32), None if region is None else region[box],
                            preprocessing.intensities)
    brain = brain[box]
    labels = tissue_labels(np.asanyarray(maps["dseg"].dataobj)[box], dseg) if "dseg" in maps else None
    out = Path(out_dir)
    written = {"T1w": save_volume(data, cropped.affine, out / f"sub-{subject}_T1w.nii.gz", reference=cropped)}
    written["mask"] = save_volume(brain.astype(np.uint8), cropped.affine, out / f"sub-{subject}_mask.nii.gz")
    if labels is not None:
        written["dseg"] = save_volume(labels, cropped.affine, out / f"sub-{subject}_dseg.nii.gz")
    return written
