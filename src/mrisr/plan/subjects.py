"""Which subjects a dataset has, where each one's raw files are, and which part (train/val/test) each is in.

``demo``, ``ixi`` and ``hcp`` subjects are made (or fetched) by the workflow, at the path the workflow names; a
``folder`` is a lab's own directory of ``sub-<id>_T1w.nii.gz`` with ``sub-<id>_mask.nii.gz`` (needed: cropping
and brain metrics use it) and, optionally, ``sub-<id>_dseg.nii.gz``; a ``bids`` dataset is read in place through
pybids (:mod:`mrisr.bids`), its masks and labels from a derivatives folder where it has them (a subject without a
mask gets its head mask in prepare, as IXI's do). Reading an HCP subject list (a TSV) needs only the standard
library: every Snakemake start plans with it.
"""

from __future__ import annotations

import csv
import functools
import json
import random
import re
from pathlib import Path

from mrisr.errors import InputError

KINDS = ("T1w", "mask", "dseg")
MADE_BY_WORKFLOW = ("demo", "ixi", "hcp")
_T1W = re.compile(r"sub-([A-Za-z0-9]+)_T1w\.nii(\.gz)?$")
SUBJECTS_SCHEMA = Path(__file__).resolve().parents[1] / "schemas" / "hcp_subjects.schema.yaml"


def demo_subject_ids(n: int) -> list[str]:
    return [f"{i:02d}" for i in range(1, n + 1)]


def make_splits(subjects: list[str], val: int, test: int, seed: int) -> dict[str, str]:
    """Assign each subject to train/val/test by a seeded shuffle; the order of ``subjects`` does not matter."""
    order = sorted(subjects)
    random.Random(seed).shuffle(order)
    split = {s: "test" for s in order[:test]}
    split.update({s: "val" for s in order[test:test + val]})
    split.update({s: "train" for s in order[test + val:]})
    return {s: split[s] for s in sorted(subjects)}


def _subject_table(tsv: str | Path) -> list[dict[str, str]]:
    """The rows of a subject TSV (``#`` lines are comments: where the ids come from), each validated by
    ``mrisr/schemas/hcp_subjects.schema.yaml``."""
    import jsonschema
    import yaml

    path = Path(tsv)
    if not path.is_file():
        raise InputError(path, "subject list does not exist", "give datasets.<name>.subjects_tsv a TSV with a 'subject' column")
    with path.open(newline="") as f:
        rows = list(csv.DictReader((line for line in f if not line.startswith("#")), delimiter="\t"))
    validator = jsonschema.Draft7Validator(yaml.safe_load(SUBJECTS_SCHEMA.read_text()))
    for row_number, row in enumerate(rows, start=1):
        error = next(iter(validator.iter_errors(row)), None)
        if error is not None:
            raise InputError(path, f"row {row_number}: {error.message}", "list HCP Young Adult ids (six digits, e.g. "
                             "100307) in a column named 'subject', one per row; an optional 'split' column says "
                             "train, val or test for every row")
    ids = [row["subject"] for row in rows]
    if len(set(ids)) != len(ids):
        raise InputError(path, "lists a subject twice", "remove the duplicate rows")
    return rows


def read_subjects(tsv: str | Path) -> list[str]:
    """Subject ids from a subject TSV."""
    return [row["subject"] for row in _subject_table(tsv)]


def read_splits(tsv: str | Path) -> dict[str, str] | None:
    """The TSV's own train/val/test assignment (its ``split`` column), or None where it has none. A fixed split keeps
    a dataset's training subjects when test subjects are added, which a seeded shuffle of a longer list would not."""
    rows = _subject_table(tsv)
    return {row["subject"]: row["split"] for row in rows} if rows and "split" in rows[0] else None


