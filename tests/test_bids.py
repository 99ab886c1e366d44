"""BIDS in (a ``source: bids`` dataset) and out (``mrisr super-resolve --bids``), read back with pybids."""

import hashlib
import json
import re
import shlex
from pathlib import Path

import nibabel as nib
import numpy as np
import pytest
from bids import BIDSLayout

from mrisr.cli import main
from tests.conftest import BIDS_T1W, head, write_bids_dataset, write_model

GENERATOR = {"name": "rrdb", "channels": 4, "growth": 4, "blocks": 1, "scale": 2}


@pytest.fixture
def dataset(tmp_path):
    rng = np.random.default_rng(1)
    return write_bids_dataset(tmp_path / "bids", {p: head(rng) for p in BIDS_T1W})


def _contents(root):
    return {p.relative_to(root): hashlib.sha256(p.read_bytes()).hexdigest() for p in sorted(root.rglob("*"))
            if p.is_file()}


def test_every_t1w_becomes_a_derivative_that_pybids_finds_with_its_sidecar(tmp_path, dataset):
    model = write_model(tmp_path / "model.safetensors", GENERATOR)
    before = _contents(dataset)
    out = dataset / "derivatives" / "mrisr"
    argv = ["super-resolve", "--model", str(model), "--bids", str(dataset), str(out)]
    assert main(argv) == 0
    assert all(_contents(dataset)[p] == h for p, h in before.items())  # the dataset's own files untouched

    layout = BIDSLayout(dataset, derivatives=out)
    found = layout.derivatives["mrisr"].get(desc="sr", suffix="T1w", extension=".nii.gz")
    assert sorted(f.relpath for f in found) == sorted(p.replace("_T1w", "_desc-sr_T1w") for p in BIDS_T1W)
    description = json.loads((out / "dataset_description.json").read_text())
    assert description["DatasetType"] == "derivative" and description["GeneratedBy"][0]["Name"] == "mrisr"
    model_sha256 = hashlib.sha256(model.read_bytes()).hexdigest()
    for image in found:
        source = image.relpath.replace("_desc-sr_T1w", "_T1w")
        meta = image.get_metadata()
        assert meta["Sources"] == [f"bids:raw:{source}"] and meta["ModelSha256"] == model_sha256
        assert meta["Scale"] == 2 and meta["SourceVoxelSize"] == [2, 2, 2] and meta["VoxelSize"] == [1, 1, 1]
        assert meta["Variant"] == "tiny" and shlex.split(meta["CommandLine"]) == ["mrisr", *argv]
        # the same voxels as super-resolving that one scan on its own
        alone = tmp_path / "alone.nii.gz"
        assert main(["super-resolve", "--model", str(model), str(dataset / source), str(alone)]) == 0
        np.testing.assert_array_equal(np.asanyarray(nib.load(image.path).dataobj),
                                      np.asanyarray(nib.load(alone).dataobj))
    # a rerun into its own derivatives folder is allowed and leaves the same files
    assert main(argv) == 0 and len(list(out.rglob("*_desc-sr_T1w.nii.gz"))) == 4


def test_a_filter_chooses_images_by_entity(tmp_path, dataset):
    out = tmp_path / "sr"
    assert main(["super-resolve", "--interpolate", "trilinear", "--scale", "2", "--bids", str(dataset),
                 "--bids-filter", '{"session": "2"}', str(out)]) == 0
    assert [p.relative_to(out).as_posix() for p in out.rglob("*.nii.gz")] == [
        "sub-01/ses-2/anat/sub-01_ses-2_desc-sr_T1w.nii.gz"]
    meta = json.loads((out / "sub-01/ses-2/anat/sub-01_ses-2_desc-sr_T1w.json").read_text())
    assert meta["Variant"] == "trilinear" and meta["ModelSha256"] is None
    assert main(["super-resolve", "--interpolate", "trilinear", "--scale", "2", "--bids", str(dataset),
                 "--bids-filter", '{"run": [2, null], "session": null}', str(tmp_path / "runs")]) == 0
    assert [p.name for p in (tmp_path / "runs").rglob("*.nii.gz")] == ["sub-02_run-2_desc-sr_T1w.nii.gz"]


@pytest.mark.parametrize("case", ["the dataset itself", "among its raw files", "another dataset", "not BIDS",
                                  "unknown entity", "nothing selected", "inputs as well", "its derivatives folder",
                                  "a subject folder linked into it"])
