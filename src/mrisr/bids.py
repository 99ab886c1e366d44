"""BIDS: a lab's dataset in, super-resolved derivatives out.

In: T1w images chosen by entity filters (one per subject for a training dataset), with brain masks and tissue
labels from a derivatives folder where it has them. Out: ``<source entities>_desc-sr_T1w.nii.gz`` beside the
source's place in the tree, a JSON sidecar that says where it came from, and ``dataset_description.json``
(``DatasetType: derivative``). pybids indexes and validates; it is imported only when a dataset is BIDS, so
planning other datasets stays light.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import shutil
from dataclasses import dataclass
from pathlib import Path

from mrisr import json_files
from mrisr.errors import InputError

#: What a T1w image is; filters choose among these and cannot widen them.
T1W = {"suffix": "T1w", "datatype": "anat", "extension": [".nii", ".nii.gz"]}
#: Entities of a derivative map that must agree with its T1w's where both have them.
MATCHED_ENTITIES = ("session", "acquisition", "ceagent", "reconstruction", "run")
#: The description entity and suffix of a super-resolved T1w.
SR_NAME = "desc-sr_T1w"
VALIDATION_FIX = ("give the dataset's root folder: it holds dataset_description.json with \"Name\" and "
                  "\"BIDSVersion\", and sub-<label>/[ses-<label>/]anat/ folders (https://bids.neuroimaging.io)")


def open_layout(root: str | Path, *, derivative: bool = False, database: Path | None = None):
    """pybids' index of the dataset at ``root``, validated (a derivatives folder: not validated, as pybids does);
    ``database``: the folder of pybids' SQLite index, read where it is there, else made there."""
    from bids import BIDSLayout
    from bids.exceptions import BIDSValidationError

    root = Path(root)
    if not root.is_dir():
        raise InputError(root, "is not a folder", VALIDATION_FIX)
    check_json_files(root)
    try:
        return BIDSLayout(root, validate=not derivative, is_derivative=derivative,
                          database_path=None if database is None else str(database))
    except (BIDSValidationError, OSError) as exc:  # OSError: an unreadable dataset_description.json (a folder, ...)
        problem = str(exc).splitlines()[0].rstrip(". ")
        raise InputError(root, f"is not a valid BIDS dataset: {problem}", VALIDATION_FIX) from None


def tree_signature(*roots: Path) -> str:
    """A digest of every file under ``roots`` (path, size, modification time): it changes when a file is added,
    removed, replaced or rewritten, which is when an index of the dataset must be made again."""
    digest = hashlib.sha256()
    for root in roots:
        for folder, names, files in os.walk(root):
            names.sort()
            for name in sorted(files):
                path = os.path.join(folder, name)
                try:
                    stat = os.stat(path)
                except OSError:  # a broken link: pybids passes it over too
                    continue
                digest.update(f"{os.path.relpath(path, root)}\0{stat.st_size}\0{stat.st_mtime_ns}\n".encode())
    return digest.hexdigest()


def check_json_files(root: Path) -> None:
    """Every JSON file of the dataset (sidecars, descriptions) within :mod:`mrisr.json_files`' limits before pybids
    reads them: a regular file (not a link to a device, not a pipe) of bounded size and nesting. Whether it is valid
    JSON is pybids' to say."""
    for folder, names, files in os.walk(root):
        names[:] = [n for n in names if not n.startswith(".")]  # pybids' own databases, version control
        for name in files:
            if name.endswith(".json"):
                path = Path(folder) / name
                try:
                    json_files.parse(path, json_files.read_bytes(path))
                except ValueError:
                    continue


def query(filters: dict) -> dict:
    """pybids keyword filters from config filters: a value, a list of values (any of them), null (entity absent)."""
    from bids.layout import Query

    def one(value):
        return Query.NONE if value is None else value

    return {entity: [one(v) for v in value] if isinstance(value, list) else one(value)
            for entity, value in filters.items()}


def t1w_images(layout, filters: dict, where: str) -> list:
    """The T1w images ``filters`` select, sorted by path; ``where`` names the filters' home for messages."""
    try:
        images = layout.get(**{**query(filters), **T1W}, return_type="object")
    except ValueError as exc:  # an entity pybids does not know
        raise InputError(layout.root, f"{where} {json.dumps(filters)}: {str(exc).split('. ')[0]}",
                         "filter on BIDS entities by their long names: session, run, acquisition, ceagent, "
                         "reconstruction, ...") from None
    return sorted(images, key=lambda image: image.path)


