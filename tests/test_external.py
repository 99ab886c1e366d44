"""Outside programs in their own environments (mrisr.external), their output onto the HR grid, and the rows of a
method whose environment could not be installed. pip reads only a stand-in ECLARE served on 127.0.0.1."""

import json
import subprocess
import time
from pathlib import Path

import nibabel as nib
import numpy as np
import torch
import pandas as pd
import pytest
import yaml

from mrisr.errors import InputError
from mrisr.environments import STATUS_FILE, VENV, program_path, status
from mrisr.external import install, requirements
from mrisr.grid import LrGrid, hr_affine, lr_affine
from tests.conftest import pip_from

ROOT = Path(__file__).resolve().parents[1]


def _env_file(tmp_path: Path, python: str = "3.11", pins=("eclare==1.0.1",)) -> Path:
    path = tmp_path / "eclare.yaml"
    path.write_text(json.dumps({"name": "eclare", "dependencies": [f"python={python}", "pip", {"pip": list(pins)}]}))
    return path


def _thick_lr(tmp_path: Path) -> tuple[Path, np.ndarray]:
    """A 1 x 1 x 4 LR file (RAS+ voxels 1.5 x 1.5 x 6 mm, each slice the slab of 4 thin ones) that is linear along
    its thick axis: A + B k."""
    rng = np.random.default_rng(0)
    a, b = rng.normal(size=(12, 10, 1)), rng.normal(size=(12, 10, 1))
    lr = (a + b * np.arange(7)).astype(np.float32)
    hr = np.diag([1.5, 1.5, 1.5, 1.0])
    hr[:3, 3] = (-30, 20, -40)
    path = tmp_path / "sub-01_T1w.nii.gz"
    nib.save(nib.Nifti1Image(lr, lr_affine(hr, (1, 1, 4), LrGrid.SLAB)), path)
    return path, lr


def test_the_shipped_environment_pins_eclare_and_mrisr_s_python():
    python, pins = requirements(ROOT / "envs/eclare.yaml")
    assert python == "3.11" and "eclare==1.0.1" in pins and "scipy==1.11.4" in pins and "numpy==1.26.4" in pins
    assert all("==" in pin for pin in pins)


def test_install_builds_the_environment_whose_program_runs(tmp_path, eclare_index, monkeypatch):
    for key, value in pip_from(eclare_index).items():
        monkeypatch.setenv(key, value)
    result = install(_env_file(tmp_path), tmp_path / "env")
    assert result["available"] and status(tmp_path / "env") == result
    lr, _ = _thick_lr(tmp_path)
    subprocess.run([program_path(tmp_path / "env") / "run-eclare", "--in-fpath", lr, "--out-dir", tmp_path / "out"],
                   check=True, capture_output=True)
    out = nib.load(tmp_path / "out/sub-01_T1w_eclare.nii.gz")
    assert out.shape == (12, 10, 28) and np.allclose(out.header.get_zooms(), 1.5)


def test_an_install_pip_cannot_do_says_why_and_leaves_no_environment(tmp_path, eclare_index, monkeypatch):
    for key, value in pip_from(eclare_index).items():
        monkeypatch.setenv(key, value)
    result = install(_env_file(tmp_path, pins=("eclare==9.9.9",)), tmp_path / "env")
    assert not result["available"] and "eclare==9.9.9" in result["reason"]
    assert not (tmp_path / "env" / VENV).exists()
    assert json.loads((tmp_path / "env" / STATUS_FILE).read_text()) == result


def test_a_python_pin_that_is_not_mrisr_s_is_left_to_conda(tmp_path):
    result = install(_env_file(tmp_path, python="3.9"), tmp_path / "env")
    assert not result["available"] and "--use-conda" in result["reason"]
    assert not (tmp_path / "env" / VENV).exists()


