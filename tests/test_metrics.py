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
