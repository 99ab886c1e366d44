"""The model file (``model.safetensors``) is a model card: the generator's weights and config, plus what applying
it to any scan needs (scale, the voxel size it was trained at, the preprocessing and its intensity statistic, the
degradation it learned to invert) and where it came from (variant, data, steps, seed, mrisr version).

Loading reads the file within :mod:`mrisr.model_file`'s bounds, then validates the generator's config and every
card field against the schema before a network is built, so a damaged or hostile file cannot ask for gigabytes.
"""

from __future__ import annotations

import json
import logging
import math
import re
from pathlib import Path

import jsonschema
import numpy as np

from mrisr import __version__
from mrisr.config import load_schema
from mrisr import model_file
from mrisr.errors import ConfigError, InputError, MrisrError, printable
from mrisr.grid import LrGrid, card_grid, lr_grid
from mrisr.model_file import SAFETENSORS_DTYPE, ModelFile
from mrisr.scale import as_scale, label
from mrisr.settings import CARD_PREPROCESSING

log = logging.getLogger(__name__)

FORMAT = "mrisr-model-card/1"
#: a card's orientation when its training volumes' axes differed: the network saw each array as stored
STORED = "stored"
#: a card's orientation otherwise: the axes of every training array, e.g. RAS (nibabel's axis codes)
AXES = r"\A(?=.*[LR])(?=.*[AP])(?=.*[SI])[LRAPSI]{3}\Z"
RETRAIN = ("retrain it with this mrisr (the train stage writes model.safetensors), or point --model to another model "
           "file")


def lr_voxels(hr_voxel_mm: float, scale: int | list[int]) -> float | list[float]:
    """The LR voxel size a card records: one number for an isotropic scale, else one per RAS+ axis."""
    factors = as_scale(scale)
    return hr_voxel_mm * factors[0] if len(set(factors)) == 1 else [hr_voxel_mm * f for f in factors]


def make_card(*, variant_name: str, variant: dict, scale: int | list[int], hr_voxel_mm: float, preprocessing: dict,
              degradation: dict, training: dict, plugin: dict | None = None) -> dict:
    """The card's plain-data part (JSON-able): ``preprocessing`` holds the training arrays' ``orientation`` and
    prepare's ``crop``, ``margin``, ``normalise``, ``intensities`` and ``normalise_first``; ``training`` the dataset, subjects,
    steps, seed and batch; ``plugin`` the entry point and package of a plugin generator."""
    return {"format": FORMAT, "mrisr_version": __version__, "variant": variant_name, "variant_config": variant,
            **({"plugin": plugin} if plugin else {}),
            "scale": scale, "hr_voxel_mm": hr_voxel_mm, "lr_voxel_mm": lr_voxels(hr_voxel_mm, scale),
            "preprocessing": preprocessing, "degradation": degradation, "lr_grid": lr_grid(degradation).value,
            "training": training, "metrics": None}


def save_model(path: str | Path, generator_config: dict, state_dict: dict, card: dict) -> Path:
    """The model file (:mod:`mrisr.model_file`): weights, generator config and card."""
    return model_file.write(path, generator_config, state_dict, card)


def _generator_schema() -> dict:
    schema = load_schema()
    return {"definitions": schema["definitions"], "type": "object", "required": ["generator", "scale"],
            "properties": {"generator": {"$ref": "#/definitions/generator"}, "scale": {"$ref": "#/definitions/scale"}}}


def check_generator_config(config: dict, path: str | Path) -> None:
    """The generator config of a model file within the schema's types and limits (widths, depths, scale)."""
    if not isinstance(config, dict):
        raise InputError(path, "has no generator config", RETRAIN)
    options = {k: v for k, v in config.items() if k != "scale"}
    if any(isinstance(v, float) and not math.isfinite(v) for v in options.values()):
        raise InputError(path, "asks for a generator outside mrisr's limits (an option is NaN or infinite)",
                         "use a model file written by mrisr's train stage; do not edit its config")
    try:
        jsonschema.validate({"generator": options, "scale": config.get("scale")}, _generator_schema())
    except jsonschema.ValidationError as exc:
        where = ".".join(str(p) for p in exc.absolute_path) or "generator"
        raise InputError(path, f"asks for a generator outside mrisr's limits ({where}: {exc.message})",
                         "use a model file written by mrisr's train stage; do not edit its config") from exc