@pytest.mark.parametrize("kind", ["link", "folder"])
def test_an_environment_path_that_is_a_link_or_someone_else_s_folder_is_left_alone(tmp_path, kind):
    """Rebuilding clears the environment folder: a link there would have its target emptied, a folder of other
    files would lose them. Both are refused with the fix before anything is built or removed."""
    users = tmp_path / "users_folder"
    users.mkdir()
    (users / "thesis.tex").write_text("keep me")
    (tmp_path / "env").mkdir()
    if kind == "link":
        (tmp_path / "env" / VENV).symlink_to(users, target_is_directory=True)
    else:
        users.rename(tmp_path / "env" / VENV)
        users = tmp_path / "env" / VENV
    with pytest.raises(InputError, match=rf"{VENV}: is (a link|a folder that holds no virtual environment).*Fix: "):
        install(_env_file(tmp_path), tmp_path / "env")
    assert (users / "thesis.tex").read_text() == "keep me"


def test_a_file_that_is_no_environment_is_refused_with_the_fix(tmp_path):
    (tmp_path / "bad.yaml").write_text("dependencies: [numpy]\n")
    with pytest.raises(InputError, match="pip section"):
        requirements(tmp_path / "bad.yaml")


@pytest.mark.parametrize("pip, problem", [
    ("abc", "not a list"),  # a string: pip would install a, b and c
    (["eclare==1.0.1", "--index-url http://127.0.0.1:9/simple"], "pip option"),
    (["--target=/tmp/elsewhere"], "pip option"),
    (["-r other.txt"], "pip option"),
    (["eclare==1.0.1; curl http://127.0.0.1:9 | sh"], "PEP 508"),
    (["eclare==1.0.1", 3], "not a list"),
    ([], "not a list"),
])
def test_a_pip_section_holds_requirements_and_nothing_pip_would_read_as_options(tmp_path, pip, problem):
    """The pip section, as pip would read it: each line a PEP 508 requirement; a string, an option of pip's or a
    line that no requirement parser takes is refused, naming the file, before any environment is made."""
    (tmp_path / "env.yaml").write_text(yaml.safe_dump({"dependencies": ["python=3.11", {"pip": pip}]}))
    with pytest.raises(InputError, match=problem) as err:
        install(tmp_path / "env.yaml", tmp_path / "env")
    assert "env.yaml" in str(err.value) and "PEP 508" in str(err.value)
    assert not (tmp_path / "env").exists()


@pytest.mark.parametrize("lr_grid", list(LrGrid))
def test_outside_output_on_its_own_grid_lands_on_ours_by_its_affine(tmp_path, lr_grid):
    """The stand-in splits each thick voxel over its slab (ECLARE's grid, radifox's update_affine). On the slab grid
    that is our SR grid: its voxels are taken as they are, PyTorch's align_corners=False interpolation of linear
    data. On another grid (the corner grid of a decimated LR, whose first thin voxel lies 1.5 voxels after ECLARE's;
    the spanning grid) it is resampled by its affine: linear data gives that grid's values (corner: A + B k / 4)."""
    import sys

    from mrisr.cli import main

    sys.path.insert(0, str(ROOT / "examples" / "standin_eclare"))
    try:
        from standin_eclare import main as standin
    finally:
        sys.path.pop(0)
    lr_path, lr = _thick_lr(tmp_path)
    standin(["--in-fpath", str(lr_path), "--out-dir", str(tmp_path / "out")])
    outside = nib.load(tmp_path / "out/sub-01_T1w_eclare.nii.gz")
    assert outside.affine[2, 3] == pytest.approx(nib.load(lr_path).affine[2, 3] - 1.5 * 1.5)
    assert main(["super-resolve", str(lr_path), str(tmp_path / "sr.nii.gz"), "--external", str(tmp_path / "out"),
                 "--scale", "1,1,4", "--lr-grid", lr_grid.value]) == 0
    sr = nib.load(tmp_path / "sr.nii.gz")
    np.testing.assert_allclose(sr.affine, hr_affine(nib.load(lr_path).affine, (1, 1, 4), lr_grid, lr.shape))
    assert sr.shape == (12, 10, 28)
    a, b = lr[..., :1], lr[..., 1:2] - lr[..., :1]
    if lr_grid is LrGrid.SLAB:
        np.testing.assert_array_equal(np.asanyarray(sr.dataobj), np.asanyarray(outside.dataobj))
        expected = torch.nn.functional.interpolate(torch.from_numpy(lr)[None, None], scale_factor=(1, 1, 4),
                                                   mode="trilinear", align_corners=False)[0, 0].numpy()
        np.testing.assert_allclose(np.asanyarray(sr.dataobj), expected, atol=1e-4)
        return
    at = np.linalg.inv(lr_affine(np.eye(4), (1, 1, 4), lr_grid, lr.shape))  # HR voxel index -> LR voxel index
    expected = a + b * (at[2, 2] * np.arange(28) + at[2, 3])  # corner: k / 4; spanning: k 6 / 27
    inside = slice(4, 22)  # the clamped ends of the stand-in's output are not linear; the spline feels them a little
    np.testing.assert_allclose(np.asanyarray(sr.dataobj)[..., inside], expected[..., inside], atol=5e-3)
    as_stored = np.asanyarray(outside.dataobj)[..., inside]  # its array taken for ours: 1.5 thin voxels off
    assert np.abs(as_stored - expected[..., inside]).max() > 100 * 5e-3


