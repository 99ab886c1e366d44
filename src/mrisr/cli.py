"""``mrisr <stage> [<step>] ...``: the entry point every rule calls, one command per stage (or stage step).

Each command is a row of :data:`COMMANDS`: the function it calls (its options are the function's keyword
arguments), a help line and its options. Options that the rules pass are required and have no default here:
the schema (``mrisr/schemas/config.schema.yaml``) is the one home of defaults, and the few options a user
may leave out take theirs from it.
"""

from __future__ import annotations

import argparse
import importlib
import inspect
import json
import logging
import math
import operator
import os
import shlex
import sys

from mrisr.errors import NO_ROOM, MrisrError

#: Libraries whose debug log (``-v``) holds secrets: botocore logs request headers (AWS key id, session token).
QUIET_LIBRARIES = ("botocore", "boto3", "s3transfer", "urllib3")


def required(flag: str, type=str, **kwargs) -> tuple[str, dict]:
    return flag, dict(type=type, required=True, **kwargs)


def optional(flag: str, type=str, **kwargs) -> tuple[str, dict]:
    return flag, dict(type=type, **kwargs)


def files(flag: str, help: str | None = None, **kwargs) -> tuple[str, dict]:
    return flag, dict(nargs="+", required=True, help=help, **kwargs)


def switch(flag: str, help: str) -> tuple[str, dict]:
    return flag, dict(action="store_true", help=help)


#: JSON schema's range keywords: the sign a message shows, and the test a value must pass
RANGE_KEYWORDS = {"minimum": (">=", operator.ge), "exclusiveMinimum": (">", operator.gt),
                  "maximum": ("<=", operator.le), "exclusiveMaximum": ("<", operator.lt)}


def in_range(key: str, type=int):
    """An option's type: a finite ``type`` within the schema's range of the config key ``key``; out of it, argparse
    names the option and the range, exits with 2 and nothing has been read or written."""
    from mrisr.config import schema_property

    spec = schema_property(key)
    bounds = {sign: (holds, spec[word]) for word, (sign, holds) in RANGE_KEYWORDS.items() if word in spec}

    def convert(text: str):
        try:
            value = type(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"{text!r} is not {'a whole number' if type is int else 'a number'}")
        if not math.isfinite(value) or not all(holds(value, bound) for holds, bound in bounds.values()):
            within = ", ".join(f"{sign} {bound}" for sign, (_, bound) in bounds.items()) or "finite"
            raise argparse.ArgumentTypeError(f"{text} is out of range: {key} must be {within}")
        return value

    convert.__name__ = type.__name__  # argparse names the type in its messages
    return convert


def from_schema(flag: str, key: str, type=int, help: str | None = None) -> tuple[str, dict]:
    """An option whose default, range or choices are the schema's for ``key``; a boolean key is a
    ``--flag/--no-flag`` pair."""
    from mrisr.config import schema_property

    spec = schema_property(key)
    default, described = spec["default"], f"{help + '; ' if help else ''}default {spec['default']} ({key})"
    if type is bool:
        return flag, dict(action=argparse.BooleanOptionalAction, default=default, help=described)
    if "enum" in spec:
        return flag, dict(choices=spec["enum"], default=default, help=described)
    checked = in_range(key, type) if type in (int, float) else type
    return flag, dict(type=checked, default=default, help=described)


def labelled(help: str) -> tuple[str, dict]:
    """Every labelled input list: JSON records, each with ``label`` and ``path`` (and, where named, more keys)."""
    return "--inputs", dict(type=json.loads, required=True, help=f'JSON [{{"label": ..., "path": ...}}, ...]: {help}')


def scale_type(text: str) -> int | list[int]:
    """A scale option: ``2`` (every axis) or three factors, ``1,1,4`` or ``[1, 1, 4]`` (RAS+ axes)."""
    from mrisr.scale import as_config, as_scale

    try:
        value = json.loads(f"[{text.strip('[]')}]")
        return as_config(as_scale(value[0] if len(value) == 1 else value))
    except (ValueError, IndexError):
        raise argparse.ArgumentTypeError(f"{text!r} is not a scale: one factor 1-4, or three (1,1,4)") from None


scale_type.__name__ = "scale"
OUT = required("--out")
THREADS = required("--threads", int, help="CPU threads (Snakemake's threads)")
PROCESSES = from_schema("--processes", "train.gpus", int, help="data-parallel processes on this node, one per GPU")
TITLE = required("--title")
CSV_MD = [required("--out-csv"), required("--out-md")]

#: Stages with several steps: their help line.
STAGES = {"fetch": "raw scans and weights", "external": "outside programs' environments",
          "segment": "the SR-augmentation study's segmentation", "papers": "the papers' tables and figures"}

