import numpy as np
from skimage.metrics import structural_similarity

from mrisr import metrics


def test_psnr_and_nrmse_by_hand(rng):
    gt = rng.uniform(-1, 3, size=(10, 11, 12))
    pred = gt + rng.normal(scale=0.1, size=gt.shape)
    mse = np.mean((gt - pred) ** 2)
    rng_gt = gt.max() - gt.min()
    assert np.isclose(metrics.psnr(gt, pred), 10 * np.log10(rng_gt**2 / mse))
    assert np.isclose(metrics.nrmse(gt, pred), np.sqrt(mse) / rng_gt)


def test_masked_metrics_use_only_masked_voxels_and_whole_gt_range(rng):
    gt = rng.uniform(0, 1, size=(12, 12, 12))
    pred = gt.copy()
    mask = np.zeros(gt.shape, bool)
    mask[2:8, 2:8, 2:8] = True
    pred[~mask] += 5.0  # error only outside the brain
    pred[mask] += 0.01
    assert np.isclose(metrics.psnr(gt, pred, mask), 20 * np.log10(gt.max() - gt.min()) - 10 * np.log10(1e-4))
    assert np.isclose(metrics.nrmse(gt, pred, mask), 0.01 / (gt.max() - gt.min()))


def test_ssim_is_the_authors_mean_of_slice_ssims_and_ssim3d_is_skimage_3d(rng):
    gt = rng.uniform(size=(16, 14, 12))
    pred = gt + rng.normal(scale=0.3, size=gt.shape)
    data_range = gt.max() - gt.min()
    # the authors' utils.ssim: channel_axis=-1, i.e. a 2D SSIM per slice along the last axis, averaged
    slices = [structural_similarity(gt[..., k], pred[..., k], data_range=data_range) for k in range(gt.shape[-1])]
    assert np.isclose(metrics.ssim(gt, pred), np.mean(slices))
    assert metrics.ssim3d(gt, pred) == structural_similarity(gt, pred, data_range=data_range)
    assert abs(metrics.ssim(gt, pred) - metrics.ssim3d(gt, pred)) > 1e-3
    mask = gt > 0.5
    maps = np.stack([structural_similarity(gt[..., k], pred[..., k], data_range=data_range, full=True)[1]
                     for k in range(gt.shape[-1])], axis=-1)
    assert np.isclose(metrics.ssim(gt, pred, mask), maps[mask].mean())
    for fn in (metrics.ssim, metrics.ssim3d):
        assert np.isclose(fn(gt, gt), 1.0) and np.isclose(fn(gt, gt, mask), 1.0)


def test_evaluate_has_whole_and_brain_columns(rng):
    gt = rng.uniform(size=(16, 16, 16))
    row = metrics.evaluate(gt, gt + 0.01, gt > 0.2)
    assert set(row) == {"psnr", "ssim", "ssim3d", "nrmse", "psnr_brain", "ssim_brain", "ssim3d_brain", "nrmse_brain"}


def test_noise_estimate_finds_the_sigma_of_white_noise_on_a_smooth_volume():
    from scipy import ndimage

    from mrisr.metrics import noise_sigma

    rng = np.random.default_rng(0)
    smooth = ndimage.gaussian_filter(rng.normal(size=(48, 48, 48)), 4) * 20
    for sigma in (0.05, 0.2):
        assert abs(noise_sigma(smooth + sigma * rng.normal(size=smooth.shape)) - sigma) < 0.15 * sigma


def _mtvnet_case(error_of_slice):
    """An LR of 12³ at x2 (HR 24³, 0.5 everywhere) whose interior LR slices 4, 5 along the third axis are brain and
    6, 7 background; the SR adds ``error_of_slice(k)`` to the interior HR slice k (0-7) of the third axis and 0.3
    in the 8-voxel border that MTVNet cuts."""
    lr = np.zeros((12, 12, 12), np.float32)
    lr[:, :, :6] = 0.5
    hr = np.full((24, 24, 24), 0.5, np.float32)
    sr = hr + 0.3
    for k in range(8):
        sr[8:16, 8:16, 8 + k] = 0.5 + error_of_slice(k)
    return hr, sr, lr


