import gzip
import os
import resource
import stat
import subprocess
import sys
import textwrap
import time

import nibabel as nib
import numpy as np
import pytest

from mrisr.errors import InputError
from mrisr.io import atomic_path, load_volume, save_volume, voxel_sizes


def _affine(spacing=1.5):
    a = np.diag([spacing, spacing, spacing, 1.0])
    a[:3, 3] = [-10, 20, 5]
    return a


def test_save_and_load_keep_data_affine_and_units(tmp_path, rng):
    data = rng.normal(size=(6, 7, 8)).astype(np.float32)
    path = save_volume(data, _affine(), tmp_path / "a.nii.gz")
    img = load_volume(path)
    np.testing.assert_array_equal(np.asanyarray(img.dataobj), data)
    np.testing.assert_allclose(img.affine, _affine())
    assert img.header.get_xyzt_units() == ("mm", "sec")
    assert int(img.header["sform_code"]) == 1 and int(img.header["qform_code"]) == 1
    np.testing.assert_allclose(voxel_sizes(img.affine), [1.5, 1.5, 1.5])


def test_singleton_fourth_axis_is_accepted(tmp_path, rng):
    path = tmp_path / "b.nii.gz"
    nib.save(nib.Nifti1Image(rng.normal(size=(4, 4, 4, 1)).astype(np.float32), _affine()), path)
    assert load_volume(path).shape == (4, 4, 4)


@pytest.mark.parametrize("shape", [(8, 8), (4, 4, 4, 3)])
def test_not_3d_names_file_and_fix(tmp_path, rng, shape):
    path = tmp_path / "bad.nii.gz"
    nib.save(nib.Nifti1Image(rng.normal(size=shape).astype(np.float32), np.eye(4)), path)
    with pytest.raises(InputError, match="3D volume") as err:
        load_volume(path)
    assert str(path) in str(err.value) and "Fix:" in str(err.value)


def test_corrupt_and_missing_files(tmp_path):
    corrupt = tmp_path / "corrupt.nii.gz"
    corrupt.write_bytes(gzip.compress(b"not a nifti at all" * 10)[:40])
    with pytest.raises(InputError, match="cannot be read"):
        load_volume(corrupt)
    with pytest.raises(InputError, match="does not exist"):
        load_volume(tmp_path / "missing.nii.gz")


def test_nan_and_constant_volumes_are_refused(tmp_path):
    data = np.ones((4, 4, 4), np.float32)
    save_volume(data, np.eye(4), tmp_path / "const.nii.gz")
    with pytest.raises(InputError, match="constant"):
        load_volume(tmp_path / "const.nii.gz")
    data[0, 0, 0] = np.nan
    save_volume(data, np.eye(4), tmp_path / "nan.nii.gz")
    with pytest.raises(InputError, match="NaN"):
        load_volume(tmp_path / "nan.nii.gz")


def test_atomic_path_leaves_nothing_on_failure(tmp_path):
    target = tmp_path / "out.csv"
    with pytest.raises(RuntimeError):
        with atomic_path(target) as tmp:
            tmp.write_text("half")
            raise RuntimeError("killed")
    assert list(tmp_path.iterdir()) == []
    target.write_text("old")
    with atomic_path(target) as tmp:
        tmp.write_text("new")
    assert target.read_text() == "new" and len(list(tmp_path.iterdir())) == 1


def test_oblique_and_anisotropic_grids_are_refused_where_a_stage_needs_them(tmp_path, rng):
    from nibabel.eulerangles import euler2mat

    data = rng.normal(size=(6, 6, 6)).astype(np.float32)
    oblique = np.eye(4)
    oblique[:3, :3] = euler2mat(0.2, 0, 0)
    save_volume(data, oblique, tmp_path / "oblique.nii.gz")
    load_volume(tmp_path / "oblique.nii.gz")  # fine where the grid does not matter
    with pytest.raises(InputError, match="oblique") as err:
        load_volume(tmp_path / "oblique.nii.gz", axis_aligned=True)
    assert "oblique.nii.gz" in str(err.value) and "axis-aligned" in str(err.value)
    save_volume(data, np.diag([1.0, 1.0, 1.2, 1.0]), tmp_path / "aniso.nii.gz")
    with pytest.raises(InputError, match="anisotropic") as err:
        load_volume(tmp_path / "aniso.nii.gz", isotropic=True)
    assert "1 x 1 x 1.2" in str(err.value)
    save_volume(data, np.diag([-1.0, 1.0, 1.0, 1.0]), tmp_path / "flipped.nii.gz")
    load_volume(tmp_path / "flipped.nii.gz", isotropic=True, axis_aligned=True)  # a flip is not oblique


def test_complex_and_boolean_images_are_refused(tmp_path):
    nib.save(nib.Nifti1Image(np.ones((4, 4, 4), np.complex64) * 1j, np.eye(4)), tmp_path / "c.nii.gz")
    with pytest.raises(InputError, match="data type"):
        load_volume(tmp_path / "c.nii.gz")


