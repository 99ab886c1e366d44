import numpy as np
import pytest
import torch
from scipy import ndimage

import nibabel as nib

from mrisr.degrade import FWHM_PER_SIGMA, degrade, degrade_file, degrade_volume, kspace_truncate
from mrisr.grid import LrGrid, lr_affine

NEAREST = {"method": "nearest"}


def _band_limited(X, Y, Z, n=32):
    """A periodic signal of ``n`` HR voxels that k-space truncation by 2 keeps whole, at (continuous) HR indices."""
    return np.cos(2 * np.pi * 3 * X / n) + np.sin(2 * np.pi * 2 * Y / n) * np.cos(2 * np.pi * Z / n) + 0.5


def _on_hr_voxels(signal, shape):
    return signal(*np.meshgrid(*(np.arange(n, dtype=np.float64) for n in shape), indexing="ij"))


#: Every acquisition model; the slab filters are exact on a ramp away from the zero-padded edges, the k-space ones
#: on a band-limited periodic signal
SLAB_METHODS = [{"method": "blur", "blur_fwhm": 2.0}, {"method": "slice_profile"},
                {"method": "slice_profile", "profile": "gaussian"}]
KSPACE_METHODS = [{"method": "kspace"}, {"method": "kspace_hr", "truncation": [2, 2, 2]}]


def test_nearest_equals_torch_nearest_interpolation(rng):
    hr = torch.from_numpy(rng.normal(size=(2, 1, 8, 10, 12)).astype(np.float32))
    expected = torch.nn.functional.interpolate(hr, scale_factor=0.5)  # the authors' call
    torch.testing.assert_close(degrade(hr, NEAREST, 2), expected)


def _hr_index_of_lr_voxels(hr, degradation, scale, lr_shape):
    """Where (continuous HR indices) the LR file's affine puts each LR voxel: the LR affine as degrade_file wrote
    it, mapped through the HR affine's inverse."""
    lr = lr_affine(hr, scale, LrGrid.SLAB if degradation["method"] != "nearest" else LrGrid.CORNER)
    to_hr = np.linalg.inv(hr) @ lr
    index = np.stack(np.meshgrid(*(np.arange(n) for n in lr_shape), indexing="ij"), axis=-1)
    return nib.affines.apply_affine(to_hr, index)


@pytest.mark.parametrize("scale", [2, 4, (1, 1, 4)])
@pytest.mark.parametrize("degradation", SLAB_METHODS + KSPACE_METHODS)
def test_every_acquisition_model_lands_lr_voxel_i_at_the_slab_centre_its_affine_gives(tmp_path, degradation, scale):
    """A ramp (blur, slice profiles) or a band-limited signal (k-space) of the HR indices through degrade_file: each
    LR voxel holds the signal where the LR file's own affine says it lies, the centre of its slab (not HR voxel
    f*i, where decimation would put it)."""
    hr_affine = np.array([[-1.5, 0, 0, 90], [0, 1.5, 0, -120], [0, 0, 1.5, -70], [0, 0, 0, 1]])
    shape = (32, 32, 32)
    kspace = degradation in KSPACE_METHODS
    signal = _band_limited if kspace else (lambda X, Y, Z: 0.3 * X - 0.2 * Y + 0.7 * Z + 1.0)
    nib.save(nib.Nifti1Image(_on_hr_voxels(signal, shape).astype(np.float32), hr_affine), tmp_path / "hr.nii.gz")
    degrade_file(str(tmp_path / "hr.nii.gz"), str(tmp_path / "lr.nii.gz"), degradation, scale, 0.0, 0)
    lr = nib.load(tmp_path / "lr.nii.gz")
    at = _hr_index_of_lr_voxels(hr_affine, degradation, scale, lr.shape)
    expected = signal(at[..., 0], at[..., 1], at[..., 2])
    inner = tuple(slice(None) if kspace else slice(2, -2) if f > 1 else slice(4, -4) for f in np.broadcast_to(scale, 3))
    np.testing.assert_allclose(np.asanyarray(lr.dataobj)[inner], expected[inner], atol=1e-4)
    offsets = at[0, 0, 0]
    np.testing.assert_allclose(offsets, (np.broadcast_to(scale, 3) - 1) / 2)


def test_kspace_on_the_corner_grid_matches_numpy_centred_crop(rng):
    hr = rng.normal(size=(12, 8, 16))
    k = np.fft.fftshift(np.fft.fftn(hr))
    crop = k[3:9, 2:6, 4:12]
    expected = np.fft.ifftn(np.fft.ifftshift(crop)).real / 8
    np.testing.assert_allclose(kspace_truncate(torch.from_numpy(hr), 2, LrGrid.CORNER).numpy(), expected, atol=1e-10)
    lr = degrade_volume(hr, {"method": "kspace"}, 2)
    assert lr.shape == expected.shape and np.abs(lr.astype(np.float64) - expected).max() > 0.1  # slab: sampled elsewhere


def test_blur_at_an_odd_factor_is_scipys_gaussian_at_each_slab_centre(rng):
    """x3: each slab's centre is an HR voxel, so the blur is scipy's normalised Gaussian (zeros beyond the edges,
    radius 4σ) kept at voxels 1, 4, 7, ..., edges included."""
    hr = rng.normal(size=(15, 18, 12)).astype(np.float32)
    sigma = 3.0 / FWHM_PER_SIGMA
    expected = ndimage.gaussian_filter(hr.astype(np.float64), sigma, mode="constant", truncate=4.0)[1::3, 1::3, 1::3]
    np.testing.assert_allclose(degrade_volume(hr, {"method": "blur", "blur_fwhm": 3.0}, 3), expected, atol=1e-5)


