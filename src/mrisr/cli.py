"""``mrisr <stage> ...``: the only entry point the workflow calls. Each stage reads files and writes files."""

from __future__ import annotations

import argparse
import json
import logging
import os
import sys
from pathlib import Path

import numpy as np

from mrisr.errors import InputError, MrisrError

def _pairs(items: list[str]) -> dict[str, str]:
    """``label=path`` arguments in order."""
    out = {}
    for item in items:
        label, sep, path = item.partition("=")
        if not sep:
            raise MrisrError(f"'{item}' is not LABEL=PATH. Fix: write it as e.g. esrgan=results/.../metrics.csv")
        out[label] = path
    return out


def _set_threads(n: int) -> None:
    import torch

    torch.set_num_threads(n)


def cmd_demo(a: argparse.Namespace) -> None:
    from mrisr.data.demo import make_demo_subject

    make_demo_subject(a.out_dir, a.subject, a.seed, a.spacing, a.transforms)


def cmd_download(a: argparse.Namespace) -> None:
    from mrisr.data.download import download

    download(a.url, a.out, a.sha256, a.size)


def cmd_ixi_extract(a: argparse.Namespace) -> None:
    from mrisr.data.ixi import extract_subjects, head_mask
    from mrisr.io import load_volume, save_volume

    for subject, t1w in extract_subjects(a.tar, a.subjects, a.out_dir).items():
        image = load_volume(t1w)
        mask = head_mask(np.asanyarray(image.dataobj, dtype=np.float32)).astype(np.uint8)
        save_volume(mask, image.affine, t1w.with_name(f"sub-{subject}_mask.nii.gz"))


def cmd_hcp_fetch(a: argparse.Namespace) -> None:
    from mrisr.data.hcp import fetch_subject

    fetch_subject(a.subject, a.out_dir, a.bucket, a.prefix, a.endpoint_url)


def cmd_lpips_backbone(a: argparse.Namespace) -> None:
    import shutil

    from mrisr.perceptual import fetch_backbone

    out = Path(a.out_dir)
    staging = out.with_name(f".{out.name}.partial")  # fixed, so that a rerun resumes an interrupted download
    status = fetch_backbone(a.url, a.sha256, a.size, staging, final_dir=out)
    shutil.rmtree(out, ignore_errors=True)
    staging.rename(out)
    if not status["available"]:
        logging.getLogger("mrisr").warning("LPIPS will not be computed: %s", status["reason"])


def cmd_splits(a: argparse.Namespace) -> None:
    from mrisr.data.prepare import write_splits

    write_splits(a.subjects, a.val, a.test, a.seed, a.out)


def cmd_prepare(a: argparse.Namespace) -> None:
    from mrisr.data.prepare import prepare_subject

    prepare_subject(a.t1w, a.mask, a.dseg, a.out_dir, a.subject, a.margin, a.multiple, a.normalise,
                    a.crop == "brain", a.resample)


def cmd_degrade(a: argparse.Namespace) -> None:
    from mrisr.degrade import add_noise, degrade_volume, lr_affine
    from mrisr.io import load_volume, save_volume

    hr = load_volume(a.hr)
    lr = degrade_volume(np.asanyarray(hr.dataobj, dtype=np.float32), a.method, a.scale, a.blur_fwhm)
    if a.noise_sigma > 0:
        lr = add_noise(lr, a.noise_sigma, a.noise_seed, Path(a.hr).name)
    save_volume(lr, lr_affine(hr.affine, a.scale), a.out, reference=hr)


def cmd_train(a: argparse.Namespace) -> None:
    from mrisr.io import load_volume
    from mrisr.training.loop import TrainSettings, train

    _set_threads(a.threads)
    volumes = [np.asanyarray(load_volume(p).dataobj, dtype=np.float32) for p in a.hr]
    train(volumes, a.variant, TrainSettings(**a.settings), a.out_dir)


