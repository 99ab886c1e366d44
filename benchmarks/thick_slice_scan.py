"""A thick-slice scan as a scanner makes it, through the demo's thick-slice model: does SR beat interpolation?

Usage: python benchmarks/thick_slice_scan.py --results DIR [--variant esrgan] [--subjects 2]
DIR is a workflow results folder holding the demo's thick-slice model (``train/demo/<variant>@thick_slice``).
Out-of-sample subjects (``demo_ood``'s seed and transforms: never trained on) are made at the demo's spacing; each
thin volume (RAS+) becomes a thick-slice scan by averaging every slab of 4 slices along the third axis, its affine
the slab's (each thick voxel centred on the thin voxels it holds, as a 2D acquisition's), stored as RAS, LPS and with
its thick axis first (IPR). ``mrisr super-resolve`` then puts the model's output, and centred trilinear and
B-spline interpolation, on the thin grid; each is scored inside the brain against the thin volume (the workflow's
PSNR and SSIM, in scanner units), and the other storages must give the RAS output's voxels. Appends the result,
with machine, date, command and versions, to benchmarks/README.md.
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import tempfile
from pathlib import Path

import nibabel as nib
import numpy as np
import yaml

from mrisr.fetch.demo import make_demo_subject
from mrisr.grid import LrGrid, lr_affine
from mrisr.metrics import psnr, ssim
from record import append_entry

ROOT = Path(__file__).resolve().parents[1]
SLAB = 4
STORAGES = ("LPS", "IPR")


def thick_slice_scan(thin: nib.Nifti1Image) -> tuple[nib.Nifti1Image, nib.Nifti1Image]:
    """(the thin volume cut to whole slabs, its thick-slice scan): slabs of SLAB slices along the third RAS axis."""
    ras = nib.as_closest_canonical(thin)
    data = np.asanyarray(ras.dataobj, dtype=np.float32)
    data = data[..., : data.shape[2] // SLAB * SLAB]
    thick = data.reshape(*data.shape[:2], -1, SLAB).mean(axis=3)
    return (nib.Nifti1Image(data, ras.affine),
            nib.Nifti1Image(thick.astype(np.float32), lr_affine(ras.affine, (1, 1, SLAB), LrGrid.SLAB)))


def stored(img: nib.Nifti1Image, axes: str) -> nib.Nifti1Image:
    return img.as_reoriented(nib.orientations.ornt_transform(nib.orientations.io_orientation(img.affine),
                                                             nib.orientations.axcodes2ornt(tuple(axes))))


def super_resolve(scan: Path, out: Path, *how: str) -> nib.Nifti1Image:
    subprocess.run([sys.executable, "-m", "mrisr", "super-resolve", *how, str(scan), str(out)], check=True,
                   capture_output=True)
    return nib.as_closest_canonical(nib.load(out))


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__)
    p.add_argument("--results", required=True, type=Path)
    p.add_argument("--variant", default="esrgan")
    p.add_argument("--subjects", type=int, default=2)
    a = p.parse_args()
    demo = yaml.safe_load((ROOT / "config.yaml").read_text())["datasets"]["demo_ood"]
    model = a.results / "train" / "demo" / f"{a.variant}@thick_slice" / "model.safetensors"
    methods = {a.variant: ["--model", str(model)],
               "trilinear": ["--interpolate", "trilinear", "--scale", f"1,1,{SLAB}"],
               "bspline": ["--interpolate", "bspline", "--scale", f"1,1,{SLAB}"]}
    scores: dict[str, list[tuple[float, float]]] = {name: [] for name in methods}
    same_voxels = True
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        for number in range(1, a.subjects + 1):
            subject = f"{90 + number:02d}"  # subject numbers the demo's sets do not use
            paths = make_demo_subject(folder, subject, demo["seed"], demo["spacing"], demo["transforms"])
            thin, thick = thick_slice_scan(nib.load(paths["T1w"]))
            brain = np.asanyarray(nib.as_closest_canonical(nib.load(paths["mask"])).dataobj)[..., : thin.shape[2]] > 0
            nib.save(thick, folder / f"sub-{subject}_thick.nii.gz")
            truth = np.asanyarray(thin.dataobj, dtype=np.float32)
            for name, how in methods.items():
                sr = super_resolve(folder / f"sub-{subject}_thick.nii.gz", folder / f"sub-{subject}_{name}.nii.gz", *how)
                if not np.allclose(sr.affine, thin.affine, atol=1e-4) or sr.shape != thin.shape:
                    raise SystemExit(f"{name}: SR grid {sr.shape} {sr.affine.tolist()} is not the thin grid")
                output = np.asanyarray(sr.dataobj, dtype=np.float32)
                scores[name].append((psnr(truth, output, brain), ssim(truth, output, brain)))
                if name == a.variant:
                    for axes in STORAGES:
                        nib.save(stored(thick, axes), folder / f"sub-{subject}_thick_{axes}.nii.gz")
                        other = super_resolve(folder / f"sub-{subject}_thick_{axes}.nii.gz",
                                              folder / f"sub-{subject}_{axes}.nii.gz", *how)
                        same_voxels &= np.allclose(np.asanyarray(other.dataobj), output, atol=1e-4 * np.ptp(output))
    rows = ["| method | brain PSNR dB | brain SSIM |", "|---|---|---|"]
    for name, values in scores.items():
        mean = np.mean(values, axis=0)
        rows.append(f"| {name} | {mean[0]:.4f} | {mean[1]:.4f} |")
    body = "\n".join(rows) + (f"\n\nThe {', '.join(STORAGES)} storages give the RAS scan's SR voxels: "
                              f"{'yes' if same_voxels else 'NO'}.\n")
    print(body)
    append_entry("CPU", f"{a.subjects} out-of-sample demo subjects (demo_ood's seed and transforms), 1.5 mm, "
                        f"slabs of {SLAB} slices averaged into 6 mm slices; model {model}.", body)


if __name__ == "__main__":
    main()