#: (stage, step) or (stage,) -> ("module:function", help, options)
COMMANDS: dict[tuple[str, ...], tuple[str, str, list[tuple[str, dict]]]] = {
    ("fetch", "demo"): ("mrisr.fetch.demo:make_demo_subject", "make one embedded demo subject", [
        required("--out-dir"), required("--subject"), required("--seed", int), required("--spacing", float),
        required("--transforms", json.loads, help="JSON of datasets.<name>.transforms")]),
    ("fetch", "download"): ("mrisr.fetch.download:download", "fetch a file, resuming; check its size and sha256", [
        required("--url"), optional("--sha256", help="omit only where no sha256 is published"),
        optional("--md5", help="where the publisher gives an MD5 (IXI)"), optional("--size", int),
        required("--out", dest="dest")]),
    ("fetch", "ixi"): ("mrisr.fetch.ixi:extract", "unpack IXI T1 scans from the archive by streaming; add head masks", [
        required("--tar"), files("--subjects", "IXI ids, e.g. IXI002"), required("--out-dir")]),
    ("fetch", "hcp"): ("mrisr.fetch.hcp:fetch_subject", "one HCP subject's T1w and aparc+aseg from S3 (your AWS keys)", [
        required("--subject"), required("--out-dir"), required("--bucket"), required("--prefix"),
        optional("--endpoint-url", help="another S3 endpoint (tests: a local server)")]),
    ("fetch", "lpips"): ("mrisr.fetch.lpips:fetch_lpips_backbone", "LPIPS's AlexNet weights into a folder, or why not", [
        required("--url"), required("--sha256"), optional("--size", int), required("--out-dir")]),
    ("external", "install"): ("mrisr.external:install", "an outside program's environment from its conda file's pins, "
                              "as a virtual environment in a folder, or why not", [
        ("env_file", dict(help="conda environment file (python=3.X and a pip: list), e.g. envs/eclare.yaml")),
        required("--out-dir", dest="folder")]),
    ("prepare",): ("mrisr.prepare:prepare_subject", "RAS+, crop, z-score one subject", [
        required("--t1w"), optional("--mask", help="brain mask (default: the head, the scan's foreground)"),
        optional("--dseg"), required("--subject"), required("--out-dir"),
        required("--margin", int), required("--multiple", scale_type, help="crop edges are multiples of this (the SR scale)"),
        required("--normalise", choices=["volume", "brain"]), required("--crop", choices=["brain", "none"]),
        optional("--resample", in_range("prepare.resample", float),
                 help="mm: resample anisotropic or oblique scans to this isotropic grid")]),
    ("degrade",): ("mrisr.degrade:degrade_file", "simulate an LR volume", [
        required("--hr"), OUT, required("--degradation", json.loads, help="JSON of a degradations entry"),
        required("--scale", scale_type), required("--noise-sigma", float, help="Gaussian σ added (z-score units)"),
        required("--noise-seed", int)]),
    ("pretrain",): ("mrisr.pretrain:pretrain_generator", "train one generator on the pixel loss alone", [
        files("--hr", "prepared HR training volumes"),
        required("--generator", json.loads, help="JSON of a variant's generator"),
        required("--pixel-loss", choices=["l1", "mse"]),
        required("--settings", json.loads, help="JSON of the pretraining settings"),
        required("--provenance", json.loads,
                 help="JSON for the model card: generator key, dataset, training subjects, prepare's preprocessing"),
        required("--out-dir"), THREADS, PROCESSES]),
    ("train",): ("mrisr.train.gan:train_variant", "train one GAN variant", [
        files("--hr", "prepared HR training volumes"), required("--variant", json.loads, help="JSON of variants.<name>"),
        required("--settings", json.loads, help="JSON of the training settings"),
        required("--provenance", json.loads,
                 help="JSON for the model card: variant name, dataset, training subjects, prepare's preprocessing"),
        optional("--start", help="the pretrain stage's model.pt the generator starts from (start: pretrained)"),
        required("--out-dir"), THREADS, PROCESSES]),
    ("model-card",): ("mrisr.model_card:print_card", "print a model file's card (or add test-set metrics to it)", [
        ("model", dict(help="model.pt")), ("--json", dict(action="store_true", dest="as_json", help="as JSON")),
        optional("--metrics", help="the evaluate stage's CSV of this model: write a copy whose card holds it"),
        optional("--degradation", help="with --metrics: the degradation of the LR volumes it scored"),
        optional("--out", help="with --metrics: the copy's path")]),
    ("super-resolve",): ("mrisr.super_resolve:super_resolve_files", "super-resolve LR scans (files or folders)", [
        ("inputs", dict(nargs="*", metavar="INPUT", help="NIfTI scans or folders of them (or --bids)")),
        ("output", dict(help="the output file for one scan, else a folder (with --bids: the derivatives folder)")),
        optional("--bids", metavar="BIDS_ROOT", help="every T1w of this BIDS dataset, written as BIDS derivatives "
                 "(OUTPUT/sub-<label>/[ses-<label>/]anat/*_desc-sr_T1w.nii.gz + JSON sidecars)"),
        optional("--bids-filter", json.loads, metavar="JSON",
                 help='with --bids: BIDS entities that choose the T1w images, e.g. \'{"session": "1"}\' '
                      "(a list: any of its values; null: the entity is absent)"),
        optional("--model", help="model.pt of a trained variant (or --interpolate)"),
        optional("--interpolate", dest="interpolate_mode", choices=["trilinear", "nearest"]),
        optional("--external", metavar="FOLDER", help="the folder where an outside program (e.g. ECLARE) wrote its "
                 "output of the one input scan: resampled onto the scan's SR grid at --scale"),
        optional("--scale", scale_type, help="for --interpolate and --external: 2, or per RAS+ axis 1,1,4"),
        optional("--reference", help="HR volume whose grid and header the output takes"),
        optional("--mask", help="the scan's brain mask, for the z-score (default: its foreground)"),
        switch("--prepared", "the input is in the model's units already (the workflow's prepared LR); without it, "
               "the scan is z-scored as the model card says and the output put back into its units"),
        optional("--resample", in_range("prepare.resample", float), metavar="MM",
                 help="resample an anisotropic or oblique input to MM first"),
        from_schema("--tile", "inference.tile", help="LR window edge of the feature stage"),
        from_schema("--halo", "inference.halo", help="LR voxels of context around each window, cropped after"),
        from_schema("--reconstruct-tile", "inference.reconstruct_tile", help="LR window edge of the HR tail"),
        from_schema("--batch", "inference.batch", help="windows per generator pass"),
        switch("--pasted", "the authors' inference: the whole network per --tile, no halo, tiles pasted"),
        optional("--precision", choices=["auto", "fp32", "bf16"],
                 help="autocast: auto (the default: bf16 on CUDA, fp32 elsewhere), fp32 or bf16 (inference.precision)"),
        from_schema("--compile", "inference.compile", help="torch.compile's mode for the generator"),
        from_schema("--tf32", "train.tf32", help="CUDA fp32 math in TF32"),
        from_schema("--cudnn-benchmark", "train.cudnn_benchmark", bool, help="CUDA: cuDNN's algorithm autotuner"),
        from_schema("--threads", "threads")]),
    ("evaluate",): ("mrisr.evaluate:evaluate_files", "metrics of predictions against GT, one CSV row per subject", [
        files("--subjects"), files("--gt"), ("--pred", dict(nargs="+", help="the SR volumes (or --not-computed)")),
        files("--mask"),
        ("--lr", dict(nargs="+", help="the LR inputs, for their noise estimate")),
        optional("--lpips-dir", help="folder of the fetch_lpips rule; omit: no LPIPS"),
        optional("--lpips-step", in_range("lpips.slice_step"), help="every n-th brain slice per plane"),
        from_schema("--lpips-sha256", "lpips.sha256", str, help="the AlexNet weights' sha256"),
        optional("--not-computed", dest="not_computed_reason", metavar="REASON",
                 help="instead of --pred: a row per subject without metrics, saying why"), OUT, THREADS]),
    ("segment", "train"): ("mrisr.segment.train:train_arm", "train one segmentation arm with one seed", [
        files("--image", "real HR T1w training volumes"), files("--label", "their label maps, in the same order"),
        ("--sr", dict(nargs="+", help="real+sr arm: each subject's SR volume on the same grid, same order")),
        required("--network", json.loads, help="JSON of segmentation.network"),
        required("--settings", json.loads, help="JSON of the segmentation training settings"),
        required("--out-dir"), THREADS]),
    ("segment", "evaluate"): ("mrisr.segment.evaluate:evaluate_arm", "segment test volumes; Dice (HD95) per class", [
        required("--model"), files("--subjects"), files("--image", "real HR T1w test volumes"),
        files("--label", "their ground-truth label maps"), required("--roi", int, help="the training patch size"),
        required("--overlap", float), switch("--hd95", "also the 95th-percentile Hausdorff distance (mm)"),
        required("--out-dir", help="sub-<id>_dseg.nii.gz are written here"), OUT, THREADS]),
    ("papers", "method-table"): ("mrisr.papers.tables:method_table", "method x metric table with paired tests", [
        labelled("metric CSVs by method"), optional("--reference", help="the method the others are tested against"),
        *CSV_MD]),
    ("papers", "noise-table"): ("mrisr.papers.disgan:noise_table", "metrics against the noise added to the LR", [
        labelled("metric CSVs by method, each with its 'sigma'"), optional("--reference"), *CSV_MD]),
    ("papers", "settings-table"): ("mrisr.papers.field:settings_table", "each variant in each setting, paired", [
        labelled("metric CSVs by variant, each with its 'setting' and 'description'"), optional("--reference"),
        required("--published", json.loads, help="JSON of field.published: rows kept apart from the statistics"),
        *CSV_MD]),
    ("papers", "settings-figure"): ("mrisr.papers.field:settings_figure", "brain PSNR and SSIM per setting", [
        required("--table", help="the settings table CSV"), OUT]),
    ("papers", "segmentation-table"): ("mrisr.papers.augment:segmentation_table", "arm x class table over seeds", [
        labelled("score CSVs by arm, one per seed"), *CSV_MD]),
    ("papers", "sr-comparison"): ("mrisr.papers.threeplayer:sr_comparison_figure", "slices with zoom boxes", [
        labelled("panels: LR, methods, GT"), required("--mask"), required("--scale", scale_type), required("--zoom", float),
        TITLE, OUT]),
    ("papers", "zoom-profile"): ("mrisr.papers.threeplayer:zoom_profile_figure", "zoomed crops and a line profile", [
        labelled("panels: LR, methods, GT"), required("--mask"), required("--scale", scale_type), required("--zoom", float),
        required("--length", int, help="profile length in HR voxels"), TITLE, OUT]),
    ("papers", "discrepancy"): ("mrisr.papers.threeplayer:discrepancy_figure", "discrepancy of G and D per step", [
        labelled("train_log.csv by variant"), OUT]),
    ("papers", "noise-figure"): ("mrisr.papers.disgan:noise_figure", "metrics and noise estimates against noise", [
        required("--table", help="the noise table CSV"), OUT]),
    ("papers", "stripes"): ("mrisr.papers.disgan:stripes_figure", "|SR - GT| and its spectrum: blended vs pasted", [
        required("--gt"), required("--blended"), required("--pasted"), required("--mask"),
        required("--period", int, help="HR edge of the pasted tiles"), required("--label"), TITLE, OUT]),
    ("papers", "before-after"): ("mrisr.papers.usage:before_after_figure", "a scan, its SR and the HR, in mm", [
        required("--lr", help="the LR scan"), required("--sr", help="its super-resolution"),
        required("--hr", help="the HR scan it was made from"), TITLE, OUT]),
    ("papers", "segmentation-figure"): ("mrisr.papers.augment:segmentation_figure", "each arm's segmentation", [
        required("--image"), required("--label"), required("--mask"), labelled("label maps by arm"),
        files("--classes"), TITLE, OUT]),
}


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="mrisr", description=__doc__.split("\n\n")[0])
    p.add_argument("-v", "--verbose", action="store_true")
    stages = p.add_subparsers(dest="stage", required=True)
    steps: dict[str, argparse._SubParsersAction] = {}
    for names, (target, text, options) in COMMANDS.items():
        if len(names) == 1:
            s = stages.add_parser(names[0], help=text)
        else:
            if names[0] not in steps:
                stage = stages.add_parser(names[0], help=STAGES[names[0]])
                steps[names[0]] = stage.add_subparsers(dest="step", required=True)
            s = steps[names[0]].add_parser(names[1], help=text)
        for flag, kwargs in options:
            s.add_argument(flag, **kwargs)
        s.set_defaults(target=target)
    return p