def cmd_super_resolve(a: argparse.Namespace) -> None:
    from mrisr.inference import hr_affine, interpolate, load_generator, super_resolve
    from mrisr.io import load_volume, resample_isotropic, save_volume

    _set_threads(a.threads)
    lr_img = load_volume(a.input, isotropic=bool(a.model) and a.resample is None,
                         grid_fix="pass --resample <mm> to resample it to isotropic voxels first")
    if a.resample is not None:
        lr_img = resample_isotropic(lr_img, a.resample)
    lr = np.asanyarray(lr_img.dataobj, dtype=np.float32)
    if a.model:
        generator, scale = load_generator(a.model)
        sr = super_resolve(generator, lr, scale, a.tile, a.halo, a.batch, reconstruct_tile=a.reconstruct_tile,
                           pasted=a.pasted)
    else:
        scale = a.scale
        sr = interpolate(lr, scale, order={"trilinear": 1, "nearest": 0}[a.interpolate])
    affine, reference = hr_affine(lr_img.affine, scale), None
    if a.reference:
        reference = load_volume(a.reference, role="reference")
        if reference.shape != sr.shape:
            raise InputError(a.reference, f"reference grid {reference.shape} differs from the SR grid {sr.shape}",
                             "give the HR volume this LR was made from, or leave --reference out")
        affine = reference.affine
    save_volume(sr, affine, a.output, reference=reference if reference is not None else lr_img)


def cmd_evaluate(a: argparse.Namespace) -> None:
    import pandas as pd

    from mrisr.io import load_volume, write_table
    from mrisr.metrics import evaluate, noise_sigma
    from mrisr.perceptual import SliceLpips, backbone_status

    _set_threads(a.threads)
    if not (len(a.subjects) == len(a.gt) == len(a.pred) == len(a.mask)) or (a.lr and len(a.lr) != len(a.subjects)):
        raise MrisrError("evaluate needs one --gt, --pred, --mask (and --lr, if given) per --subjects entry")
    lpips_metric, lpips_note = None, ""
    if a.lpips_dir:
        status = backbone_status(a.lpips_dir)
        if status["available"]:
            lpips_metric = SliceLpips(a.lpips_dir)
        else:
            lpips_note = f"not computed: the AlexNet weights could not be fetched ({status['reason']})"
            logging.getLogger("mrisr").warning("LPIPS %s", lpips_note)
    rows = []
    for i, (subject, gt_path, pred_path, mask_path) in enumerate(zip(a.subjects, a.gt, a.pred, a.mask)):
        gt, pred = load_volume(gt_path), load_volume(pred_path)
        mask = np.asanyarray(load_volume(mask_path, role="mask").dataobj) > 0
        if gt.shape != pred.shape or not np.allclose(gt.affine, pred.affine, atol=1e-3):
            raise InputError(pred_path, f"grid {pred.shape} does not match the ground truth {gt_path} ({gt.shape})",
                             "super-resolve onto the HR reference grid (--reference)")
        gt_data, pred_data = (np.asanyarray(v.dataobj, dtype=np.float32) for v in (gt, pred))
        row = {"subject": subject, **evaluate(gt_data, pred_data, mask)}
        if a.lpips_dir:
            row["lpips"] = lpips_metric(gt_data, pred_data, mask, a.lpips_step) if lpips_metric else float("nan")
            row["lpips_note"] = lpips_note
        row["sigma_sr"] = noise_sigma(pred_data)
        if a.lr:
            row["sigma_lr"] = noise_sigma(np.asanyarray(load_volume(a.lr[i]).dataobj, dtype=np.float32))
        rows.append(row)
    write_table(pd.DataFrame(rows), a.out)


def cmd_segment_train(a: argparse.Namespace) -> None:
    from mrisr.segmentation.sampling import load_training_set
    from mrisr.segmentation.train import SegSettings, train_segmentation

    _set_threads(a.threads)
    settings = SegSettings(**{**a.settings, "classes": tuple(a.settings["classes"])})
    data = load_training_set(a.image, a.label, a.sr, len(settings.classes))
    train_segmentation(data, a.network, settings, a.out_dir)


def cmd_segment_evaluate(a: argparse.Namespace) -> None:
    import pandas as pd

    from mrisr.io import load_volume, save_volume, voxel_sizes, write_table
    from mrisr.segmentation.evaluate import load_segmenter, score, segment
    from mrisr.segmentation.sampling import load_labels

    _set_threads(a.threads)
    if not len(a.subjects) == len(a.image) == len(a.label):
        raise MrisrError("segment-evaluate needs one --image and one --label per --subjects entry")
    network, classes, seed = load_segmenter(a.model)
    out_dir, rows = Path(a.out_dir), []
    for subject, image_path, label_path in zip(a.subjects, a.image, a.label):
        image = load_volume(image_path)
        truth = load_labels(label_path, image, image_path, len(classes))
        pred = segment(network, np.asanyarray(image.dataobj, dtype=np.float32), a.roi, a.overlap)
        save_volume(pred, image.affine, out_dir / f"sub-{subject}_dseg.nii.gz", reference=image, dtype=np.uint8)
        rows.append({"subject": subject, "seed": seed,
                     **score(pred, truth, classes, voxel_sizes(image.affine), a.hd95)})
    write_table(pd.DataFrame(rows), a.out)