def differing(images: list) -> dict[str, list]:
    """Entities whose values differ among ``images`` (absent: None), for a message that says what to filter on."""
    entities = [image.get_entities() for image in images]
    names = sorted({name for e in entities for name in e} - {"subject", "extension"})
    return {name: [e.get(name) for e in entities] for name in names if len({str(e.get(name)) for e in entities}) > 1}


@dataclass(frozen=True)
class SubjectScan:
    """One subject's T1w and, where the derivatives folder has them, its brain mask and tissue labels."""

    T1w: str
    mask: str | None
    dseg: str | None


def _derivative(layout, image, suffix: str, filters: dict, where: str) -> str | None:
    """The one ``suffix`` map of ``image``'s subject (and session, run, ... where the map has them), or None."""
    entities = image.get_entities()
    found = layout.get(**{**query(filters), "subject": entities["subject"], "suffix": suffix,
                          "extension": T1W["extension"]}, return_type="object")
    found = [f for f in found if all(f.get_entities().get(e, entities.get(e)) == entities.get(e)
                                     for e in MATCHED_ENTITIES)]
    if len(found) > 1:
        raise InputError(image.path, f"has {len(found)} {suffix} maps in {layout.root}: "
                         f"{', '.join(f.relpath for f in found)}",
                         f"set {where} to entities that choose one, e.g. {json.dumps(differing(found))}")
    return found[0].path if found else None


def dataset_scans(name: str, spec: dict, index: Path | None = None) -> dict[str, SubjectScan]:
    """Each subject's files of the ``source: bids`` dataset ``name``: exactly one T1w per subject (else the files
    and the filter that chooses), masks and labels from ``spec["derivatives"]`` (a folder under the root, or a
    path) where present.

    ``index``: the folder where the answer and pybids' databases are kept between runs, for the dataset's files as they
    are (:func:`tree_signature`): a second plan of a large dataset reads them instead of indexing it again (pybids
    takes ~10 ms a subject). A change of any file makes a new index; a change of the entry reuses the databases.
    """
    root = Path(spec["path"])
    if index is None:
        return _scans(name, spec, root, None)
    derivatives = root / spec["derivatives"] if spec["derivatives"] else None
    roots = [root] + [derivatives] * bool(derivatives and not derivatives.resolve().is_relative_to(root.resolve()))
    state = Path(index) / tree_signature(*[r for r in roots if r.is_dir()])
    asked = hashlib.sha256(json.dumps(spec, sort_keys=True).encode()).hexdigest()[:16]
    answer = state / f"scans-{asked}.json"
    if answer.is_file():
        return {s: SubjectScan(**files) for s, files in json_files.read(answer).items()}
    for old in (p for p in Path(index).glob("*") if p.is_dir() and p != state):  # the files changed since
        shutil.rmtree(old, ignore_errors=True)
    scans = _scans(name, spec, root, state)
    partial = answer.with_name(f".{answer.name}.{os.getpid()}")  # whole or not at all (planning stays light: no io)
    partial.write_text(json.dumps({s: vars(scan) for s, scan in scans.items()}, indent=1))
    os.replace(partial, answer)
    return scans


def _scans(name: str, spec: dict, root: Path, state: Path | None) -> dict[str, SubjectScan]:
    layout = open_layout(root, database=None if state is None else state / "raw")
    where = f"datasets.{name}.filters"
    images = t1w_images(layout, spec["filters"], where)
    by_subject: dict[str, list] = {}
    for image in images:
        by_subject.setdefault(image.get_entities()["subject"], []).append(image)
    wanted = spec.get("subjects") or sorted(by_subject)
    if not images or any(s not in by_subject for s in wanted):
        missing = [s for s in wanted if s not in by_subject] or ["any subject"]
        raise InputError(root, f"no T1w image of {', '.join(missing)} matches {where} {json.dumps(spec['filters'])}",
                         f"check the subjects' anat folders, or loosen {where} (null: the entity is absent; a list: "
                         "any of its values)")
    for subject in wanted:
        if len(found := by_subject[subject]) > 1:
            raise InputError(found[0].path, f"is one of {len(found)} T1w images of subject {subject} that "
                             f"{where} selects: {', '.join(f.relpath for f in found)}",
                             f"set {where} to choose one per subject, e.g. one of {json.dumps(differing(found))} "
                             "(null: the entity is absent)")
    derivatives = None
    if spec["derivatives"]:
        derivatives = open_layout(root / spec["derivatives"], derivative=True,
                                  database=None if state is None else state / "derivatives")
    scans = {}
    for subject in sorted(wanted):
        image = by_subject[subject][0]
        maps = {suffix: _derivative(derivatives, image, suffix, spec[f"{suffix}_filters"],
                                    f"datasets.{name}.{suffix}_filters") if derivatives else None
                for suffix in ("mask", "dseg")}
        scans[subject] = SubjectScan(T1w=image.path, **maps)
    return scans


