"""Method comparison tables (the three-player and DISGAN papers' main and ablation tables) from metric CSVs."""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from mrisr.io import write_table, write_text
from mrisr.plan.papers import start_note
from mrisr.stats import comparison_table, notes_of, to_markdown


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
