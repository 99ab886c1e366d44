"""Networks by name: a variant's config names its players, this turns the names into modules."""

from __future__ import annotations

from typing import Callable

from torch import nn

from mrisr.errors import ConfigError

_REGISTRY: dict[str, dict[str, Callable[..., nn.Module]]] = {
    "generator": {}, "discriminator": {}, "feature_extractor": {},
}


def register(role: str, name: str):
    def wrap(builder):
        _REGISTRY[role][name] = builder
        return builder
    return wrap


def build(role: str, settings: dict) -> nn.Module:
    """Build the ``role`` network from its config block (``name`` plus the builder's keyword arguments)."""
    _load_builtin()
    options = dict(settings)
    name = options.pop("name")
    if name not in _REGISTRY[role]:
        raise ConfigError(f"{role}.name", f"'{name}' is not a known {role}",
                          f"use one of: {', '.join(sorted(_REGISTRY[role]))}")
    return _REGISTRY[role][name](**options)


def count_parameters(module: nn.Module) -> int:
    return sum(p.numel() for p in module.parameters())


def _load_builtin() -> None:
    from mrisr.models import (  # noqa: F401  (registration)
        feature_extractor, generator, mdcsrn, patch_discriminator, wavelet_unet)
