"""Networks by name: a variant's config names its players, this turns the names into modules.

A leaf: the table names each builder by its module, imported only when that network is built, so that the
networks never import the registry (no import cycle) and building one network loads only its own file. A network's
defaults are the schema's (its definition of that network), filled here: the builders have none of their own.

A name that is no built-in is a plugin's: an entry point of an installed package in the role's group
(``mrisr.generators``, ``mrisr.discriminators``), the only way a config or model file can name code
(docs/plugins.md).
"""

from __future__ import annotations

import importlib
from importlib.metadata import EntryPoint, entry_points

import torch
from torch import nn

from mrisr.config import definition_defaults
from mrisr.errors import ConfigError
from mrisr.scale import as_scale

#: role -> config name -> ("module:builder", the schema definition of its keys); a builder takes the config block's
#: keys (less ``name`` and the role's training keys; a generator also takes the run's ``scale``).
BUILDERS: dict[str, dict[str, tuple[str, str]]] = {
    "generator": {"rrdb": ("mrisr.models.generator:rrdb", "rrdb"), "mdcsrn": ("mrisr.models.mdcsrn:mdcsrn", "mdcsrn")},
    "discriminator": {"patch": ("mrisr.models.patch_discriminator:patch", "patch_discriminator"),
                      "wavelet_unet": ("mrisr.models.wavelet_unet:wavelet_unet", "wavelet_unet")},
    "feature_extractor": {"resnet10": ("mrisr.models.feature_extractor:resnet10", "feature_extractor")},
}
#: role -> the entry point group its plugins register in
PLUGIN_GROUPS = {"generator": "mrisr.generators", "discriminator": "mrisr.discriminators"}
#: keys of a role's config block that say how the network is trained or started, not what it is
TRAINING_KEYS = {"feature_extractor": ("trainable", "weights", "frozen_mode")}


def build(role: str, settings: dict) -> nn.Module:
    """Build the ``role`` network from its config block (``name`` plus the builder's keyword arguments; the schema's
    defaults fill the keys it leaves out)."""
    name = settings["name"]
    if name not in BUILDERS[role]:  # a plugin: its own options, and a generator's scale as three factors
        options = {k: v for k, v in settings.items() if k != "name"}
        if "scale" in options:
            options["scale"] = as_scale(options["scale"])
        return _built_plugin(role, name, options)
    target, definition = BUILDERS[role][name]
    options = {**definition_defaults(definition), **settings}
    for key in ("name", *TRAINING_KEYS.get(role, ())):
        options.pop(key, None)
    module, _, builder = target.partition(":")
    return getattr(importlib.import_module(module), builder)(**options)


def _built_plugin(role: str, name: str, options: dict) -> nn.Module:
    """A plugin's network, whatever the plugin does wrong (fails to import, lacks an option, builds sparse weights or
    weights with no data) a ConfigError naming it: its code is not mrisr's to show as a traceback."""
    entry = plugin(role, name)
    what = f"the {role} plugin '{name}' ({entry.value}{f', {entry.dist.name} {entry.dist.version}' if entry.dist else ''})"
    fix = "fix or reinstall the package that provides it, or choose another network"
    try:
        builder = entry.load()
    except Exception as exc:  # an ImportError, or anything its module raises on import
        raise ConfigError(f"{role}.name", f"{what} fails to import ({type(exc).__name__}: {exc})"[:600], fix) from None
    try:
        network = builder(**options)
    except Exception as exc:  # a TypeError for an option it lacks, a ValueError for one it refuses, ...
        raise ConfigError(role, f"{what} cannot be built with the options {sorted(options)} ({type(exc).__name__}: "
                                f"{exc})"[:600], "give the options its documentation lists, within its ranges") from None
    if not isinstance(network, nn.Module):
        raise ConfigError(role, f"{what} built a {type(network).__name__}, not a torch module", fix)
    on_meta = torch.get_default_device().type == "meta"  # mrisr builds on the meta device to check a model file
    odd = [n for n, t in (*network.named_parameters(), *network.named_buffers())
           if t.layout != torch.strided or t.is_meta != on_meta]
    if odd:
        raise ConfigError(role, f"{what} built weights that are sparse or hold no data (e.g. {odd[0]})", fix)
    return network


def is_plugin(role: str, name: str) -> bool:
    return name not in BUILDERS[role]


def plugin(role: str, name: str) -> EntryPoint:
    """The installed entry point named ``name`` in the role's plugin group (a ConfigError naming the fix if none)."""
    group = PLUGIN_GROUPS.get(role)
    found = list(entry_points(group=group).select(name=name)) if group else []
    if not found:
        raise ConfigError(f"{role}.name", f"'{name}' is neither a built-in {role} ({', '.join(sorted(BUILDERS[role]))})"
                          f" nor an installed plugin{f' (entry point group {group})' if group else ''}",
                          "install the package that provides it, or name a built-in one")
    if len(found) > 1:  # which one Python lists first is an accident of the install order
        packages = ", ".join(sorted(entry.dist.name if entry.dist else entry.value for entry in found))
        raise ConfigError(f"{role}.name", f"'{name}' is a plugin of {len(found)} installed packages ({packages})",
                          "uninstall all but the one whose network you mean")
    return found[0]


def plugin_provenance(role: str, name: str) -> dict | None:
    """What a model card records of a plugin network: its entry point and the package (name, version) that gave it."""
    if not is_plugin(role, name):
        return None
    entry = plugin(role, name)
    return {"entry_point": name, "group": PLUGIN_GROUPS[role], "value": entry.value,
            "package": entry.dist.name if entry.dist else None, "version": entry.dist.version if entry.dist else None}


def count_parameters(module: nn.Module) -> int:
    return sum(p.numel() for p in module.parameters())
