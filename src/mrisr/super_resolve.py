"""The super-resolve stage: whole LR volumes onto the HR grid, by a trained generator, by interpolation, or from
an outside program's output (:mod:`mrisr.external`), resampled onto that grid; scans read and checked, outputs and
BIDS derivatives written. The windowed engine and the grid operations are :mod:`mrisr.inference`'s.

A trained model is applied as its model card says (:mod:`mrisr.model_card`): the scan in the axes of its training
arrays (RAS+, or as stored) and z-scored as prepare did for training, the output put back into the scan's intensity
units and orientation.
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass, replace
from pathlib import Path

import nibabel as nib
import numpy as np
import torch
from tqdm import tqdm

from mrisr import __version__
from mrisr.device import Acceleration, set_threads
from mrisr.errors import InputError, MrisrError
from mrisr.grid import LrGrid, card_grid, hr_affine
from mrisr.inference import Inference, Interpolation, compile_stages, interpolate, load_generator, onto_grid, super_resolve
from mrisr.io import (ANISOTROPY_TOLERANCE, GRID_TOLERANCE_MM, digest_of, load_volume, resample_isotropic, resample_like, same_grid, save_volume,
                      voxel_sizes, write_text)
from mrisr.model_card import STORED, mm
from mrisr.preprocessing import Crop, Intensities, Normalise, head_mask, intensity_statistics
from mrisr.scale import Scale, as_config, as_scale, label, whole_lr_voxels

log = logging.getLogger(__name__)


#: A scan's voxels may differ this much (relative) from the model's LR voxels before super-resolve warns.
VOXEL_TOLERANCE = 0.1

NIFTI_SUFFIXES = (".nii", ".nii.gz")


@dataclass(frozen=True, kw_only=True)
class MethodChoice:
    """What makes the SR, as asked (``--model``, ``--interpolate``, ``--external``, ``--scale``, ``--lr-grid``): exactly
    one of a model file (its card says its scale and LR grid), an interpolation mode at ``scale``, or the folders where
    an outside program wrote its output of each scan, at ``scale``; the latter two on ``lr_grid`` (:mod:`mrisr.grid`)."""

    model: str | None
    interpolate: str | None  # an Interpolation
    external: list[str] | None  # one folder per scan
    scale: int | list[int] | None
    lr_grid: str = LrGrid.SLAB.value  # an LrGrid: slab, a scanner's; corner, a decimated LR's

    def __post_init__(self):
        if sum(map(bool, (self.model, self.interpolate, self.external))) != 1 or (
                (self.interpolate or self.external) and not self.scale):
            raise MrisrError("super-resolve needs one of --model, --interpolate with --scale, --external with --scale")


@dataclass(frozen=True, kw_only=True)
class ScanOptions:
    """How each scan is taken (``--reference``, ``--mask``, ``--prepared``, ``--resample``): the HR volume whose grid and
    header each scan's output takes (one per scan), the brain mask (one scan only), whether the scans are in the
    model's units already, and the isotropic voxel (mm) an anisotropic or oblique scan is resampled to first."""

    reference: list[str] | None
    mask: str | None
    prepared: bool
    resample: float | None


@dataclass(frozen=True, kw_only=True)
class BidsSelection:
    """``--bids`` and ``--bids-filter``: every T1w of the BIDS dataset ``root`` that the entities ``filter`` select."""

    root: str | None
    filter: dict | None


@dataclass(frozen=True)
class Method:
    """A trained generator with its card, an interpolation, or an outside program's output file, at ``scale`` (per
    RAS+ axis), from LR on ``grid``."""

    scale: Scale
    grid: LrGrid
    generator: torch.nn.Module | None = None
    card: dict | None = None
    interpolation: Interpolation = Interpolation.TRILINEAR
    external: Path | None = None


