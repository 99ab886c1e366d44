"""The model file (``model.pt``) is a model card: the generator's weights and config, plus what applying it to
any scan needs (scale, the voxel size it was trained at, the preprocessing and its intensity statistic, the
degradation it learned to invert) and where it came from (variant, data, steps, seed, mrisr version).

Loading validates the generator's config against the schema's limits before a network is built, so a damaged or
hostile file cannot ask for gigabytes; ``torch.load`` reads tensors and plain containers only.
"""

from __future__ import annotations

import json
import logging
import re
from pathlib import Path

import jsonschema
import numpy as np

from mrisr import __version__
from mrisr.config import load_schema
from mrisr.errors import InputError, MrisrError, printable
from mrisr.io import atomic_path, load_torch
from mrisr.scale import as_scale, label
from mrisr.settings import CARD_PREPROCESSING

log = logging.getLogger(__name__)

FORMAT = "mrisr-model-card/1"
#: a card's orientation when its training volumes' axes differed: the network saw each array as stored
STORED = "stored"
#: a card's orientation otherwise: the axes of every training array, e.g. RAS (nibabel's axis codes)
AXES = r"\A(?=.*[LR])(?=.*[AP])(?=.*[SI])[LRAPSI]{3}\Z"
RETRAIN = "retrain it with this mrisr (the train stage writes model.pt), or point --model to another model.pt"


def lr_voxels(hr_voxel_mm: float, scale: int | list[int]) -> float | list[float]:
    """The LR voxel size a card records: one number for an isotropic scale, else one per RAS+ axis."""
    factors = as_scale(scale)
    return hr_voxel_mm * factors[0] if len(set(factors)) == 1 else [hr_voxel_mm * f for f in factors]


def make_card(*, variant_name: str, variant: dict, scale: int | list[int], hr_voxel_mm: float, preprocessing: dict,
              degradation: dict, training: dict, plugin: dict | None = None) -> dict:
    """The card's plain-data part (JSON-able): ``preprocessing`` holds the training arrays' ``orientation`` and
    prepare's ``crop``, ``margin``, ``normalise`` and ``normalise_first``; ``training`` the dataset, subjects,
    steps, seed and batch; ``plugin`` the entry point and package of a plugin generator."""
    return {"format": FORMAT, "mrisr_version": __version__, "variant": variant_name, "variant_config": variant,
            **({"plugin": plugin} if plugin else {}),
            "scale": scale, "hr_voxel_mm": hr_voxel_mm, "lr_voxel_mm": lr_voxels(hr_voxel_mm, scale),
            "preprocessing": preprocessing, "degradation": degradation,
            "training": training, "metrics": None}


def save_model(path: str | Path, generator_config: dict, state_dict: dict, card: dict) -> Path:
    import torch

    with atomic_path(path) as tmp:
        torch.save({"generator": generator_config, "state_dict": state_dict, "card": card}, tmp)
    return Path(path)


def _generator_schema() -> dict:
    schema = load_schema()
    return {"definitions": schema["definitions"], "type": "object", "required": ["generator", "scale"],
            "properties": {"generator": {"$ref": "#/definitions/generator"}, "scale": {"$ref": "#/definitions/scale"}}}


def check_generator_config(config: dict, path: str | Path) -> None:
    """The generator config of a model file within the schema's types and limits (widths, depths, scale)."""
    if not isinstance(config, dict):
        raise InputError(path, "has no generator config", RETRAIN)
    options = {k: v for k, v in config.items() if k != "scale"}
    try:
        jsonschema.validate({"generator": options, "scale": config.get("scale")}, _generator_schema())
    except jsonschema.ValidationError as exc:
        where = ".".join(str(p) for p in exc.absolute_path) or "generator"
        raise InputError(path, f"asks for a generator outside mrisr's limits ({where}: {exc.message})",
                         "use a model.pt written by mrisr's train stage; do not edit its config") from exc


