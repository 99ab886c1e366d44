import nibabel as nib
import numpy as np
import pytest

from mrisr.errors import InputError
from mrisr.io import save_volume
from mrisr.plan.subjects import make_splits
from mrisr.preprocessing import Preprocessing
from mrisr.prepare import prepare_subject


def ours(**changed) -> Preprocessing:
    """The schema's prepare settings (ours), with ``changed``."""
    from dataclasses import fields

    from mrisr.config import schema_default

    return Preprocessing(**{f.name: schema_default(f"prepare.{f.name}") for f in fields(Preprocessing)} | changed)


def test_splits_are_seeded_and_counted():
    subjects = [f"{i:02d}" for i in range(1, 11)]
    a = make_splits(subjects, val=2, test=3, seed=1)
    assert a == make_splits(list(reversed(subjects)), val=2, test=3, seed=1)
    assert sorted(a.values()).count("test") == 3 and list(a.values()).count("val") == 2
    assert a != make_splits(subjects, val=2, test=3, seed=2)


def test_prepare_reorients_to_ras_and_keeps_world_positions(tmp_path, rng):
    data = rng.uniform(1, 2, size=(20, 22, 24)).astype(np.float32)
    mask = np.zeros(data.shape, np.uint8)
    mask[5:15, 6:16, 7:17] = 1
    affine = np.array([[-1.0, 0, 0, 30], [0, 1.0, 0, -20], [0, 0, 1.0, 10], [0, 0, 0, 1]])  # LAS
    save_volume(data, affine, tmp_path / "t1.nii.gz")
    save_volume(mask, affine, tmp_path / "mask.nii.gz")
    out = prepare_subject(tmp_path / "t1.nii.gz", tmp_path / "mask.nii.gz", None, tmp_path / "out", "01",
                          multiple=2, preprocessing=ours(margin=1))
    img = nib.load(out["T1w"])
    assert nib.aff2axcodes(img.affine) == ("R", "A", "S")
    assert all(n % 2 == 0 for n in img.shape)
    raw = np.asanyarray(img.dataobj)
    assert np.isclose(raw.mean(), 0, atol=1e-5) and np.isclose(raw.std(), 1, atol=1e-4)
    # every output voxel is a z-score of the input voxel at the same world point
    ijk = np.indices(raw.shape).reshape(3, -1)
    world = img.affine @ np.vstack([ijk, np.ones(ijk.shape[1])])
    src = np.round(np.linalg.inv(affine) @ world).astype(int)[:3]
    original = data[tuple(src)]
    assert np.corrcoef(raw.ravel(), original)[0, 1] > 1 - 1e-6
    assert (nib.load(out["mask"]).get_fdata() > 0).sum() == mask.sum()

def test_mask_on_another_grid_is_refused(tmp_path, rng):
    save_volume(rng.uniform(size=(8, 8, 8)).astype(np.float32), np.eye(4), tmp_path / "t1.nii.gz")
    save_volume(np.ones((8, 8, 6), np.uint8), np.eye(4), tmp_path / "mask.nii.gz")
    with pytest.raises(InputError, match="mask.nii.gz") as err:
        prepare_subject(tmp_path / "t1.nii.gz", tmp_path / "mask.nii.gz", None, tmp_path / "out", "01", 2,
                        ours(margin=1))
    assert "resample" in str(err.value)
    assert not (tmp_path / "out").exists()


def test_no_crop_keeps_the_field_of_view(tmp_path, rng):
    save_volume(rng.uniform(size=(9, 10, 12)).astype(np.float32), np.eye(4), tmp_path / "t1.nii.gz")
    mask = np.zeros((9, 10, 12), np.uint8)
    mask[3:5, 3:5, 3:5] = 1
    save_volume(mask, np.eye(4), tmp_path / "mask.nii.gz")
    out = prepare_subject(tmp_path / "t1.nii.gz", tmp_path / "mask.nii.gz", None, tmp_path / "out", "01", 2,
                          ours(margin=1, crop="none"))
    img = nib.load(out["T1w"])
    assert img.shape == (8, 10, 12)
    np.testing.assert_allclose(img.affine, np.eye(4))


