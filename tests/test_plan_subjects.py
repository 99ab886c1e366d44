import nibabel as nib
import numpy as np
import pytest

from mrisr.errors import InputError
from mrisr.plan import subjects

MADE = "made/{dataset}/sub-{subject}_{kind}.nii.gz"


def _scan(path):
    nib.save(nib.Nifti1Image(np.random.rand(4, 4, 4).astype(np.float32), np.eye(4)), path)


def test_folder_subjects_are_found_and_labels_used_only_when_all_have_them(tmp_path):
    for s in ("b2", "a1", "c3"):
        _scan(tmp_path / f"sub-{s}_T1w.nii.gz")
        _scan(tmp_path / f"sub-{s}_mask.nii")
    _scan(tmp_path / "sub-a1_dseg.nii.gz")
    (tmp_path / "notes.txt").write_text("not a scan")
    spec = {"source": "folder", "path": str(tmp_path)}
    files = subjects.raw_files("lab", spec, MADE)
    assert list(files) == ["a1", "b2", "c3"]
    assert files["b2"] == {"T1w": str(tmp_path / "sub-b2_T1w.nii.gz"), "mask": str(tmp_path / "sub-b2_mask.nii")}
    for s in ("b2", "c3"):
        _scan(tmp_path / f"sub-{s}_dseg.nii.gz")
    assert subjects.raw_files("lab", spec, MADE)["c3"]["dseg"] == str(tmp_path / "sub-c3_dseg.nii.gz")


def test_a_listed_subject_without_a_scan_is_named(tmp_path):
    _scan(tmp_path / "sub-a1_T1w.nii.gz")
    _scan(tmp_path / "sub-a1_mask.nii.gz")
    with pytest.raises(InputError, match="sub-zz_T1w.nii.gz: scan of subject zz of dataset 'lab' does not exist"):
        subjects.raw_files("lab", {"source": "folder", "path": str(tmp_path), "subjects": ["a1", "zz"]}, MADE)
    (tmp_path / "empty").mkdir()
    with pytest.raises(InputError, match="holds no sub-<id>_T1w"):
        subjects.subjects("lab", {"source": "folder", "path": str(tmp_path / "empty")})
    with pytest.raises(InputError, match="does not exist"):
        subjects.subjects("lab", {"source": "folder", "path": str(tmp_path / "nowhere")})


def test_made_datasets_are_where_the_workflow_says_and_ixi_has_no_labels():
    demo = subjects.raw_files("d", {"source": "demo", "subjects": 2}, MADE)
    assert demo["01"] == {k: f"made/d/sub-01_{k}.nii.gz" for k in ("T1w", "mask", "dseg")}
    ixi = subjects.raw_files("i", {"source": "ixi", "subjects": ["IXI002"]}, MADE)
    assert ixi == {"IXI002": {"T1w": "made/i/sub-IXI002_T1w.nii.gz", "mask": "made/i/sub-IXI002_mask.nii.gz"}}


def test_hcp_subject_list_is_validated(tmp_path):
    good = tmp_path / "good.tsv"
    good.write_text("subject\n100307\n100206\n")
    assert subjects.read_subjects(good) == ["100307", "100206"]
    bad = tmp_path / "bad.tsv"
    bad.write_text("subject\n100307\nabc\n")
    with pytest.raises(InputError, match="row 2: 'abc' does not match"):
        subjects.read_subjects(bad)
    (tmp_path / "nocol.tsv").write_text("id\n100307\n")
    with pytest.raises(InputError, match="'subject' is a required property"):
        subjects.read_subjects(tmp_path / "nocol.tsv")
    assert subjects.read_splits(good) is None


def test_hcp_subject_list_with_comments_and_its_own_split(tmp_path):
    """# lines say where the ids come from; a split column fixes each subject's part, every row must have one."""
    fixed = tmp_path / "fixed.tsv"
    fixed.write_text("# ids: a public list\nsubject\tsplit\n# more provenance\n100307\ttrain\n100206\ttest\n"
                     "100408\tval\n")
    assert subjects.read_subjects(fixed) == ["100307", "100206", "100408"]
    assert subjects.read_splits(fixed) == {"100307": "train", "100206": "test", "100408": "val"}
    for bad_split in ("testing", ""):
        (tmp_path / "bad.tsv").write_text(f"subject\tsplit\n100307\ttrain\n100206\t{bad_split}\n")
        with pytest.raises(InputError, match="row 2: .* is not one of"):
            subjects.read_splits(tmp_path / "bad.tsv")