def _card_schema() -> dict:
    """Every field of a card typed: the scale, degradation, variant and preprocessing as the config schema has them,
    the rest as training writes them (a card outside them came from another program or was edited)."""
    full = load_schema()
    definitions = full["definitions"]
    prepare = full["properties"]["prepare"]["properties"]
    positive = {"type": "number", "exclusiveMinimum": 0}
    name = {"type": "string", "maxLength": 256}
    count = {"type": "integer", "minimum": 0}
    # a pretrain card's variant is its generator and pixel loss: the variant's keys, none required
    variant = {k: v for k, v in definitions["variant"].items() if k not in ("required", "if", "then")}
    start = {"oneOf": [{"const": "scratch"},
                       {"type": "object", "additionalProperties": False, "required": ["model", "dataset", "steps"],
                        "properties": {"model": name, "dataset": name, "steps": count,
                                       "digest": {"type": "string", "pattern": r"\A[0-9a-f]{1,64}\Z"}}}]}
    return {
        "definitions": definitions,
        "type": "object",
        "additionalProperties": False,
        "required": ["format", "mrisr_version", "variant", "variant_config", "scale", "hr_voxel_mm", "lr_voxel_mm",
                     "preprocessing", "degradation", "training"],
        "properties": {
            "format": {"const": FORMAT}, "mrisr_version": name, "variant": name, "variant_config": variant,
            "scale": {"$ref": "#/definitions/scale"}, "hr_voxel_mm": positive,
            "lr_voxel_mm": {"oneOf": [positive, {"type": "array", "items": positive, "minItems": 3, "maxItems": 3}]},
            "degradation": {"$ref": "#/definitions/degradation"},
            "lr_grid": {"enum": [grid.value for grid in LrGrid]},
            "preprocessing": {"type": "object", "additionalProperties": False,
                              "required": ["orientation", "crop", "margin", "normalise"],
                              "properties": {"orientation": {"oneOf": [{"const": STORED},
                                                                       {"type": "string", "pattern": AXES}]},
                                             **{k: prepare[k] for k in CARD_PREPROCESSING}}},
            "training": {"type": "object", "additionalProperties": False,
                         "required": ["dataset", "subjects", "steps", "batch_size", "seed"],
                         "properties": {"dataset": name, "subjects": {"type": "array", "items": name},
                                        "steps": count, "batch_size": {"type": "integer", "minimum": 1},
                                        "seed": count, "start": start}},
            "metrics": {"oneOf": [{"type": "null"},
                                  {"type": "object", "additionalProperties": False,
                                   "required": ["degradation", "per_subject"],
                                   "properties": {"degradation": name, "per_subject": {
                                       "type": "object", "propertyNames": name,
                                       "additionalProperties": {"type": "object", "propertyNames": name,
                                                                "additionalProperties": {"type": "number"}}}}}]},
            "plugin": {"type": "object", "additionalProperties": False,
                       "properties": {"entry_point": name, "group": name, "value": name,
                                      "package": {"type": ["string", "null"], "maxLength": 256},
                                      "version": {"type": ["string", "null"], "maxLength": 256}}},
        },
    }


def check_card(card: dict, generator_config: dict, path: str | Path) -> None:
    """The card's keys within their types and ranges, and its scale the generator's."""
    try:
        jsonschema.validate(card, _card_schema())
    except jsonschema.ValidationError as exc:
        where = ".".join(str(p) for p in exc.absolute_path) or "card"
        raise InputError(path, f"has a damaged model card ({where}: {exc.message})", RETRAIN) from exc
    if card["scale"] != generator_config.get("scale"):
        raise InputError(path, f"has a card of scale {card['scale']} but a generator of scale "
                               f"{generator_config.get('scale')}", RETRAIN)
    hr, lr = card["hr_voxel_mm"], np.broadcast_to(card["lr_voxel_mm"], 3)
    if not np.all(np.isfinite([hr, *lr])) or not np.allclose(lr, hr * np.array(as_scale(card["scale"])), rtol=1e-6):
        raise InputError(path, f"has a damaged model card (voxel sizes: LR {card['lr_voxel_mm']} mm is not HR {hr} mm "
                               f"x scale {card['scale']})", RETRAIN)


def check_plugin(generator_config: dict, card: dict, path: str | Path) -> None:
    """A plugin generator's package must be installed. The card's package and version are its claim, unverified:
    advice to install them is given only for a valid distribution name (PEP 508) and version (PEP 440), and says
    whose claim it is; an installed distribution other than the one the card names is warned about."""
    from packaging.utils import canonicalize_name

    from mrisr.models.registry import is_plugin, plugin

    name = generator_config.get("name", "rrdb")
    if not is_plugin("generator", name):
        return
    package, version = claimed_package(card.get("plugin") or {})
    try:
        installed = plugin("generator", name)
    except MrisrError:
        pinned = f"=={version}" if version else ""
        fix = (f"install the plugin's package; the model card says it came from {package}"
               f"{f' {version}' if version else ''} (unchecked: pip install {package}{pinned} only if you trust "
               "that name)" if package else
               "install the package that provides it (the model card names no valid package)")
        raise InputError(path, f"needs the generator plugin '{name}', which is not installed", fix) from None
    if installed.dist and package and canonicalize_name(installed.dist.name) != canonicalize_name(package):
        log.warning("%s: the card says its plugin '%s' came from %s; the installed one is from %s", path,
                    printable(name), package, installed.dist.name)
    elif installed.dist and version and installed.dist.version != version:
        log.warning("%s: trained with %s %s, applied with %s", path, package, version, installed.dist.version)