def subjects(name: str, spec: dict, index: str | None = None) -> list[str]:
    """Subject ids of one ``datasets`` entry, sorted (``index``: where a BIDS dataset's index is kept)."""
    if spec["source"] == "demo":
        return demo_subject_ids(spec["subjects"])
    if spec["source"] == "ixi":
        return sorted(spec["subjects"])
    if spec["source"] == "hcp":
        return sorted(spec.get("subjects") or read_subjects(spec["subjects_tsv"]))
    if spec["source"] == "bids":
        return sorted(_bids_scans(name, json.dumps(spec, sort_keys=True), index))
    if spec["source"] == "folder":
        if spec.get("subjects"):
            return sorted(spec["subjects"])
        folder = Path(spec["path"])
        if not folder.is_dir():
            raise InputError(folder, f"folder of dataset '{name}' does not exist",
                             f"set datasets.{name}.path to the directory holding sub-<id>_T1w.nii.gz files")
        found = sorted(m.group(1) for p in folder.iterdir() if (m := _T1W.match(p.name)))
        if not found:
            raise InputError(folder, "holds no sub-<id>_T1w.nii.gz file", "name each scan sub-<id>_T1w.nii.gz")
        return found
    raise ValueError(f"unknown source {spec['source']}")


@functools.cache
def _bids_scans(name: str, spec_json: str, index: str | None) -> dict:
    """A BIDS dataset's subjects and files, indexed once per planning (``spec_json``: its config entry, hashable) and,
    with ``index``, kept there for the next plan while the dataset's files stay as they are."""
    from mrisr.bids import dataset_scans

    return dataset_scans(name, json.loads(spec_json), None if index is None else Path(index))


def fixed_splits(spec: dict) -> dict[str, str] | None:
    """A dataset's own train/val/test assignment (an HCP subject TSV's ``split`` column), or None: then the split is
    a seeded shuffle (:func:`make_splits`)."""
    if spec["source"] == "hcp" and not spec.get("subjects") and spec.get("subjects_tsv"):
        return read_splits(spec["subjects_tsv"])
    return None


def raw_path(name: str, spec: dict, subject: str, kind: str, made: str, index: str | None = None) -> str | None:
    """The raw file of one subject, or None for a label map the dataset does not have (IXI, some folders) and a
    BIDS subject's mask that its derivatives folder lacks.

    ``made``: where the workflow writes the files it makes, with ``{dataset}``, ``{subject}`` and ``{kind}``.
    """
    if spec["source"] == "bids":
        return getattr(_bids_scans(name, json.dumps(spec, sort_keys=True), index)[subject], kind)
    if spec["source"] in MADE_BY_WORKFLOW:
        if kind == "dseg" and spec["source"] == "ixi":
            return None
        return made.format(dataset=name, subject=subject, kind=kind)
    folder = Path(spec["path"])
    for suffix in (".nii.gz", ".nii"):
        path = folder / f"sub-{subject}_{kind}{suffix}"
        if path.is_file():
            return str(path)
    if kind == "dseg":
        return None
    what = "scan" if kind == "T1w" else "brain mask"
    why = "" if kind == "T1w" else " (the brain crop and the brain metrics need it)"
    raise InputError(folder / f"sub-{subject}_{kind}.nii.gz", f"{what} of subject {subject} of dataset '{name}' "
                     f"does not exist{why}", f"add the file, or drop subject {subject} from datasets.{name}.subjects")


def raw_files(name: str, spec: dict, made: str, index: str | None = None) -> dict[str, dict[str, str | None]]:
    """Every subject's raw files, checked up front so that a missing scan stops the workflow before any job.

    Label maps are used only when every subject has one; a BIDS subject's mask is None where its derivatives folder
    has none (prepare then takes the head mask).
    """
    files = {s: {kind: raw_path(name, spec, s, kind, made, index) for kind in KINDS} for s in subjects(name, spec, index)}
    if any(f["dseg"] is None for f in files.values()):
        for f in files.values():
            del f["dseg"]
    return files