def test_refusals_name_the_file_and_the_fix_and_write_nothing(tmp_path, dataset, capsys, case):
    other = write_bids_dataset(tmp_path / "other", {BIDS_T1W[0]: head(np.random.default_rng(2))})
    out, root, extra = tmp_path / "out", dataset, []
    if case == "the dataset itself":
        out = dataset
    elif case == "among its raw files":
        out = dataset / "sr"
    elif case == "another dataset":
        out = other
    elif case == "not BIDS":
        (dataset / "dataset_description.json").unlink()
    elif case == "unknown entity":
        extra = ["--bids-filter", '{"sesion": "1"}']
    elif case == "nothing selected":
        extra = ["--bids-filter", '{"session": "3"}']
    elif case == "its derivatives folder":
        out = dataset / "derivatives"
    elif case == "a subject folder linked into it":  # derivatives would land among sub-01's raw files
        out.mkdir()
        (out / "sub-01").symlink_to(dataset / "sub-01", target_is_directory=True)
    else:
        extra = [str(dataset / BIDS_T1W[0])]
    before = {d: _contents(d) for d in (dataset, other)}
    code = main(["super-resolve", "--interpolate", "trilinear", "--scale", "2", "--bids", str(root), *extra, str(out)])
    err = capsys.readouterr().err
    assert code == 2 and ("Fix:" in err or case == "inputs as well")
    expected = {"the dataset itself": "derivatives/mrisr", "among its raw files": "inside the BIDS dataset",
                "another dataset": "mrisr did not make",
                "not BIDS": "dataset_description.json", "unknown entity": "sesion", "nothing selected": "session",
                "inputs as well": "--bids", "its derivatives folder": "is the dataset's derivatives folder itself",
                "a subject folder linked into it": f"{out / 'sub-01'}/ses-1/anat: leads out of the output folder"}[case]
    assert expected in err
    assert {d: _contents(d) for d in (dataset, other)} == before
    if case == "a subject folder linked into it":
        assert [p.name for p in out.iterdir()] == ["sub-01"]
    else:
        assert out in (dataset, other) or not out.exists()


def test_a_bids_run_that_stops_partway_says_so_and_a_rerun_completes_it(tmp_path, dataset, monkeypatch, capsys):
    """The derivatives folder holds .mrisr-incomplete while scans are written; a crash leaves it (and the scans done,
    each whole); a rerun completes the folder and removes it."""
    import mrisr.super_resolve

    out = tmp_path / "out"
    original, calls = mrisr.super_resolve.super_resolve_image, []

    def crash_on_the_third(*args, **kwargs):
        calls.append(args[2])
        if len(calls) == 3:
            raise MemoryError("killed")
        return original(*args, **kwargs)

    monkeypatch.setattr(mrisr.super_resolve, "super_resolve_image", crash_on_the_third)
    command = ["super-resolve", "--interpolate", "trilinear", "--scale", "2", "--bids", str(dataset), str(out)]
    with pytest.raises(MemoryError):
        main(command)
    assert (out / ".mrisr-incomplete").read_text().startswith("mrisr is writing these derivatives, or a run that did "
                                                              "stopped partway")
    assert len(list(out.rglob("*_desc-sr_T1w.nii.gz"))) == 2
    monkeypatch.setattr(mrisr.super_resolve, "super_resolve_image", original)
    assert main(command) == 0
    assert not (out / ".mrisr-incomplete").exists() and len(list(out.rglob("*_desc-sr_T1w.nii.gz"))) == len(BIDS_T1W)


# --- BIDS in: a `source: bids` dataset --------------------------------------------------------------------------

MASK = ("masks", "sub-02/anat/sub-02_desc-brain_mask.nii.gz")


def _study(spec: dict):
    """The planning of a run on the BIDS dataset ``spec`` (its config entry), validated as the workflow does."""
    from mrisr import config
    from mrisr.plan.study import Study
    from tests.conftest import SCHEMA

    cfg = config.validate({"datasets": {"lab": {"source": "bids", **spec}}, "dataset": "lab",
                           "variants": {"trilinear": {"kind": "interpolation"}}, "segmentation": {"enabled": False},
                           "prepare": {"val": 0, "test": 1}}, SCHEMA)
    return Study(cfg, {"raw": "results/fetch/{dataset}/sub-{subject}/sub-{subject}_{kind}.nii.gz"})


