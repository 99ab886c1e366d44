"""Config validation against the JSON schema, filling defaults, with errors that name the key.

The schema, ``mrisr/schemas/config.schema.yaml`` inside the package (``workflow/schemas/`` in a checkout links to
it), is the one home of every default: the workflow's and the command line's (:func:`schema_default`). It ships in
the wheel, so an installed mrisr needs no checkout.
"""

from __future__ import annotations

import copy
import difflib
import functools
import math
import string
from pathlib import Path

import jsonschema
import yaml

from mrisr.errors import ConfigError
from mrisr.scale import as_scale

#: the variant kinds trained here (the train stage; the others interpolate or run an outside program)
LEARNED_KINDS = ("gan", "pixel")

SCHEMA = Path(__file__).resolve().parent / "schemas" / "config.schema.yaml"


def _with_defaults(validator_class):
    validate_properties = validator_class.VALIDATORS["properties"]

    def set_defaults(validator, properties, instance, schema):
        if isinstance(instance, dict):
            for name, sub in properties.items():
                if "default" in sub and name not in instance:
                    instance[name] = copy.deepcopy(sub["default"])
        yield from validate_properties(validator, properties, instance, schema)

    return jsonschema.validators.extend(validator_class, {"properties": set_defaults})


_Validator = _with_defaults(jsonschema.Draft7Validator)


def _key(error: jsonschema.ValidationError) -> str:
    return ".".join(str(p) for p in error.absolute_path) or "<top level>"


def _explain(error: jsonschema.ValidationError) -> ConfigError:
    where = _key(error)
    if error.validator == "additionalProperties" and isinstance(error.instance, dict):
        allowed = sorted(error.schema.get("properties", {}))
        unknown = sorted(set(error.instance) - set(allowed))
        name = f"{where}.{unknown[0]}" if where != "<top level>" else unknown[0]
        close = difflib.get_close_matches(unknown[0], allowed, n=1)
        hint = f"did you mean '{close[0]}'? " if close else ""
        return ConfigError(name, "is not a known setting", f"{hint}allowed keys here: {', '.join(allowed)}")
    return ConfigError(where, error.message, f"see {SCHEMA} for its type and range")


def _non_finite(value, key: str = "") -> str | None:
    """The dotted key of the first NaN or infinite number in ``value`` (a schema's ranges let NaN through)."""
    if isinstance(value, float) and not math.isfinite(value):
        return key or "<top level>"
    items = value.items() if isinstance(value, dict) else enumerate(value) if isinstance(value, list) else ()
    for name, item in items:
        if (found := _non_finite(item, f"{key}.{name}" if key else str(name))) is not None:
            return found
    return None


def merge(base: dict, overlay: dict) -> dict:
    """``overlay`` onto ``base``, in place, as Snakemake merges config files: nested dicts update, the rest replaces."""
    for key, value in overlay.items():
        if isinstance(value, dict) and isinstance(base.get(key), dict):
            merge(base[key], value)
        else:
            base[key] = copy.deepcopy(value)
    return base


def on_base(config: dict, base: str | Path) -> dict:
    """``config`` (what Snakemake read: the ``--configfile`` overlays, ``--config`` values) over the base config file,
    in place. Snakemake skips the Snakefile's ``configfile:`` when ``--configfile`` is given, so an overlay alone
    (``--configfile workflow/configs/hcp.yaml``) would otherwise lose every variant the base defines."""
    merged = merge(yaml.safe_load(Path(base).read_text()) or {}, config)
    config.clear()
    config.update(merged)
    return config


def validate(config: dict, schema_path: str | Path = SCHEMA) -> dict:
    """Validate ``config`` in place, fill schema defaults, check cross-references; return it."""
    if (key := _non_finite(config)) is not None:
        raise ConfigError(key, "is not a finite number", "give a number within the range the schema states")
    errors = sorted(_Validator(load_schema(Path(schema_path))).iter_errors(config),
                    key=lambda e: len(list(e.absolute_path)))
    if errors:
        raise _explain(errors[0])
    _check_references(config)
    return config