def _mrisr_with(preexec, *args):
    return subprocess.run([sys.executable, "-m", "mrisr", *map(str, args)], capture_output=True, text=True,
                          preexec_fn=preexec)


def _interpolate(tmp_path, rng, out, preexec=None):
    lr = save_volume(rng.normal(size=(8, 8, 8)).astype(np.float32), np.eye(4) * [2, 2, 2, 1], tmp_path / "lr.nii.gz")
    return _mrisr_with(preexec, "super-resolve", "--interpolate", "trilinear", "--scale", 2, lr, out)


@pytest.mark.parametrize("umask, mode", [(0o002, 0o664), (0o022, 0o644), (0o077, 0o600)])
def test_outputs_get_the_mode_of_the_user_s_umask(tmp_path, rng, umask, mode):
    out = tmp_path / "shared" / "sr.nii.gz"
    assert _interpolate(tmp_path, rng, out, preexec=lambda: os.umask(umask)).returncode == 0
    assert stat.S_IMODE(out.stat().st_mode) == mode


def test_a_killed_write_s_temporary_file_is_removed_by_the_next_write(tmp_path, rng):
    target = tmp_path / "sr.nii.gz"
    killed = subprocess.run([sys.executable, "-c", textwrap.dedent(f"""
        import os
        from mrisr.io import atomic_path
        with atomic_path({str(target)!r}) as tmp:
            tmp.write_bytes(b"half")
            os.kill(os.getpid(), 9)
        """)])
    assert killed.returncode == -9
    assert len(list(tmp_path.glob(".sr.nii.gz.*"))) == 1
    assert _interpolate(tmp_path, rng, target).returncode == 0
    assert sorted(p.name for p in tmp_path.iterdir()) == ["lr.nii.gz", "sr.nii.gz"]


def test_a_live_writer_s_temporary_file_is_left_alone(tmp_path):
    """Two trainers on one folder (outside Snakemake's lock): neither deletes the other's file in progress."""
    target = tmp_path / "checkpoint.pt"
    ready, release = tmp_path / "ready", tmp_path / "release"
    other = subprocess.Popen([sys.executable, "-c", textwrap.dedent(f"""
        import pathlib, time
        from mrisr.io import atomic_path
        with atomic_path({str(target)!r}) as tmp:
            tmp.write_text("other")
            pathlib.Path({str(ready)!r}).touch()
            while not pathlib.Path({str(release)!r}).exists():
                time.sleep(0.05)
        """)])
    while not ready.exists():
        time.sleep(0.05)
    with atomic_path(target) as tmp:
        tmp.write_text("mine")
    assert target.read_text() == "mine"
    release.touch()
    assert other.wait(timeout=60) == 0 and target.read_text() == "other"
    assert not list(tmp_path.glob(".checkpoint.pt.*"))


def test_a_full_disk_is_said_with_the_file_and_leaves_nothing(tmp_path, rng):
    """The file system refuses bytes (here: a file-size limit, EFBIG; a full disk is ENOSPC, a quota EDQUOT)."""
    out = tmp_path / "out" / "sr.nii.gz"
    limited = _interpolate(tmp_path, rng, out, preexec=lambda: resource.setrlimit(resource.RLIMIT_FSIZE, (4096, 4096)))
    assert limited.returncode == 2 and "Traceback" not in limited.stderr
    assert f"{out}: could not be written (File too large). Fix: free space" in limited.stderr
    assert list((tmp_path / "out").iterdir()) == []


def test_cleanup_removes_only_atomic_writes_own_leftovers(tmp_path, rng):
    """Beside an output: a dead writer's temporary file goes, an old one of another host goes, a user's own
    ``.<name>.orig`` (however old) and a live writer's file stay."""
    from mrisr.cli import main
    from mrisr.io import STALE_AFTER_S, _host

    scan = tmp_path / "scan.nii.gz"
    nib.save(nib.Nifti1Image(rng.normal(size=(8, 8, 8)).astype(np.float32), np.eye(4)), scan)
    dead = subprocess.Popen(["true"])
    dead.wait()
    old = time.time() - 2 * STALE_AFTER_S
    files = {"dead": f".sr.nii.gz.{dead.pid}@{_host()}~a1b2.nii.gz", "other host": ".sr.nii.gz.7@elsewhere~c3d4.nii.gz",
             "user's": ".sr.nii.gz.orig", "live": f".sr.nii.gz.{os.getpid()}@{_host()}~e5f6.nii.gz"}
    for name in files.values():
        (tmp_path / name).write_bytes(b"x")
        os.utime(tmp_path / name, (old, old))
    assert main(["super-resolve", "--interpolate", "trilinear", "--scale", "2", str(scan),
                 str(tmp_path / "sr.nii.gz")]) == 0
    left = {what for what, name in files.items() if (tmp_path / name).exists()}
    assert left == {"user's", "live"}
