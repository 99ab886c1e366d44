"""Every ``mrisr`` command and its options, declared once.

The CLI's parser is built from :data:`COMMANDS` (:mod:`mrisr.cli`); the workflow's command lines are written from
it by the options' names (:func:`command_line`, which planning calls), never by their flags; and an option's name
is its stage function's parameter. Options named ``<group>.<field>`` reach the function as one object, the
:data:`GROUPS` class built from them (the windowed-inference settings, say). Options that the rules pass are
required and have no default here: the schema (``mrisr/schemas/config.schema.yaml``) is the one home of defaults,
and the few options a user may leave out take theirs from it. Pure and light: planning imports it.
"""

from __future__ import annotations

import argparse
import json
import math
import operator
import shlex
from dataclasses import dataclass


@dataclass(frozen=True)
class Option:
    """One argument of a command: its flag (or a positional's name) and argparse's keywords for it."""

    flag: str
    settings: dict
    #: Snakemake gives it in the rule's shell (``--threads {threads}``: a job's threads are no rerun trigger)
    from_rule: bool = False

    @property
    def positional(self) -> bool:
        return not self.flag.startswith("-")

    @property
    def dest(self) -> str:
        """Its name: the stage function's parameter (``group.field``: a field of the group's object)."""
        return self.settings.get("dest") or self.flag.lstrip("-").replace("-", "_")

    def arguments(self) -> dict:
        """argparse's keywords; a group's option shows its field's name, not the group's, as its value."""
        takes_value = self.settings.get("action") is None and not self.positional
        if "." in self.dest and takes_value and not {"metavar", "choices"} & set(self.settings):
            return {**self.settings, "metavar": self.dest.partition(".")[2].upper()}
        return self.settings

    def words(self, value) -> list[str]:
        """The command-line words that give this option ``value`` (None: left out), unquoted."""
        if value is None:
            return []
        action, convert = self.settings.get("action"), self.settings.get("type")
        if action == "store_true":
            return [self.flag] * bool(value)
        if action is argparse.BooleanOptionalAction:
            return [self.flag if value else f"--no-{self.flag[2:]}"]
        shown = [_shown(v, convert) for v in (value if self.settings.get("nargs") in ("+", "*") else [value])]
        return shown if self.positional else [self.flag, *shown]


def _shown(value, convert) -> str:
    if convert in (json.loads, bids_filters):  # keys sorted: a value's text does not change with the config's order
        return json.dumps(value, sort_keys=True)
    if convert is json_in_order:
        return json.dumps(value)
    if convert is scale_type:
        from mrisr.scale import as_option

        return as_option(value)
    return str(value)


def required(flag: str, type=str, **kwargs) -> Option:
    return Option(flag, dict(type=type, required=True, **kwargs))


def optional(flag: str, type=str, **kwargs) -> Option:
    return Option(flag, dict(type=type, **kwargs))


def files(flag: str, help: str | None = None, **kwargs) -> Option:
    return Option(flag, dict(nargs="+", required=True, help=help, **kwargs))


def switch(flag: str, help: str, **kwargs) -> Option:
    return Option(flag, dict(action="store_true", help=help, **kwargs))


def positional(name: str, **kwargs) -> Option:
    return Option(name, kwargs)


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


def from_schema(flag: str, key: str, type=int, help: str | None = None, **kwargs) -> Option:
    """An option whose default, range or choices are the schema's for ``key``; a boolean key is a
    ``--flag/--no-flag`` pair."""
    from mrisr.config import schema_property

    spec = schema_property(key)
    default, described = spec["default"], f"{help + '; ' if help else ''}default {spec['default']} ({key})"
    if type is bool:
        return Option(flag, dict(action=argparse.BooleanOptionalAction, default=default, help=described, **kwargs))
    if "enum" in spec:
        return Option(flag, dict(choices=spec["enum"], default=default, help=described, **kwargs))
    checked = in_range(key, type) if type in (int, float) else type
    return Option(flag, dict(type=checked, default=default, help=described, **kwargs))


