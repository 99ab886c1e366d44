import numpy as np
import pytest

from mrisr.preprocessing import brain_box, head_mask, intensity_statistics, standardised


def test_brain_box_grows_by_margin_and_is_even():
    mask = np.zeros((30, 30, 30), bool)
    mask[10:15, 5:12, 20:29] = True
    box = brain_box(mask, margin=2, multiple=2)
    for sl, (lo, hi) in zip(box, [(8, 17), (3, 14), (18, 30)]):
        assert sl.start <= lo and sl.stop >= hi and (sl.stop - sl.start) % 2 == 0
        assert 0 <= sl.start and sl.stop <= 30


def test_zscore_region(rng):
    x = rng.normal(3, 2, size=(10, 10, 10))
    z = standardised(x)
    assert np.isclose(z.mean(), 0, atol=1e-5) and np.isclose(z.std(), 1, atol=1e-5)
    region = x > 3
    zr = standardised(x, region)
    assert np.isclose(zr[region].mean(), 0, atol=1e-5)


def test_zscore_statistics_are_prepares_region(rng):
    """brain: the mask's voxels; volume with crop brain: the brain box with its margin; crop none: all voxels."""
    x = rng.normal(3, 2, size=(20, 20, 20))
    brain = np.zeros(x.shape, bool)
    brain[6:12, 5:13, 7:11] = True
    assert intensity_statistics(x, brain, "none", "brain", 2, 1, False, "zscore") == (x[brain].mean(), x[brain].std())
    box = x[4:14, 3:15, 5:13]
    assert np.allclose(intensity_statistics(x, brain, "brain", "volume", 2, 1, False, "zscore"), (box.mean(), box.std()))
    assert np.allclose(intensity_statistics(x, brain, "none", "volume", 2, 1, False, "zscore"), (x.mean(), x.std()))


def test_head_mask_is_the_bright_part_in_one_piece(rng):
    x = rng.normal(0, 0.05, size=(24, 24, 24)).astype(np.float32)
    x[4:20, 5:19, 6:18] += 1.0  # the head
    x[10:12, 10:12, 10:12] = 0.0  # a dark hole inside it (ventricles)
    x[0, 0, 0] = 1.0  # a bright speck outside
    mask = head_mask(x)
    expected = np.zeros(x.shape, bool)
    expected[4:20, 5:19, 6:18] = True
    assert (mask == expected).mean() > 0.99 and not mask[0, 0, 0] and mask[10:12, 10:12, 10:12].all()


def test_unit_range_intensities_are_min_and_max_over_the_region(rng):
    """MTVNet's ScaleIntensity: (x - min) / (max - min) over the region, the same region rules as the z-score."""
    x = rng.normal(size=(10, 12, 8)) * 40 + 300
    brain = np.zeros(x.shape, bool)
    brain[3:7, 4:9, 2:6] = True
    scaled = standardised(x, None, "unit_range")
    assert scaled.min() == pytest.approx(0) and scaled.max() == pytest.approx(1)
    np.testing.assert_allclose(scaled, (x - x.min()) / (x.max() - x.min()), rtol=1e-6)
    assert intensity_statistics(x, brain, "none", "brain", 2, 1, False, "unit_range") == pytest.approx(
        (x[brain].min(), x[brain].max() - x[brain].min()))