def cmd_segment_table(a: argparse.Namespace) -> None:
    import pandas as pd

    from mrisr.io import write_table, write_text
    from mrisr.segmentation.table import arm_table, to_markdown

    per_arm: dict[str, list] = {}
    for item in a.scores:
        arm, _, path = item.partition("=")
        per_arm.setdefault(arm, []).append(pd.read_csv(path, dtype={"subject": str}))
    table = arm_table({arm: pd.concat(frames, ignore_index=True) for arm, frames in per_arm.items()})
    write_table(table, a.out_csv)
    write_text(to_markdown(table), a.out_md)


def cmd_figure_segmentation(a: argparse.Namespace) -> None:
    from mrisr.figures.augment import segmentation_comparison
    from mrisr.io import load_volume

    from mrisr.segmentation.sampling import load_labels

    image = load_volume(a.image)
    arms = {label: load_labels(p, image, a.image, len(a.classes)) for label, p in _pairs(a.arm).items()}
    truth = load_labels(a.label, image, a.image, len(a.classes))
    segmentation_comparison(np.asanyarray(image.dataobj, dtype=np.float32), truth, arms, _mask(a.mask), a.classes,
                            a.out, a.title)


def _metric_frames(pairs: list[str]) -> dict:
    import pandas as pd

    return {label: pd.read_csv(path, dtype={"subject": str}, keep_default_na=True)
            for label, path in _pairs(pairs).items()}


def cmd_table(a: argparse.Namespace) -> None:
    from mrisr.io import write_table, write_text
    from mrisr.stats import comparison_table, notes_of, to_markdown

    frames = _metric_frames(a.metrics)
    table = comparison_table(frames, a.reference)
    write_table(table, a.out_csv)
    write_text(to_markdown(table, notes=notes_of(frames)), a.out_md)


def cmd_noise_table(a: argparse.Namespace) -> None:
    import pandas as pd

    from mrisr.io import write_table, write_text
    from mrisr.stats import QUALITY, comparison_table, notes_of, to_markdown

    by_sigma: dict[float, dict] = {}
    for key, frame in _metric_frames(a.metrics).items():
        method, _, sigma = key.rpartition("@")
        by_sigma.setdefault(float(sigma), {})[method] = frame
    tables, text = [], []
    for sigma in sorted(by_sigma):
        table = comparison_table(by_sigma[sigma], a.reference, (*QUALITY, "sigma_lr", "sigma_sr"))
        tables.append(table.assign(sigma=sigma))
        text += [f"### Added noise σ = {sigma:g} (z-score units)", "", to_markdown(table, notes=notes_of(by_sigma[sigma]))]
    write_table(pd.concat(tables, ignore_index=True), a.out_csv)
    write_text("\n".join(text), a.out_md)


def _panels(pairs: list[str], scale: int) -> dict[str, np.ndarray]:
    """Volumes by label, all on the HR grid (an ``LR`` panel is shown by voxel repetition)."""
    from mrisr.io import load_volume

    panels = {}
    for label, path in _pairs(pairs).items():
        data = np.asanyarray(load_volume(path).dataobj, dtype=np.float32)
        if label == "LR":
            data = np.repeat(np.repeat(np.repeat(data, scale, 0), scale, 1), scale, 2)
        panels[label] = data
    return panels


def _mask(path: str) -> np.ndarray:
    from mrisr.io import load_volume

    return np.asanyarray(load_volume(path, role="mask").dataobj) > 0


def cmd_figure_sr(a: argparse.Namespace) -> None:
    from mrisr.figures.threeplayer import sr_comparison

    sr_comparison(_panels(a.panel, a.scale), _mask(a.mask), a.out, a.zoom, a.title)


def cmd_figure_profile(a: argparse.Namespace) -> None:
    from mrisr.figures.threeplayer import zoom_profile

    zoom_profile(_panels(a.panel, a.scale), _mask(a.mask), a.out, a.zoom, a.length, a.title)


def cmd_figure_discrepancy(a: argparse.Namespace) -> None:
    import pandas as pd

    from mrisr.figures.threeplayer import discrepancy

    discrepancy({label: pd.read_csv(path) for label, path in _pairs(a.log).items()}, a.out)