def _check_references(config: dict) -> None:
    if config["dataset"] not in config["datasets"]:
        raise ConfigError("dataset", f"names '{config['dataset']}', which is not in datasets",
                          f"use one of: {', '.join(config['datasets'])}")
    if config["train"]["degradation"] not in config["degradations"]:
        raise ConfigError("train.degradation", f"names '{config['train']['degradation']}', which is not in degradations",
                          f"use one of: {', '.join(config['degradations'])}")
    unknown = [v for v in config["run_variants"] or [] if v not in config["variants"]]
    if unknown:
        raise ConfigError("run_variants", f"names {', '.join(unknown)}, not in variants",
                          f"use names from: {', '.join(config['variants'])}")
    field = config["field"]
    for key, names, known in (("field.settings", field["settings"], config["degradations"]),
                              ("field.variants", (field["variants"] + [field["reference"]]) * bool(field["settings"]),
                               config["variants"]),
                              ("field.published", [p["setting"] for p in field["published"]], field["settings"])):
        if unknown := [n for n in names if n not in known]:
            raise ConfigError(key, f"names {', '.join(dict.fromkeys(unknown))}, not among {', '.join(known) or 'none'}",
                              f"use names from: {', '.join(known)}")
    optimiser = load_schema()["definitions"]["variant"]["properties"]["optimiser"]["properties"]
    pixel_only = {k: optimiser[k]["default"] for k in ("clip_grad_norm", "milestones", "gamma")}
    for variant, spec in config["variants"].items():
        if spec["kind"] != "pixel" and (set_here := [k for k, v in pixel_only.items()
                                                     if spec.get("optimiser", {}).get(k, v) != v]):
            raise ConfigError(f"variants.{variant}.optimiser.{set_here[0]}", f"applies to kind pixel only, not "
                              f"{spec['kind']}", "remove it, or make the variant kind: pixel")
        if spec["kind"] == "external" and (quoted := quoted_placeholders(spec["command"])):
            raise ConfigError(f"variants.{variant}.command", f"puts {{{quoted[0]}}} inside shell quotes: mrisr quotes "
                              "each value itself, and a quote around it would undo that",
                              f"write {{{quoted[0]}}} without quotes around it")
        if unknown := [n for n in spec.get("settings") or [] if n not in config["degradations"]]:
            raise ConfigError(f"variants.{variant}.settings", f"names {', '.join(unknown)}, not in degradations",
                              f"use names from: {', '.join(config['degradations'])}")
    for name in [config["train"]["degradation"], *field["settings"]]:
        scale = as_scale(config["degradations"][name].get("scale", config["scale"]))
        if bad := [f for f in scale if config["train"]["patch_size"] % f]:
            raise ConfigError("train.patch_size", f"{config['train']['patch_size']} is not divisible by the factor "
                              f"{bad[0]} of the setting '{name}' (scale {list(scale)})", "use a multiple of every factor")
    _check_training(config)
    outside = config["papers"]["threeplayer"]["out_of_sample"]
    if outside is not None and (outside not in config["datasets"] or outside == config["dataset"]):
        raise ConfigError("papers.threeplayer.out_of_sample",
                          f"names '{outside}', " + ("the dataset trained on" if outside == config["dataset"] else
                                                    "which is not in datasets"),
                          f"name a datasets entry that is not trained on ({', '.join(sorted(config['datasets']))}), "
                          "or null; workflow/configs/hcp.yaml defines HCP, to put before ixi.yaml")
    seg = config["segmentation"]
    if seg["enabled"] is not False and seg["sr_variant"] not in config["variants"]:
        raise ConfigError("segmentation.sr_variant", f"names '{seg['sr_variant']}', which is not in variants",
                          f"use one of: {', '.join(config['variants'])}, or set segmentation.enabled: false")
    if seg["degradation"] is not None and seg["degradation"] not in config["degradations"]:
        raise ConfigError("segmentation.degradation", f"names '{seg['degradation']}', which is not in degradations",
                          f"use one of: {', '.join(config['degradations'])} (or null for train.degradation)")
    levels = 2 ** (len(seg["network"]["channels"]) - 1)
    if seg["patch_size"] % levels:
        raise ConfigError("segmentation.patch_size", f"{seg['patch_size']} is not divisible by {levels} "
                          f"({len(seg['network']['channels'])} network levels halve it {levels.bit_length() - 1} times)",
                          "use a multiple of that, or fewer segmentation.network.channels")
    prep = config["prepare"]
    if config["mtvnet_metrics"] and prep["intensities"] != "unit_range":
        raise ConfigError("mtvnet_metrics", f"clamps volumes to [0, 1], but prepare.intensities is "
                          f"{prep['intensities']}", "set prepare.intensities: unit_range (MTVNet's), or leave "
                          "mtvnet_metrics off")
    n = config["datasets"][config["dataset"]].get("subjects")
    n = len(n) if isinstance(n, list) else n
    if n is not None and prep["val"] + prep["test"] >= n:
        raise ConfigError("prepare.test", f"val + test = {prep['val'] + prep['test']} leaves no training subject of {n}",
                          "lower prepare.val/prepare.test or raise the number of subjects")


