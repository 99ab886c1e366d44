"""Where each dataset's raw files are: the subjects a config entry names and their T1w, mask and label paths.

``demo``, ``ixi`` and ``hcp`` subjects are made (or fetched) by the workflow, at the path the workflow names; a
``folder`` is a lab's own directory of ``sub-<id>_T1w.nii.gz`` with ``sub-<id>_mask.nii.gz`` (needed: cropping
and brain metrics use it) and, optionally, ``sub-<id>_dseg.nii.gz``.
"""

from __future__ import annotations

import re
from pathlib import Path

from mrisr.errors import InputError
from mrisr.fetch.demo import demo_subject_ids

KINDS = ("T1w", "mask", "dseg")
MADE_BY_WORKFLOW = ("demo", "ixi", "hcp")
_T1W = re.compile(r"sub-([A-Za-z0-9]+)_T1w\.nii(\.gz)?$")


def subjects(name: str, spec: dict) -> list[str]:
    """Subject ids of one ``datasets`` entry, sorted."""
    if spec["source"] == "demo":
        return demo_subject_ids(spec["subjects"])
    if spec["source"] == "ixi":
        return sorted(spec["subjects"])
    if spec["source"] == "hcp":
        from mrisr.fetch.hcp import read_subjects

        return sorted(spec.get("subjects") or read_subjects(spec["subjects_tsv"]))
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


def fixed_splits(spec: dict) -> dict[str, str] | None:
    """A dataset's own train/val/test assignment (an HCP subject TSV's ``split`` column), or None: then the split is
    a seeded shuffle (``prepare.make_splits``)."""
    if spec["source"] == "hcp" and not spec.get("subjects") and spec.get("subjects_tsv"):
        from mrisr.fetch.hcp import read_splits

        return read_splits(spec["subjects_tsv"])
    return None


def raw_path(name: str, spec: dict, subject: str, kind: str, made: str) -> str | None:
    """The raw file of one subject, or None for a label map the dataset does not have (IXI, some folders).

    ``made``: where the workflow writes the files it makes, with ``{dataset}``, ``{subject}`` and ``{kind}``.
    """
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


def raw_files(name: str, spec: dict, made: str) -> dict[str, dict[str, str]]:
    """Every subject's raw files, checked up front so that a missing scan stops the workflow before any job.

    Label maps are used only when every subject has one.
    """
    files = {s: {kind: raw_path(name, spec, s, kind, made) for kind in KINDS} for s in subjects(name, spec)}
    if any(f["dseg"] is None for f in files.values()):
        for f in files.values():
            del f["dseg"]
    return files
