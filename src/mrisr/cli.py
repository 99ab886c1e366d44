"""``mrisr <stage> ...``: the only entry point the workflow calls. Each stage reads files and writes files."""

from __future__ import annotations

import argparse
import json
import logging
import sys

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


def cmd_splits(a: argparse.Namespace) -> None:
    from mrisr.data.prepare import write_splits

    write_splits(a.subjects, a.val, a.test, a.seed, a.out)


def cmd_prepare(a: argparse.Namespace) -> None:
    from mrisr.data.prepare import prepare_subject

    prepare_subject(a.t1w, a.mask, a.dseg, a.out_dir, a.subject, a.margin, a.multiple, a.normalise,
                    a.crop == "brain")


def cmd_degrade(a: argparse.Namespace) -> None:
    from mrisr.degrade import degrade_volume, lr_affine
    from mrisr.io import load_volume, save_volume

    hr = load_volume(a.hr)
    lr = degrade_volume(np.asanyarray(hr.dataobj, dtype=np.float32), a.method, a.scale, a.blur_fwhm)
    save_volume(lr, lr_affine(hr.affine, a.scale), a.out, reference=hr)


def cmd_train(a: argparse.Namespace) -> None:
    from mrisr.io import load_volume
    from mrisr.training.loop import TrainSettings, train

    _set_threads(a.threads)
    volumes = [np.asanyarray(load_volume(p).dataobj, dtype=np.float32) for p in a.hr]
    train(volumes, a.variant, TrainSettings(**a.settings), a.out_dir)


def cmd_super_resolve(a: argparse.Namespace) -> None:
    from mrisr.inference import hr_affine, interpolate, load_generator, super_resolve
    from mrisr.io import load_volume, save_volume

    _set_threads(a.threads)
    lr_img = load_volume(a.input)
    lr = np.asanyarray(lr_img.dataobj, dtype=np.float32)
    if a.model:
        generator, scale = load_generator(a.model)
        sr = super_resolve(generator, lr, scale, a.tile, a.halo)
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
    from mrisr.metrics import evaluate

    if not (len(a.subjects) == len(a.gt) == len(a.pred) == len(a.mask)):
        raise MrisrError("evaluate needs one --gt, --pred and --mask per --subjects entry")
    rows = []
    for subject, gt_path, pred_path, mask_path in zip(a.subjects, a.gt, a.pred, a.mask):
        gt, pred = load_volume(gt_path), load_volume(pred_path)
        mask = np.asanyarray(load_volume(mask_path, role="mask").dataobj) > 0
        if gt.shape != pred.shape or not np.allclose(gt.affine, pred.affine, atol=1e-3):
            raise InputError(pred_path, f"grid {pred.shape} does not match the ground truth {gt_path} ({gt.shape})",
                             "super-resolve onto the HR reference grid (--reference)")
        rows.append({"subject": subject, **evaluate(np.asanyarray(gt.dataobj, dtype=np.float32),
                                                    np.asanyarray(pred.dataobj, dtype=np.float32), mask)})
    write_table(pd.DataFrame(rows), a.out)


def cmd_table(a: argparse.Namespace) -> None:
    import pandas as pd

    from mrisr.io import write_table, write_text
    from mrisr.stats import summarise, to_markdown

    frames = {label: pd.read_csv(path, dtype={"subject": str}) for label, path in _pairs(a.metrics).items()}
    summary = summarise(frames)
    write_table(summary, a.out_csv)
    write_text(to_markdown(summary), a.out_md)


def cmd_figure_sr(a: argparse.Namespace) -> None:
    from mrisr.figures.threeplayer import sr_comparison
    from mrisr.io import load_volume

    panels = {}
    for label, path in _pairs(a.panel).items():
        data = np.asanyarray(load_volume(path).dataobj, dtype=np.float32)
        if label == "LR":
            data = np.repeat(np.repeat(np.repeat(data, a.scale, 0), a.scale, 1), a.scale, 2)
        panels[label] = data
    mask = np.asanyarray(load_volume(a.mask, role="mask").dataobj) > 0
    sr_comparison(panels, mask, a.out, a.zoom, a.title)


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
    s.add_argument("--sha256", required=True)
    s.add_argument("--size", type=int, help="expected bytes")
    s.add_argument("--out", required=True)
    s.set_defaults(func=cmd_download)

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
    s.set_defaults(func=cmd_prepare)

    s = sub.add_parser("degrade", help="simulate an LR volume")
    s.add_argument("--hr", required=True)
    s.add_argument("--out", required=True)
    s.add_argument("--method", choices=["nearest", "kspace", "blur"], required=True)
    s.add_argument("--scale", type=int, default=2)
    s.add_argument("--blur-fwhm", type=float, default=2.0)
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
    s.add_argument("--tile", type=int, default=48)
    s.add_argument("--halo", type=int, default=16)
    s.add_argument("--threads", type=int, default=2)
    s.set_defaults(func=cmd_super_resolve)

    s = sub.add_parser("evaluate", help="metrics of predictions against GT, one CSV row per subject")
    s.add_argument("--subjects", nargs="+", required=True)
    s.add_argument("--gt", nargs="+", required=True)
    s.add_argument("--pred", nargs="+", required=True)
    s.add_argument("--mask", nargs="+", required=True)
    s.add_argument("--out", required=True)
    s.set_defaults(func=cmd_evaluate)

    s = sub.add_parser("table", help="method x metric table (mean ± std, n)")
    s.add_argument("--metrics", nargs="+", required=True, metavar="METHOD=CSV")
    s.add_argument("--out-csv", required=True)
    s.add_argument("--out-md", required=True)
    s.set_defaults(func=cmd_table)

    s = sub.add_parser("figure-sr", help="LR / methods / GT slices with zoom boxes")
    s.add_argument("--panel", nargs="+", required=True, metavar="LABEL=NIFTI")
    s.add_argument("--mask", required=True)
    s.add_argument("--scale", type=int, default=2)
    s.add_argument("--zoom", type=float, default=0.3)
    s.add_argument("--title", default="")
    s.add_argument("--out", required=True)
    s.set_defaults(func=cmd_figure_sr)
    return p


def main(argv: list[str] | None = None) -> int:
    args = parser().parse_args(argv)
    logging.basicConfig(level=logging.DEBUG if args.verbose else logging.INFO,
                        format="%(asctime)s %(name)s %(levelname)s %(message)s")
    try:
        args.func(args)
    except MrisrError as exc:
        print(f"mrisr {args.stage}: error: {exc}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
