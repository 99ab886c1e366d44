"""Schedules over training steps."""

from __future__ import annotations


def linear(step: int, total: int, start: float, end: float) -> float:
    """Value at ``step`` of a straight line from ``start`` (step 0) to ``end`` (last step)."""
    if total <= 1:
        return start
    return start + (end - start) * min(step, total - 1) / (total - 1)


def instance_noise(step: int, total: int, start: float, end: float, epochs: int | None) -> float:
    """The instance noise's σ at ``step`` of ``total``.

    ``epochs`` None: :func:`linear`, reaching ``end`` at the last step. Else σ is held for each of ``epochs``
    equal parts of the run and epoch ``e`` has ``start + (end − start)·e/epochs``, as the authors' code sets it
    per epoch (``max(1 − epoch/max_epochs, 0)``): the last epoch is one step short of ``end``.
    """
    if epochs is None:
        return linear(step, total, start, end)
    return max(start + (end - start) * epoch_of(step, total, epochs) / epochs, 0.0)


def epoch_of(step: int, total: int, epochs: int) -> int:
    """The epoch of ``step`` when ``total`` steps make ``epochs`` equal epochs (the authors count in epochs)."""
    return min(step, total - 1) * epochs // total


def starts_epoch(step: int, total: int, epochs: int) -> bool:
    """Whether ``step`` is the first of its epoch."""
    return step == 0 or epoch_of(step, total, epochs) != epoch_of(step - 1, total, epochs)


def warmup_steps(fraction: float, total: int) -> int:
    """The pixel-only warm-up's steps: the first ``fraction`` of ``total`` (the MIDL 2022 code: one epoch of 20)."""
    return round(fraction * total)


def updates_discriminator(step: int, warmup: int, every: int) -> bool:
    """Whether D is updated at ``step``: never in the warm-up, then every ``every``-th step from its end on, as the
    MIDL 2022 code's ``i % 5 == 0``."""
    return step >= warmup and (step - warmup) % every == 0
