"""The super-resolve stage: whole LR volumes onto the HR grid, by a trained generator, by interpolation, or from
an outside program's output (:mod:`mrisr.external`), resampled onto that grid.

A trained model is applied as its model card says (:mod:`mrisr.model_card`): the scan reoriented to RAS+ and
z-scored as prepare did for training, the output put back into the scan's intensity units and orientation.

The volume goes through the generator in windows, each a core plus ``halo`` LR voxels of real context on every
side that are cropped away after the pass ("overlap and crop"). With a halo as wide as the network's reach
this is the one-pass answer at a fraction of its memory; a volume that fits one window is one pass. The RRDB
generator runs in two stages: its LR features (most of the compute) in large windows, then its upsampling and
HR tail (most of the memory) in small windows whose halo is their exact reach.
"""

from __future__ import annotations

import itertools
import json
import logging
import math
from dataclasses import dataclass
from pathlib import Path

import nibabel as nib
import numpy as np
import torch
from scipy import ndimage
from tqdm import tqdm

from mrisr import __version__
from mrisr.device import Acceleration, Precision, autocast, default_device, set_threads, uses_bf16
from mrisr.errors import InputError, MrisrError
from mrisr.io import (ANISOTROPY_TOLERANCE, digest_of, load_volume, resample_isotropic, resample_like, same_grid, save_volume,
                      voxel_sizes, write_text)
from mrisr.model_card import RETRAIN, load_model, mm
from mrisr.models.registry import build, is_plugin
from mrisr.preprocessing import Crop, Normalise, head_mask, zscore_statistics
from mrisr.scale import Scale, as_config, as_scale, label, whole_lr_voxels

log = logging.getLogger(__name__)


def load_generator(path: str | Path, device: torch.device | str | None = None) -> tuple[torch.nn.Module, dict]:
    """Rebuild a generator from a ``model.pt`` model card; returns (module in eval mode, card)."""
    config, state_dict, card = load_model(path)
    try:
        generator = build("generator", config)
        generator.load_state_dict(state_dict)
    except (RuntimeError, KeyError, TypeError) as exc:
        raise InputError(path, f"is not a readable mrisr model ({exc})", RETRAIN) from exc
    generator = generator.to(device or default_device()).eval()
    if is_plugin("generator", name := config.get("name", "rrdb")):
        check_reach(generator, name, path)
    return generator, card


#: A plugin's windowed output may differ from its one pass by this much (relative to the output's range)
REACH_TOLERANCE = 1e-4