def test_odd_size_is_refused():
    with pytest.raises(ValueError, match="divisible"):
        degrade(torch.zeros(5, 6, 6), NEAREST, 2)


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
    np.testing.assert_allclose(lr.affine, lr_affine(affine, 2, LrGrid.CORNER))


def test_each_axis_has_its_own_factor(rng):
    """x1 x 1 x 4: only the third axis is decimated; k-space is cropped along it alone (numpy's crop)."""
    hr = rng.normal(size=(6, 8, 16))
    np.testing.assert_array_equal(degrade_volume(hr, NEAREST, [1, 1, 4]), hr[:, :, ::4].astype(np.float32))
    k = np.fft.fftshift(np.fft.fftn(hr))
    expected = np.fft.ifftn(np.fft.ifftshift(k[:, :, 6:10])).real / 4
    np.testing.assert_allclose(kspace_truncate(torch.from_numpy(hr), (1, 1, 4), LrGrid.CORNER).numpy(), expected,
                               atol=1e-10)


def test_a_thick_slice_is_the_mean_of_its_thin_slices_and_nothing_in_plane(rng):
    """The box profile (the default): each 4-voxel slab averaged along the thick axis alone."""
    hr = rng.normal(size=(10, 12, 32)).astype(np.float32)
    lr = degrade_volume(hr, {"method": "slice_profile"}, [1, 1, 4])
    np.testing.assert_allclose(lr, hr.astype(np.float64).reshape(10, 12, 8, 4).mean(axis=3), atol=1e-6)


def test_a_gaussian_slice_profile_weighs_each_thin_slice_by_its_distance_from_the_slab_centre(rng):
    """FWHM the slice thickness (4 HR voxels), centred between the slab's middle two slices, normalised; summed
    directly over every thin slice within 4σ of the centre (zeros beyond the volume), in-plane untouched."""
    hr = rng.normal(size=(6, 5, 32))
    sigma, centres = 4 / FWHM_PER_SIGMA, 4 * np.arange(8) + 1.5
    reach = int(4 * sigma + 0.5) + 1.5
    k = np.arange(32)
    weights = np.where(np.abs(k[None] - centres[:, None]) <= reach,
                       np.exp(-0.5 * ((k[None] - centres[:, None]) / sigma) ** 2), 0)
    norm = np.exp(-0.5 * ((np.arange(-reach, reach + 1)) / sigma) ** 2).sum()  # the whole kernel, inside or not
    expected = hr @ weights.T / norm
    lr = degrade_volume(hr, {"method": "slice_profile", "profile": "gaussian"}, [1, 1, 4])
    np.testing.assert_allclose(lr, expected, atol=1e-5)


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


def test_resize_is_mtvnets_blur_then_monais_zoom_with_aligned_corners(rng):
    """MTVNet's resize: their kernel (the Gaussian density at whole voxels within ceil(3σ), not renormalised) through
    scipy's correlation with zeros beyond the edges, then MONAI's own Zoom(1/4, trilinear, align_corners=True,
    keep_size=False), as their data/train_transforms.py calls it."""
    from monai.transforms import Zoom

    hr = rng.normal(size=(24, 20, 16)).astype(np.float32)
    sigma, radius = 1.3, 4
    offsets = np.arange(-radius, radius + 1)
    kernel = np.exp(-offsets**2 / (2 * sigma**2)) / np.sqrt(2 * np.pi * sigma**2)
    blurred = hr.astype(np.float64)
    for axis in range(3):
        blurred = ndimage.correlate1d(blurred, kernel, axis=axis, mode="constant", cval=0.0)
    zoom = Zoom(zoom=0.25, mode="trilinear", align_corners=True, keep_size=False)
    expected = np.asarray(zoom(torch.from_numpy(blurred.astype(np.float32))[None]))[0]
    lr = degrade_volume(hr, {"method": "resize", "blur_sigma": sigma}, 4)
    assert lr.shape == expected.shape == (6, 5, 4)
    np.testing.assert_allclose(lr, expected, atol=1e-5)


def test_resize_lands_lr_voxel_i_where_its_affine_says_spanning_the_hr_grid(tmp_path):
    """A ramp through resize (no blur): LR voxel i holds the ramp at HR index i (N - 1) / (n - 1), where the LR
    file's affine puts it; the last LR voxel is the last HR one."""
    hr_affine = np.array([[-1.5, 0, 0, 90], [0, 1.5, 0, -120], [0, 0, 1.5, -70], [0, 0, 0, 1]])
    ramp = lambda X, Y, Z: 0.3 * X - 0.2 * Y + 0.7 * Z + 1.0  # noqa: E731
    nib.save(nib.Nifti1Image(_on_hr_voxels(ramp, (32, 24, 16)).astype(np.float32), hr_affine), tmp_path / "hr.nii.gz")
    degrade_file(str(tmp_path / "hr.nii.gz"), str(tmp_path / "lr.nii.gz"), {"method": "resize", "blur_sigma": 0}, 4,
                 0.0, 0)
    lr = nib.load(tmp_path / "lr.nii.gz")
    index = np.stack(np.meshgrid(*(np.arange(n) for n in lr.shape), indexing="ij"), axis=-1)
    at = nib.affines.apply_affine(np.linalg.inv(hr_affine) @ lr.affine, index)
    np.testing.assert_allclose(np.asanyarray(lr.dataobj), ramp(at[..., 0], at[..., 1], at[..., 2]), atol=1e-4)
    np.testing.assert_allclose(at[-1, -1, -1], (31, 23, 15), atol=1e-9)
    np.testing.assert_allclose(at[0, 0, 0], (0, 0, 0), atol=1e-9)
