"""Schedules over training steps."""

from __future__ import annotations


def linear(step: int, total: int, start: float, end: float) -> float:
    """Value at ``step`` of a straight line from ``start`` (step 0) to ``end`` (last step)."""
    if total <= 1:
        return start
    return start + (end - start) * min(step, total - 1) / (total - 1)