@torch.inference_mode()
def check_reach(generator: torch.nn.Module, name: str, path: str | Path) -> None:
    """A plugin generator states its ``reach`` (LR voxels of context per axis, docs/plugins.md); windowed inference
    takes it as the halo. Checked on a probe volume cut into small windows: with that halo they must give the one
    pass, else the plugin's reach is wrong and its outputs would carry seams."""
    reach = getattr(generator, "reach", None)
    try:
        halo = (reach,) * 3 if isinstance(reach, int) else tuple(int(r) for r in reach)
    except TypeError:
        halo = ()
    if len(halo) != 3 or min(halo) < 0:
        raise InputError(path, f"holds the plugin generator '{name}', which states no reach (LR voxels of context "
                               "per axis)", f"give '{name}' a `reach` attribute, as docs/plugins.md says")
    device = next(generator.parameters()).device
    probe = torch.randn((1, 1, *(2 * h + 6 for h in halo)), generator=torch.Generator().manual_seed(0))
    whole = generator(probe.to(device)).float().cpu()[0]
    scale = tuple(n // m for n, m in zip(whole.shape[1:], probe.shape[2:]))
    windowed = _windowed(generator, device, probe[0], scale, 2, halo, 8, tqdm(disable=True), False).cpu()
    error = float((windowed - whole).abs().max() / max(float(whole.max() - whole.min()), 1e-12))
    if not error <= REACH_TOLERANCE:
        raise InputError(path, f"holds the plugin generator '{name}', whose stated reach {halo} is too small: windows "
                               f"with that halo differ from one pass by {error:.2g} of the output's range",
                         f"state '{name}''s true reach (docs/plugins.md)")


def staged(generator: torch.nn.Module) -> bool:
    """Whether the generator separates its LR feature stage from its HR reconstruction (:func:`super_resolve`)."""
    return hasattr(generator, "lr_features") and hasattr(generator, "reconstruct")


def compile_stages(generator: torch.nn.Module, acceleration: Acceleration) -> None:
    """``torch.compile`` what :func:`super_resolve` calls: a staged generator's two stages (its forward calls them
    too), else the generator."""
    if staged(generator):
        generator.lr_features = acceleration.compiled(generator.lr_features)
        generator.reconstruct = acceleration.compiled(generator.reconstruct)
    else:
        acceleration.compiled(generator)


def windows(size: int, tile: int, halo: int, even: bool = True) -> list[tuple[int, int, int, int]]:
    """(core start, core stop, window start, window stop) along one axis; every window has the same length.

    The axis is cut into equal cores of at most ``tile`` voxels (``even=False``: cores of exactly ``tile``, the
    last one shorter); a window is a core plus ``halo`` voxels of real context on each side, shifted inward at
    the volume's edges (where the context is the volume's own boundary, as in one pass), so that windows stack
    into batches. An axis whose window would span it whole is one window.
    """
    core = math.ceil(size / math.ceil(size / tile)) if even else tile
    if core + 2 * halo >= size:
        return [(0, size, 0, size)]
    length = core + 2 * halo
    out = []
    for start in range(0, size, core):
        first = min(max(start - halo, 0), size - length)
        out.append((start, min(start + core, size), first, first + length))
    return out


def holding_device(shape: tuple[int, ...], device: torch.device) -> torch.device:
    """Where a windowed pass collects its output (the features between the two stages, the SR volume): on the GPU
    while it takes at most a quarter of the free memory (an HCP volume's 64 feature channels take 0.7 GiB), so that
    windows are not copied to the host and back one by one; else, and on the CPU, in host memory."""
    if device.type == "cuda" and 4 * 4 * math.prod(shape) <= torch.cuda.mem_get_info(device)[0]:
        return device
    return torch.device("cpu")


def _windowed(network, device: torch.device, x: torch.Tensor, scale: Scale, tile: int, halo: int | Scale, batch: int,
              bar: tqdm, bf16: bool, even: bool = True) -> torch.Tensor:
    """``network`` over (C, D, H, W) ``x`` window by window (``halo``: per axis, or one for all); each window's
    core is cropped from its output into a volume on :func:`holding_device`."""
    halos = (halo,) * 3 if isinstance(halo, int) else halo
    plan = list(itertools.product(*(windows(n, tile, h, even) for n, h in zip(x.shape[1:], halos))))
    out = None
    for first in range(0, len(plan), batch):
        group = plan[first:first + batch]
        inputs = torch.stack([x[(slice(None), *(slice(a, b) for _, _, a, b in axes))] for axes in group])
        with autocast(device, bf16):
            y = network(inputs.to(device)).float()
        if out is None:
            shape = (y.shape[1], *(n * f for n, f in zip(x.shape[1:], scale)))
            out = torch.empty(shape, device=holding_device(shape, device))
        for i, axes in enumerate(group):
            keep = tuple(slice((s - a) * f, (e - a) * f) for (s, e, a, _), f in zip(axes, scale))
            out[(slice(None), *(slice(s * f, e * f) for (s, e, _, _), f in zip(axes, scale)))] = \
                y[(i, slice(None), *keep)].to(out.device)
        bar.update(len(group))
    return out


@torch.inference_mode()
def super_resolve(generator: torch.nn.Module, lr: np.ndarray, scale: int | Scale, tile: int, halo: int, batch: int = 1,
                  progress: bool = True, reconstruct_tile: int = 32, pasted: bool = False,
                  precision: str | Precision = Precision.AUTO) -> np.ndarray:
    """The generator's output on the whole volume, computed window by window (``batch`` windows per pass).

    A generator that separates its LR feature stage from its HR reconstruction (``lr_features`` /
    ``reconstruct``) runs them as two windowed passes: the features in windows of ``tile`` LR voxels with
    ``halo`` of context (one window when the volume fits), then the reconstruction, whose HR tensors hold the
    memory peak, in windows of ``reconstruct_tile`` with exactly its reach as halo. Other generators run whole,
    window by window. With ``halo`` at least the network's effective reach this is the one-pass answer.

    ``pasted``: the authors' inference instead, for the stripe figure: the whole network on non-overlapping tiles
    of exactly ``tile`` voxels (no halo), pasted side by side. ``precision``: the autocast, as in training.
    """
    volume, scale = torch.from_numpy(np.ascontiguousarray(lr, dtype=np.float32))[None], as_scale(scale)
    device = next(generator.parameters()).device
    bf16 = uses_bf16(precision, device)
    with tqdm(desc="super-resolve", unit="window", disable=not progress) as bar:
        if pasted:
            return _windowed(generator, device, volume, scale, tile, 0, batch, bar, bf16, even=False)[0].cpu().numpy()
        if not staged(generator):  # a plugin's stated reach is its exact halo (checked when it was loaded)
            halo = getattr(generator, "reach", halo)
            return _windowed(generator, device, volume, scale, tile, halo, batch, bar, bf16)[0].cpu().numpy()
        features = _windowed(generator.lr_features, device, volume, (1, 1, 1), tile, halo, batch, bar, bf16)
        return _windowed(generator.reconstruct, device, features, scale, reconstruct_tile, generator.reconstruct_reach,
                         batch, bar, bf16)[0].cpu().numpy()


def interpolate(lr: np.ndarray, scale: int | Scale, order: int = 1) -> np.ndarray:
    """Spline interpolation onto the HR grid, LR voxel ``i`` lying at HR voxel ``scale * i`` (per axis; order 1 =
    trilinear)."""
    factors = np.asarray(as_scale(scale), dtype=np.float64)
    shape = tuple(int(n * f) for n, f in zip(lr.shape, factors))
    return ndimage.affine_transform(np.asarray(lr, dtype=np.float32), 1.0 / factors, output_shape=shape,
                                     order=order, mode="nearest").astype(np.float32)


def onto_grid(outside: nib.Nifti1Image, affine: np.ndarray, shape: tuple[int, ...], lr_voxel: float,
              path: Path) -> np.ndarray:
    """An outside program's output resampled onto the HR grid (``affine``, ``shape``) by world position, cubic
    B-spline. A program keeps its own grid convention (ECLARE splits each thick voxel over the same field of view,
    its first thin voxel (scale - 1) / 2 voxels before ours): its affine, not its array, says where its voxels are.
    The output must cover the grid but for one LR voxel (``lr_voxel`` mm) at its edges, which are extrapolated."""
    from nibabel.processing import resample_from_to

    if len(outside.shape) != 3:
        raise InputError(path, f"is {len(outside.shape)}D, not one 3D volume", "check the outside program's output")
    to_outside = np.linalg.inv(outside.affine) @ affine
    corners = nib.affines.apply_affine(to_outside, list(itertools.product(*[(0, n - 1) for n in shape])))
    slack = lr_voxel / voxel_sizes(outside.affine)
    if (corners < -0.5 - slack).any() or (corners > np.asarray(outside.shape) - 0.5 + slack).any():
        raise InputError(path, "does not cover the LR scan's field of view (its affine places it elsewhere)",
                         "check that the outside program writes the affine of its input's grid")
    resampled = resample_from_to(outside, (shape, affine), order=3, mode="nearest")
    return np.asanyarray(resampled.dataobj, dtype=np.float32)


def hr_affine(lr_affine: np.ndarray, scale: int | Scale) -> np.ndarray:
    """The HR grid whose every ``scale``-th voxel (per axis) is an LR voxel (inverse of
    :func:`mrisr.degrade.lr_affine`)."""
    affine = np.array(lr_affine, dtype=np.float64)
    affine[:3, :3] = affine[:3, :3] / np.asarray(as_scale(scale), dtype=np.float64)
    return affine


#: Interpolation orders of ``--interpolate``.
INTERPOLATION_ORDERS = {"trilinear": 1, "nearest": 0}

#: A scan's voxels may differ this much (relative) from the model's LR voxels before super-resolve warns.
VOXEL_TOLERANCE = 0.1

NIFTI_SUFFIXES = (".nii", ".nii.gz")


@dataclass(frozen=True)
class Method:
    """A trained generator with its card, an interpolation order, or an outside program's output file, at ``scale``
    (per RAS+ axis)."""

    scale: Scale
    generator: torch.nn.Module | None = None
    card: dict | None = None
    order: int = 1
    external: Path | None = None


def normalisation(lr: np.ndarray, card: dict, mask: np.ndarray | None, path: Path) -> tuple[float, float]:
    """(mean, std) of the card's z-score on this LR scan: over ``mask`` (on the scan's grid) or, without one, the
    scan's foreground (Otsu), which then stands in for the brain mask that prepare had."""
    prep = card["preprocessing"]
    uses_mask = Crop(prep["crop"]) is Crop.BRAIN or Normalise(prep["normalise"]) is Normalise.BRAIN
    if mask is None and uses_mask:  # crop none, whole-volume z-score: every voxel, no mask needed
        mask = head_mask(lr)
        log.info("%s: no --mask; the scan's foreground (%d voxels) stands in for the brain mask", path, mask.sum())
    margin = [-(-prep["margin"] // f) for f in as_scale(card["scale"])]  # prepare's HR margin on the LR grid
    mean, std = zscore_statistics(lr, mask, prep["crop"], prep["normalise"], margin, 1)
    if not std > 0:
        raise InputError(path, "has no contrast inside the brain mask", "check the scan and its --mask")
    return mean, std


def check_grid(ras: nib.Nifti1Image, scale: int | Scale, path: Path) -> None:
    """The scan's voxels (RAS+ axes) must become isotropic at the model's scale: the HR grid it was trained on. An
    isotropic model takes isotropic scans; a thick-slice one (1 x 1 x 4) scans whose slices are 4 times as thick
    as their in-plane voxels, along its axis."""
    sizes, scale = voxel_sizes(ras.affine), as_scale(scale)
    hr = sizes / np.asarray(scale)
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
                        prepared: bool, tile: int, halo: int, reconstruct_tile: int, batch: int,
                        pasted: bool, progress: bool, precision: str | Precision = Precision.AUTO) -> nib.Nifti1Image:
    """One LR image onto its HR grid, in its own orientation and intensity units.

    The network sees what it was trained on: the scan reoriented to RAS+ and z-scored as the card says; its output
    goes back to the scan's units and orientation (``prepared``: the input is z-scored already). The HR grid is the RAS+ one whose every ``scale``-th voxel is an
    LR voxel, so that one scan stored in any orientation gives the same voxels at the same world positions.
    """
    ras = nib.as_closest_canonical(img)
    lr = np.asanyarray(ras.dataobj, dtype=np.float32)  # scl_slope / scl_inter applied
    if method.external is not None:
        grid = tuple(n * f for n, f in zip(lr.shape, method.scale))
        sr = onto_grid(load_volume(method.external, role="outside program's output"),
                       hr_affine(ras.affine, method.scale), grid, voxel_sizes(ras.affine).max(), method.external)
    elif method.generator is None:
        sr = interpolate(lr, method.scale, order=method.order)
    else:
        check_grid(ras, method.scale, path)
        check_voxel_size(ras, method.card, path)
        mean, std = 0.0, 1.0
        if not prepared:
            brain = None if mask is None else np.asanyarray(nib.as_closest_canonical(mask).dataobj) > 0
            mean, std = normalisation(lr, method.card, brain, path)
        sr = super_resolve(method.generator, (lr - mean) / std, method.scale, tile, halo, batch, progress=progress,
                           reconstruct_tile=reconstruct_tile, pasted=pasted, precision=precision) * std + mean
    out = nib.Nifti1Image(sr.astype(np.float32), hr_affine(ras.affine, method.scale))
    back = nib.orientations.ornt_transform(nib.orientations.axcodes2ornt("RAS"),
                                           nib.orientations.io_orientation(img.affine))
    return out.as_reoriented(back)


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


def _bids_pairs(root: str, output: str, filters: dict) -> dict[tuple[Path, Path], str]:
    """(T1w, derivative file) for every T1w of the BIDS dataset ``root`` that ``filters`` select, each with its
    path in the dataset; the output folder must be a new one or mrisr's derivatives of this dataset."""
    from mrisr.bids import check_derivatives_folder, derivative_name, open_layout, t1w_images

    check_derivatives_folder(Path(output), Path(root))
    images = t1w_images(open_layout(root), filters, "--bids-filter")
    if not images:
        raise InputError(root, f"has no T1w image (sub-*/[ses-*/]anat/*_T1w.nii[.gz]) that --bids-filter "
                         f"{json.dumps(filters)} selects", "check the dataset, or loosen --bids-filter")
    return {(Path(image.path), Path(output) / derivative_name(image.relpath)): image.relpath for image in images}


def _check_pairs(pairs: list[tuple[Path, Path]]) -> None:
    """Before anything is written: no output is an input (the same file, or an output folder that holds the
    scans), and no two scans write one output."""
    scans = [scan for scan, _ in pairs]
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


def _sidecar(source: str, provenance: dict, lr: nib.Nifti1Image, sr: nib.Nifti1Image) -> dict:
    """The JSON sidecar of one BIDS derivative: its source and voxel sizes, then the run's provenance."""
    from mrisr.bids import source_uri

    return {"Sources": [source_uri(source)], **provenance,
            "SourceVoxelSize": [round(float(v), 6) for v in voxel_sizes(lr.affine)],
            "VoxelSize": [round(float(v), 6) for v in voxel_sizes(sr.affine)]}


def super_resolve_files(inputs: list[str], output: str, model: str | None, interpolate_mode: str | None,
                        external: str | None, scale: int | None, reference: str | None, mask: str | None,
                        prepared: bool, resample: float | None, tile: int, halo: int, reconstruct_tile: int, batch: int,
                        pasted: bool, threads: int, precision: str | None, bids: str | None, bids_filter: dict | None,
                        command_line: str, compile: str, tf32: str, cudnn_benchmark: bool) -> list[Path]:
    """The stage: LR scans (files or folders) through ``model`` (or ``interpolate_mode`` at ``scale``) onto their
    HR grids, the model loaded once; one file in, one file out, else into the folder ``output``. ``external``: the
    folder where an outside program wrote its one NIfTI output of the one scan, put onto its grid at ``scale``.

    ``reference`` (one scan only) gives the output's grid and header; it must be the SR grid. ``mask`` (one scan
    only) is the brain mask on the scan's grid for the z-score. ``resample`` (mm) puts anisotropic or oblique
    scans on an isotropic grid first. ``bids``: instead of ``inputs``, every T1w of this BIDS dataset (that
    ``bids_filter`` selects), written as BIDS derivatives into ``output`` (:mod:`mrisr.bids`);
    ``command_line`` goes into their sidecars. ``precision``: the autocast (None: ``auto``, bf16 on CUDA only);
    ``compile``, ``tf32``, ``cudnn_benchmark``: how fast the generator runs (:class:`mrisr.device.Acceleration`).
    """
    if sum(map(bool, (model, interpolate_mode, external))) != 1 or ((interpolate_mode or external) and not scale):
        raise MrisrError("super-resolve needs one of --model, --interpolate with --scale, --external with --scale")
    if bool(inputs) == bool(bids):
        raise MrisrError("super-resolve needs either input scans or --bids BIDS_ROOT, not both")
    set_threads(threads)
    sources = _bids_pairs(bids, output, bids_filter or {}) if bids else {}
    pairs = list(sources) or _scan_pairs(inputs, output)
    _check_pairs(pairs)
    if len(pairs) > 1 and (reference or mask):
        raise MrisrError("--reference and --mask belong to one scan; run those scans one by one")
    acceleration = Acceleration(cudnn_benchmark=cudnn_benchmark, tf32=tf32, compile=compile)
    if model:
        generator, card = load_generator(model)
        compile_stages(generator, acceleration)
        method = Method(scale=as_scale(card["scale"]), generator=generator, card=card)
        variant = card["variant"]
        descrip = f"mrisr {label(card['scale'])} {variant} ({Path(model).name})"
        if resample is not None and len(set(method.scale)) > 1:
            raise MrisrError(f"--resample makes isotropic voxels, which this {label(method.scale)} model does not "
                             "take: leave it out and give the thick-slice scan as it is")
    elif external:
        method = Method(scale=as_scale(scale), external=outside_output(external))
        variant = method.external.name
        descrip = f"mrisr {label(scale)} from {method.external.name}"
        if len(pairs) > 1:
            raise MrisrError("--external holds the output of one scan: run the scans one by one")
    else:
        method = Method(scale=as_scale(scale), order=INTERPOLATION_ORDERS[interpolate_mode])
        variant = interpolate_mode
        descrip = f"mrisr {label(scale)} {interpolate_mode}"
    if bids:
        from mrisr.bids import DESCRIPTION, dataset_description

        write_text(json.dumps(dataset_description(Path(bids), __version__), indent=2) + "\n",
                   Path(output) / DESCRIPTION)
        provenance = _provenance(method, model, variant, command_line)
    written = []
    with acceleration.backends():
        for scan, out in tqdm(pairs, desc="scans", unit="scan", disable=len(pairs) == 1):
            img = source = load_volume(scan)
            brain = load_volume(mask, role="mask") if mask else None
            if brain is not None and not same_grid(brain, img):
                raise InputError(mask, f"mask grid {brain.shape} is not the scan's grid {img.shape}",
                                 "give the brain mask of this scan, on its grid")
            made = descrip
            if resample is not None and (resampled := resample_isotropic(img, resample)) is not img:
                img, brain = resampled, brain if brain is None else resample_like(brain, resampled)
                made = f"{descrip}; {resampled.header['descrip'].item().decode().removeprefix('mrisr: ')}"
            sr = super_resolve_image(img, method, scan, mask=brain, prepared=prepared, tile=tile,
                                     halo=halo, reconstruct_tile=reconstruct_tile, batch=batch, pasted=pasted,
                                     progress=len(pairs) == 1, precision=precision or Precision.AUTO)
            header_from, affine = img, sr.affine
            if reference:
                header_from = load_volume(reference, role="reference")
                if not whole_lr_voxels(header_from.shape, sr.shape, method.scale):
                    raise InputError(reference,
                                     f"reference grid {header_from.shape} differs from the SR grid {sr.shape}",
                                     "give the HR volume this LR was made from, or leave --reference out")
                affine = header_from.affine
            written.append(save_volume(np.asanyarray(sr.dataobj), affine, out, reference=header_from, descrip=made))
            if bids:
                sidecar = _sidecar(sources[scan, out], provenance, source, sr)
                write_text(json.dumps(sidecar, indent=2) + "\n",
                           out.with_name(out.name.removesuffix(".nii.gz") + ".json"))
    return written