def main(argv: list[str] | None = None) -> int:
    options = vars(parser().parse_args(argv))
    command = " ".join(filter(None, (options.pop("stage"), options.pop("step", None))))
    logging.basicConfig(level=logging.DEBUG if options.pop("verbose") else logging.INFO,
                        format="%(asctime)s %(name)s %(levelname)s %(message)s")
    for library in QUIET_LIBRARIES:
        logging.getLogger(library).setLevel(logging.WARNING)
    if "SLURM_JOB_ID" in os.environ:  # which cluster job wrote this log, for accounting and post-mortems
        logging.getLogger("mrisr").info("SLURM job %s on %s", os.environ["SLURM_JOB_ID"],
                                        os.environ.get("SLURMD_NODENAME", "?"))
    module, _, function = options.pop("target").partition(":")
    try:
        stage = getattr(importlib.import_module(module), function)
        if "command_line" in inspect.signature(stage).parameters:  # it records how it was called (BIDS sidecars)
            options["command_line"] = shlex.join(["mrisr", *(sys.argv[1:] if argv is None else argv)])
        stage(**options)
    except MrisrError as exc:
        print(f"mrisr {command}: error: {exc}", file=sys.stderr)
        return 2
    except OSError as exc:
        if exc.errno not in NO_ROOM:
            raise
        print(f"mrisr {command}: error: {exc.filename or 'an output'}: could not be written ({exc.strerror}). "
              "Fix: free space (or quota) on that file system, then rerun", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