def test_filters_choose_one_t1w_per_subject_and_derivatives_give_masks(tmp_path):
    rng = np.random.default_rng(1)
    masks = {MASK: np.ones((20, 22, 18), np.uint8), ("masks", "sub-02/anat/sub-02_dseg.nii.gz"): head(rng)}
    root = write_bids_dataset(tmp_path / "bids", {p: head(rng) for p in BIDS_T1W}, derivatives=masks)
    study = _study({"path": str(root), "filters": {"session": ["1", None], "run": [1, None]},
                    "derivatives": "derivatives/masks"})
    assert study.raw_files() == {  # labels only where every subject has them: not here
        "01": {"T1w": str(root / BIDS_T1W[0]), "mask": None},
        "02": {"T1w": str(root / BIDS_T1W[2]), "mask": str(root / "derivatives" / MASK[0] / MASK[1])}}
    assert study.subjects() == ["01", "02"] and not study.labelled()
    # a map without a run entity is the subject's (fMRIPrep's); every subject chosen has labels: they are used
    only = _study({"path": str(root), "filters": {"run": 2}, "derivatives": "derivatives/masks"})
    derivatives = root / "derivatives" / "masks" / "sub-02" / "anat"
    assert only.raw_files() == {"02": {"T1w": str(root / BIDS_T1W[3]), "mask": str(derivatives / Path(MASK[1]).name),
                                       "dseg": str(derivatives / "sub-02_dseg.nii.gz")}}
    assert only.labelled()


@pytest.mark.parametrize("spec, names", [
    ({}, ["sub-01_ses-1_T1w", "sub-01_ses-2_T1w", '"session": ["1", "2"]']),
    ({"filters": {"session": "1"}, "subjects": ["01", "02"]}, ["no T1w image of 02", "datasets.lab.filters"]),
    ({"filters": {"session": "1", "acq": "x"}}, ["'acq' is not a recognized entity", "acquisition"]),
    ({"filters": {"session": ["1", None], "run": [1, None]}, "derivatives": "derivatives/two"},
     ["sub-02_desc-brain_mask", "sub-02_desc-head_mask", "datasets.lab.mask_filters", '"desc"']),
    ({"filters": {"session": "1"}, "derivatives": "nowhere"}, ["nowhere", "is not a folder"]),
])
def test_a_dataset_that_does_not_choose_one_scan_per_subject_stops_before_any_job(tmp_path, spec, names):
    from mrisr.errors import InputError

    rng = np.random.default_rng(1)
    two = {("two", MASK[1]): np.ones((20, 22, 18), np.uint8),
           ("two", MASK[1].replace("brain", "head")): np.ones((20, 22, 18), np.uint8)}
    root = write_bids_dataset(tmp_path / "bids", {p: head(rng) for p in BIDS_T1W}, derivatives=two)
    with pytest.raises(InputError) as error:
        _study({"path": str(root), **spec}).raw_files()
    assert all(name in str(error.value) for name in names) and "Fix:" in str(error.value)


@pytest.mark.parametrize("description", [None, "[]", "{broken", "a folder"])
def test_a_folder_that_is_not_bids_is_named_with_the_fix(tmp_path, description):
    from mrisr.errors import InputError

    (tmp_path / "scans").mkdir()
    if description == "a folder":
        (tmp_path / "scans" / "dataset_description.json").mkdir()
    elif description is not None:
        (tmp_path / "scans" / "dataset_description.json").write_text(description)
    with pytest.raises(InputError, match=r"scans: is not a valid BIDS dataset: .*dataset_description.json.*Fix: give"):
        _study({"path": str(tmp_path / "scans")}).raw_files()


