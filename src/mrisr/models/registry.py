"""Networks by name: a variant's config names its players, this turns the names into modules.

A leaf: the table names each builder by its module, imported only when that network is built, so that the
networks never import the registry (no import cycle) and building one network loads only its own file. A network's
defaults are the schema's (its definition of that network), filled here: the builders have none of their own.
"""

from __future__ import annotations

import importlib

from torch import nn

from mrisr.config import definition_defaults
from mrisr.errors import ConfigError

#: role -> config name -> ("module:builder", the schema definition of its keys); a builder takes the config block's
#: keys (less ``name`` and the role's training keys; a generator also takes the run's ``scale``).
BUILDERS: dict[str, dict[str, tuple[str, str]]] = {
    "generator": {"rrdb": ("mrisr.models.generator:rrdb", "rrdb"), "mdcsrn": ("mrisr.models.mdcsrn:mdcsrn", "mdcsrn")},
    "discriminator": {"patch": ("mrisr.models.patch_discriminator:patch", "patch_discriminator"),
                      "wavelet_unet": ("mrisr.models.wavelet_unet:wavelet_unet", "wavelet_unet")},
    "feature_extractor": {"resnet10": ("mrisr.models.feature_extractor:resnet10", "feature_extractor")},
}
#: keys of a role's config block that say how the network is trained or started, not what it is
TRAINING_KEYS = {"feature_extractor": ("trainable", "weights", "frozen_mode")}


def build(role: str, settings: dict) -> nn.Module:
    """Build the ``role`` network from its config block (``name`` plus the builder's keyword arguments; the schema's
    defaults fill the keys it leaves out)."""
    name = settings["name"]
    if name not in BUILDERS[role]:
        raise ConfigError(f"{role}.name", f"'{name}' is not a known {role}",
                          f"use one of: {', '.join(sorted(BUILDERS[role]))}")
    target, definition = BUILDERS[role][name]
    options = {**definition_defaults(definition), **settings}
    for key in ("name", *TRAINING_KEYS.get(role, ())):
        options.pop(key, None)
    module, _, builder = target.partition(":")
    return getattr(importlib.import_module(module), builder)(**options)


def count_parameters(module: nn.Module) -> int:
    return sum(p.numel() for p in module.parameters())