def labelled(help: str) -> Option:
    """Every labelled input list: JSON records, each with ``label`` and ``path`` (and, where named, more keys)."""
    return required("--inputs", json.loads, help=f'JSON [{{"label": ..., "path": ...}}, ...]: {help}')


def scale_type(text: str) -> int | list[int]:
    """A scale option: ``2`` (every axis) or three factors, ``1,1,4`` or ``[1, 1, 4]`` (RAS+ axes)."""
    from mrisr.scale import as_config, as_scale

    try:
        value = json.loads(f"[{text.strip('[]')}]")
        return as_config(as_scale(value[0] if len(value) == 1 else value))
    except (ValueError, IndexError):
        raise argparse.ArgumentTypeError(f"{text!r} is not a scale: one factor 1-4, or three (1,1,4)") from None


scale_type.__name__ = "scale"


def bids_filters(text: str) -> dict:
    """``--bids-filter``: JSON BIDS entities as a dataset's ``filters`` in the config take them (the schema's
    ``bids_filters``): no pybids keyword (``scope``, ``regex_search``, ...) and no value of another type gets through
    to pybids."""
    import jsonschema

    from mrisr.config import load_schema

    try:
        value = json.loads(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(f"{text!r} is not JSON ({exc})") from None
    try:
        jsonschema.validate(value, {"definitions": load_schema()["definitions"], "$ref": "#/definitions/bids_filters"})
    except jsonschema.ValidationError as exc:
        raise argparse.ArgumentTypeError(f"{text!r}: {exc.message}; give BIDS entities by pybids' names, e.g. "
                                         '{"session": "1", "run": [1, null]}') from None
    return value


bids_filters.__name__ = "BIDS filter"


def json_in_order(text: str):
    """JSON whose keys' order means something (a whole config: the order of its variants is the tables')."""
    return json.loads(text)


json_in_order.__name__ = "JSON"
OUT = required("--out")
THREADS = Option("--threads", dict(type=int, required=True, help="CPU threads (Snakemake's threads)"), from_rule=True)
PROCESSES = from_schema("--processes", "train.gpus", int, help="data-parallel processes on this node, one per GPU")
TITLE = required("--title")
CSV_MD = [required("--out-csv"), required("--out-md")]

#: Option groups: ``<group>.<field>`` options reach the stage function as one object of this class.
GROUPS = {"method": "mrisr.super_resolve:MethodChoice", "scan": "mrisr.super_resolve:ScanOptions",
          "bids": "mrisr.super_resolve:BidsSelection", "inference": "mrisr.inference:Inference",
          "acceleration": "mrisr.device:Acceleration", "lpips": "mrisr.evaluate:LpipsOptions",
          "preprocessing": "mrisr.preprocessing:Preprocessing", "segmenters": "mrisr.anatomy:Segmenters"}

#: Stages with several steps: their help line.
STAGES = {"fetch": "raw scans and weights", "external": "outside programs' environments",
          "segment": "the SR-augmentation study's segmentation", "papers": "the papers' tables and figures"}

#: (stage, step) or (stage,) -> ("module:function", help, options)
COMMANDS: dict[tuple[str, ...], tuple[str, str, list[Option]]] = {
    ("fetch", "demo"): ("mrisr.fetch.demo:make_demo_subjects", "make embedded demo subjects", [
        required("--out-dir", help="the dataset's folder: each subject into its sub-<id>/"),
        files("--subjects", "subject ids, e.g. 01 02"), required("--seed", int), required("--spacing", float),
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
        positional("env_file", help="conda environment file (python=3.X and a pip: list), e.g. envs/eclare.yaml"),
        required("--out-dir", dest="folder")]),
    ("prepare",): ("mrisr.prepare:prepare_subject", "RAS+ (or as stored), crop, z-score one subject", [
        required("--t1w"), optional("--mask", help="brain mask (default: the head, the scan's foreground)"),
        optional("--dseg"), required("--subject"), required("--out-dir"),
        required("--multiple", scale_type, help="crop edges are multiples of this (the SR scale)"),
        required("--margin", int, dest="preprocessing.margin"),
        required("--normalise", choices=["volume", "brain"], dest="preprocessing.normalise"),
        required("--intensities", choices=["zscore", "unit_range"], dest="preprocessing.intensities"),
        required("--crop", choices=["brain", "none"], dest="preprocessing.crop"),
        Option("--normalise-first", dict(action=argparse.BooleanOptionalAction, required=True,
                                         dest="preprocessing.normalise_first",
                                         help="z-score the whole volume before its edges are cut (the authors')")),
        required("--orientation", choices=["ras", "stored"], dest="preprocessing.orientation"),
        optional("--resample", in_range("prepare.resample", float), dest="preprocessing.resample",
                 help="mm: resample anisotropic or oblique scans to this isotropic grid")]),
    ("degrade",): ("mrisr.degrade:degrade_files", "simulate LR volumes", [
        files("--hr", "HR volumes"), files("--out", "their LR volumes, in the same order"),
        required("--degradation", json.loads, help="JSON of a degradations entry"),
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
        optional("--start", help="the pretrain stage's model file the generator starts from (start: pretrained)"),
        required("--out-dir"), THREADS, PROCESSES]),
    ("plan",): ("mrisr.plan.describe:print_plan", "the study this config runs, as YAML: splits, variants, training, "
                "jobs per rule, outputs", [
        optional("--configfile", nargs="+", help="overlays over the workflow's config.yaml, in order (as snakemake's)"),
        optional("--config-json", json_in_order, metavar="JSON",
                 help="instead: the whole config, as the workflow has it"),
        optional("--directory", default=".", help="the workflow's folder (its config.yaml, its results paths)"),
        optional("--format", choices=["yaml", "json"], default="yaml"), optional("--out", help="default: stdout")]),
    ("model-card",): ("mrisr.model_card:print_card", "print a model file's card (or add test-set metrics to it, or "
                      "rewrite an earlier version's model.pt as a safetensors model file)", [
        positional("model", help="the model file (model.safetensors, or an earlier version's model.pt)"),
        positional("upgraded", nargs="?", metavar="NEW", help="with --upgrade: the new model file"),
        switch("--upgrade", "rewrite MODEL, an earlier version's model.pt, as the model file NEW (safetensors), "
                            "checked as any model file is"),
        switch("--json", "as JSON", dest="as_json"),
        optional("--metrics", help="the evaluate stage's CSV of this model: write a copy whose card holds it"),
        optional("--degradation", help="with --metrics: the degradation of the LR volumes it scored"),
        optional("--out", help="with --metrics: the copy's path")]),
    ("super-resolve",): ("mrisr.super_resolve:super_resolve_files", "super-resolve LR scans (files or folders)", [
        positional("inputs", nargs="*", metavar="INPUT", help="NIfTI scans or folders of them (or --bids)"),
        positional("output", help="the output file for one scan, else a folder (with --bids: the derivatives folder)"),
        optional("--bids", metavar="BIDS_ROOT", dest="bids.root", help="every T1w of this BIDS dataset, written as "
                 "BIDS derivatives (OUTPUT/sub-<label>/[ses-<label>/]anat/*_desc-sr_T1w.nii.gz + JSON sidecars)"),
        optional("--bids-filter", bids_filters, metavar="JSON", dest="bids.filter",
                 help='with --bids: BIDS entities that choose the T1w images, e.g. \'{"session": "1"}\' '
                      "(a list: any of its values; null: the entity is absent)"),
        optional("--model", dest="method.model", help="the model file of a trained variant (or --interpolate)"),
        optional("--interpolate", dest="method.interpolate", choices=["trilinear", "nearest", "bspline"]),
        optional("--external", metavar="FOLDER", nargs="+", dest="method.external", help="the folders where an "
                 "outside program (e.g. ECLARE) wrote its output of each input scan, in the scans' order: resampled "
                 "onto each scan's SR grid at --scale"),
        optional("--scale", scale_type, dest="method.scale",
                 help="for --interpolate and --external: 2, or per RAS+ axis 1,1,4"),
        optional("--lr-grid", choices=["slab", "corner", "spanning"], default="slab", dest="method.lr_grid",
                 help="for --interpolate and --external: where each LR voxel lies on the SR grid: slab (the default: "
                      "a scanner's, each voxel the slab its thin voxels fill), corner (LR voxel i at SR voxel "
                      "scale*i, as decimation makes it) or spanning (first and last on the SR grid's, as a resize "
                      "with align_corners=True makes it); a model's card says its own"),
        optional("--reference", nargs="+", dest="scan.reference",
                 help="the HR volume whose grid and header each scan's output takes, one per scan in their order"),
        optional("--mask", dest="scan.mask", help="the scan's brain mask, for the z-score (default: its foreground)"),
        switch("--prepared", "the input is in the model's units already (the workflow's prepared LR); without it, "
               "the scan is z-scored as the model card says and the output put back into its units",
               dest="scan.prepared"),
        optional("--resample", in_range("prepare.resample", float), metavar="MM", dest="scan.resample",
                 help="resample an anisotropic or oblique input to MM first"),
        from_schema("--tile", "inference.tile", help="LR window edge of the feature stage", dest="inference.tile"),
        from_schema("--halo", "inference.halo", help="LR voxels of context around each window, cropped after",
                    dest="inference.halo"),
        from_schema("--reconstruct-tile", "inference.reconstruct_tile", help="LR window edge of the HR tail",
                    dest="inference.reconstruct_tile"),
        from_schema("--batch", "inference.batch", help="windows per generator pass", dest="inference.batch"),
        switch("--pasted", "the authors' inference: the whole network per --tile, no halo, tiles pasted",
               dest="inference.pasted"),
        optional("--precision", choices=["auto", "fp32", "bf16"], dest="inference.precision",
                 help="autocast: auto (the default: bf16 on CUDA, fp32 elsewhere), fp32 or bf16 (inference.precision)"),
        from_schema("--compile", "inference.compile", help="torch.compile's mode for the generator",
                    dest="acceleration.compile"),
        from_schema("--tf32", "train.tf32", help="CUDA fp32 math in TF32", dest="acceleration.tf32"),
        from_schema("--cudnn-benchmark", "train.cudnn_benchmark", bool, help="CUDA: cuDNN's algorithm autotuner",
                    dest="acceleration.cudnn_benchmark"),
        Option("--threads", from_schema("--threads", "threads").settings, from_rule=True)]),
    ("evaluate",): ("mrisr.evaluate:evaluate_files", "metrics of predictions against GT, one CSV row per subject", [
        files("--subjects"), files("--gt"), optional("--pred", nargs="+", help="the SR volumes (or --not-computed)"),
        files("--mask"), optional("--lr", nargs="+", help="the LR inputs, for their noise estimate"),
        optional("--lpips-dir", dest="lpips.dir", help="folder of the fetch_lpips rule; omit: no LPIPS"),
        optional("--lpips-step", in_range("lpips.slice_step"), dest="lpips.step",
                 help="every n-th brain slice per plane"),
        from_schema("--lpips-sha256", "lpips.sha256", str, help="the AlexNet weights' sha256", dest="lpips.sha256"),
        optional("--not-computed", dest="not_computed_reason", metavar="REASON",
                 help="instead of --pred: a row per subject without metrics, saying why"),
        from_schema("--mtvnet-metrics", "mtvnet_metrics", bool, dest="mtvnet",
                    help="also MTVNet's slice-wise PSNR and SSIM of volumes in [0, 1] (needs --lr)"), OUT, THREADS]),
    ("segment", "train"): ("mrisr.segment.train:train_arm", "train one segmentation arm with one seed", [
        files("--image", "real HR T1w training volumes"), files("--label", "their label maps, in the same order"),
        optional("--sr", nargs="+", help="real+sr arm: each subject's SR volume on the same grid, same order"),
        required("--network", json.loads, help="JSON of segmentation.network"),
        required("--settings", json.loads, help="JSON of the segmentation training settings"),
        required("--out-dir"), THREADS]),
    ("segment", "evaluate"): ("mrisr.segment.evaluate:evaluate_arm", "segment test volumes; Dice (HD95) per class", [
        required("--model"), files("--subjects"), files("--image", "real HR T1w test volumes"),
        files("--label", "their ground-truth label maps"), required("--roi", int, help="the training patch size"),
        required("--overlap", float), switch("--hd95", "also the 95th-percentile Hausdorff distance (mm)"),
        required("--out-dir", help="sub-<id>_dseg.nii.gz are written here"), OUT, THREADS]),
    ("anatomy",): ("mrisr.anatomy:segment_files", "tissue volumes and label maps of volumes against the HR's", [
        files("--subjects"), files("--mask", "their brain masks (Atropos segments inside)"),
        required("--segmenters", nargs="+", choices=["network", "atropos"], dest="segmenters.names"),
        optional("--model", help="the network segmenter: the segment stage's model.pt", dest="segmenters.model"),
        required("--roi", int, help="the network's training patch size", dest="segmenters.roi"),
        required("--overlap", float, dest="segmenters.overlap"),
        from_schema("--atropos-iterations", "anatomy.atropos.iterations", dest="segmenters.iterations"),
        from_schema("--atropos-mrf-weight", "anatomy.atropos.mrf_weight", float, dest="segmenters.mrf_weight"),
        required("--cells", json.loads, help='JSON list: per set of volumes {"image": [one per subject], "out": its '
                 'table} (label maps into <table\'s folder>/<segmenter>/sub-<id>_dseg.nii.gz), or {"not_computed": '
                 'REASON, "out": ...}: rows without values that say why'),
        optional("--reference-dir", help="the HR job's folder: compare with its label maps"), THREADS]),
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
    ("papers", "anatomy-table"): ("mrisr.papers.anatomy:anatomy_table", "volume error and Dice per method and class", [
        labelled("anatomy volume CSVs by method, each with its 'setting' and 'description'"), optional("--reference"),
        *CSV_MD]),
    ("papers", "anatomy-figure"): ("mrisr.papers.anatomy:bland_altman_figure", "class volumes on SR against HR's", [
        labelled("anatomy volume CSVs by method, each with its 'setting'"), OUT]),
    ("papers", "anatomy-slice"): ("mrisr.papers.anatomy:worst_slice_figure", "where a segmentation differs most", [
        labelled("anatomy volume CSVs by method, each with its 'setting' and the subject's 'label_maps', one per segmenter"),
        required("--segmenters", nargs="+", dest="segmenter_names"), required("--hr-image"),
        files("--hr-labels", "the HR volume's label maps, one per segmenter"), required("--subject"), OUT]),
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


def command_line(command: str, **values) -> str:
    """The options of ``mrisr <command>`` (``"papers method-table"``) that give ``values``, by the options' names,
    quoted for the shell, in their declared order; a group's values as one dict (``inference={"tile": 32, ...}``).
    A name the command does not declare, or a required option left out, is a bug of the caller's and raises."""
    options = COMMANDS[tuple(command.split())][2]
    flat = {}
    for name, value in values.items():
        flat |= {f"{name}.{k}": v for k, v in value.items()} if name in GROUPS else {name: value}
    unknown = set(flat) - {option.dest for option in options}
    missing = [o.dest for o in options if o.settings.get("required") and not o.from_rule and flat.get(o.dest) is None]
    if unknown or missing:
        raise KeyError(f"mrisr {command}: {'unknown ' + str(sorted(unknown)) if unknown else ''}"
                       f"{' missing ' + str(missing) if missing else ''}")
    return shlex.join(word for option in options for word in option.words(flat.get(option.dest)))
