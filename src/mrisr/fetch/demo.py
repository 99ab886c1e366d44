"""Embedded offline demo: subjects made from the ICBM 2009a MNI152 template shipped by nilearn.

Each subject is the template (T1w, brain mask, tissue labels) under seeded random affine and elastic
warps, a bias field and a gamma change, so subjects differ in anatomy and contrast while the whole
pipeline runs on real brain anatomy without a download.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch
import torchio as tio

from mrisr.io import save_volume

def template_subject() -> tio.Subject:
    """The MNI152 2009a template as a TorchIO subject: T1w, brain mask and a tissue label map."""
    from nilearn import datasets

    t1 = datasets.load_mni152_template(resolution=1)
    gm = np.asanyarray(datasets.load_mni152_gm_template(resolution=1).dataobj, dtype=np.float32)
    wm = np.asanyarray(datasets.load_mni152_wm_template(resolution=1).dataobj, dtype=np.float32)
    mask = np.asanyarray(datasets.load_mni152_brain_mask(resolution=1).dataobj) > 0
    csf = np.clip(1.0 - gm - wm, 0.0, 1.0)
    labels = (np.argmax(np.stack([csf, gm, wm]), axis=0) + 1) * mask
    affine = t1.affine
    image = np.asanyarray(t1.dataobj, dtype=np.float32)
    return tio.Subject(
        T1w=tio.ScalarImage(tensor=image[None], affine=affine),
        mask=tio.LabelMap(tensor=mask[None].astype(np.int16), affine=affine),
        dseg=tio.LabelMap(tensor=labels[None].astype(np.int16), affine=affine),
    )


def subject_transform(spacing: float, degrees: float, scales: float, elastic_displacement: float,
                      bias_coefficients: float, log_gamma: float) -> tio.Compose:
    """Resample to the demo grid, then the random spatial and intensity changes of one subject."""
    return tio.Compose([
        tio.Resample(spacing),
        tio.RandomAffine(scales=scales, degrees=degrees, image_interpolation="bspline"),
        tio.RandomElasticDeformation(max_displacement=elastic_displacement, image_interpolation="bspline"),
        tio.RandomBiasField(coefficients=bias_coefficients),
        tio.RandomGamma(log_gamma=log_gamma),
    ])


def make_demo_subjects(out_dir: str | Path, subjects: list[str], seed: int, spacing: float,
                       transforms: dict) -> list[dict[str, Path]]:
    """Each subject into ``out_dir``/sub-<subject>/ (:func:`make_demo_subject`), the template read once."""
    template = template_subject()
    return [make_demo_subject(Path(out_dir) / f"sub-{subject}", subject, seed, spacing, transforms, template)
            for subject in subjects]


def make_demo_subject(out_dir: str | Path, subject: str, seed: int, spacing: float, transforms: dict,
                      template: tio.Subject | None = None) -> dict[str, Path]:
    """Write ``sub-<subject>_{T1w,mask,dseg}.nii.gz`` into ``out_dir``; same seed, same bytes.

    ``transforms`` holds the keyword arguments of :func:`subject_transform` (config
    ``datasets.<name>.transforms``).
    """
    transform = subject_transform(spacing, **transforms)
    torch.manual_seed(seed * 10_007 + int(subject))
    warped = transform(template if template is not None else template_subject())
    t1 = np.clip(warped.T1w.numpy()[0], 0.0, None).astype(np.float32)
    out = Path(out_dir)
    paths = {
        "T1w": save_volume(t1, warped.T1w.affine, out / f"sub-{subject}_T1w.nii.gz"),
        "mask": save_volume(warped.mask.numpy()[0].astype(np.uint8), warped.mask.affine,
                            out / f"sub-{subject}_mask.nii.gz"),
        "dseg": save_volume(warped.dseg.numpy()[0].astype(np.uint8), warped.dseg.affine,
                            out / f"sub-{subject}_dseg.nii.gz"),
    }
    return paths
