"""Networks by name: a variant's config names its players, this turns the names into modules.

A leaf: the table names each builder by its module, imported only when that network is built, so that the
networks never import the registry (no import cycle) and building one network loads only its own file.
"""

from __future__ import annotations

import importlib

from torch import nn

from mrisr.errors import ConfigError

#: role -> config name -> "module:builder"; a builder takes the config block's keys (less ``name``).
BUILDERS: dict[str, dict[str, str]] = {
    "generator": {"rrdb": "mrisr.models.generator:rrdb", "mdcsrn": "mrisr.models.mdcsrn:mdcsrn"},
    "discriminator": {"patch": "mrisr.models.patch_discriminator:patch",
                      "wavelet_unet": "mrisr.models.wavelet_unet:wavelet_unet"},
    "feature_extractor": {"resnet10": "mrisr.models.feature_extractor:resnet10"},
}


def build(role: str, settings: dict) -> nn.Module:
    """Build the ``role`` network from its config block (``name`` plus the builder's keyword arguments)."""
    options = dict(settings)
    name = options.pop("name")
    if name not in BUILDERS[role]:
        raise ConfigError(f"{role}.name", f"'{name}' is not a known {role}",
                          f"use one of: {', '.join(sorted(BUILDERS[role]))}")
    module, _, builder = BUILDERS[role][name].partition(":")
    return getattr(importlib.import_module(module), builder)(**options)


def count_parameters(module: nn.Module) -> int:
    return sum(p.numel() for p in module.parameters())