def derivative_name(source_relpath: str) -> str:
    """``sub-01/ses-1/anat/sub-01_ses-1_run-1_T1w.nii.gz`` -> ``sub-01/ses-1/anat/sub-01_ses-1_run-1_desc-sr_T1w.nii.gz``:
    the source's entities, ``desc-sr`` last (BIDS' entity order), the same suffix."""
    path = Path(source_relpath)
    stem = re.sub(r"_desc-[A-Za-z0-9]+", "", path.name.split("_T1w.nii")[0])
    return str(path.parent / f"{stem}_{SR_NAME}.nii.gz")


#: The BIDS version the derivatives follow (BIDS URIs in ``Sources``: 1.9 and later).
BIDS_VERSION = "1.10.0"
DESCRIPTION = "dataset_description.json"
#: in a derivatives folder while ``super-resolve --bids`` writes it, so that a run that stopped partway says so (a
#: dotfile: BIDS validators and pybids pass it by)
INCOMPLETE = ".mrisr-incomplete"


def check_derivatives_folder(out: Path, source_root: Path) -> None:
    """Refuse an output folder that is the source dataset, lies among its raw files (anywhere in it but under its
    ``derivatives/``) or holds another dataset: those files are not ours."""
    inside = out.resolve().is_relative_to(source_root.resolve())
    derivatives = source_root.resolve() / "derivatives"
    if out.resolve() == derivatives:
        raise InputError(out, "is the dataset's derivatives folder itself: mrisr's files would lie among every "
                              "pipeline's", f"give mrisr a folder of its own there, e.g. {source_root / 'derivatives' / 'mrisr'}")
    if inside and not out.resolve().is_relative_to(derivatives):
        raise InputError(out, "is inside the BIDS dataset being read: derivatives would be written among its raw files",
                         f"write them under its derivatives folder, e.g. {source_root / 'derivatives' / 'mrisr'}, or "
                         "outside the dataset")
    path = out / DESCRIPTION
    if not path.exists():
        return
    try:
        found = json_files.read(path)
        made_by = [tool.get("Name") for tool in found.get("GeneratedBy", [])]
        linked = found.get("DatasetLinks", {}).get("raw")
    except (ValueError, AttributeError, TypeError):
        made_by, linked = [], None
    if made_by[:1] != ["mrisr"]:
        raise InputError(path, "belongs to a dataset that mrisr did not make: it would be overwritten",
                         f"write the derivatives to a folder of their own, e.g. {source_root / 'derivatives' / 'mrisr'}")
    if linked != source_root.resolve().as_uri():
        raise InputError(path, f"holds derivatives of another dataset ({linked})",
                         "write these derivatives to another folder")


def dataset_description(source_root: Path, version: str) -> dict:
    """``dataset_description.json`` of the derivatives: what made them, from which dataset (``bids:raw:`` URIs)."""
    return {"Name": "mrisr super-resolution", "BIDSVersion": BIDS_VERSION, "DatasetType": "derivative",
            "GeneratedBy": [{"Name": "mrisr", "Version": version,
                             "Description": "GAN-based super-resolution of 3D brain MRI"}],
            "SourceDatasets": [{"URL": source_root.resolve().as_uri()}],
            "DatasetLinks": {"raw": source_root.resolve().as_uri()}}


def source_uri(relpath: str) -> str:
    """A source file as a BIDS URI into the dataset linked as ``raw``."""
    return f"bids:raw:{Path(relpath).as_posix()}"


def derivative_sidecar(source: str, provenance: dict, source_voxels, voxels) -> dict:
    """The JSON sidecar of one derivative: its source (its path in the dataset) and voxel sizes (mm), then the run's
    provenance."""
    return {"Sources": [source_uri(source)], **provenance,
            "SourceVoxelSize": [round(float(v), 6) for v in source_voxels],
            "VoxelSize": [round(float(v), 6) for v in voxels]}
