import numpy as np
import pytest
import torch
from scipy import ndimage

from mrisr.degrade import FWHM_PER_SIGMA, degrade, degrade_file, degrade_volume, kspace_truncate, lr_affine

NEAREST = {"method": "nearest"}


def _band_limited(n=16):
    x = np.arange(n)
    X, Y, Z = np.meshgrid(x, x, x, indexing="ij")
    return np.cos(2 * np.pi * 3 * X / n) + np.sin(2 * np.pi * 2 * Y / n) * np.cos(2 * np.pi * Z / n) + 0.5


def test_nearest_equals_torch_nearest_interpolation(rng):
    hr = torch.from_numpy(rng.normal(size=(2, 1, 8, 10, 12)).astype(np.float32))
    expected = torch.nn.functional.interpolate(hr, scale_factor=0.5)  # the authors' call
    torch.testing.assert_close(degrade(hr, NEAREST, 2), expected)


def test_kspace_keeps_band_limited_signal_at_lr_samples():
    f = _band_limited()
    lr = degrade_volume(f, {"method": "kspace"}, 2)
    np.testing.assert_allclose(lr, f[::2, ::2, ::2], atol=1e-5)


def test_kspace_matches_numpy_centred_crop(rng):
    hr = rng.normal(size=(12, 8, 16))
    k = np.fft.fftshift(np.fft.fftn(hr))
    crop = k[3:9, 2:6, 4:12]
    expected = np.fft.ifftn(np.fft.ifftshift(crop)).real / 8
    np.testing.assert_allclose(kspace_truncate(torch.from_numpy(hr), 2).numpy(), expected, atol=1e-10)


def test_blur_is_gaussian_then_decimation(rng):
    hr = rng.normal(size=(16, 16, 16)).astype(np.float32)
    sigma = 2.0 / (2 * np.sqrt(2 * np.log(2)))
    inner = (slice(3, -3),) * 3  # away from the boundary, where padding conventions differ
    expected = ndimage.gaussian_filter(hr.astype(np.float64), sigma, mode="constant", truncate=4.0)[::2, ::2, ::2]
    np.testing.assert_allclose(degrade_volume(hr, {"method": "blur", "blur_fwhm": 2.0}, 2)[inner], expected[inner], atol=1e-3)


def test_odd_size_is_refused():
    with pytest.raises(ValueError, match="divisible"):
        degrade(torch.zeros(5, 6, 6), NEAREST, 2)


def test_lr_affine_overlays_lr_sample_on_its_hr_voxel():
    hr = np.array([[0, 0, 1.2, -5], [-1.2, 0, 0, 7], [0, 1.2, 0, 3], [0, 0, 0, 1]])
    lr = lr_affine(hr, 2)
    i = np.array([3, 1, 4, 1])
    np.testing.assert_allclose(lr @ i, hr @ np.array([6, 2, 8, 1]))


def test_added_noise_is_seeded_per_subject_and_scales_one_pattern():
    from mrisr.degrade import add_noise

    lr = np.random.default_rng(3).normal(size=(20, 22, 24)).astype(np.float32)
    a1, a2 = add_noise(lr, 0.1, 0, "sub-01"), add_noise(lr, 0.2, 0, "sub-01")
    np.testing.assert_allclose(a2 - lr, 2 * (a1 - lr), atol=1e-6)
    assert abs(float((a2 - lr).std()) - 0.2) < 0.01
    assert not np.allclose(add_noise(lr, 0.1, 0, "sub-02"), a1)
    np.testing.assert_array_equal(add_noise(lr, 0.1, 0, "sub-01"), a1)


def test_lr_set_names_are_an_entry_or_an_entry_with_its_added_noise():
    from mrisr.plan.stages import parse_degradation
    from mrisr.errors import ConfigError

    entries = {"nearest": {"method": "nearest"}, "blur-2": {"method": "blur", "blur_fwhm": 2.0}}
    assert parse_degradation("nearest", entries) == (entries["nearest"], 0.0)
    assert parse_degradation("nearest-noise0.05", entries) == (entries["nearest"], 0.05)
    assert parse_degradation("blur-2-noise1", entries) == (entries["blur-2"], 1.0)
    for bad in ("kspace", "kspace-noise0.1", "nearest-noisy"):
        with pytest.raises(ConfigError, match=bad):
            parse_degradation(bad, entries)