def cmd_figure_noise(a: argparse.Namespace) -> None:
    import pandas as pd

    from mrisr.figures.disgan import noise_curves

    noise_curves(pd.read_csv(a.table), a.out)


def cmd_figure_stripes(a: argparse.Namespace) -> None:
    from mrisr.figures.disgan import stripes
    from mrisr.io import load_volume

    gt, blended, pasted = (np.asanyarray(load_volume(p).dataobj, dtype=np.float32) for p in (a.gt, a.blended, a.pasted))
    if not gt.shape == blended.shape == pasted.shape:
        raise InputError(a.pasted, f"grids differ: GT {gt.shape}, blended {blended.shape}, pasted {pasted.shape}",
                         "give the SR outputs of one LR volume and its HR ground truth")
    stripes(gt, blended, pasted, _mask(a.mask), a.period, a.out, a.label, a.title)


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="mrisr", description=__doc__)
    p.add_argument("-v", "--verbose", action="store_true")
    sub = p.add_subparsers(dest="stage", required=True)

    s = sub.add_parser("demo", help="make one embedded demo subject")
    s.add_argument("--out-dir", required=True)
    s.add_argument("--subject", required=True)
    s.add_argument("--seed", type=int, required=True)
    s.add_argument("--spacing", type=float, required=True)
    s.add_argument("--transforms", type=json.loads, required=True, help="JSON of datasets.<name>.transforms")
    s.set_defaults(func=cmd_demo)

    s = sub.add_parser("download", help="fetch a file, resuming, and check its size and sha256")
    s.add_argument("--url", required=True)
    s.add_argument("--sha256", help="expected sha256 (omit only for files without a published hash: size is checked)")
    s.add_argument("--size", type=int, help="expected bytes")
    s.add_argument("--out", required=True)
    s.set_defaults(func=cmd_download)

    s = sub.add_parser("ixi-extract", help="unpack IXI T1 scans from the archive by streaming; add head masks")
    s.add_argument("--tar", required=True)
    s.add_argument("--subjects", nargs="+", required=True, help="IXI ids, e.g. IXI002")
    s.add_argument("--out-dir", required=True, help="results/raw/<dataset>: sub-<id>/ folders are made in it")
    s.set_defaults(func=cmd_ixi_extract)

    s = sub.add_parser("hcp-fetch", help="fetch one HCP subject's T1w and aparc+aseg from S3 (your AWS credentials)")
    s.add_argument("--subject", required=True)
    s.add_argument("--out-dir", required=True)
    s.add_argument("--bucket", default="hcp-openaccess")
    s.add_argument("--prefix", default="HCP_1200")
    s.add_argument("--endpoint-url", help="another S3 endpoint (tests: a local server)")
    s.set_defaults(func=cmd_hcp_fetch)

    s = sub.add_parser("lpips-backbone", help="fetch LPIPS's AlexNet weights into a folder; record if it cannot")
    s.add_argument("--url", required=True)
    s.add_argument("--sha256", required=True)
    s.add_argument("--size", type=int)
    s.add_argument("--out-dir", required=True)
    s.set_defaults(func=cmd_lpips_backbone)

    s = sub.add_parser("splits", help="write splits.tsv")
    s.add_argument("--subjects", nargs="+", required=True)
    s.add_argument("--val", type=int, required=True)
    s.add_argument("--test", type=int, required=True)
    s.add_argument("--seed", type=int, required=True)
    s.add_argument("--out", required=True)
    s.set_defaults(func=cmd_splits)

    s = sub.add_parser("prepare", help="RAS+, crop, z-score one subject")
    s.add_argument("--t1w", required=True)
    s.add_argument("--mask", required=True)
    s.add_argument("--dseg")
    s.add_argument("--subject", required=True)
    s.add_argument("--out-dir", required=True)
    s.add_argument("--margin", type=int, required=True)
    s.add_argument("--multiple", type=int, required=True, help="crop edges are multiples of this (the SR scale)")
    s.add_argument("--normalise", choices=["volume", "brain"], required=True)
    s.add_argument("--crop", choices=["brain", "none"], default="brain")
    s.add_argument("--resample", type=float, help="mm: resample anisotropic or oblique scans to this isotropic grid")
    s.set_defaults(func=cmd_prepare)

    s = sub.add_parser("degrade", help="simulate an LR volume")
    s.add_argument("--hr", required=True)
    s.add_argument("--out", required=True)
    s.add_argument("--method", choices=["nearest", "kspace", "blur"], required=True)
    s.add_argument("--scale", type=int, default=2)
    s.add_argument("--blur-fwhm", type=float, default=2.0)
    s.add_argument("--noise-sigma", type=float, default=0.0, help="Gaussian noise σ added to the LR (z-score units)")
    s.add_argument("--noise-seed", type=int, default=0)
    s.set_defaults(func=cmd_degrade)

    s = sub.add_parser("train", help="train one GAN variant")
    s.add_argument("--hr", nargs="+", required=True, help="prepared HR training volumes")
    s.add_argument("--variant", type=json.loads, required=True, help="JSON of variants.<name>")
    s.add_argument("--settings", type=json.loads, required=True, help="JSON of the training settings")
    s.add_argument("--out-dir", required=True)
    s.add_argument("--threads", type=int, default=2)
    s.set_defaults(func=cmd_train)

    s = sub.add_parser("super-resolve", help="super-resolve one LR volume")
    s.add_argument("input")
    s.add_argument("output")
    how = s.add_mutually_exclusive_group(required=True)
    how.add_argument("--model", help="model.pt of a trained variant")
    how.add_argument("--interpolate", choices=["trilinear", "nearest"])
    s.add_argument("--scale", type=int, default=2, help="for --interpolate")
    s.add_argument("--reference", help="HR volume whose grid and header the output takes")
    s.add_argument("--resample", type=float, metavar="MM",
                   help="resample an anisotropic or oblique input to MM isotropic voxels first (recorded in the header)")
    s.add_argument("--tile", type=int, default=160, help="LR window edge of the feature stage")
    s.add_argument("--halo", type=int, default=8, help="LR voxels of context around each window, cropped after")
    s.add_argument("--reconstruct-tile", type=int, default=32, help="LR window edge of the upsampling and HR tail")
    s.add_argument("--batch", type=int, default=1, help="windows per generator pass")
    s.add_argument("--pasted", action="store_true",
                   help="the authors' inference: the whole network per --tile, no halo, outputs pasted side by side")
    s.add_argument("--threads", type=int, default=2)
    s.set_defaults(func=cmd_super_resolve)

    s = sub.add_parser("evaluate", help="metrics of predictions against GT, one CSV row per subject")
    s.add_argument("--subjects", nargs="+", required=True)
    s.add_argument("--gt", nargs="+", required=True)
    s.add_argument("--pred", nargs="+", required=True)
    s.add_argument("--mask", nargs="+", required=True)
    s.add_argument("--lr", nargs="+", help="the LR inputs, for their noise estimate")
    s.add_argument("--lpips-dir", help="folder of the lpips_backbone rule (status.json + weights); omit: no LPIPS")
    s.add_argument("--lpips-step", type=int, default=1, help="every n-th brain slice per plane")
    s.add_argument("--threads", type=int, default=2)
    s.add_argument("--out", required=True)
    s.set_defaults(func=cmd_evaluate)

    s = sub.add_parser("segment-train", help="train one segmentation arm with one seed (real, or real + SR images)")
    s.add_argument("--image", nargs="+", required=True, help="real HR T1w training volumes")
    s.add_argument("--label", nargs="+", required=True, help="their label maps, in the same order")
    s.add_argument("--sr", nargs="+", help="real+sr arm: each subject's SR volume on the same grid, same order")
    s.add_argument("--network", type=json.loads, required=True, help="JSON of segmentation.network")
    s.add_argument("--settings", type=json.loads, required=True, help="JSON of the segmentation training settings")
    s.add_argument("--out-dir", required=True)
    s.add_argument("--threads", type=int, default=2)
    s.set_defaults(func=cmd_segment_train)

    s = sub.add_parser("segment-evaluate", help="segment test volumes with a trained arm; Dice (HD95) per class")
    s.add_argument("--model", required=True)
    s.add_argument("--subjects", nargs="+", required=True)
    s.add_argument("--image", nargs="+", required=True, help="real HR T1w test volumes")
    s.add_argument("--label", nargs="+", required=True, help="their ground-truth label maps")
    s.add_argument("--roi", type=int, required=True, help="sliding-window edge (the training patch size)")
    s.add_argument("--overlap", type=float, default=0.5)
    s.add_argument("--hd95", action="store_true", help="also the 95th-percentile Hausdorff distance (mm)")
    s.add_argument("--out-dir", required=True, help="sub-<id>_dseg.nii.gz are written here")
    s.add_argument("--out", required=True, help="CSV: a row per subject")
    s.add_argument("--threads", type=int, default=2)
    s.set_defaults(func=cmd_segment_evaluate)

    s = sub.add_parser("segment-table", help="arm x class table over seeds, with paired tests between arms")
    s.add_argument("--scores", nargs="+", required=True, metavar="ARM=CSV", help="one per arm and seed")
    s.add_argument("--out-csv", required=True)
    s.add_argument("--out-md", required=True)
    s.set_defaults(func=cmd_segment_table)

    s = sub.add_parser("figure-segmentation", help="image, ground truth, each arm's segmentation, their differences")
    s.add_argument("--image", required=True)
    s.add_argument("--label", required=True)
    s.add_argument("--mask", required=True)
    s.add_argument("--arm", nargs="+", required=True, metavar="ARM=NIFTI")
    s.add_argument("--classes", nargs="+", required=True)
    s.add_argument("--title", default="")
    s.add_argument("--out", required=True)
    s.set_defaults(func=cmd_figure_segmentation)

    s = sub.add_parser("table", help="method x metric table (mean ± std, n)")
    s.add_argument("--metrics", nargs="+", required=True, metavar="METHOD=CSV")
    s.add_argument("--reference", help="the method every other is tested against (paired over subjects)")
    s.add_argument("--out-csv", required=True)
    s.add_argument("--out-md", required=True)
    s.set_defaults(func=cmd_table)

    s = sub.add_parser("noise-table", help="metrics and noise estimates against the noise added to the LR input")
    s.add_argument("--metrics", nargs="+", required=True, metavar="METHOD@SIGMA=CSV")
    s.add_argument("--reference", help="the method every other is tested against at each σ")
    s.add_argument("--out-csv", required=True)
    s.add_argument("--out-md", required=True)
    s.set_defaults(func=cmd_noise_table)

    for name, func, text in (("figure-sr", cmd_figure_sr, "LR / methods / GT slices with zoom boxes"),
                             ("figure-profile", cmd_figure_profile, "zoomed crops and an intensity line profile")):
        s = sub.add_parser(name, help=text)
        s.add_argument("--panel", nargs="+", required=True, metavar="LABEL=NIFTI")
        s.add_argument("--mask", required=True)
        s.add_argument("--scale", type=int, default=2)
        s.add_argument("--zoom", type=float, default=0.3)
        s.add_argument("--length", type=int, default=20, help="profile length in HR voxels (figure-profile)")
        s.add_argument("--title", default="")
        s.add_argument("--out", required=True)
        s.set_defaults(func=func)

    s = sub.add_parser("figure-discrepancy", help="relativistic discrepancy of G and D against training step")
    s.add_argument("--log", nargs="+", required=True, metavar="VARIANT=TRAIN_LOG_CSV")
    s.add_argument("--out", required=True)
    s.set_defaults(func=cmd_figure_discrepancy)

    s = sub.add_parser("figure-noise", help="metrics and noise estimates against the noise added to the input")
    s.add_argument("--table", required=True, help="the noise table CSV")
    s.add_argument("--out", required=True)
    s.set_defaults(func=cmd_figure_noise)

    s = sub.add_parser("figure-stripes", help="|SR - GT| and its spectrum: halo-blended vs tile-pasted inference")
    s.add_argument("--gt", required=True)
    s.add_argument("--blended", required=True)
    s.add_argument("--pasted", required=True)
    s.add_argument("--mask", required=True)
    s.add_argument("--period", type=int, required=True, help="HR edge of the pasted tiles")
    s.add_argument("--label", default="SR")
    s.add_argument("--title", default="")
    s.add_argument("--out", required=True)
    s.set_defaults(func=cmd_figure_stripes)
    return p


def main(argv: list[str] | None = None) -> int:
    args = parser().parse_args(argv)
    logging.basicConfig(level=logging.DEBUG if args.verbose else logging.INFO,
                        format="%(asctime)s %(name)s %(levelname)s %(message)s")
    if "SLURM_JOB_ID" in os.environ:  # which cluster job wrote this log, for accounting and post-mortems
        logging.getLogger("mrisr").info("SLURM job %s on %s", os.environ["SLURM_JOB_ID"],
                                        os.environ.get("SLURMD_NODENAME", "?"))
    try:
        args.func(args)
    except MrisrError as exc:
        print(f"mrisr {args.stage}: error: {exc}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
