"""Each class of bad input, fed to the command a user or a rule runs: a message naming the file and the fix,
a non-zero exit, no output left behind."""

import gzip
import io
import subprocess
import sys

import nibabel as nib
import numpy as np
import pytest
from nibabel.eulerangles import euler2mat

from mrisr.cli import main
from mrisr.io import save_volume
from tests.conftest import mrisr_with_peak_memory, write_model

GENERATOR = {"name": "rrdb", "channels": 4, "growth": 4, "blocks": 1, "scale": 2}


def _mrisr(*args):
    return subprocess.run([sys.executable, "-m", "mrisr", *map(str, args)], capture_output=True, text=True)


def _run(*args):
    """``mrisr`` in this process (fast); returns the exit code and what it printed to stderr."""
    import contextlib
    import io

    err = io.StringIO()
    with contextlib.redirect_stderr(err):
        code = main(list(map(str, args)))
    return code, err.getvalue()


def _volume(rng, shape=(8, 8, 8)):
    return rng.normal(size=shape).astype(np.float32)


def _write(path, data, affine=None):
    nib.save(nib.Nifti1Image(data, np.eye(4) if affine is None else affine), path)
    return path


def _truncated(tmp_path, rng):
    whole = save_volume(_volume(rng), np.eye(4), tmp_path / "whole.nii.gz")
    cut = tmp_path / "in.nii.gz"
    cut.write_bytes(whole.read_bytes()[: whole.stat().st_size // 2])
    whole.unlink()
    return cut


def _with(value):
    def make(tmp_path, rng):
        data = _volume(rng)
        data[2, 3, 4] = value
        return _write(tmp_path / "in.nii.gz", data)
    return make


def _scaled(slope, inter):
    def make(tmp_path, rng):
        img = nib.Nifti1Image((rng.normal(size=(8, 8, 8)) * 100).astype(np.int16), np.eye(4))
        img.header.set_slope_inter(1.0, 0.0)
        img.header["scl_slope"], img.header["scl_inter"] = slope, inter
        nib.save(img, tmp_path / "in.nii")
        return tmp_path / "in.nii"
    return make


def _memory_bomb(tmp_path, rng):
    """80 bytes of .nii.gz whose header declares 512³ float64 voxels (1 GiB)."""
    header = nib.Nifti1Image(np.zeros((1, 1, 1)), np.eye(4)).header
    header.set_data_shape((512, 512, 512))
    header.set_data_dtype(np.float64)
    header["vox_offset"] = 352
    path = tmp_path / "in.nii.gz"
    path.write_bytes(gzip.compress(header.binaryblock + b"\0" * 4))
    return path


def _with_sform(affine):
    """A .nii whose sform (the affine nibabel uses) is ``affine``, its qform unset: fields written byte for byte,
    as a damaged or forged file would have them (nibabel would not save such an affine)."""
    def make(tmp_path, rng):
        path = _write(tmp_path / "in.nii", _volume(rng))
        raw = path.read_bytes()
        header = nib.Nifti1Header.from_fileobj(io.BytesIO(raw[:348]))
        header["qform_code"], header["sform_code"] = 0, 1
        header["srow_x"], header["srow_y"], header["srow_z"] = np.asarray(affine, dtype=float)[:3]
        path.write_bytes(header.binaryblock + raw[348:])
        return path
    return make


BAD_IMAGES = {
    "truncated .nii.gz": (_truncated, "cannot be read as NIfTI"),
    "not gzip at all": (lambda t, r: (t / "in.nii.gz").write_bytes(gzip.compress(b"x")[:5]) and t / "in.nii.gz",
                        "cannot be read as NIfTI"),
    "2D image": (lambda t, r: _write(t / "in.nii.gz", _volume(r, (8, 8))), "must be a 3D volume"),
    "4D image": (lambda t, r: _write(t / "in.nii.gz", _volume(r, (8, 8, 8, 3))), "must be a 3D volume"),
    "NaN voxel": (_with(np.nan), "NaN or Inf"),
    "Inf voxel": (_with(np.inf), "NaN or Inf"),
    "all zero": (lambda t, r: _write(t / "in.nii.gz", np.zeros((8, 8, 8), np.float32)), "constant"),
    "constant": (lambda t, r: _write(t / "in.nii.gz", np.full((8, 8, 8), 3, np.float32)), "constant"),
    "complex": (lambda t, r: _write(t / "in.nii.gz", _volume(r).astype(np.complex64)), "data type"),
    "RGB": (lambda t, r: _write(t / "in.nii.gz", np.zeros((8, 8, 8), [("R", "u1"), ("G", "u1"), ("B", "u1")])),
            "data type"),
    "axis of length 0": (lambda t, r: _write(t / "in.nii.gz", np.zeros((8, 0, 8), np.float32)), "axis of length 0"),
    "header declares more voxels than the file holds": (_memory_bomb, "more than the"),
    "NaN scl_inter": (_scaled(1.0, np.nan), "cannot be read as NIfTI"),
    "values beyond float32 (scl_slope 1e36)": (_scaled(1e36, 0.0), "beyond float32"),
    "NaN affine": (_with_sform(np.full((4, 4), np.nan)), "non-finite voxel-to-world affine"),
    "singular affine": (_with_sform(np.diag([1.0, 0.0, 1.0, 1.0])), "singular voxel-to-world affine"),
}


@pytest.fixture
def model(tmp_path):
    path = tmp_path / "model.safetensors"
    write_model(path, GENERATOR)
    return path


@pytest.mark.parametrize("case", list(BAD_IMAGES))
def test_bad_image_to_super_resolve(tmp_path, rng, model, capsys, case):
    make, problem = BAD_IMAGES[case]
    bad = make(tmp_path, rng)
    out = tmp_path / "out" / "sr.nii.gz"
    assert main(["super-resolve", "--model", str(model), str(bad), str(out)]) != 0
    stderr = capsys.readouterr().err
    assert f"{bad}: " in stderr and problem in stderr and "Fix:" in stderr
    assert not (tmp_path / "out").exists()


def test_the_command_exits_non_zero_without_a_traceback(tmp_path, rng, model):
    bad = _with(np.nan)(tmp_path, rng)
    result = _mrisr("super-resolve", "--model", model, bad, tmp_path / "sr.nii.gz")
    assert result.returncode == 2 and f"{bad}: contains NaN" in result.stderr and "Traceback" not in result.stderr


def test_a_header_declaring_a_gigabyte_costs_no_more_memory_than_a_small_bad_file(tmp_path, rng):
    bomb = _memory_bomb(tmp_path, rng)
    (tmp_path / "small").mkdir()
    small = _with(np.nan)(tmp_path / "small", rng)
    command = ("super-resolve", "--interpolate", "trilinear", "--scale", 2)
    peaks = [mrisr_with_peak_memory(*command, scan, tmp_path / f"{name}.nii.gz", stderr_file=tmp_path / f"{name}.err")[2]
             for name, scan in (("a", bomb), ("b", small))]
    extra = peaks[0] - peaks[1]
    assert extra < 100, f"{extra:.0f} MB more for an 80-byte file"


def test_singleton_fourth_axis_is_read_as_3d_and_said(tmp_path, rng):
    path = _write(tmp_path / "in.nii.gz", _volume(rng, (8, 8, 8, 1)), np.diag([2.0, 2.0, 2.0, 1.0]))
    result = _mrisr("super-resolve", "--interpolate", "trilinear", "--scale", 2, path, tmp_path / "sr.nii.gz")
    assert result.returncode == 0 and "singleton 4th axis" in result.stderr
    assert nib.load(tmp_path / "sr.nii.gz").shape == (16, 16, 16)


def test_anisotropic_input_is_refused_unless_resampled_and_then_recorded(tmp_path, rng, model):
    ixi_like = save_volume(_volume(rng, (10, 10, 8)), np.diag([0.94, 0.94, 1.2, 1.0]), tmp_path / "in.nii.gz")
    out = tmp_path / "sr.nii.gz"
    refused = _mrisr("super-resolve", "--model", model, ixi_like, out)
    assert refused.returncode != 0 and "anisotropic" in refused.stderr and "--resample" in refused.stderr
    assert not out.exists()
    assert _mrisr("super-resolve", "--model", model, ixi_like, out, "--resample", "1.0").returncode == 0
    sr = nib.load(out)
    np.testing.assert_allclose(sr.header.get_zooms(), [0.5, 0.5, 0.5])
    assert b"resampled from 0.94 x 0.94 x 1.2 mm to 1 mm" in sr.header["descrip"].item()
    # field of view kept: 9.4 mm -> ceil to 10 voxels of 1 mm, then x2
    assert sr.shape == (20, 20, 20)


def _subject(tmp_path, rng, affine=np.eye(4), mask_affine=None, shape=(12, 12, 12)):
    t1w = save_volume(_volume(rng, shape), affine, tmp_path / "sub-01_T1w.nii.gz")
    mask = np.zeros(shape, np.uint8)
    mask[3:9, 3:9, 3:9] = 1
    save_volume(mask, affine if mask_affine is None else mask_affine, tmp_path / "sub-01_mask.nii.gz")
    return t1w, tmp_path / "sub-01_mask.nii.gz"


def _prepare(t1w, mask, out, *extra):
    return _run("prepare", "--t1w", t1w, "--mask", mask, "--subject", "01", "--out-dir", out, "--margin", 1,
                  "--multiple", 2, "--normalise", "volume", "--intensities", "zscore", "--crop", "brain",
                  "--no-normalise-first",
                  "--orientation", "ras", *extra)


@pytest.mark.parametrize("case", ["oblique", "anisotropic", "mask on another grid", "missing mask"])
def test_prepare_refuses_grids_it_cannot_use(tmp_path, rng, case):
    affine = np.eye(4)
    if case == "oblique":
        affine[:3, :3] = euler2mat(0.1, 0, 0)
    if case == "anisotropic":
        affine = np.diag([1.0, 1.0, 1.5, 1.0])
    t1w, mask = _subject(tmp_path, rng, affine, np.diag([2.0, 2, 2, 1]) if case == "mask on another grid" else None)
    if case == "missing mask":
        mask.unlink()
    code, stderr = _prepare(t1w, mask, tmp_path / "out")
    named = mask if case in ("mask on another grid", "missing mask") else t1w
    assert code != 0 and f"{named}: " in stderr and "Fix:" in stderr
    if case in ("oblique", "anisotropic"):
        assert "prepare.resample" in stderr
    assert not (tmp_path / "out").exists()


def test_prepare_refuses_a_scan_one_voxel_thick(tmp_path, rng):
    t1w = save_volume(_volume(rng, (12, 12, 1)), np.eye(4), tmp_path / "sub-01_T1w.nii.gz")
    mask = save_volume(np.ones((12, 12, 1), np.uint8), np.eye(4), tmp_path / "sub-01_mask.nii.gz")
    code, stderr = _prepare(t1w, mask, tmp_path / "out")
    assert code == 2 and f"{t1w}: has 1 voxel(s) along an axis" in stderr and "not a slice" in stderr
    assert not (tmp_path / "out").exists()


@pytest.mark.parametrize("bad", [2.6, 259, -1])
def test_prepare_refuses_label_values_it_would_rewrite(tmp_path, rng, bad):
    """uint8 would round 2.6 to 2 and wrap 259 to 3, and later checks would pass."""
    t1w, mask = _subject(tmp_path, rng)
    labels = np.zeros((12, 12, 12), np.float32)
    labels[3:9, 3:9, 3:9], labels[5, 5, 5] = 1, bad
    dseg = save_volume(labels, np.eye(4), tmp_path / "sub-01_dseg.nii.gz")
    code, stderr = _prepare(t1w, mask, tmp_path / "out", "--dseg", dseg)
    assert code == 2 and f"{dseg}: dseg has values that are not labels 0..255 ({bad:g})" in stderr
    assert not (tmp_path / "out").exists()
    labels[5, 5, 5] = 255
    save_volume(labels, np.eye(4), dseg)
    assert _prepare(t1w, mask, tmp_path / "ok", "--dseg", dseg)[0] == 0
    written = np.asanyarray(nib.load(tmp_path / "ok" / "sub-01_dseg.nii.gz").dataobj)
    assert written.max() == 255 and written.sum() == 6**3 - 1 + 255


def test_prepare_resamples_oblique_anisotropic_scans_when_asked(tmp_path, rng):
    affine = np.diag([0.9, 0.9, 1.2, 1.0])
    affine[:3, :3] = euler2mat(0.05, 0, 0) @ affine[:3, :3]
    t1w, mask = _subject(tmp_path, rng, affine, shape=(16, 16, 12))
    assert _prepare(t1w, mask, tmp_path / "out", "--resample", "1.0")[0] == 0
    out = nib.load(tmp_path / "out" / "sub-01_T1w.nii.gz")
    np.testing.assert_allclose(out.header.get_zooms(), [1, 1, 1], atol=1e-5)
    assert float(np.max(nib.affines.obliquity(out.affine))) < 1e-6
    assert b"resampled from 0.9 x 0.9 x 1.2 mm" in out.header["descrip"].item()
    mask_out = nib.load(tmp_path / "out" / "sub-01_mask.nii.gz")
    np.testing.assert_allclose(mask_out.affine, out.affine)
    assert set(np.unique(np.asanyarray(mask_out.dataobj))) == {0, 1}


def test_interpolation_takes_an_anisotropic_input_as_it_is(tmp_path, rng):
    """Only a model needs the isotropic voxels it was trained on; trilinear interpolation works on any grid."""
    path = save_volume(_volume(rng, (10, 10, 8)), np.diag([0.94, 0.94, 1.2, 1.0]), tmp_path / "in.nii.gz")
    result = _mrisr("super-resolve", "--interpolate", "trilinear", "--scale", 2, path, tmp_path / "sr.nii.gz")
    assert result.returncode == 0, result.stderr
    np.testing.assert_allclose(nib.load(tmp_path / "sr.nii.gz").header.get_zooms(), [0.47, 0.47, 0.6])


def test_evaluate_refuses_an_empty_mask_instead_of_writing_blank_cells(tmp_path, rng):
    gt = save_volume(_volume(rng, (12, 12, 12)), np.eye(4), tmp_path / "gt.nii.gz")
    pred = save_volume(_volume(rng, (12, 12, 12)), np.eye(4), tmp_path / "pred.nii.gz")
    mask = save_volume(np.zeros((12, 12, 12), np.uint8), np.eye(4), tmp_path / "mask.nii.gz")
    out = tmp_path / "metrics.csv"
    code, stderr = _run("evaluate", "--subjects", "01", "--gt", gt, "--pred", pred, "--mask", mask, "--out", out,
                        "--threads", 1)
    assert code == 2 and f"{mask}: mask is empty" in stderr and "Fix:" in stderr and not out.exists()


@pytest.mark.parametrize("how", ["the same file", "the same folder", "a folder holding the scan", "a link to it"])
def test_super_resolve_never_overwrites_its_input(tmp_path, rng, capsys, how):
    scans = tmp_path / "scans"
    scans.mkdir()
    scan = scans / "sub-01_T1w.nii.gz"
    nib.save(nib.Nifti1Image(rng.normal(size=(8, 8, 8)).astype(np.float32), np.eye(4)), scan)
    before = scan.read_bytes()
    if how == "a link to it":
        (tmp_path / "link.nii.gz").symlink_to(scan)
    given, out = {"the same file": (scan, scan), "the same folder": (scans, scans),
                  "a folder holding the scan": (scan, scans / "sub-01_T1w.nii.gz"),
                  "a link to it": (scan, tmp_path / "link.nii.gz")}[how]
    code = main(["super-resolve", "--interpolate", "trilinear", "--scale", "2", str(given), str(out)])
    assert code == 2 and "is an input" in capsys.readouterr().err
    assert scan.read_bytes() == before and sorted(p.name for p in scans.iterdir()) == ["sub-01_T1w.nii.gz"]


def test_two_scans_of_one_name_are_refused_before_either_is_written(tmp_path, rng, capsys):
    for site in ("a", "b"):
        (tmp_path / site).mkdir()
        nib.save(nib.Nifti1Image(rng.normal(size=(8, 8, 8)).astype(np.float32), np.eye(4)),
                 tmp_path / site / "sub-01_T1w.nii.gz")
    code = main(["super-resolve", "--interpolate", "trilinear", "--scale", "2", str(tmp_path / "a"),
                 str(tmp_path / "b"), str(tmp_path / "out")])
    err = capsys.readouterr().err
    assert code == 2 and "would be written for two scans" in err and "Fix:" in err
    assert not (tmp_path / "out").exists()


@pytest.mark.parametrize("option", [("--tile", "0"), ("--reconstruct-tile", "0"), ("--batch", "0"), ("--halo", "-1"),
                                    ("--threads", "0"), ("--resample", "0"), ("--resample", "-1"), ("--resample", "nan"),
                                    ("--resample", "inf"), ("--resample", "1e-9"), ("--tile", "x")])
def test_every_number_a_user_types_is_range_checked_before_anything_runs(tmp_path, rng, capsys, option):
    scan = tmp_path / "scan.nii.gz"
    nib.save(nib.Nifti1Image(rng.normal(size=(8, 8, 8)).astype(np.float32), np.eye(4)), scan)
    with pytest.raises(SystemExit) as stop:
        main(["super-resolve", "--interpolate", "trilinear", "--scale", "2", str(scan), str(tmp_path / "out.nii.gz"),
              *option])
    err = capsys.readouterr().err
    assert stop.value.code == 2 and f"argument {option[0]}: " in err and "Traceback" not in err
    assert "out of range" in err or "not a whole number" in err
    assert sorted(p.name for p in tmp_path.iterdir()) == ["scan.nii.gz"]


@pytest.mark.parametrize("how", ["a folder", "under a file"])
def test_an_output_path_that_cannot_be_a_file_is_named(tmp_path, rng, capsys, how):
    scan = tmp_path / "scan.nii.gz"
    nib.save(nib.Nifti1Image(rng.normal(size=(8, 8, 8)).astype(np.float32), np.eye(4)), scan)
    (tmp_path / "taken.nii.gz").mkdir()
    (tmp_path / "notes.txt").write_text("a file")
    out = tmp_path / ("taken.nii.gz" if how == "a folder" else "notes.txt/sr.nii.gz")
    assert main(["super-resolve", "--interpolate", "trilinear", "--scale", "2", str(scan), str(out)]) == 2
    err = capsys.readouterr().err
    assert str(out) in err and "Fix:" in err and "Traceback" not in err
    assert (tmp_path / "notes.txt").read_text() == "a file" and not any((tmp_path / "taken.nii.gz").iterdir())


def _zeros_gz(path, shape, dtype=np.uint8):
    """A true .nii.gz of zeros (one gzip member per MiB: a 1 GiB volume in about 1 MB), header included."""
    header = nib.Nifti1Image(np.zeros((1, 1, 1), dtype), np.eye(4)).header
    header.set_data_shape(shape)
    header["vox_offset"] = 352
    total, mib = 352 + int(np.prod(shape)) * np.dtype(dtype).itemsize, 2**20
    zeros = gzip.compress(b"\0" * mib, compresslevel=9)
    with open(path, "wb") as f:
        f.write(gzip.compress(header.binaryblock + b"\0" * (mib - 352), compresslevel=9))
        for _ in range(total // mib - 1):
            f.write(zeros)
        f.write(gzip.compress(b"\0" * (total % mib)))
    return path


def test_a_small_true_file_of_a_gigavoxel_volume_is_refused_before_it_is_read(tmp_path):
    """1024^3 uint8 zeros compress to about 1 MB and pass the gzip-ratio bound: the absolute voxel cap refuses it,
    at the memory of a small bad file, nothing written."""
    from mrisr.io import MAX_VOXELS

    bomb = _zeros_gz(tmp_path / "bomb.nii.gz", (1024, 1024, 1024))
    assert bomb.stat().st_size < 2**21 and 1024**3 > MAX_VOXELS
    code, err, peak = mrisr_with_peak_memory("super-resolve", "--interpolate", "trilinear", "--scale", 2, bomb,
                                             tmp_path / "sr.nii.gz", stderr_file=tmp_path / "err")
    assert code == 2 and f"{bomb}: image declares 1024 x 1024 x 1024" in err and "Fix: crop or resample" in err
    (tmp_path / "small").mkdir()  # the memory of refusing a small bad file: what a child forked from here starts at
    baseline = mrisr_with_peak_memory("super-resolve", "--interpolate", "trilinear", "--scale", 2,
                                      _with(np.nan)(tmp_path / "small", np.random.default_rng(0)),
                                      tmp_path / "small.nii.gz", stderr_file=tmp_path / "small.err")[2]
    assert peak - baseline < 512 and not (tmp_path / "sr.nii.gz").exists()


def test_a_whole_head_at_half_a_millimetre_passes_the_voxel_cap(tmp_path):
    from mrisr.io import _check_header

    path = tmp_path / "head.nii"
    header = nib.Nifti1Image(np.zeros((1, 1, 1), np.uint8), np.diag([0.5, 0.5, 0.5, 1])).header
    header.set_data_shape((640, 640, 640))  # a 320 mm field of view
    header["vox_offset"] = 352
    with open(path, "wb") as f:  # sparse: the voxels take no disk
        f.write(header.binaryblock + b"\0" * 4)
        f.truncate(352 + 640**3)
    _check_header(path, nib.load(path), "image")