def normalisation(lr: np.ndarray, card: dict, mask: np.ndarray | None, path: Path) -> tuple[float, float]:
    """(offset, scale) of the card's intensities (z-score, or [0, 1] range) on this LR scan: over ``mask`` (on the
    scan's grid) or, without one, the scan's foreground (Otsu), which then stands in for the brain mask that prepare
    had."""
    prep = card["preprocessing"]
    uses_mask = Crop(prep["crop"]) is Crop.BRAIN or Normalise(prep["normalise"]) is Normalise.BRAIN
    if mask is None and uses_mask:  # crop none, whole-volume z-score: every voxel, no mask needed
        mask = head_mask(lr)
        log.info("%s: no --mask; the scan's foreground (%d voxels) stands in for the brain mask", path, mask.sum())
    margin = [-(-prep["margin"] // f) for f in as_scale(card["scale"])]  # prepare's HR margin on the LR grid
    offset, scale = intensity_statistics(lr, mask, prep["crop"], prep["normalise"], margin, 1,
                                         prep.get("normalise_first", False),  # cards before it: after the cut
                                         prep.get("intensities", Intensities.ZSCORE))  # cards before it: z-score
    if not scale > 0:
        raise InputError(path, "has no contrast inside the brain mask", "check the scan and its --mask")
    return offset, scale


def check_grid(ras: nib.Nifti1Image, scale: int | Scale, path: Path, grid: LrGrid = LrGrid.SLAB) -> None:
    """The scan's voxels (RAS+ axes) must become isotropic at the model's scale on its LR grid: the HR grid it was
    trained on. An isotropic model takes isotropic scans; a thick-slice one (1 x 1 x 4) scans whose slices are 4
    times as thick as their in-plane voxels, along its axis."""
    sizes, scale = voxel_sizes(ras.affine), as_scale(scale)
    hr = voxel_sizes(hr_affine(ras.affine, scale, grid, ras.shape))
    if hr.max() > hr.min() * (1 + ANISOTROPY_TOLERANCE):
        fix = ("pass --resample <mm> to resample it to isotropic voxels first" if len(set(scale)) == 1 else
               f"give a scan whose voxels (RAS+ axes) are in the ratio {' : '.join(map(str, scale))}, e.g. thick "
               f"slices along the model's axis (or use a model of the scan's own scale)")
        raise InputError(path, f"voxels of {mm(sizes)} mm (RAS+ axes) become {mm(hr)} mm at {label(scale)}, not the "
                               "isotropic grid the model was trained on", fix)


def check_voxel_size(ras: nib.Nifti1Image, card: dict, path: Path) -> None:
    """Warn, with the fix, when the scan's voxels (RAS+) are not the LR voxels the model was trained to enlarge."""
    sizes, expected = voxel_sizes(ras.affine), np.broadcast_to(card["lr_voxel_mm"], 3)
    if np.any(np.abs(sizes / expected - 1) > VOXEL_TOLERANCE):
        fix = (f"pass --resample {expected[0]:.3g} to resample the scan first" if len(set(expected)) == 1 else
               f"resample the scan to {mm(expected)} mm (RAS+ axes) first")
        log.warning("%s: voxels of %s mm (RAS+), but the model was trained on LR voxels of %s mm (HR %.3g mm): its "
                    "output may be off. Fix: %s", path, mm(sizes), mm(np.unique(expected)), card["hr_voxel_mm"], fix)


def super_resolve_image(img: nib.Nifti1Image, method: Method, path: Path, *, mask: nib.Nifti1Image | None,
                        prepared: bool, inference: Inference, progress: bool) -> nib.Nifti1Image:
    """One LR image onto its HR grid, in its own orientation and intensity units.

    The network sees what it was trained on: the scan in the axes of the card's training arrays (RAS+, or as stored)
    and z-scored as the card says; its output goes back to the scan's units and orientation (``prepared``: the input
    is z-scored already). The HR grid is the one the LR was made from on the method's grid (:mod:`mrisr.grid`: on
    the slab grid, thin voxels tiling each LR voxel's slab), in those axes, so that one scan stored in any
    orientation gives the same voxels at the same world positions.
    """
    axes = method.card["preprocessing"]["orientation"] if method.card else "RAS"
    seen = oriented(img, axes)
    lr = np.asanyarray(seen.dataobj, dtype=np.float32)  # scl_slope / scl_inter applied
    if method.external is not None:
        grid = tuple(n * f for n, f in zip(lr.shape, method.scale))
        sr = onto_grid(method.external, hr_affine(seen.affine, method.scale, method.grid, lr.shape), grid,
                       voxel_sizes(seen.affine).max())
    elif method.generator is None:
        sr = interpolate(lr, method.scale, method.interpolation, method.grid)
    else:
        check_grid(seen, method.scale, path, method.grid)
        check_voxel_size(seen, method.card, path)
        mean, std = 0.0, 1.0
        if not prepared:
            brain = None if mask is None else np.asanyarray(oriented(mask, axes).dataobj) > 0
            mean, std = normalisation(lr, method.card, brain, path)
        sr = super_resolve(method.generator, (lr - mean) / std, method.scale, inference, progress) * std + mean
    out = nib.Nifti1Image(sr.astype(np.float32), hr_affine(seen.affine, method.scale, method.grid, lr.shape))
    return reoriented(out, nib.orientations.io_orientation(img.affine))


def oriented(img: nib.Nifti1Image, axes: str) -> nib.Nifti1Image:
    """``img`` with its voxel axes in the order and directions ``axes`` names (``RAS``: nibabel's closest
    canonical), or as it is (``stored``)."""
    return img if axes == STORED else reoriented(img, nib.orientations.axcodes2ornt(tuple(axes)))


def reoriented(img: nib.Nifti1Image, orientation: np.ndarray) -> nib.Nifti1Image:
    """``img`` with its voxel axes in nibabel's ``orientation`` (an ornt array)."""
    return img.as_reoriented(nib.orientations.ornt_transform(nib.orientations.io_orientation(img.affine), orientation))


def outside_output(folder: str | Path) -> Path:
    """The one NIfTI file an outside program wrote into ``folder`` (it may write plots and logs beside it)."""
    found = sorted(p for p in Path(folder).iterdir() if p.name.endswith(NIFTI_SUFFIXES)) if Path(folder).is_dir() \
        else []
    if len(found) != 1:
        raise InputError(folder, f"holds {len(found)} NIfTI files, not the outside program's one output",
                         "give the folder the program wrote one scan's output into")
    return found[0]


def _scan_pairs(inputs: list[str], output: str) -> list[tuple[Path, Path]]:
    """(scan, output file) for every input: a folder stands for its NIfTI files; several scans need a folder."""
    scans = []
    for name in map(Path, inputs):
        scans += sorted(p for p in name.iterdir() if p.name.endswith(NIFTI_SUFFIXES)) if name.is_dir() else [name]
    if not scans:
        raise InputError(inputs[0], "holds no .nii or .nii.gz file", "give NIfTI scans or a folder of them")
    out = Path(output)
    if len(scans) == 1 and not Path(inputs[0]).is_dir() and out.name.endswith(NIFTI_SUFFIXES):
        return [(scans[0], out)]
    if out.name.endswith(NIFTI_SUFFIXES):
        raise InputError(out, "is a file name, but there are several scans", "give an output folder")
    return [(scan, out / scan.name) for scan in scans]


def check_reference_grid(reference: nib.Nifti1Image, sr: nib.Nifti1Image, scale: Scale, path: str | Path) -> None:
    """``--reference`` is the SR grid itself, not only of its shape: the same voxel-to-world affine (origin, spacing,
    axes), its shape the SR's or larger by the far-edge HR rows that filled no whole LR voxel. A reference on
    another grid would label every SR voxel with a world position it does not have."""
    if whole_lr_voxels(reference.shape, sr.shape, scale) and np.allclose(reference.affine, sr.affine,
                                                                         atol=GRID_TOLERANCE_MM):
        return
    off = nib.affines.apply_affine(reference.affine, (0, 0, 0)) - nib.affines.apply_affine(sr.affine, (0, 0, 0))
    raise InputError(path, f"reference grid ({' x '.join(map(str, reference.shape))} voxels of "
                           f"{mm(voxel_sizes(reference.affine))} mm, first voxel {np.linalg.norm(off):.3g} mm from the "
                           f"SR grid's) is not the SR grid ({' x '.join(map(str, sr.shape))} voxels of "
                           f"{mm(voxel_sizes(sr.affine))} mm)",
                     "give the HR volume this LR was made from, on its own grid (the SR grid), or leave --reference out")


def _bids_pairs(root: str, output: str, filters: dict) -> dict[tuple[Path, Path], str]:
    """(T1w, derivative file) for every T1w of the BIDS dataset ``root`` that ``filters`` select, each with its
    path in the dataset; the output folder must be a new one or mrisr's derivatives of this dataset, and no folder
    in it a link out of it (``OUT/sub-01`` linked to the raw ``sub-01`` would put derivatives among its files)."""
    from mrisr.bids import check_derivatives_folder, derivative_name, open_layout, t1w_images

    check_derivatives_folder(Path(output), Path(root))
    images = t1w_images(open_layout(root), filters, "--bids-filter")
    if not images:
        raise InputError(root, f"has no T1w image (sub-*/[ses-*/]anat/*_T1w.nii[.gz]) that --bids-filter "
                         f"{json.dumps(filters)} selects", "check the dataset, or loosen --bids-filter")
    pairs = {(Path(image.path), Path(output) / derivative_name(image.relpath)): image.relpath for image in images}
    inside = Path(output).resolve()
    for _, target in pairs:
        if not target.parent.resolve().is_relative_to(inside):
            raise InputError(target.parent, f"leads out of the output folder (to {target.parent.resolve()}): "
                                            "derivatives would be written there",
                             "remove the link from the output folder; mrisr makes its folders itself")
    return pairs


def _check_pairs(pairs: list[tuple[Path, Path]], also_read: list[str | Path | None]) -> None:
    """Before anything is written: no output is an input (a scan, or ``also_read``: the reference, the mask, an
    outside program's output; the same file, or an output folder that holds the scans), and no two scans write one
    output."""
    scans = [scan for scan, _ in pairs] + [Path(p) for p in also_read if p]
    read = {scan.resolve(): scan for scan in scans}
    first_of: dict[Path, Path] = {}
    for scan, target in pairs:
        if target.resolve() in read or (target.exists() and any(target.samefile(s) for s in scans if s.exists())):
            raise InputError(target, f"is an input ({read.get(target.resolve(), scan)}): it would be overwritten",
                             "write the output to another file or folder")
        if (earlier := first_of.setdefault(target.resolve(), scan)) != scan:
            raise InputError(target, f"would be written for two scans ({earlier} and {scan})",
                             "give scans with distinct file names, or run them into separate output folders")


def _provenance(method: Method, model: str | None, variant: str, command_line: str) -> dict:
    """What every BIDS sidecar of one run says of how it was made: the model (the sha256 of its file, read once)."""
    return {"Description": f"{label(method.scale)} super-resolution ({variant})", "Variant": variant,
            "Model": Path(model).name if model else None, "ModelSha256": digest_of(model) if model else None,
            "Scale": as_config(method.scale), "MrisrVersion": __version__, "CommandLine": command_line}


def chosen_method(choice: MethodChoice, resample: float | None) -> tuple[Method, str, str]:
    """(the method, its name for sidecars, what the output's header says made it) of what was asked."""
    if choice.model:
        generator, card = load_generator(choice.model)
        method = Method(scale=as_scale(card["scale"]), grid=card_grid(card), generator=generator, card=card)
        if resample is not None and len(set(method.scale)) > 1:
            raise MrisrError(f"--resample makes isotropic voxels, which this {label(method.scale)} model does not "
                             "take: leave it out and give the thick-slice scan as it is")
        return method, card["variant"], f"mrisr {label(card['scale'])} {card['variant']} ({Path(choice.model).name})"
    if choice.external:  # each scan's output file is its own: set per scan by super_resolve_files
        method = Method(scale=as_scale(choice.scale), grid=LrGrid(choice.lr_grid))
        return method, "external", f"mrisr {label(choice.scale)} from"
    method = Method(scale=as_scale(choice.scale), grid=LrGrid(choice.lr_grid),
                    interpolation=Interpolation(choice.interpolate))
    return method, choice.interpolate, f"mrisr {label(choice.scale)} {choice.interpolate}"


def one_per_scan(values: list[str] | None, scans: int, option: str) -> list[str | None]:
    """The files an option gives, one per scan in the scans' order (none given: None for each)."""
    if not values:
        return [None] * scans
    if len(values) != scans:
        raise MrisrError(f"{option} takes one file per scan, in the scans' order: {scans} scans, {len(values)} given")
    return values


def super_resolve_files(inputs: list[str], output: str, method: MethodChoice, scan: ScanOptions,
                        inference: Inference, acceleration: Acceleration, bids: BidsSelection, threads: int,
                        command_line: str) -> list[Path]:
    """The stage: LR scans (files or folders) through the chosen ``method`` onto their HR grids, the model loaded
    once; one file in, one file out, else into the folder ``output``.

    ``scan.reference`` (one per scan) gives each output's grid and header; it must be the SR grid. ``scan.mask`` (one
    scan only) is the brain mask on the scan's grid for the z-score. ``bids.root``: instead of ``inputs``, every T1w
    of this BIDS dataset (that ``bids.filter`` selects), written as BIDS derivatives into ``output``
    (:mod:`mrisr.bids`); ``command_line`` goes into their sidecars. ``acceleration``: how fast the generator runs.
    """
    if bool(inputs) == bool(bids.root):
        raise MrisrError("super-resolve needs either input scans or --bids BIDS_ROOT, not both")
    set_threads(threads)
    sources = _bids_pairs(bids.root, output, bids.filter or {}) if bids.root else {}
    pairs = list(sources) or _scan_pairs(inputs, output)
    references = one_per_scan(scan.reference, len(pairs), "--reference")
    outsides = [outside_output(folder) if folder else None
                for folder in one_per_scan(method.external, len(pairs), "--external")]
    _check_pairs(pairs, [*references, scan.mask, *outsides])
    if len(pairs) > 1 and scan.mask:
        raise MrisrError("--mask belongs to one scan; run those scans one by one")
    chosen, variant, descrip = chosen_method(method, scan.resample)
    if chosen.generator is not None:
        compile_stages(chosen.generator, acceleration)
    if bids.root:
        from mrisr.bids import DESCRIPTION, INCOMPLETE, dataset_description

        write_text(json.dumps(dataset_description(Path(bids.root), __version__), indent=2) + "\n",
                   Path(output) / DESCRIPTION)
        write_text(f"mrisr is writing these derivatives, or a run that did stopped partway: {command_line}\n",
                   Path(output) / INCOMPLETE)
        provenance = _provenance(chosen, method.model, variant, command_line)
    written = []
    with acceleration.backends():
        for (path, out), reference, outside in tqdm(list(zip(pairs, references, outsides)), desc="scans",
                                                    unit="scan", disable=len(pairs) == 1):
            img = source = load_volume(path)
            brain = load_volume(scan.mask, role="mask") if scan.mask else None
            if brain is not None and not same_grid(brain, img):
                raise InputError(scan.mask, f"mask grid {brain.shape} is not the scan's grid {img.shape}",
                                 "give the brain mask of this scan, on its grid")
            made, of_scan = descrip, chosen
            if outside is not None:
                made, of_scan = f"{descrip} {outside.name}", replace(chosen, external=outside)
            if scan.resample is not None and (resampled := resample_isotropic(img, scan.resample)) is not img:
                img, brain = resampled, brain if brain is None else resample_like(brain, resampled)
                made = f"{made}; {resampled.header['descrip'].item().decode().removeprefix('mrisr: ')}"
            sr = super_resolve_image(img, of_scan, path, mask=brain, prepared=scan.prepared, inference=inference,
                                     progress=len(pairs) == 1)
            header_from, affine = img, sr.affine
            if reference:
                header_from = load_volume(reference, role="reference")
                check_reference_grid(header_from, sr, chosen.scale, reference)
            written.append(save_volume(np.asanyarray(sr.dataobj), affine, out, reference=header_from, descrip=made))
            if bids.root:
                from mrisr.bids import derivative_sidecar

                sidecar = derivative_sidecar(sources[path, out], provenance, voxel_sizes(source.affine),
                                             voxel_sizes(sr.affine))
                write_text(json.dumps(sidecar, indent=2) + "\n", out.with_name(out.name.removesuffix(".nii.gz") + ".json"))
    if bids.root:
        (Path(output) / INCOMPLETE).unlink()
    return written