def test_mtvnet_metrics_cut_the_border_and_keep_the_brain_slices_of_each_axis():
    """Along the third axis only the HR slices of LR brain slices count (k 0-3); the other axes' slices are 50% brain,
    so all count, each holding every k: their MSE is the mean over k. The border's error counts nowhere."""
    errors = [0.05 * (1 + k) for k in range(8)]
    hr, sr, lr = _mtvnet_case(lambda k: errors[k])
    third = np.mean([-20 * np.log10(e) for e in errors[:4]])
    other = -10 * np.log10(np.mean(np.square(errors)))
    result = metrics.mtvnet_metrics(hr, sr, lr)
    np.testing.assert_allclose(result["psnr_mtvnet"], (2 * other + third) / 3, rtol=1e-6)


def test_mtvnet_ssim_of_a_constant_offset_is_the_luminance_term_and_psnr_its_rmse():
    hr, sr, lr = _mtvnet_case(lambda k: 0.1)
    c1 = 0.01**2  # K1 = 0.01 at data range 1; with no contrast the contrast-structure term is 1
    result = metrics.mtvnet_metrics(hr, sr, lr)
    np.testing.assert_allclose(result["ssim_mtvnet"], (2 * 0.5 * 0.6 + c1) / (0.5**2 + 0.6**2 + c1), rtol=1e-5)
    np.testing.assert_allclose(result["psnr_mtvnet"], 20.0, rtol=1e-6)


def test_mtvnet_metrics_clamp_to_the_unit_range():
    """An SR of 1.5 where the truth is 1 is clamped to 1 (no error); -0.2 where it is 0.1 is clamped to 0."""
    hr, sr, lr = _mtvnet_case(lambda k: 0.0)
    hr[8:16, 8:16, 8:16] = 1.0
    sr[8:16, 8:16, 8:16] = 1.5
    assert metrics.mtvnet_metrics(hr, sr, lr)["psnr_mtvnet"] == np.inf
    hr[8:16, 8:16, 8:16], sr[8:16, 8:16, 8:16] = 0.1, -0.2
    np.testing.assert_allclose(metrics.mtvnet_metrics(hr, sr, lr)["psnr_mtvnet"], 20.0, rtol=1e-6)


def test_evaluate_mtvnet_metrics_adds_their_columns_beside_ours_and_needs_the_lr(tmp_path):
    import pandas as pd
    import pytest

    from mrisr.cli import main
    from mrisr.io import save_volume

    hr, sr, lr = _mtvnet_case(lambda k: 0.1)
    hr[0] = 0.9  # contrast in the border that MTVNet cuts: evaluate refuses a constant truth
    lr_affine = np.diag([2.0, 2.0, 2.0, 1.0])
    lr_affine[:3, 3] = 0.5  # the slab grid's: not read by the metric, which takes the shapes' ratio
    for name, data, affine in (("gt", hr, np.eye(4)), ("pred", sr, np.eye(4)), ("lr", lr, lr_affine),
                               ("mask", np.ones(hr.shape, np.uint8), np.eye(4))):
        save_volume(data, affine, tmp_path / f"{name}.nii.gz")
    args = ["evaluate", "--subjects", "01", "--gt", str(tmp_path / "gt.nii.gz"), "--pred", str(tmp_path / "pred.nii.gz"),
            "--mask", str(tmp_path / "mask.nii.gz"), "--out", str(tmp_path / "m.csv"), "--threads", "1", "--mtvnet-metrics"]
    assert main([*args, "--lr", str(tmp_path / "lr.nii.gz")]) == 0
    row = pd.read_csv(tmp_path / "m.csv").iloc[0]
    assert row["psnr_mtvnet"] == pytest.approx(20.0) and row["psnr"] == pytest.approx(metrics.psnr(hr, sr))
    assert main(args) != 0
