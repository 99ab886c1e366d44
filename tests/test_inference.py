"""The inference engine (mrisr.inference): windows against one pass, the reach of each stage, the autocast, the
grid operations and model files loaded as generators."""

import itertools

import numpy as np
import pytest
import torch
from tqdm import tqdm

from mrisr.grid import LrGrid
from mrisr.inference import Interpolation, interpolate, load_generator, super_resolve
from mrisr.models.registry import build
from mrisr.scale import as_scale
from tests.conftest import inference_settings, write_model


def test_trilinear_from_the_slab_grid_is_pytorchs_without_aligned_corners(rng):
    """Slab: each LR voxel at its slab's centre, as F.interpolate(align_corners=False) takes it (edges clamped),
    at an isotropic and a thick-slice scale."""
    lr = rng.normal(size=(6, 5, 4)).astype(np.float32)
    for scale in (2, (1, 1, 4)):
        expected = torch.nn.functional.interpolate(torch.from_numpy(lr)[None, None], scale_factor=as_scale(scale),
                                                   mode="trilinear", align_corners=False)[0, 0].numpy()
        np.testing.assert_allclose(interpolate(lr, scale, grid=LrGrid.SLAB), expected, atol=1e-5)


def test_trilinear_from_the_spanning_grid_is_pytorchs_with_aligned_corners(rng):
    lr = rng.normal(size=(6, 5, 4)).astype(np.float32)
    expected = torch.nn.functional.interpolate(torch.from_numpy(lr)[None, None], size=(24, 20, 16), mode="trilinear",
                                               align_corners=True)[0, 0].numpy()
    np.testing.assert_allclose(interpolate(lr, 4, grid=LrGrid.SPANNING), expected, atol=1e-5)


def test_trilinear_from_the_corner_grid_reproduces_a_linear_ramp_on_the_hr_grid():
    i, j, k = np.meshgrid(np.arange(6), np.arange(5), np.arange(4), indexing="ij")
    lr = (2 * i + 3 * j - k).astype(np.float32)  # value at LR voxel i lying at HR voxel 2i
    hr = interpolate(lr, 2, grid=LrGrid.CORNER)
    I, J, K = np.meshgrid(np.arange(12), np.arange(10), np.arange(8), indexing="ij")
    inside = (I <= 10) & (J <= 8) & (K <= 6)  # the last HR voxel lies past the last LR sample: clamped
    np.testing.assert_allclose(hr[inside], ((2 * I + 3 * J - K) / 2)[inside], atol=1e-5)


def test_bspline_reproduces_a_cubic_inside_and_is_simpleitk_s_bspline_on_the_hr_grid(rng):
    """TorchIO's B-spline (MTVNet's baseline) on our HR grid: a cubic polynomial of the LR coordinates is a cubic
    spline, reproduced away from the edges (which mirror); and the values are SimpleITK's own BSpline resampling of
    the LR image onto the HR grid (an independent call), at a thick-slice scale too."""
    import SimpleITK as sitk

    i, j, k = np.meshgrid(np.arange(24), np.arange(22), np.arange(20), indexing="ij")
    cubic = lambda a, b, c: 1e-3 * a**3 - 0.02 * b**2 + 0.5 * c + 1e-3 * a * b * c  # noqa: E731
    hr = interpolate(cubic(i, j, k).astype(np.float32), 2, Interpolation.BSPLINE, LrGrid.CORNER)
    I, J, K = np.meshgrid(*(np.arange(n) / 2 for n in hr.shape), indexing="ij")
    # the mirrored edges' error falls by 2 - 3^0.5 per LR voxel inward: 8 voxels in, under 3e-5 of it
    inside = (I >= 8) & (I <= 15) & (J >= 8) & (J <= 13) & (K >= 8) & (K <= 11)
    np.testing.assert_allclose(hr[inside], cubic(I, J, K)[inside], atol=2e-3)
    for scale, lr_grid in itertools.product((2, (1, 1, 4)), LrGrid):
        lr = rng.normal(size=(7, 6, 5)).astype(np.float32)
        expected = _simpleitk_resampled(lr, scale, lr_grid, sitk.sitkBSpline)
        np.testing.assert_allclose(interpolate(lr, scale, Interpolation.BSPLINE, lr_grid), expected, atol=1e-5)


