"""Method comparison tables (the three-player and DISGAN papers' main and ablation tables) from metric CSVs, and
tables of such comparisons, one per group of inputs (a noise level, a setting)."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pandas as pd

from mrisr.captions import start_note
from mrisr.io import write_table, write_text
from mrisr.stats import QUALITY, comparison_table, notes_of, to_markdown


def read_metrics(inputs: list[dict]) -> dict[str, pd.DataFrame]:
    """Each method's per-subject metrics, by ``label``, in the order given."""
    return {item["label"]: pd.read_csv(item["path"], dtype={"subject": str}) for item in inputs}


def method_table(inputs: list[dict], reference: str | None, out_csv: str, out_md: str) -> Path:
    """Method x metric (mean ± std, n), each method paired against ``reference`` (a ``label``) over subjects; an
    input's ``start`` (its generator's start, empty for interpolation) becomes a column and a note."""
    frames = read_metrics(inputs)
    table = comparison_table(frames, reference)
    starts = {item["label"]: item.get("start", "") for item in inputs}
    table.insert(1, "start", table["method"].map(starts))
    write_table(table, out_csv)
    note = start_note(starts)
    return write_text(to_markdown(table, notes=notes_of(frames) + ([f"Generators: {note}."] if note else [])), out_md)


def grouped_comparison(inputs: list[dict], key: str, reference: str | None, metrics=QUALITY,
                       heading: Callable[[object], str] = str) -> tuple[pd.DataFrame, list[str]]:
    """One comparison table per value of the inputs' ``key`` (in the order first given), paired within the group:
    the long table with a ``key`` column, and each group's Markdown section under its ``heading``."""
    groups: dict[object, list[dict]] = {}
    for item in inputs:
        groups.setdefault(item[key], []).append(item)
    tables, sections = [], []
    for value, items in groups.items():
        frames = read_metrics(items)
        table = comparison_table(frames, reference, metrics)
        tables.append(table.assign(**{key: value}))
        sections.append(f"### {heading(value)}\n\n{to_markdown(table, notes=notes_of(frames))}")
    return pd.concat(tables, ignore_index=True), sections