def claimed_package(recorded: dict) -> tuple[str | None, str | None]:
    """The plugin package and version a card names, each None unless a valid distribution name (PEP 508) and
    version (PEP 440): nothing else of a card's text is ever offered as a command."""
    from packaging.version import InvalidVersion, Version

    package, version = recorded.get("package"), recorded.get("version")
    if not (isinstance(package, str) and re.fullmatch(r"[A-Za-z0-9]([A-Za-z0-9._-]{0,98}[A-Za-z0-9])?", package)):
        return None, None
    try:
        return package, str(Version(version)) if isinstance(version, str) and len(version) <= 64 else None
    except InvalidVersion:
        return package, None


def check_weights(generator_config: dict, model: ModelFile, path: str | Path) -> dict:
    """The weights, once they are exactly the tensors the config builds (names, shapes, dtypes, compared on torch's
    meta device, which allocates nothing: a small file cannot make the loader build layers it holds no weights for,
    nor a network over the schema's parameter cap), and every one finite."""
    import torch

    from mrisr.models.registry import build, count_parameters

    try:
        with torch.device("meta"):
            network = build("generator", generator_config)
    except ConfigError as exc:  # a plugin that fails to import or build
        raise InputError(path, f"names a generator that cannot be built: {exc}", RETRAIN) from None
    cap = load_schema()["definitions"]["generator"]["x-max-parameters"]
    if (parameters := count_parameters(network)) > cap:
        raise InputError(path, f"asks for a generator of {parameters:,} parameters, more than mrisr loads ({cap:,})",
                         RETRAIN)
    names = {dtype: code for code, dtype in SAFETENSORS_DTYPE.items()}
    expected = {name: (names.get(str(t.dtype).removeprefix("torch.")), tuple(t.shape))
                for name, t in network.state_dict().items()}
    if model.shapes != expected:
        differ = sorted(set(expected) ^ set(model.shapes)) or [n for n in expected if expected[n] != model.shapes[n]]
        raise InputError(path, f"holds weights that do not fit its generator config ({len(differ)} tensors differ, "
                               f"e.g. {differ[0]}: config {expected.get(differ[0])}, file {model.shapes.get(differ[0])})",
                         RETRAIN)
    state_dict = model.tensors()
    broken = [name for name, t in state_dict.items() if t.is_floating_point() and not torch.isfinite(t).all()]
    if broken:
        raise InputError(path, f"holds NaN or Inf weights ({', '.join(broken[:3])})", RETRAIN)
    return state_dict


def load_model(path: str | Path) -> tuple[dict, dict, dict]:
    """(generator config, state dict, card) of a model file: config, card and weights checked before anything is
    built."""
    model = model_file.read(path, RETRAIN)
    card, generator = model.card, model.generator
    if not isinstance(card, dict) or card.get("format") != FORMAT:
        shown = printable(json.dumps(card.get("format") if isinstance(card, dict) else card)[:80])
        raise InputError(path, f"has a model card of another format ({shown}; this mrisr reads {FORMAT})", RETRAIN)
    check_generator_config(generator, path)
    check_card(card, generator, path)
    check_plugin(generator, card, path)
    state_dict = check_weights(generator, model, path)
    if model.legacy:
        log.warning("%s: an earlier mrisr's model.pt, read by the strict reader; mrisr model-card --upgrade %s "
                    "NEW.safetensors rewrites it as the current model file", path, path)
    return generator, state_dict, card


def upgrade_model(old: str | Path, new: str | Path) -> Path:
    """``mrisr model-card --upgrade``: an earlier version's ``model.pt`` rewritten as a safetensors model file, all
    of it checked as any model file is; ``new`` must not exist (nothing of the user's is overwritten)."""
    if Path(new).exists():
        raise InputError(new, "exists already", "give --upgrade a new file name (e.g. model.safetensors)")
    generator, state_dict, card = load_model(old)
    return save_model(new, generator, state_dict, card)


