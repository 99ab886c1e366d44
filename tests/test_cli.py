import subprocess
import sys
from pathlib import Path

import nibabel as nib
import numpy as np

from mrisr.io import save_volume


def _mrisr(*args):
    return subprocess.run([sys.executable, "-m", "mrisr", *args], capture_output=True, text=True)


def test_non_3d_input_stops_with_file_and_fix_and_no_output(tmp_path):
    flat = tmp_path / "slice.nii.gz"
    nib.save(nib.Nifti1Image(np.random.rand(16, 16).astype(np.float32), np.eye(4)), flat)
    out = tmp_path / "lr.nii.gz"
    result = _mrisr("degrade", "--hr", str(flat), "--out", str(out), "--degradation", '{"method": "nearest"}',
                    "--scale", "2", "--noise-sigma", "0", "--noise-seed", "0")
    assert result.returncode != 0
    assert str(flat) in result.stderr and "Fix:" in result.stderr and "3D" in result.stderr
    assert "Traceback" not in result.stderr
    assert list(tmp_path.iterdir()) == [flat]


def test_missing_input_names_the_file(tmp_path):
    missing = tmp_path / "sub-07_T1w.nii.gz"
    result = _mrisr("super-resolve", str(missing), str(tmp_path / "sr.nii.gz"), "--interpolate", "trilinear", "--scale", "2")
    assert result.returncode != 0 and str(missing) in result.stderr and "does not exist" in result.stderr
    assert not (tmp_path / "sr.nii.gz").exists()


def test_super_resolve_puts_output_on_the_hr_grid(tmp_path):
    affine = np.diag([1.2, 1.2, 1.2, 1.0])
    affine[:3, 3] = [5, -3, 2]
    from mrisr.grid import LrGrid, lr_affine

    for grid in LrGrid:
        save_volume(np.random.rand(8, 6, 4).astype(np.float32), lr_affine(affine, 2, grid, (8, 6, 4)),
                    tmp_path / "lr.nii.gz")
        assert _mrisr("super-resolve", str(tmp_path / "lr.nii.gz"), str(tmp_path / "sr.nii.gz"), "--interpolate",
                      "trilinear", "--scale", "2", "--lr-grid", grid.value).returncode == 0
        sr = nib.load(tmp_path / "sr.nii.gz")
        assert sr.shape == (16, 12, 8)
        np.testing.assert_allclose(sr.affine, affine, atol=1e-6)


def test_super_resolve_needs_a_model_or_an_interpolation_with_its_scale(tmp_path):
    save_volume(np.random.rand(8, 6, 4).astype(np.float32), np.diag([2.0, 2, 2, 1]), tmp_path / "lr.nii.gz")
    for how in ([], ["--interpolate", "trilinear"], ["--interpolate", "trilinear", "--model", "m.pt"],
                ["--external", str(tmp_path)], ["--external", str(tmp_path), "--model", "m.pt", "--scale", "2"]):
        result = _mrisr("super-resolve", str(tmp_path / "lr.nii.gz"), str(tmp_path / "sr.nii.gz"), *how)
        assert result.returncode == 2 and "one of --model, --interpolate with --scale, --external with --scale" \
            in result.stderr, how
    assert not (tmp_path / "sr.nii.gz").exists()


def test_options_a_user_may_leave_out_default_to_the_schema():
    import yaml

    from mrisr.cli import parser

    schema = yaml.safe_load((Path(__file__).resolve().parents[1] / "workflow/schemas/config.schema.yaml").read_text())
    inference = schema["properties"]["inference"]["properties"]
    args = vars(parser().parse_args(["super-resolve", "in.nii.gz", "out.nii.gz", "--model", "m.pt"]))
    assert tuple(args[f"inference.{k}"] for k in ("tile", "halo", "reconstruct_tile", "batch")) == tuple(
        inference[k]["default"] for k in ("tile", "halo", "reconstruct_tile", "batch"))
    assert args["threads"] == schema["properties"]["threads"]["default"]
    train = schema["properties"]["train"]["properties"]
    assert (args["acceleration.compile"], args["acceleration.tf32"], args["acceleration.cudnn_benchmark"]) == (
        inference["compile"]["default"], train["tf32"]["default"], train["cudnn_benchmark"]["default"])
