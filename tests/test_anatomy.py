import json

import numpy as np
import pandas as pd
import pytest

from mrisr import anatomy
from mrisr.anatomy import compared, segment_atropos
from mrisr.io import save_volume

VOXEL_ML = 1.5**3 / 1000


def _labels(rng) -> np.ndarray:
    labels = np.zeros((20, 22, 18), np.uint8)
    labels[3:17, 3:19, 3:15] = 1
    labels[5:15, 5:17, 5:13] = 2
    labels[8:12, 8:14, 7:11] = 3
    return labels


def test_a_region_grown_by_a_known_number_of_voxels_gives_exactly_that_volume_error(rng):
    hr = _labels(rng)
    sr = hr.copy()
    grown = np.argwhere(hr == 1)[:37]  # 37 CSF voxels become WM
    sr[tuple(grown.T)] = 3
    row = compared(sr, hr, ["CSF", "GM", "WM"], VOXEL_ML, "atropos")
    n_wm, n_csf = int((hr == 3).sum()), int((hr == 1).sum())
    assert row["atropos_WM_error_ml"] == pytest.approx(37 * VOXEL_ML)
    assert row["atropos_WM_error_pct"] == pytest.approx(100 * 37 / n_wm)
    assert row["atropos_CSF_error_ml"] == pytest.approx(-37 * VOXEL_ML)
    assert row["atropos_CSF_abs_error_pct"] == pytest.approx(100 * 37 / n_csf)
    assert row["atropos_GM_error_ml"] == 0 and row["atropos_GM_dice"] == 1
    assert row["atropos_WM_dice"] == pytest.approx(2 * n_wm / (2 * n_wm + 37))
    assert row["atropos_WM_reference_ml"] == pytest.approx(n_wm * VOXEL_ML)


def test_identical_label_maps_give_no_error_and_dice_one(rng):
    hr = _labels(rng)
    row = compared(hr, hr.copy(), ["CSF", "GM", "WM"], VOXEL_ML, "network")
    for name in ("CSF", "GM", "WM"):
        assert row[f"network_{name}_error_ml"] == 0 and row[f"network_{name}_error_pct"] == 0
        assert row[f"network_{name}_dice"] == 1


def _phantom(rng) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """A T1w-like phantom: WM core, GM shell, CSF rim (bright to dark) with noise, and its brain mask."""
    i, j, k = np.meshgrid(*(np.linspace(-1, 1, n) for n in (28, 30, 26)), indexing="ij")
    r = np.sqrt(i**2 + j**2 + k**2)
    truth = np.select([r < 0.45, r < 0.7, r < 0.85], [3, 2, 1], 0).astype(np.uint8)
    image = np.choose(truth, [0.0, 0.3, 0.6, 1.0]) + rng.normal(0, 0.05, truth.shape)
    return image.astype(np.float32), truth, truth > 0


def test_atropos_finds_the_three_tissues_and_is_the_same_on_a_second_run(rng, tmp_path, monkeypatch):
    """... and leaves nothing in the temporary folder (antspyx's probability maps would stay there)."""
    import tempfile

    image, truth, mask = _phantom(rng)
    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path))
    first = segment_atropos(image, np.diag([1.5, 1.5, 1.5, 1]), mask, 5, 0.2)
    second = segment_atropos(image, np.diag([1.5, 1.5, 1.5, 1]), mask, 5, 0.2)
    assert not list(tmp_path.iterdir()) and tempfile.tempdir == str(tmp_path)
    np.testing.assert_array_equal(first, second)
    assert not first[~mask].any()
    for label in (1, 2, 3):  # classes dark to bright: CSF, GM, WM
        assert anatomy.dice(first == label, truth == label) > 0.9


def test_the_command_compares_each_volume_with_the_hr_job_s_label_maps(tmp_path, rng):
    """The HR job writes label maps and volumes; an SR job on a grid less its far rows reads them cropped. An SR of
    the HR itself gives error 0 and Dice 1 for Atropos. One job takes several sets of volumes, each into its own
    folder, and a set not computed gets rows that say why."""
    from mrisr.cli import main

    image, _, mask = _phantom(rng)
    affine = np.diag([1.5, 1.5, 1.5, 1])
    save_volume(image, affine, tmp_path / "hr.nii.gz")
    save_volume(image[:, :, :24], affine, tmp_path / "sr.nii.gz")  # the last two rows: no whole LR voxel at x4
    save_volume(mask.astype(np.uint8), affine, tmp_path / "mask.nii.gz")
    common = ["anatomy", "--subjects", "01", "--mask", str(tmp_path / "mask.nii.gz"), "--segmenters", "atropos",
              "--roi", "16", "--overlap", "0.5", "--threads", "1"]
    hr_cell = {"image": [str(tmp_path / "hr.nii.gz")], "out": str(tmp_path / "hr" / "volumes.csv")}
    assert main([*common, "--cells", json.dumps([hr_cell])]) == 0
    hr_row = pd.read_csv(tmp_path / "hr" / "volumes.csv").iloc[0]
    assert (tmp_path / "hr" / "atropos" / "sub-01_dseg.nii.gz").exists() and hr_row["atropos_WM_volume_ml"] > 0
    cells = [{"image": [str(tmp_path / "sr.nii.gz")], "out": str(tmp_path / "sr" / "volumes.csv")},
             {"not_computed": "its environment could not be installed", "out": str(tmp_path / "out" / "volumes.csv")},
             {"image": [str(tmp_path / "hr.nii.gz")], "out": str(tmp_path / "same" / "volumes.csv")}]
    assert main([*common, "--cells", json.dumps(cells), "--reference-dir", str(tmp_path / "hr")]) == 0
    row = pd.read_csv(tmp_path / "sr" / "volumes.csv").iloc[0]
    same = pd.read_csv(tmp_path / "same" / "volumes.csv").iloc[0]
    for name in anatomy.TISSUES:
        assert row[f"atropos_{name}_dice"] > 0.99 and abs(row[f"atropos_{name}_error_pct"]) < 1
        assert same[f"atropos_{name}_dice"] == 1 and same[f"atropos_{name}_error_ml"] == 0
    assert (tmp_path / "sr" / "atropos" / "sub-01_dseg.nii.gz").exists()
    note = pd.read_csv(tmp_path / "out" / "volumes.csv").iloc[0]["note"]
    assert note == "not computed: its environment could not be installed"