def with_metrics(model: str | Path, metrics_csv: str | Path, degradation: str, out: str | Path) -> Path:
    """A copy of ``model`` whose card holds its test-set metrics: the evaluate stage's CSV (a row per subject) of
    LR volumes made by ``degradation``, kept per subject."""
    import pandas as pd

    generator, state_dict, card = load_model(model)
    table = pd.read_csv(metrics_csv, dtype={"subject": str}).set_index("subject")
    values = table.select_dtypes("number")
    per_subject = {subject: {k: float(v) for k, v in row.items()} for subject, row in values.iterrows()}
    return save_model(out, generator, state_dict, {**card, "metrics": {"degradation": degradation,
                                                                       "per_subject": per_subject}})


def describe_start(start: str | dict) -> str:
    """``scratch`` (random weights) or the pretrained generator a GAN variant started from."""
    if start == "scratch":
        return "scratch (random weights)"
    return f"pretrained: {start['model']} ({start['steps']} pixel-loss steps on {start['dataset']})"


def describe_grid(card: dict) -> str:
    """Where the card's LR voxels lay on its HR grid, and so where super-resolve puts its output."""
    grid = card_grid(card)
    where = ("each LR voxel the slab of its HR voxels; SR fills the scan's field of view" if grid is LrGrid.SLAB
             else "LR voxel i at HR voxel scale*i; SR's first voxel at the scan's first")
    return f"{grid.value} ({where})" + ("" if "lr_grid" in card else "; not recorded: trained before mrisr recorded it")


def mm(size: float | list[float]) -> str:
    """Voxel sizes in mm for messages: ``1.5`` or ``1 x 1 x 4``."""
    return " x ".join(f"{v:.3g}" for v in np.atleast_1d(size))


def describe(card: dict) -> str:
    """The card as text, for people."""
    prep, training = card["preprocessing"], card["training"]
    lines = [
        f"mrisr model card ({card['format']}, written by mrisr {card['mrisr_version']})",
        f"variant: {card['variant']}",
        f"scale: {label(card['scale'])} (RAS+ axes): LR voxels {mm(card['lr_voxel_mm'])} mm -> HR voxels "
        f"{mm(card['hr_voxel_mm'])} mm",
        f"preprocessing: orientation {prep['orientation']}, crop {prep['crop']} (margin {prep['margin']}), "
        f"{'[0, 1] range' if prep.get('intensities') == 'unit_range' else 'z-score'} over the "
        f"{'whole (cropped) volume' if prep['normalise'] == 'volume' else 'brain mask'}"
        f"{' before cropping (float64)' if prep.get('normalise_first') else ''}",
        f"degradation learned: {json.dumps(card['degradation'])}",
        f"LR grid: {describe_grid(card)}",
        f"trained on: {training['dataset']}, {len(training['subjects'])} subjects ({', '.join(training['subjects'])}), "
        f"{training['steps']} steps of batch {training['batch_size']}, seed {training['seed']}",
        f"generator's start: {describe_start(training.get('start', 'scratch'))}",
    ]
    if card.get("metrics"):
        rows = list(card["metrics"]["per_subject"].values())
        means = {k: np.nanmean([row[k] for row in rows]) for k in rows[0]}
        lines.append(f"test-set metrics ({len(rows)} subjects, LR by {card['metrics']['degradation']}; means): "
                     + ", ".join(f"{k} {v:.4g}" for k, v in means.items()))
    else:
        lines.append("test-set metrics: none recorded")
    lines.append(f"variant config: {json.dumps(card['variant_config'], sort_keys=True)}")
    return "\n".join(lines)


def print_card(model: str, upgraded: str | None, upgrade: bool, as_json: bool, metrics: str | None,
               degradation: str | None, out: str | None) -> None:
    """``mrisr model-card``: print a model file's card; with ``metrics`` (and the ``degradation`` of its LR
    volumes), first write a copy to ``out`` whose card holds them, and print that; with ``upgrade``, first rewrite
    ``model`` (an earlier version's model.pt) as the model file ``upgraded``, and print its card."""
    if upgrade != bool(upgraded) or (upgrade and metrics):
        raise MrisrError("model-card: --upgrade takes the old and the new file (mrisr model-card --upgrade OLD NEW), "
                         "and a second file needs --upgrade (not --metrics)")
    if metrics:
        if not (out and degradation):
            raise MrisrError("model-card --metrics needs --degradation and --out")
        model = with_metrics(model, metrics, degradation, out)
    elif upgrade:
        model = upgrade_model(model, upgraded)
    card = load_model(model)[2]
    print(json.dumps(card, indent=2, sort_keys=True) if as_json else printable(describe(card)))