def test_a_plan_keeps_the_datasets_index_until_its_files_change(tmp_path, monkeypatch):
    """The second plan reads the subjects' files from the index folder without pybids; a new or rewritten file makes
    a new index; another filter is answered from pybids' kept database, which is not made again."""
    import mrisr.bids as bids

    rng = np.random.default_rng(1)
    root = write_bids_dataset(tmp_path / "bids", {p: head(rng) for p in BIDS_T1W},
                              derivatives={MASK: np.ones((20, 22, 18), np.uint8)})
    spec = _study({"path": str(root), "filters": {"session": ["1", None], "run": [1, None]},
                   "derivatives": "derivatives/masks"}).config["datasets"]["lab"]
    index = tmp_path / "index"
    first = bids.dataset_scans("lab", spec, index)
    assert first == bids.dataset_scans("lab", spec)  # what indexing the dataset anew gives
    database = next(index.glob("*/raw/layout_index.sqlite"))
    made = database.stat().st_mtime_ns

    def no_pybids(*args, **kwargs):
        raise AssertionError("indexed again")

    with monkeypatch.context() as patched:
        patched.setattr(bids, "open_layout", no_pybids)
        assert bids.dataset_scans("lab", spec, index) == first
    other = {**spec, "filters": {"run": 2}}
    assert bids.dataset_scans("lab", other, index) == bids.dataset_scans("lab", other)
    assert database.stat().st_mtime_ns == made  # answered from the kept database
    write_bids_dataset(root, {"sub-03/anat/sub-03_T1w.nii.gz": head(rng)})  # a new subject (and a rewritten file)
    third = bids.dataset_scans("lab", spec, index)
    assert sorted(third) == ["01", "02", "03"] and third == bids.dataset_scans("lab", spec)
    assert len([p for p in index.iterdir() if p.is_dir()]) == 1  # the old index is gone


def _hostile(root: Path, case: str) -> Path:
    """One JSON file of the dataset made hostile: the path it is at."""
    import os

    place = root / ("dataset_description.json" if case == "description to /dev/zero" else
                    "sub-02/anat/sub-02_run-1_T1w.json")
    place.unlink(missing_ok=True)
    if case.endswith("to /dev/zero"):
        place.symlink_to("/dev/zero")
    elif case == "sidecar as a pipe":
        os.mkfifo(place)
    else:  # nested deeper than any parser should follow
        place.write_text("[" * 3000 + "]" * 3000)
    return place


@pytest.mark.parametrize("case", ["description to /dev/zero", "sidecar to /dev/zero", "sidecar as a pipe",
                                  "sidecar nested 3000 deep"])
def test_a_json_file_that_cannot_be_read_safely_stops_planning_and_bids_output_naming_it(tmp_path, case, capsys):
    """A link to /dev/zero (read until memory runs out), a pipe (a hang) or deep nesting (a traceback) among a
    dataset's JSON files: planning a `source: bids` dataset and `mrisr super-resolve --bids` both stop with the
    usual error naming the file, before pybids reads it; nothing is written."""
    import resource

    from mrisr.errors import InputError

    rng = np.random.default_rng(1)
    root = write_bids_dataset(tmp_path / "bids", {p: head(rng) for p in BIDS_T1W})
    bad = _hostile(root, case)
    with pytest.raises(InputError, match=re.escape(str(bad))) as error:
        _study({"path": str(root), "filters": {"session": ["1", None], "run": [1, None]}}).raw_files()
    assert "Fix:" in str(error.value)
    model = write_model(tmp_path / "model.safetensors", GENERATOR)
    before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    assert main(["super-resolve", "--model", str(model), "--bids", str(root), str(tmp_path / "out")]) == 2
    assert str(bad) in capsys.readouterr().err and not (tmp_path / "out").exists()
    assert resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - before < 2**20  # kB: under 1 GiB more


@pytest.mark.parametrize("given, said", [
    ('{"regex_search": true}', "does not match"), ('{"scope": "derivatives"}', "should not be valid"),
    ('{"session": {"a": 1}}', "is not valid under any of the given schemas"), ('{"session": 1.5}', "is not valid"),
    ('["session"]', "is not of type 'object'"), ("{session: 1}", "is not JSON")])
def test_a_bids_filter_holds_entities_as_the_config_takes_them(tmp_path, dataset, capsys, given, said):
    """--bids-filter goes through the schema of a dataset's filters: pybids' own keywords (regex_search, scope) and
    values of another type stop at the option, naming it, before pybids or any output; a valid filter still runs."""
    model = write_model(tmp_path / "model.safetensors", GENERATOR)
    with pytest.raises(SystemExit) as code:
        main(["super-resolve", "--model", str(model), "--bids", str(dataset), "--bids-filter", given,
              str(tmp_path / "out")])
    err = capsys.readouterr().err
    assert code.value.code == 2 and "--bids-filter" in err and said in err and "Traceback" not in err
    assert not (tmp_path / "out").exists()
    assert main(["super-resolve", "--interpolate", "trilinear", "--scale", "2", "--bids", str(dataset),
                 "--bids-filter", '{"session": "1"}', str(tmp_path / "ok")]) == 0