def _card_schema() -> dict:
    """What applying a model reads from its card: types and ranges, the scale and preprocessing from the config
    schema (a card outside them came from another program or was edited)."""
    full = load_schema()
    schema = full["properties"]
    prepare = schema["prepare"]["properties"]
    positive = {"type": "number", "exclusiveMinimum": 0}
    return {
        "definitions": full["definitions"],
        "type": "object",
        "required": ["variant", "variant_config", "scale", "hr_voxel_mm", "lr_voxel_mm", "preprocessing",
                     "degradation", "training"],
        "properties": {
            "variant": {"type": "string"}, "variant_config": {"type": "object"}, "scale": {"$ref": "#/definitions/scale"},
            "hr_voxel_mm": positive,
            "lr_voxel_mm": {"oneOf": [positive, {"type": "array", "items": positive, "minItems": 3, "maxItems": 3}]},
            "degradation": {"type": "object"},
            "preprocessing": {"type": "object", "required": ["orientation", "crop", "margin", "normalise"],
                              "properties": {"orientation": {"oneOf": [{"const": STORED},
                                                                       {"type": "string", "pattern": AXES}]},
                                             **{k: prepare[k] for k in CARD_PREPROCESSING}}},
            "training": {"type": "object", "required": ["dataset", "subjects", "steps", "batch_size", "seed"],
                         "properties": {"subjects": {"type": "array", "items": {"type": "string"}},
                                        "steps": {"type": "integer", "minimum": 0}}},
            "metrics": {"type": ["object", "null"]},
            "plugin": {"type": "object", "properties": {"package": {"type": ["string", "null"]},
                                                        "version": {"type": ["string", "null"]}}},
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


#: Bounds of a card's plain data, walked before it is validated or printed: a pickle's memo lets a small file hold
#: one object many times over (a 128 KB file that prints as 100 GB of JSON) or a list that holds itself.
CARD_MAX_NODES = 200_000
CARD_MAX_DEPTH = 32
CARD_MAX_CHARACTERS = 2**24


def check_plain_data(value, path: str | Path, what: str) -> None:
    """``value`` within the node, depth and character budget (a cycle exceeds the depth)."""
    budget = {"nodes": CARD_MAX_NODES, "characters": CARD_MAX_CHARACTERS}

    def walk(node, depth: int) -> None:
        budget["nodes"] -= 1
        if depth > CARD_MAX_DEPTH:
            raise InputError(path, f"has a {what} nested deeper than {CARD_MAX_DEPTH} levels (or holding itself)",
                             RETRAIN)
        if isinstance(node, (str, bytes)):
            budget["characters"] -= len(node)
        if budget["nodes"] < 0 or budget["characters"] < 0:
            raise InputError(path, f"has a {what} larger than any mrisr writes (over {CARD_MAX_NODES:,} values or "
                                   f"{CARD_MAX_CHARACTERS:,} characters, counting repeats)", RETRAIN)
        if isinstance(node, dict):
            for key, item in node.items():
                walk(key, depth + 1)
                walk(item, depth + 1)
        elif isinstance(node, (list, tuple)):
            for item in node:
                walk(item, depth + 1)

    walk(value, 0)


def _owns_its_storage(tensor) -> bool:
    """Dense, not overlapping, from the start of a storage exactly its size: no view that reads few bytes as many."""
    if tensor.storage_offset() or tensor.untyped_storage().nbytes() != tensor.numel() * tensor.element_size():
        return False
    dense = 1
    for size, stride in sorted(zip(tensor.shape, tensor.stride()), key=lambda dim: dim[1]):
        if size != 1 and stride != dense:
            return False
        dense *= size
    return True


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


def check_weights(generator_config: dict, state_dict, path: str | Path) -> None:
    """The weights are exactly the tensors the config builds (names and shapes), compared on torch's meta device,
    which allocates nothing: a small file cannot make the loader build layers it holds no weights for, nor a
    network over the schema's parameter cap; and each tensor owns its storage, shared with no other."""
    import torch

    from mrisr.models.registry import build, count_parameters

    if not isinstance(state_dict, dict) or not all(isinstance(v, torch.Tensor) for v in state_dict.values()):
        raise InputError(path, "has no generator weights (state_dict is not a dict of tensors)", RETRAIN)
    with torch.device("meta"):
        network = build("generator", generator_config)
    cap = load_schema()["definitions"]["generator"]["x-max-parameters"]
    if (parameters := count_parameters(network)) > cap:
        raise InputError(path, f"asks for a generator of {parameters:,} parameters, more than mrisr loads ({cap:,})",
                         RETRAIN)
    expected = {name: tuple(t.shape) for name, t in network.state_dict().items()}
    found = {name: tuple(t.shape) for name, t in state_dict.items()}
    if found != expected:
        differ = sorted(set(expected) ^ set(found)) or [n for n in expected if expected[n] != found[n]]
        raise InputError(path, f"holds weights that do not fit its generator config ({len(differ)} tensors differ, "
                               f"e.g. {differ[0]}: config {expected.get(differ[0])}, file {found.get(differ[0])})",
                         RETRAIN)
    borrowed = [name for name, t in state_dict.items() if not _owns_its_storage(t)]
    storages = [t.untyped_storage().data_ptr() for t in state_dict.values() if t.numel()]
    if borrowed or len(set(storages)) < len(storages):
        raise InputError(path, "holds weights that are views of other memory (e.g. "
                               f"{(borrowed or ['two tensors sharing one storage'])[0]}), which mrisr never writes",
                         RETRAIN)
    broken = [name for name, t in state_dict.items() if t.is_floating_point() and not torch.isfinite(t).all()]
    if broken:
        raise InputError(path, f"holds NaN or Inf weights ({', '.join(broken[:3])})", RETRAIN)


def load_model(path: str | Path) -> tuple[dict, dict, dict]:
    """(generator config, state dict, card) of a model file: config, card and weights checked before anything is
    built."""
    bundle = load_torch(path, RETRAIN)
    if not isinstance(bundle, dict) or not {"generator", "state_dict", "card"} <= bundle.keys():
        raise InputError(path, "is not an mrisr model file with a model card (it needs generator, state_dict and "
                               "card)", RETRAIN)
    card = bundle["card"]
    check_plain_data(card, path, "model card")
    check_plain_data(bundle["generator"], path, "generator config")
    if not isinstance(card, dict) or card.get("format") != FORMAT:
        raise InputError(path, f"has a model card of another format ({card.get('format') if isinstance(card, dict) else card!r}; "
                               f"this mrisr reads {FORMAT})", RETRAIN)
    check_generator_config(bundle["generator"], path)
    check_card(card, bundle["generator"], path)
    check_plugin(bundle["generator"], card, path)
    check_weights(bundle["generator"], bundle["state_dict"], path)
    return bundle["generator"], bundle["state_dict"], card


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
        f"z-score over the {'whole (cropped) volume' if prep['normalise'] == 'volume' else 'brain mask'}"
        f"{' before cropping (float64)' if prep.get('normalise_first') else ''}",
        f"degradation learned: {json.dumps(card['degradation'])}",
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


def print_card(model: str, as_json: bool, metrics: str | None, degradation: str | None, out: str | None) -> None:
    """``mrisr model-card``: print a model file's card; with ``metrics`` (and the ``degradation`` of its LR
    volumes), first write a copy to ``out`` whose card holds them, and print that."""
    if metrics:
        if not (out and degradation):
            raise MrisrError("model-card --metrics needs --degradation and --out")
        model = with_metrics(model, metrics, degradation, out)
    card = load_model(model)[2]
    print(json.dumps(card, indent=2, sort_keys=True) if as_json else printable(describe(card)))