def test_outside_output_elsewhere_in_the_world_is_refused(tmp_path):
    from mrisr.cli import main

    lr_path, lr = _thick_lr(tmp_path)
    (tmp_path / "out").mkdir()
    far = hr_affine(nib.load(lr_path).affine, (1, 1, 4), LrGrid.SLAB)
    far[:3, 3] += 100
    nib.save(nib.Nifti1Image(np.repeat(lr, 4, axis=2), far), tmp_path / "out/x.nii.gz")
    assert main(["super-resolve", str(lr_path), str(tmp_path / "sr.nii.gz"), "--external", str(tmp_path / "out"),
                 "--scale", "1,1,4"]) == 2
    assert not (tmp_path / "sr.nii.gz").exists()


def _outside_1e30_mm(lr_path, lr, out):
    huge = hr_affine(nib.load(lr_path).affine, (1, 1, 4), LrGrid.SLAB)
    huge[:3, :3] *= 1e30
    nib.save(nib.Nifti1Image(np.repeat(lr, 4, axis=2), huge), out / "x.nii.gz")


def _outside_800_cubed(lr_path, lr, out):
    """800³ float32 voxels (2 GB in memory, 4 as float64) in a gzip file of a few MB."""
    header = nib.Nifti1Header()
    header.set_data_shape((800, 800, 800))
    header.set_data_dtype(np.float32)
    affine = hr_affine(nib.load(lr_path).affine, (1, 1, 4), LrGrid.SLAB)
    header.set_sform(affine, code=1)
    header.set_qform(affine, code=1)
    import gzip

    with gzip.open(out / "x.nii.gz", "wb", compresslevel=1) as f:
        f.write(header.binaryblock + b"\0" * 4)
        block = bytes(2**24)
        for _ in range(800**3 * 4 // len(block) + 1):
            f.write(block)


@pytest.mark.parametrize("forge, problem", [(_outside_1e30_mm, "not within 8x of the SR grid"),
                                            (_outside_800_cubed, "over 8 times the SR grid")])
def test_an_outside_output_whose_affine_or_size_is_not_an_sr_of_the_scan_is_refused_at_small_memory(
        tmp_path, forge, problem):
    """A 1e30 mm voxel would give a constant output with exit 0; an 800³ volume would allocate gigabytes: both are
    refused from the header, before any voxel is read."""
    from tests.conftest import mrisr_with_peak_memory

    lr_path, lr = _thick_lr(tmp_path)
    (tmp_path / "out").mkdir()
    forge(lr_path, lr, tmp_path / "out")
    started = time.monotonic()
    code, stderr, peak = mrisr_with_peak_memory("super-resolve", lr_path, tmp_path / "sr.nii.gz", "--external",
                                                tmp_path / "out", "--scale", "1,1,4", stderr_file=tmp_path / "err")
    assert code == 2 and problem in stderr and "x.nii.gz: " in stderr and "Fix: " in stderr, stderr
    assert "Traceback" not in stderr and time.monotonic() - started < 60 and peak < 1024
    assert not (tmp_path / "sr.nii.gz").exists()


@pytest.mark.parametrize("overwritten", ["reference", "outside", "input"])
def test_super_resolve_never_writes_over_a_file_it_reads(tmp_path, capsys, overwritten):
    """--reference, the outside program's output and the scan itself are read: none may be the output."""
    from mrisr.cli import main

    lr_path, lr = _thick_lr(tmp_path)
    (tmp_path / "out").mkdir()
    nib.save(nib.Nifti1Image(np.repeat(lr, 4, axis=2), hr_affine(nib.load(lr_path).affine, (1, 1, 4), LrGrid.SLAB)),
             tmp_path / "out/x.nii.gz")
    reference = tmp_path / "hr.nii.gz"
    nib.save(nib.Nifti1Image(np.repeat(lr, 4, axis=2), hr_affine(nib.load(lr_path).affine, (1, 1, 4), LrGrid.SLAB)), reference)
    target = {"reference": reference, "outside": tmp_path / "out/x.nii.gz", "input": lr_path}[overwritten]
    before = {p: p.read_bytes() for p in (reference, tmp_path / "out/x.nii.gz", lr_path)}
    assert main(["super-resolve", str(lr_path), str(target), "--external", str(tmp_path / "out"), "--scale", "1,1,4",
                 "--reference", str(reference)]) == 2
    assert f"{target}: is an input" in capsys.readouterr().err
    assert {p: p.read_bytes() for p in before} == before


def test_a_method_not_computed_is_a_row_per_subject_that_the_settings_table_prints_with_why(tmp_path):
    from mrisr.evaluate import LpipsOptions, evaluate_files
    from mrisr.papers.field import settings_table

    reason = "its environment could not be installed: pip could not install eclare==1.0.1"
    evaluate_files(["01", "02"], ["a", "b"], None, ["m", "n"], None, LpipsOptions(dir=None, step=None, sha256=""),
                   str(tmp_path / "eclare.csv"), 1, not_computed_reason=reason)
    rows = pd.read_csv(tmp_path / "eclare.csv", dtype={"subject": str})
    assert rows["subject"].tolist() == ["01", "02"] and rows["psnr_brain"].isna().all()
    pd.DataFrame({"subject": ["01", "02"], "psnr_brain": [30.0, 31.0], "ssim_brain": [0.9, 0.91],
                  "nrmse_brain": [0.1, 0.09]}).to_csv(tmp_path / "trilinear.csv", index=False)
    cells = [{"label": label, "path": str(tmp_path / f"{name}.csv"), "setting": "thick_slice",
              "description": "x1x1x4 slice_profile"}
             for label, name in (("trilinear", "trilinear"), ("ECLARE", "eclare"))]
    settings_table(cells, "trilinear", [], str(tmp_path / "t.csv"), str(tmp_path / "t.md"))
    markdown = (tmp_path / "t.md").read_text()
    assert "| ECLARE | 0 | not computed | not computed | not computed |" in markdown
    assert f"ECLARE not computed: {reason}" in markdown
    table = pd.read_csv(tmp_path / "t.csv")
    assert table.query("method == 'ECLARE'")["mean"].isna().all()


def test_a_package_folder_beside_the_environment_file_is_installed_from_a_copy(tmp_path):
    """``name @ file:<folder>`` in a pip section: the folder relative to the environment file, given to pip as a copy
    (a build writes build/ and *.egg-info into the folder it builds: never into the checkout); absolute URLs and
    pins as they are; a folder that is not there refused with the fix."""
    from mrisr.errors import InputError
    from mrisr.external import local_requirement

    envs, package = tmp_path / "envs", tmp_path / "examples" / "tool"
    envs.mkdir()
    (package / "build").mkdir(parents=True)
    (package / "pyproject.toml").write_text("[project]\nname = 'tool'\n")
    (package / "tool.egg-info").mkdir()
    scratch = tmp_path / "scratch"
    scratch.mkdir()
    line = local_requirement("tool @ file:../examples/tool", envs / "tool.yaml", scratch)
    assert line == f"tool @ {(scratch / 'tool').as_uri()}"
    assert sorted(p.name for p in (scratch / "tool").iterdir()) == ["pyproject.toml"]
    assert local_requirement("tool==1.0", envs / "tool.yaml", scratch) == "tool==1.0"
    absolute = f"tool @ {package.as_uri()}"
    assert local_requirement(absolute, envs / "tool.yaml", scratch) == absolute
    with pytest.raises(InputError, match="names the package folder .*missing.* which does not exist"):
        local_requirement("tool @ file:../missing", envs / "tool.yaml", scratch)