def quoted_placeholders(template: str) -> list[str]:
    """The placeholders of an outside method's command that stand inside shell quotes (where mrisr's own quoting of
    the value would be undone: a path holding ``$(...)`` would run). A template whose braces do not parse is the
    plan's to report."""
    quoted, escaped, found = None, False, []
    try:
        parts = list(string.Formatter().parse(template))
    except ValueError:
        return []
    for literal, field, _, _ in parts:
        for c in literal:
            if escaped:
                escaped = False
            elif c == "\\" and quoted != "'":
                escaped = True
            elif quoted:
                quoted = None if c == quoted else quoted
            elif c in "'\"":
                quoted = c
        if field is not None and quoted:
            found.append(field)
    return found


def variant_training(config: dict, variant: str) -> dict:
    """``train`` as a variant trains under it: the variant's own ``train`` keys over the run's."""
    return {**config["train"], **config["variants"][variant].get("train", {})}


def _check_training(config: dict) -> None:
    """Each training's global batch splits over its processes; the grid's own keys are not set for random windows."""
    runs = {"train": config["train"]} | {f"variants.{name}.train": variant_training(config, name)
                                         for name, spec in config["variants"].items() if spec["kind"] in LEARNED_KINDS}
    for key, train in runs.items():
        if train["batch_size"] % train["gpus"]:
            raise ConfigError(f"{key}.batch_size", f"{train['batch_size']} does not split over {train['gpus']} GPUs",
                              "make the global batch a multiple of gpus")
        if train["patch_sampling"] != "grid":
            if given := [k for k, unset in (("epochs", None), ("window_fraction", 1.0)) if train[k] != unset]:
                raise ConfigError(f"{key}.{given[0]}", "applies to train.patch_sampling: grid only",
                                  f"set train.patch_sampling: grid, or remove {given[0]}")


@functools.cache
def load_schema(path: Path = SCHEMA) -> dict:
    return yaml.safe_load(path.read_text())


def definition_defaults(definition: str) -> dict:
    """The defaults of one of the schema's definitions (a network's keys), e.g. ``rrdb``."""
    properties = load_schema()["definitions"][definition]["properties"]
    return {key: copy.deepcopy(spec["default"]) for key, spec in properties.items() if "default" in spec}


def schema_property(key: str) -> dict:
    """The schema of a dotted config key, e.g. ``inference.tile``: its type, range and default."""
    node = load_schema()
    for part in key.split("."):
        node = node["properties"][part]
    return node


def schema_default(key: str):
    """The schema's default of a dotted config key, e.g. ``inference.tile``."""
    return schema_property(key)["default"]