def _simpleitk_resampled(lr: np.ndarray, scale, lr_grid: LrGrid, interpolator) -> np.ndarray:
    """SimpleITK's own resampling of ``lr`` (unit voxels at the origin) onto the HR grid, its origin and spacing set
    here from what each LR grid means, not from mrisr.grid."""
    import SimpleITK as sitk

    image = sitk.GetImageFromArray(lr.transpose(2, 1, 0))  # SimpleITK's arrays are z, y, x
    factors = as_scale(scale)
    grid = sitk.Image([n * f for n, f in zip(lr.shape, factors)], sitk.sitkFloat32)
    grid.SetSpacing([1 / f for f in factors])
    if lr_grid is LrGrid.SLAB:  # the first thin voxel half a thin voxel inside the first LR voxel's edge
        grid.SetOrigin([-0.5 + 0.5 / f for f in factors])
    if lr_grid is LrGrid.SPANNING:  # the last thin voxel on the last LR voxel
        grid.SetSpacing([(n - 1) / (n * f - 1) for n, f in zip(lr.shape, factors)])
    return sitk.GetArrayFromImage(sitk.Resample(image, grid, sitk.Transform(), interpolator)).transpose(2, 1, 0)


@pytest.mark.parametrize("lr_grid", [LrGrid.SLAB, LrGrid.SPANNING])
def test_nearest_is_simpleitk_s_nearest_neighbour_as_torchio_computes_it(rng, lr_grid):
    """MTVNet's ``tio_nearest`` on the slab and spanning grids, where no HR voxel lies halfway between two LR ones.
    (On the corner grid every other HR voxel does, at x2 and x4: there the two break the tie differently.)"""
    import SimpleITK as sitk

    for scale in (2, 4, (1, 1, 4)):
        lr = rng.normal(size=(7, 6, 5)).astype(np.float32)
        expected = _simpleitk_resampled(lr, scale, lr_grid, sitk.sitkNearestNeighbor)
        np.testing.assert_array_equal(interpolate(lr, scale, Interpolation.NEAREST, lr_grid), expected)


def test_the_interpolations_are_the_schema_s_and_the_command_s(tmp_path, rng):
    from mrisr.cli import parser
    from mrisr.config import load_schema

    modes = load_schema()["definitions"]["variant"]["properties"]["mode"]["enum"]
    assert modes == [mode.value for mode in Interpolation]
    choices = next(a.choices for a in parser()._subparsers._group_actions[0].choices["super-resolve"]._actions
                   if a.dest == "method.interpolate")
    assert choices == modes
    import nibabel as nib

    from mrisr.cli import main

    lr = rng.normal(size=(6, 5, 4)).astype(np.float32)
    nib.save(nib.Nifti1Image(lr, np.diag([2.0, 2.0, 2.0, 1.0])), tmp_path / "lr.nii.gz")
    assert main(["super-resolve", "--interpolate", "bspline", "--scale", "2", str(tmp_path / "lr.nii.gz"),
                 str(tmp_path / "sr.nii.gz")]) == 0
    np.testing.assert_allclose(nib.load(tmp_path / "sr.nii.gz").get_fdata(), interpolate(lr, 2, "bspline"), atol=1e-6)


def test_tiles_with_wide_halo_equal_one_pass(rng):
    torch.manual_seed(0)
    g = build("generator", {"name": "rrdb", "channels": 8, "growth": 4, "blocks": 1, "scale": 2}).eval()
    lr = rng.normal(size=(14, 11, 9)).astype(np.float32)
    with torch.inference_mode():
        one_pass = g(torch.from_numpy(lr)[None, None])[0, 0].numpy()
    # receptive field: 1 + 17 convs of k3 on the LR grid -> 17 voxels; halo 18 covers it
    tiled = super_resolve(g, lr, 2, inference_settings(tile=5, halo=18), progress=False)
    np.testing.assert_allclose(tiled, one_pass, atol=1e-5)
    small_halo = super_resolve(g, lr, 2, inference_settings(tile=5, halo=1), progress=False)
    assert np.abs(small_halo - one_pass).max() > 1e-4


def test_model_card_round_trip(tmp_path):
    write_model(tmp_path / "model.safetensors", {"name": "rrdb", "channels": 4, "growth": 4, "blocks": 1, "scale": 2})
    torch.manual_seed(0)
    g = build("generator", {"name": "rrdb", "channels": 4, "growth": 4, "blocks": 1, "scale": 2})
    loaded, card = load_generator(tmp_path / "model.safetensors")
    assert card["scale"] == 2 and card["lr_voxel_mm"] == 2.0 and card["preprocessing"]["orientation"] == "RAS"
    x = torch.randn(1, 1, 4, 4, 4)
    torch.testing.assert_close(loaded(x), g(x))


def test_damaged_model_file_is_named(tmp_path):
    import pytest

    from mrisr.errors import InputError

    (tmp_path / "model.safetensors").write_bytes(b"\x00not a model")
    with pytest.raises(InputError, match="model.safetensors"):
        load_generator(tmp_path / "model.safetensors")