def test_a_scan_with_odd_edges_loses_its_last_rows_and_keeps_its_origin(tmp_path, rng):
    """A raw scan made into a user's LR scan: the decimation of its largest even-edged part, on its own grid."""
    import nibabel as nib

    hr = rng.normal(size=(9, 8, 7)).astype(np.float32)
    affine = np.array([[-1.5, 0, 0, 90], [0, 1.5, 0, -120], [0, 0, 1.5, -70], [0, 0, 0, 1]])
    nib.save(nib.Nifti1Image(hr, affine), tmp_path / "hr.nii.gz")
    degrade_file(str(tmp_path / "hr.nii.gz"), str(tmp_path / "lr.nii.gz"), NEAREST, 2, 0.0, 0)
    lr = nib.load(tmp_path / "lr.nii.gz")
    np.testing.assert_array_equal(np.asanyarray(lr.dataobj), hr[:8:2, :8:2, :6:2])
    np.testing.assert_allclose(lr.affine, lr_affine(affine, 2))


def test_each_axis_has_its_own_factor(rng):
    """x1 x 1 x 4: only the third axis is decimated; k-space is cropped along it alone (numpy's crop)."""
    hr = rng.normal(size=(6, 8, 16))
    np.testing.assert_array_equal(degrade_volume(hr, NEAREST, [1, 1, 4]), hr[:, :, ::4].astype(np.float32))
    k = np.fft.fftshift(np.fft.fftn(hr))
    expected = np.fft.ifftn(np.fft.ifftshift(k[:, :, 6:10])).real / 4
    np.testing.assert_allclose(kspace_truncate(torch.from_numpy(hr), (1, 1, 4)).numpy(), expected, atol=1e-10)
    np.testing.assert_allclose(lr_affine(np.diag([1.0, 1.0, 1.0, 1.0]), [1, 1, 4]), np.diag([1.0, 1.0, 4.0, 1.0]))


def test_slice_profile_blurs_across_the_slices_only(rng):
    """A Gaussian of FWHM the slice thickness (4 HR voxels) along the thick axis, none in-plane, then decimation."""
    hr = rng.normal(size=(10, 12, 32)).astype(np.float32)
    expected = ndimage.gaussian_filter1d(hr.astype(np.float64), 4 / FWHM_PER_SIGMA, axis=2, mode="constant",
                                         truncate=4.0)[:, :, ::4]
    inner = (slice(None), slice(None), slice(2, -2))
    lr = degrade_volume(hr, {"method": "slice_profile"}, [1, 1, 4])
    assert lr.shape == (10, 12, 8)
    np.testing.assert_allclose(lr[inner], expected[inner], atol=1e-4)


def test_kspace_on_the_hr_grid_keeps_the_centre_band_and_the_grid(rng):
    """kspace_hr: numpy's zero-filled centred band (1/2 along two axes), real part, same shape; a signal inside
    the band is untouched. MTVNet's trunc_factor 4 zeroes round(n/4) frequencies at each end: the same band."""
    hr = rng.normal(size=(16, 12, 8))
    k = np.fft.fftshift(np.fft.fftn(hr))
    n = 16
    theirs = k.copy()
    theirs[:round(n / 4)], theirs[n - round(n / 4):] = 0, 0  # MTVNet kspace_trunc_func, first truncated axis
    theirs[:, :3], theirs[:, 9:] = 0, 0
    expected = np.fft.ifftn(np.fft.ifftshift(theirs)).real
    entry = {"method": "kspace_hr", "truncation": [2, 2, 1]}
    np.testing.assert_allclose(degrade_volume(hr, entry, 1), expected, atol=1e-5)
    low = np.cos(2 * np.pi * 3 * np.arange(16) / 16)[:, None, None] * np.ones((16, 12, 8))
    np.testing.assert_allclose(degrade_volume(low, entry, 1), low, atol=1e-5)