def test_the_authors_z_score_the_whole_volume_in_float64_before_trimming_odd_edges(tmp_path, rng):
    """normalise_first: their norm_nii.py ((x - mean) / std of the whole stored volume, float64), then
    crop_nifti_9t.py's trim of each odd edge by one voxel; ours trims, then z-scores what is kept. On an odd-sized
    volume the two differ by the trimmed voxels' share of the statistics."""
    data = rng.gamma(2.0, 50.0, size=(13, 10, 11)).astype(np.float32)
    save_volume(data, np.diag([0.7, 0.7, 0.7, 1.0]), tmp_path / "t1.nii.gz")
    written = {first: nib.load(prepare_subject(tmp_path / "t1.nii.gz", None, None, tmp_path / str(first), "01", 2,
                                               ours(crop="none", normalise_first=first))["T1w"]).get_fdata()
               for first in (False, True)}
    whole = nib.load(tmp_path / "t1.nii.gz").get_fdata()  # float64, as their nb.load(...).get_fdata()
    theirs = ((whole - whole.mean()) / whole.std())[:12, :10, :10]
    kept = whole[:12, :10, :10]
    np.testing.assert_allclose(written[True], theirs, atol=1e-6)
    np.testing.assert_allclose(written[False], (kept - kept.mean()) / kept.std(), atol=1e-5)
    assert np.abs(written[True] - written[False]).max() > 1e-3


def test_mtvnets_unit_range_is_monais_scale_intensity_of_the_whole_volume_before_the_edges_are_cut(tmp_path, rng):
    """intensities: unit_range with normalise_first: MONAI's ScaleIntensity(minv=0, maxv=1) of the whole stored
    volume (MTVNet's norm_type scale_intensity, before its padding), then the odd edges trimmed."""
    from monai.transforms import ScaleIntensity

    data = rng.gamma(2.0, 50.0, size=(13, 10, 11)).astype(np.float32)
    save_volume(data, np.diag([0.7, 0.7, 0.7, 1.0]), tmp_path / "t1.nii.gz")
    written = nib.load(prepare_subject(tmp_path / "t1.nii.gz", None, None, tmp_path / "out", "01", 2,
                                       ours(crop="none", normalise_first=True, intensities="unit_range"))["T1w"])
    whole = nib.load(tmp_path / "t1.nii.gz").get_fdata()
    expected = np.asarray(ScaleIntensity(minv=0.0, maxv=1.0)(whole[None]))[0][:12, :10, :10]
    np.testing.assert_allclose(written.get_fdata(), expected, atol=1e-6)


def test_stored_orientation_keeps_the_arrays_and_affine_as_stored(tmp_path, rng):
    """orientation: stored (the authors'): the array is the stored one (cut as ours), not reoriented to RAS+."""
    data = rng.uniform(1, 2, size=(12, 10, 8)).astype(np.float32)
    affine = np.array([[0, 0, -1.0, 5], [-1.0, 0, 0, 3], [0, 1.0, 0, -2], [0, 0, 0, 1]])  # PSL
    save_volume(data, affine, tmp_path / "t1.nii.gz")
    out = {axes: nib.load(prepare_subject(tmp_path / "t1.nii.gz", None, None, tmp_path / axes, "01", 2,
                                          ours(crop="none", orientation=axes))["T1w"]) for axes in ("ras", "stored")}
    stored, ras = out["stored"], out["ras"]
    np.testing.assert_allclose(stored.affine, affine)
    np.testing.assert_allclose(stored.get_fdata(), (data - data.mean()) / data.std(), atol=1e-5)
    assert nib.aff2axcodes(stored.affine) == ("P", "S", "L") and nib.aff2axcodes(ras.affine) == ("R", "A", "S")
    np.testing.assert_allclose(nib.as_closest_canonical(stored).get_fdata(), ras.get_fdata(), atol=1e-6)


def test_the_plan_passes_every_preprocessing_setting_and_the_card_keeps_what_applying_needs():
    """The prepare command's settings are the Preprocessing fields, each a schema key; a card records all of them
    but the orientation (its training arrays' own axes) and the resampling (super-resolve's --resample)."""
    from dataclasses import fields

    from mrisr.config import schema_default
    from mrisr.settings import CARD_PREPROCESSING, PREPROCESSING

    assert PREPROCESSING == tuple(f.name for f in fields(Preprocessing))
    for key in PREPROCESSING:
        schema_default(f"prepare.{key}")  # a schema key with its default (else KeyError)
    assert set(PREPROCESSING) - set(CARD_PREPROCESSING) == {"orientation", "resample"}
