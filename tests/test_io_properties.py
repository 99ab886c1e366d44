"""Property-based check of the NIfTI validator over random shapes, data types and affines."""

import nibabel as nib
import numpy as np
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from nibabel.eulerangles import euler2mat

from mrisr.errors import InputError
from mrisr.io import load_volume, voxel_sizes

shapes = st.lists(st.integers(1, 5), min_size=1, max_size=5).map(tuple)
dtypes = st.sampled_from([np.float32, np.float64, np.int16, np.uint8, np.complex64])
angles = st.tuples(*(st.sampled_from([0.0, 0.3]) for _ in range(3)))
spacings = st.tuples(*(st.sampled_from([0.7, 1.0, 1.5]) for _ in range(3)))


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(shape=shapes, dtype=dtypes, angle=angles, spacing=spacings, constant=st.booleans(), seed=st.integers(0, 99))
def test_validator_accepts_exactly_the_usable_volumes(tmp_path, shape, dtype, angle, spacing, constant, seed):
    data = np.full(shape, 3) if constant else np.random.default_rng(seed).integers(0, 100, size=shape)
    data = data.astype(dtype)
    affine = np.eye(4)
    affine[:3, :3] = euler2mat(*angle) @ np.diag(spacing)
    path = tmp_path / "x.nii.gz"
    nib.save(nib.Nifti1Image(data, affine), path)

    squeezed = shape[:3] if len(shape) == 4 and shape[3] == 1 else shape
    usable = (len(squeezed) == 3 and dtype is not np.complex64 and not constant and data.min() != data.max())
    oblique = any(angle)
    anisotropic = len(set(spacing)) > 1
    try:
        img = load_volume(path, isotropic=True, axis_aligned=True)
    except InputError as err:
        assert str(path) in str(err) and "Fix:" in str(err)
        assert not usable or oblique or (anisotropic and len(squeezed) == 3)
    else:
        assert usable and not oblique and not anisotropic
        assert img.shape == squeezed
        np.testing.assert_allclose(voxel_sizes(img.affine), spacing, rtol=1e-5)


def _valid_nifti() -> bytes:
    img = nib.Nifti1Image(np.random.default_rng(0).normal(size=(6, 5, 4)).astype(np.float32), np.diag([1, 1, 1.0, 1]))
    return img.to_bytes()


VALID = _valid_nifti()


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(edits=st.lists(st.tuples(st.integers(0, 351), st.integers(0, 255)), min_size=1, max_size=8))
def test_a_damaged_header_is_read_or_refused_with_the_file_named(tmp_path, edits):
    """Any bytes of the header changed: the volume is read (and then usable) or refused naming the file, never
    another exception."""
    raw = bytearray(VALID)
    for position, value in edits:
        raw[position] = value
    path = tmp_path / "damaged.nii"
    path.write_bytes(bytes(raw))
    try:
        img = load_volume(path)
    except InputError as exc:
        assert str(exc).startswith(f"{path}: ") and "Fix:" in str(exc)
        return
    data = np.asanyarray(img.dataobj)
    assert data.ndim == 3 and np.all(np.isfinite(data)) and np.all(np.isfinite(img.affine))