def test_windows_cover_each_voxel_once_with_a_halo_or_the_volume_edge():
    from mrisr.inference import windows

    for size, tile, halo in [(64, 48, 8), (80, 48, 8), (20, 16, 2), (64, 16, 2), (9, 4, 0), (30, 7, 3), (10, 48, 8)]:
        plan = windows(size, tile, halo)
        covered = np.zeros(size, int)
        for start, stop, first, last in plan:
            covered[start:stop] += 1
            assert stop - start <= tile
            assert start - first >= halo or first == 0
            assert last - stop >= halo or last == size
        assert (covered == 1).all(), (size, tile, halo)
        assert len({last - first for _, _, first, last in plan}) == 1  # windows stack into batches
    # the authors' pasted tiles keep their exact period, for the stripe figure
    assert [start for start, *_ in windows(50, 16, 0, even=False)] == [0, 16, 32, 48]


def _paper_generator():
    torch.manual_seed(0)
    return build("generator", {"name": "rrdb", "channels": 64, "growth": 64, "blocks": 3, "scale": 2}).eval()


@pytest.mark.parametrize("upsampler", ["pixel_shuffle", "nearest_conv"])
@pytest.mark.parametrize("scale", [2, 4, [1, 1, 4], [3, 3, 1]])
def test_reconstruction_reach_is_exact(scale, upsampler):
    """Windows with the reach as halo, per axis, give the one-pass output; one voxel less on any axis does not."""
    from mrisr.inference import _windowed

    g, factors = _rrdb(scale, upsampler=upsampler), as_scale(scale)
    features = torch.randn(1, 8, 14, 13, 12)
    with torch.inference_mode():
        whole = g.reconstruct(features)[0]
        bar = tqdm(disable=True)
        cpu = torch.device("cpu")
        exact = _windowed(g.reconstruct, cpu, features[0], factors, 4, g.reconstruct_reach, 4, bar, False)
        torch.testing.assert_close(exact, whole, atol=1e-5, rtol=0)
        for axis in range(3):
            halo = list(g.reconstruct_reach)
            halo[axis] -= 1
            short = _windowed(g.reconstruct, cpu, features[0], factors, 4, tuple(halo), 4, bar, False)
            assert (short - whole).abs().max() > 1e-4, (axis, g.reconstruct_reach)


def _rrdb(scale=2, **options):
    torch.manual_seed(0)
    return build("generator", {"name": "rrdb", "channels": 8, "growth": 4, "blocks": 1, "scale": scale,
                               **options}).eval()


def test_in_place_dense_blocks_and_batches_give_the_training_graph_s_values(rng):
    g = _rrdb()
    x = torch.from_numpy(rng.normal(size=(1, 1, 10, 9, 8)).astype(np.float32))
    with torch.no_grad():
        inference = g(x)
    with torch.enable_grad():
        graph = g(x)  # the concatenating path that training differentiates
    torch.testing.assert_close(inference, graph, atol=1e-6, rtol=0)
    lr = x[0, 0].numpy()
    one = super_resolve(g, lr, 2, inference_settings(tile=4, halo=3, batch=1), progress=False)
    four = super_resolve(g, lr, 2, inference_settings(tile=4, halo=3, batch=4), progress=False)
    np.testing.assert_allclose(four, one, atol=1e-5)


def test_paper_generator_windowed_with_the_default_halo_is_the_one_pass_answer(rng):
    """The authors' generator (random weights) on unit-variance input: windows along x, the workflow's halo."""
    import yaml

    from tests.conftest import SCHEMA

    halo = yaml.safe_load(SCHEMA.read_text())["properties"]["inference"]["properties"]["halo"]["default"]
    g = _paper_generator()
    lr = rng.normal(size=(44, 12, 12)).astype(np.float32)
    with torch.inference_mode():
        one_pass = g(torch.from_numpy(lr)[None, None])[0, 0].numpy()
    windowed = super_resolve(g, lr, 2, inference_settings(tile=12, halo=halo), progress=False)
    assert np.abs(windowed - one_pass).max() <= 1e-3


@pytest.mark.parametrize("precision", ["fp32", "bf16", None])
def test_inference_precision_is_the_given_autocast(rng, precision):
    """The authors infer in fp32; the workflow passes the run's precision (inference.precision, else
    train.precision), so that authors.yaml infers in fp32 on CUDA too. On this CPU: fp32 is the plain forward, bf16
    the forward under CPU bf16 autocast, and no precision (auto) fp32."""
    g = build("generator", {"name": "rrdb", "channels": 4, "growth": 4, "blocks": 1, "scale": 2}).eval()
    lr = rng.normal(size=(10, 12, 8)).astype(np.float32)
    x = torch.from_numpy(lr)[None, None]
    with torch.inference_mode():
        plain = g(x).float()[0, 0].numpy()
        with torch.autocast("cpu", dtype=torch.bfloat16):
            bf16 = g(x).float()[0, 0].numpy()
    out = super_resolve(g, lr, 2, inference_settings(tile=64, halo=8, precision=precision), progress=False)
    np.testing.assert_allclose(out, bf16 if precision == "bf16" else plain, rtol=1e-5, atol=1e-5)
    assert not np.allclose(plain, bf16, rtol=1e-3, atol=1e-3)  # the two differ: the test tells them apart
