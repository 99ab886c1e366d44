"""Where LR voxels lie on their HR grid (mrisr.grid), checked against voxel centres computed from the affines."""

import itertools

import nibabel as nib
import numpy as np
import pytest

from mrisr.grid import LrGrid, card_grid, hr_affine, lr_affine, lr_grid

OBLIQUE = np.array([[0, 0, 1.2, -5], [-1.2, 0, 0, 7], [0, 1.2, 0, 3], [0, 0, 0, 1]])


@pytest.mark.parametrize("scale", [2, 3, 4, (1, 1, 4), (2, 1, 3)])
def test_a_slab_lr_voxel_is_the_centre_of_its_hr_voxels(scale):
    """Slab: LR voxel i's world position is the mean of the world positions of the HR voxels it is made from."""
    factors = np.broadcast_to(scale, 3)
    lr = lr_affine(OBLIQUE, scale, LrGrid.SLAB)
    for i in [(0, 0, 0), (3, 1, 4), (1, 5, 2)]:
        slab = [np.array(i) * factors + k for k in itertools.product(*(range(f) for f in factors))]
        expected = np.mean(nib.affines.apply_affine(OBLIQUE, slab), axis=0)
        np.testing.assert_allclose(nib.affines.apply_affine(lr, i), expected, atol=1e-9)


def test_a_corner_lr_voxel_is_an_hr_voxel():
    lr = lr_affine(OBLIQUE, 2, LrGrid.CORNER)
    np.testing.assert_allclose(lr @ np.array([3, 1, 4, 1]), OBLIQUE @ np.array([6, 2, 8, 1]))


@pytest.mark.parametrize("grid", list(LrGrid))
@pytest.mark.parametrize("scale", [2, (1, 1, 4)])
def test_hr_affine_inverts_lr_affine(grid, scale):
    shape = (5, 6, 7)
    np.testing.assert_allclose(hr_affine(lr_affine(OBLIQUE, scale, grid, shape), scale, grid, shape), OBLIQUE,
                               atol=1e-12)


def test_sr_thin_voxels_lie_half_a_thin_voxel_inside_the_scans_slab_edges():
    """A 6 mm slice scan (LPS, 1.5 mm in-plane): on the slab grid the first and last thin voxels along the thick axis
    lie 0.75 mm (half a thin voxel) inside the edges of the first and last slab; the corner grid's first lies at the
    first slice's centre, 3 mm inside, and its last 1.5 mm past the scan."""
    lr = np.array([[-1.5, 0, 0, 90], [0, -1.5, 0, 100], [0, 0, 6.0, -40], [0, 0, 0, 1]])
    slices, axis = 10, np.array([0, 0, 1.0])
    first_edge = nib.affines.apply_affine(lr, (0, 0, 0)) - 3.0 * axis  # half a 6 mm slice below the first centre
    last_edge = nib.affines.apply_affine(lr, (0, 0, slices - 1)) + 3.0 * axis
    for grid, inside, last_inside in ((LrGrid.SLAB, 0.75, 0.75), (LrGrid.CORNER, 3.0, -1.5)):
        sr = hr_affine(lr, (1, 1, 4), grid)
        first = nib.affines.apply_affine(sr, (0, 0, 0))
        last = nib.affines.apply_affine(sr, (0, 0, 4 * slices - 1))
        assert first[2] - first_edge[2] == pytest.approx(inside)
        assert last_edge[2] - last[2] == pytest.approx(last_inside)
        np.testing.assert_allclose(first[:2], nib.affines.apply_affine(lr, (0, 0, 0))[:2])


def test_decimation_keeps_the_corner_grid_every_acquisition_model_the_slab():
    assert lr_grid({"method": "nearest"}) is LrGrid.CORNER
    for method in ("kspace", "blur", "slice_profile", "kspace_hr"):
        assert lr_grid({"method": method}) is LrGrid.SLAB
    assert card_grid({"lr_grid": "slab"}) is LrGrid.SLAB
    assert card_grid({}) is LrGrid.CORNER  # a card from before mrisr recorded the grid was made on decimation's


def test_the_spanning_grid_puts_the_first_and_last_lr_voxels_on_the_first_and_last_hr_ones():
    """align_corners=True: n LR voxels over N = 4n HR voxels, a step of (N - 1) / (n - 1) HR voxels."""
    lr_shape = (8, 6, 5)
    lr = lr_affine(OBLIQUE, 4, LrGrid.SPANNING, lr_shape)
    np.testing.assert_allclose(nib.affines.apply_affine(lr, np.array(lr_shape) - 1),
                               nib.affines.apply_affine(OBLIQUE, np.array(lr_shape) * 4 - 1), atol=1e-9)
    np.testing.assert_allclose(lr[:, 3], OBLIQUE[:, 3])
    np.testing.assert_allclose(hr_affine(lr, 4, LrGrid.SPANNING, lr_shape), OBLIQUE, atol=1e-12)
    with pytest.raises(ValueError, match="lr_shape"):
        lr_affine(OBLIQUE, 4, LrGrid.SPANNING)
    assert lr_grid({"method": "resize"}) is LrGrid.SPANNING
