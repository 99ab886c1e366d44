"""Words that the plan (figure titles) and the papers' tables both write about what was run. Pure and light: planning
imports it."""

from __future__ import annotations


def start_note(starts: dict[str, str]) -> str:
    """Which start each learned method's generator had (``label -> start``; empty: not learned), grouped by start:
    a method's numbers depend on it as much as on its losses."""
    groups: dict[str, list[str]] = {}
    for label, start in starts.items():
        if start:
            groups.setdefault(start, []).append(label)
    return "; ".join(f"{', '.join(labels)} from {start}" for start, labels in groups.items())
